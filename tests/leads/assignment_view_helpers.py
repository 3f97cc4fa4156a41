"""What the assignment views' tests share (test_assignment_lead_page and
test_assignment_rep_views): a lead's URLs, a lead through the real intake pipeline or made
and dispatched by the engine, a lead read again, and the channel fixture."""

from __future__ import annotations

import pytest
from django.urls import reverse

from crm.tenancy import tenant_context
from leads.assignment.dispatch import dispatch_new_lead
from leads.intake.services import inbound_event_process
from leads.models import EventStatus, Lead
from tests.leads.factories import make_channel, make_event, make_lead


def url(name: str, lead) -> str:
    return reverse(f"leads:{name}", args=[lead.public_id])


def intake(tenant, channel=None, **payload) -> Lead:
    """A lead through the real pipeline: inbox → lead → dispatch."""
    payload.setdefault("phone", "13812345678")
    payload.setdefault("company", "宁波恒力液压科技有限公司")
    payload.setdefault("name", "王工")
    event = make_event(tenant, channel, payload=payload)
    with tenant_context(tenant):
        inbound_event_process(event_id=event.pk)
        event.refresh_from_db()
        assert event.status == EventStatus.PROCESSED, event.error
        return Lead.objects.select_related("owner__user").get(pk=event.lead_id)


def dispatched(tenant, channel=None, **fields) -> Lead:
    """A lead made directly, then dispatched by the engine."""
    lead = make_lead(tenant, channel, **fields)
    with tenant_context(tenant):
        dispatch_new_lead(lead)
        return Lead.objects.select_related("owner__user").get(pk=lead.pk)


def reload(lead: Lead) -> Lead:
    with tenant_context(lead.tenant):
        return Lead.objects.select_related("owner").get(pk=lead.pk)


@pytest.fixture(name="channel")
def channel_fixture(world):
    return make_channel(world.a.tenant, name="展会名片")
