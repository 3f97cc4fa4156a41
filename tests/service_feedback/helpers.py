"""Tickets on real rows, for the service-feedback tests."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from crm.tenancy import tenant_context
from customers.models import Contact, Customer
from service_feedback.services import TicketData, ticket_upsert
from tests.leads.factories import make_channel


def helpdesk(side):
    """The side's helpdesk channel (made once)."""
    if "helpdesk" not in side.extra:
        with tenant_context(side.tenant):
            side.extra["helpdesk"] = make_channel(side.tenant, type="helpdesk", name="智齿客服")
    return side.extra["helpdesk"]


def customer_with_contact(side, name="恒力液压", *, phone="13800138000", email="", code=""):
    from crm.normalize import parse_phone

    with tenant_context(side.tenant):
        customer = Customer.objects.create(tenant=side.tenant, name=name, owner=side.rep, code=code)
        parsed = parse_phone(phone) if phone else None
        Contact.objects.create(
            tenant=side.tenant,
            customer=customer,
            name="王工",
            phone=phone,
            phone_key=parsed.e164 if parsed else "",
            email=email,
        )
        return customer


def upsert(side, external_id="T-1", **fields):
    fields.setdefault("opened_at", timezone.now() - timedelta(hours=3))
    with tenant_context(side.tenant):
        return ticket_upsert(
            tenant=side.tenant,
            channel=helpdesk(side),
            data=TicketData(external_id=external_id, **fields),
        )
