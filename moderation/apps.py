from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.module_loading import autodiscover_modules
from django.utils.translation import gettext_lazy as _


class ModerationConfig(AppConfig):
    name = "moderation"
    verbose_name = _("Moderation")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import alerts, checks  # noqa: F401 - registers the system checks, receivers
        from .schedule import ensure_sweeper_schedule

        # Each installed app may have a moderation.py that calls moderation.register().
        autodiscover_modules("moderation")
        post_migrate.connect(ensure_sweeper_schedule, sender=self,
                             dispatch_uid="moderation.sweeper")
