"""Tickets in through the service: upsert and re-delivery, matching by each key, the link
remembered, flags, minutes and implausible durations."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from crm.tenancy import tenant_context
from service_feedback.models import Ticket, TicketLink
from service_feedback.services import ticket_link
from tests.service_feedback.helpers import customer_with_contact, upsert

pytestmark = pytest.mark.django_db


def test_redelivery_updates_never_duplicates(world):
    ticket, created, _ = upsert(world.a, "Z-9", subject="设备报警", status="open")
    again, created_again, _ = upsert(world.a, "Z-9", subject="设备报警", status="closed")
    assert created and not created_again and again.pk == ticket.pk
    with tenant_context(world.a.tenant):
        assert Ticket.objects.count() == 1
        assert Ticket.objects.get().status == "closed"


@pytest.mark.parametrize(
    ("fields", "key"),
    [
        ({"customer_code": "C-001"}, "code"),
        ({"phone": "138 0013 8000"}, "phone"),
        ({"email": "Wang@HengLi.com"}, "email"),
        ({"email": "li@hengli.com"}, "domain"),
    ],
)
def test_matching_by_each_key(world, fields, key):
    customer = customer_with_contact(world.a, code="C-001", email="wang@hengli.com")
    ticket, _, _ = upsert(world.a, **fields)
    assert ticket.customer_id == customer.pk
    assert ticket.match_key == key


def test_free_mail_domains_never_match(world):
    customer_with_contact(world.a, email="wang@qq.com")
    ticket, _, _ = upsert(world.a, email="li@qq.com")
    assert ticket.customer_id is None and ticket.match_key == ""


def test_a_link_by_hand_is_remembered(world):
    customer = customer_with_contact(world.a, phone="")
    first, _, _ = upsert(world.a, "T-1", phone="13900001111")
    waiting, _, _ = upsert(world.a, "T-2", phone="13900001111")
    assert first.customer_id is None
    with tenant_context(world.a.tenant):
        first.refresh_from_db()
        ticket_link(
            tenant=world.a.tenant, acting_member=world.a.manager, ticket=first, customer=customer
        )
        waiting.refresh_from_db()
        assert waiting.customer_id == customer.pk and waiting.match_key == "link"
        assert TicketLink.objects.filter(value="+8613900001111").exists()
    later, _, _ = upsert(world.a, "T-3", phone="13900001111")
    assert later.customer_id == customer.pk and later.match_key == "link"


def test_flags_from_keywords(world):
    ticket, _, new = upsert(world.a, text="客户想增购两台，并推荐给兄弟单位")
    assert ticket.flags == ["upsell", "referral"] and new == ["upsell", "referral"]
    _, _, new_again = upsert(world.a, text="客户想增购两台，并推荐给兄弟单位；另有投诉")
    assert new_again == ["churn"]


def test_minutes_and_implausible_durations(world):
    opened = timezone.now() - timedelta(hours=5)
    ticket, _, _ = upsert(
        world.a,
        opened_at=opened,
        first_response_at=opened + timedelta(minutes=12),
        resolved_at=opened + timedelta(hours=4),
    )
    assert (ticket.first_response_minutes, ticket.resolution_minutes) == (12, 240)
    bad, _, _ = upsert(world.a, "T-bad", opened_at=opened, resolved_at=opened - timedelta(hours=1))
    assert bad.resolution_minutes is None and "negative" in bad.duration_issue
