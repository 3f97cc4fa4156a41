"""The service app's tiles on the manager dashboard (crm.dashboard), registered from
ServiceFeedbackConfig.ready() after its metrics (service_feedback.metrics): the tickets
opened, the repeat complaints, and the share of first responses within target (the
service report's within-target rate: of the tickets with a first response)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from crm.dashboard import Tile, register_tile
from crm.metrics import Rate, register_rate
from service_feedback.metrics import SECTION


def register() -> None:
    register_rate(
        Rate(
            key="service.in_target_rate",
            label=_("First responses within target (rate)"),
            definition=_(
                "Tickets opened in the range whose first response came within the target, "
                "divided by the tickets opened in the range that have a first response."
            ),
            numerator="service.first_response_in_target",
            denominator="service.first_responded",
            section=SECTION,
        )
    )
    register_tile(Tile("service.tickets", metric="service.tickets", order=70))
    register_tile(Tile("service.repeat_complaints", metric="service.repeat_complaints", order=80))
    register_tile(Tile("service.in_target_rate", rate="service.in_target_rate", order=90))
