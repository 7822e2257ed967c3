"""The signals this app sends, in one place.

All are sent after the database transaction that changed the job has committed, with
``sender`` = the Job class and ``job`` = the Job instance.

- ``job_submitted(job)``: the provider accepted the media (or a result was reused).
- ``job_progress(job, result)``: a live stream's chunk was ingested (rows appended).
- ``job_completed(job)``: a result was ingested and the policy applied.
- ``review_required(job)``: the policy suggested ``review``; a moderator must decide.
- ``content_blocked(job, instance)``: the policy blocked content (after the block action).
- ``review_resolved(job, decision, actor)``: a moderator decided (``approved`` or
  ``rejected``), also when reversing an earlier decision.
"""

from django.dispatch import Signal

job_submitted = Signal()
job_progress = Signal()
job_completed = Signal()
review_required = Signal()
content_blocked = Signal()
review_resolved = Signal()
