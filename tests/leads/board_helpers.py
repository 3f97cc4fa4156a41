"""What the daily board's tests share (test_board_ranking, test_board_page and
test_board_close_day): the URLs, a moment in Asia/Shanghai, customers and follow-ups made
through the real services, and the channel fixture."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse

from crm.tenancy import tenant_context
from customers import services
from customers.models import Customer, PresetKind
from leads.followups_services import lead_follow_up
from tests.leads.factories import make_channel

SH = ZoneInfo("Asia/Shanghai")
BOARD = reverse("board:board")
CLOSE = reverse("board:close")
SUMMARIES = reverse("board:summaries")
HTMX = {"HX-Request": "true"}


def sh(*args) -> datetime:
    """A moment in Asia/Shanghai (the tenants' default time zone)."""
    return datetime(*args, tzinfo=SH)


def action(name="电话回访"):
    return services.presets(PresetKind.ACTION).get(name=name)


def customer(tenant, name, level="C", owner=None) -> Customer:
    with tenant_context(tenant):
        return Customer.objects.create(tenant=tenant, name=name, level=level, owner=owner)


def follow_up(by, *, at, due, lead=None, customer=None, note="", tags=(), action_name="电话回访"):
    """A follow-up logged through the real service, `at` some moment, due on `due`."""
    with tenant_context(by.tenant):
        fields = {
            "tenant": by.tenant,
            "acting_member": by,
            "channel": "phone",
            "talk_tags": tags,
            "note": note,
            "next_action": action(action_name),
            "next_action_due": due,
            "at": at,
        }
        if lead is not None:  # on the lead: its touch and timeline too
            return lead_follow_up(lead=lead, **fields)
        return services.interaction_log(customer=customer, **fields)


@pytest.fixture(name="channel")
def channel_fixture(world):
    return make_channel(world.a.tenant, name="官网表单")
