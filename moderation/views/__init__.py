"""The app's HTTP views, one module per concern; ``moderation/urls.py`` wires them.

- ``evidence.py``: thumbnails, clips and a job's original file, for users who may view jobs.
- ``media.py``: site media: ``signed_media`` for a remote provider (signed, expiring URL)
  and ``visible_media``, which a site mounts at ``MEDIA_URL`` to serve only what moderation
  lets be shown.
- ``callbacks.py``: results pushed by a provider (find -> verify -> ingest).

The review console's pages are admin views (``moderation/admin/console.py``); the REST API
is ``moderation/api/``. Importing this package loads none of the modules above.
"""
