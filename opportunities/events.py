"""The opportunities' business events (F47, crm.events): their kinds, and the one place
that words their data. Emitted by opportunities.services in the change's transaction."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from crm.events import EventKind, emit, register_kind

STAGE_CHANGED = "opportunity.stage_changed"
WON = "opportunity.won"
LOST = "opportunity.lost"

FIELDS = {
    "name": str,
    "product_line": str,
    "amount": float,
    "stage": str,
    "previous_stage": str,
    "probability": int,
    "owner_id": int,
    "customer_id": int,
    "lost_reason": str,
}


def register() -> None:
    for key, label in (
        (STAGE_CHANGED, _("Opportunity moved to another stage")),
        (WON, _("Opportunity won")),
        (LOST, _("Opportunity lost")),
    ):
        register_kind(EventKind(key, label, FIELDS, keyed_by="customer"))


def emit_opportunity(kind: str, opportunity, *, previous_stage: str = "") -> None:
    emit(
        kind,
        opportunity,
        key=f"customer:{opportunity.customer_id}",
        name=opportunity.name,
        product_line=opportunity.product_line,
        amount=opportunity.amount,
        stage=opportunity.stage.code,
        previous_stage=previous_stage,
        probability=opportunity.probability,
        owner_id=opportunity.owner_id,
        customer_id=opportunity.customer_id,
        lost_reason=opportunity.lost_reason.name if opportunity.lost_reason_id else "",
    )
