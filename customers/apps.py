from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CustomersConfig(AppConfig):
    name = "customers"
    verbose_name = _("Customers")

    def ready(self) -> None:
        from crm.audit import register_actions
        from crm.navigation import NavItem, register, register_home_card
        from crm.roles import CUSTOMER_LIST
        from customers.home import recent_customers_card

        register_actions(
            {
                "customer.created": _("Customer created from a lead"),
                "customer.updated_from_lead": _("Customer updated from a lead"),
                "interaction.logged": _("Follow-up logged"),
                "interaction.scheduled": _("Next step set by a verification"),
                "customer.level_set": _("Customer level changed"),
                "contact.changed_jobs": _("Contact changed jobs"),
            }
        )
        from customers import events

        events.register()  # the business events automation rules react to (crm.events)
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
                roles=CUSTOMER_LIST,
                order=12,
            )
        )
        register_home_card(recent_customers_card)
        from customers import exports

        exports.register()  # the customer list's background export (crm.exports)
        from customers import views_panels

        views_panels.register()  # the customer page's follow-ups panel and contacts figure
        from customers import selftest

        selftest.register()  # the CRM health self-test's indicators (crm.selftest)
