from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ServiceFeedbackConfig(AppConfig):
    name = "service_feedback"
    verbose_name = _("Service feedback")

    def ready(self) -> None:
        from service_feedback import home, intake

        # The inbox: helpdesk channels' events become tickets (service_feedback.intake).
        intake.register()
        # The ticket screens: menu, home cards, the list's export.
        home.register()
