from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CustomersConfig(AppConfig):
    name = "customers"
    verbose_name = _("Customers")

    def ready(self) -> None:
        from crm.navigation import NavItem, register, register_home_card
        from customers.access import CUSTOMER_ROLES
        from customers.home import recent_customers_card

        register(
            NavItem(
                "customers",
                _("Customers"),
                "customers:list",
                "building",
                description=_(
                    "Every customer you may see: level, owner, region, last contact and"
                    " leads; search, filters and CSV."
                ),
                roles=frozenset(CUSTOMER_ROLES),
                order=12,
            )
        )
        register_home_card(recent_customers_card)
