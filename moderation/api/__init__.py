"""The REST API (Django REST framework), mounted by a site with
``path("api/moderation/", include("moderation.api.urls"))``.

Permissions are the admin's (``view_job``, ``review_job``, ``send_feedback``, the HashEntry
model permissions); authentication is whatever the site's ``REST_FRAMEWORK`` settings say
(the demo: session and token). Evidence files are never embedded: frames and slices carry
links to the permission-checked evidence views.
"""
