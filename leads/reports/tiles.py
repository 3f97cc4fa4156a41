"""The leads app's tiles on the manager dashboard (crm.dashboard), registered from
LeadsConfig.ready() after its metrics (leads.reports.metrics): the leads delivered
(charted day by day), the share valid within 24 h, the invalid ones."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from crm.dashboard import Tile, register_tile
from crm.metrics import Rate, register_rate
from leads.reports.metrics import SECTION


def register() -> None:
    register_rate(
        Rate(
            key="leads.valid_24h_rate",
            label=_("24 h valid rate"),
            definition=_(
                "Leads verified valid within 24 hours, divided by the leads delivered in the range."
            ),
            numerator="leads.valid_24h",
            denominator="leads.delivered",
            section=SECTION,
        )
    )
    register_tile(Tile("leads.delivered", metric="leads.delivered", order=10, chart=True))
    register_tile(Tile("leads.valid_24h_rate", rate="leads.valid_24h_rate", order=20))
    register_tile(Tile("leads.invalid", metric="leads.invalid", order=30))
