from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LeadsConfig(AppConfig):
    name = "leads"
    verbose_name = _("Leads")

    def ready(self) -> None:
        from crm.models import Role
        from crm.navigation import NavItem, register

        register(
            NavItem(
                "leads",
                _("Leads"),
                "leads:list",
                "inbox",
                description=_(
                    "Every lead from every channel: tags, revisits, suspects, the raw payloads."
                ),
                roles=frozenset({Role.MANAGER, Role.MARKETING, Role.ADMIN, Role.REP}),
                order=10,
            )
        )
        register(
            NavItem(
                "lead_import",
                _("Import leads"),
                "leads:import",
                "upload",
                description=_("Bring in a CSV or Excel list: preview, fix, confirm."),
                roles=frozenset({Role.MANAGER, Role.MARKETING, Role.ADMIN}),
                order=20,
                in_navbar=False,
            )
        )
