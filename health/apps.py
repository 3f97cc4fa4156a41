from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class HealthConfig(AppConfig):
    name = "health"
    verbose_name = _("Customer health")

    def ready(self) -> None:
        from crm.board import BoardSection, register_section

        # The daily board's section (crm.board): only its slot until customers' health is
        # scored; then `items` lists the member's customers at risk.
        register_section(
            BoardSection(
                key="at_risk_customers",
                title=_("At-risk customers"),
                icon="heart-pulse",
                order=20,
                holds=_(
                    "Your customers whose health score dropped, with the playbook step to take."
                ),
                source=_("Filled by customer health once it is scored."),
            )
        )
