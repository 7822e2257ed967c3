from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.module_loading import autodiscover_modules
from django.utils.translation import gettext_lazy as _

from .schedule import ensure_sweeper_schedule


class ModerationConfig(AppConfig):
    name = "moderation"
    verbose_name = _("Moderation")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Django's pattern: what registers receivers is imported once the apps are ready.
        from . import alerts, checks, handlers  # noqa: F401, PLC0415 - register system checks, receivers

        # Each installed app may have a moderation.py that calls moderation.register().
        autodiscover_modules("moderation")
        post_migrate.connect(ensure_sweeper_schedule, sender=self,
                             dispatch_uid="moderation.sweeper")
