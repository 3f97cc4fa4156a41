"""Hand-built customer histories for the health tests: interactions, resolved tickets,
signals and tracked links at chosen moments, on real rows."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from crm.tenancy import tenant_context
from customers.models import Customer, Interaction, Preset, PresetKind
from health import compute
from health.models import LinkKind, ResolvedBy, Signal, SignalKind, TrackedLink

DAY = date(2026, 11, 30)


def moment(side, days_before: float, day: date = DAY) -> datetime:
    """`days_before` days before the start of `day` in the side's tenant time zone."""
    return compute.as_of(side.tenant, day) - timedelta(days=days_before)


def customer(side, name="恒力液压", owner=None, created_at=None) -> Customer:
    """A customer of the side's rep, on the books for a year before DAY by default (a day
    scores only the customers that existed when it began)."""
    with tenant_context(side.tenant):
        return Customer.objects.create(
            tenant=side.tenant,
            name=name,
            owner=owner or side.rep,
            created_at=created_at or moment(side, 365),
        )


def _action(side) -> Preset:
    found = Preset.objects.filter(kind=PresetKind.ACTION).first()
    if found is None:
        found = Preset.objects.create(tenant=side.tenant, kind=PresetKind.ACTION, name="回访")
    return found


def interaction(side, cust, at: datetime) -> Interaction:
    with tenant_context(side.tenant):
        return Interaction.objects.create(
            tenant=side.tenant,
            customer=cust,
            by=side.rep,
            at=at,
            channel="phone",
            next_action=_action(side),
            next_action_due=at.date() + timedelta(days=3),
        )


def signal(side, cust, kind: str, at: datetime, **fields) -> Signal:
    with tenant_context(side.tenant):
        return Signal.objects.create(
            tenant=side.tenant,
            customer=cust,
            kind=kind,
            at=at,
            resolved_by=ResolvedBy.CODE,
            **fields,
        )


def link(side, cust, kind: str, sent_at: datetime, opened_at: datetime | None = None):
    with tenant_context(side.tenant):
        made = TrackedLink.objects.create(
            tenant=side.tenant,
            customer=cust,
            kind=kind,
            title="报价单" if kind == LinkKind.QUOTE else "产品手册",
            target_url="https://example.com/doc.pdf",
            sent_at=sent_at,
            first_opened_at=opened_at,
            open_count=1 if opened_at else 0,
        )
        if opened_at is not None:
            Signal.objects.create(
                tenant=side.tenant,
                customer=cust,
                link=made,
                kind=SignalKind.QUOTE_OPEN if kind == LinkKind.QUOTE else SignalKind.DOWNLOAD,
                at=opened_at,
                resolved_by=ResolvedBy.TOKEN,
            )
        return made


def resolved_ticket(side, cust, resolved_at: datetime, hours: float, external_id: str):
    """A ticket of `cust` resolved at `resolved_at` after `hours` (calendar minutes)."""
    from service_feedback.services import TicketData, ticket_upsert
    from tests.service_feedback.helpers import helpdesk

    channel = helpdesk(side)
    with tenant_context(side.tenant):
        cust.code = cust.code or f"C{cust.pk}"
        cust.save(update_fields=["code"])
        ticket, _, _ = ticket_upsert(
            tenant=side.tenant,
            channel=channel,
            data=TicketData(
                external_id=external_id,
                status="resolved",
                customer_code=cust.code,
                opened_at=resolved_at - timedelta(hours=hours),
                resolved_at=resolved_at,
            ),
        )
        return ticket
