from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ServiceFeedbackConfig(AppConfig):
    name = "service_feedback"
    verbose_name = _("Service feedback")

    def ready(self) -> None:
        from service_feedback import metrics

        metrics.register()
