from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AutomationConfig(AppConfig):
    name = "automation"
    verbose_name = _("Automation")

    def ready(self) -> None:
        from automation import registrations

        registrations.register()
