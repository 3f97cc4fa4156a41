from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ServiceFeedbackConfig(AppConfig):
    name = "service_feedback"
    verbose_name = _("Service feedback")

    def ready(self):
        # -- the inbox: helpdesk channels' events become tickets (service_feedback.intake)
        from service_feedback import intake

        intake.register()
