"""Hand-built rows for the lead activity index's tests: leads, their timeline entries,
follow-ups, customers and contacts, each written as stored (no service), at chosen
moments around the scored day's start."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from itertools import count

from crm.tenancy import tenant_context
from customers.models import Contact, Customer, Interaction, InteractionKind, Preset, PresetKind
from leads.models import Channel, ChannelType, LeadEvent, LeadEventKind, LeadStatus
from tests.leads.factories import make_channel, make_lead

DAY = date(2026, 3, 10)
_numbers = count(1)


def start_of(tenant, day: date = DAY) -> datetime:
    """The scored day's start in the tenant's time zone (what the values are as of)."""
    return datetime.combine(day, time(0), tzinfo=tenant.tzinfo)


def lead(tenant, owner, *, channel=None, status=LeadStatus.ASSIGNED, days_old=60, **fields):
    """An open lead of `owner`, created `days_old` days before the day's start, with no
    timeline entry and no touch."""
    fields.setdefault("company", f"测试公司{next(_numbers)}")
    return make_lead(
        tenant,
        channel=channel or web_form(tenant),
        owner=owner,
        status=status,
        created_at=start_of(tenant) - timedelta(days=days_old),
        **fields,
    )


def web_form(tenant) -> Channel:
    """The tenant's one web-form channel (made on first use)."""
    with tenant_context(tenant):
        found = Channel.objects.filter(name="官网表单").first()
    return found or make_channel(tenant, name="官网表单", type=ChannelType.WEB_FORM)


def event(lead_, *, days_before: float, kind=LeadEventKind.TOUCH):
    tenant = lead_.tenant
    with tenant_context(tenant):
        return LeadEvent.objects.create(
            tenant=tenant, lead=lead_, kind=kind, at=start_of(tenant) - timedelta(days=days_before)
        )


def _action(tenant) -> Preset:
    with tenant_context(tenant):
        return Preset.objects.get_or_create(tenant=tenant, kind=PresetKind.ACTION, name="电话回访")[
            0
        ]


def follow_up(
    by,
    *,
    days_before: float,
    lead=None,
    customer=None,
    contact=None,
    roles=(),
    kind=InteractionKind.FOLLOW_UP,
):
    tenant = by.tenant
    at = start_of(tenant) - timedelta(days=days_before)
    with tenant_context(tenant):
        return Interaction.objects.create(
            tenant=tenant,
            kind=kind,
            lead=lead,
            customer=customer if customer is not None else getattr(lead, "customer", None),
            contact=contact,
            by=by,
            at=at,
            channel="phone",
            roles=list(roles),
            next_action=_action(tenant),
            next_action_due=at.date(),
        )


def customer(tenant, name=None, owner=None) -> Customer:
    with tenant_context(tenant):
        return Customer.objects.create(
            tenant=tenant, name=name or f"客户{next(_numbers)}", owner=owner
        )


def contact(customer_, role="") -> Contact:
    tenant = customer_.tenant
    with tenant_context(tenant):
        return Contact.objects.create(
            tenant=tenant, customer=customer_, name=f"联系人{next(_numbers)}", role=role
        )
