from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ServiceFeedbackConfig(AppConfig):
    name = "service_feedback"
    verbose_name = _("Service feedback")

    def ready(self) -> None:
        from service_feedback import effects, events, facts, home, intake, metrics, tiles

        # The inbox: helpdesk channels' events become tickets (service_feedback.intake).
        intake.register()
        # The ticket screens: menu, home cards, the list's export.
        home.register()
        # What tickets do to sales: the board, notifications, the customer page, alerts.
        effects.register()
        # The service figures in the kernel's metric registry (the report's definitions).
        metrics.register()
        tiles.register()  # the manager dashboard's tiles, on those metrics
        # Resolved tickets as a fact customer health scores by (crm.customer_facts).
        facts.register()
        events.register()  # the business events automation rules react to (crm.events)
