"""What tickets do to sales (F27 item 4): the board's 服务线索 for upsell and referral
flags, handled by a follow-up; churn risk notified once per ticket; every ticket on the
customer's timeline."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from crm.models import Notification
from crm.tenancy import tenant_context
from customers import services as customer_services
from customers.models import PresetKind
from service_feedback.board import service_lead_items
from service_feedback.effects import CHURN_EVENT
from service_feedback.services import ticket_link
from tests.customers.panels import customer_360
from tests.service_feedback.helpers import customer_with_contact, upsert

pytestmark = pytest.mark.django_db


def board_items(side, member=None):
    with tenant_context(side.tenant):
        return service_lead_items(member or side.rep, timezone.localdate())


def follow_up(side, customer):
    with tenant_context(side.tenant):
        return customer_services.interaction_log(
            tenant=side.tenant,
            acting_member=side.rep,
            customer=customer,
            channel="phone",
            note="回访增购需求",
            next_action=customer_services.presets(PresetKind.ACTION).first(),
            next_action_due=timezone.localdate(),
        )


@pytest.mark.parametrize(
    ("text", "flag"), [("想再增购两台", "Upsell"), ("给我们推荐了邻厂", "Referral")]
)
def test_an_upsell_or_referral_ticket_is_on_the_owners_board(world, text, flag, english):
    customer = customer_with_contact(world.a)
    ticket, _, new_flags = upsert(
        world.a, "T-1", subject="设备咨询", text=text, phone="13800138000"
    )
    assert new_flags and ticket.customer_id == customer.pk
    items = board_items(world.a)
    assert [i.ticket.pk for i in items] == [ticket.pk]
    assert items[0].flags == [flag]
    assert board_items(world.a, world.a.manager) == []  # not the manager's customer


def test_a_follow_up_on_the_customer_handles_the_item(world):
    customer = customer_with_contact(world.a)
    upsert(world.a, "T-1", text="增购", phone="13800138000")
    assert len(board_items(world.a)) == 1
    follow_up(world.a, customer)
    assert board_items(world.a) == []
    # A newer flagged ticket comes back on the board.
    upsert(world.a, "T-2", text="还想扩容", phone="13800138000")
    assert [i.ticket.external_id for i in board_items(world.a)] == ["T-2"]


def test_a_ticket_without_those_flags_is_not_on_the_board(world):
    customer_with_contact(world.a)
    upsert(world.a, "T-1", text="设备报警", phone="13800138000")
    upsert(world.a, "T-2", text="要投诉", phone="13800138000")
    assert board_items(world.a) == []


def test_a_flagged_ticket_linked_by_hand_reaches_the_board(world):
    customer = customer_with_contact(world.a, phone="")
    ticket, _, _ = upsert(world.a, "T-1", text="推荐", phone="13900001111")
    assert ticket.customer_id is None and board_items(world.a) == []
    with tenant_context(world.a.tenant):
        ticket_link(
            tenant=world.a.tenant, acting_member=world.a.manager, ticket=ticket, customer=customer
        )
    assert [i.ticket.pk for i in board_items(world.a)] == [ticket.pk]


def test_the_board_page_shows_the_section(world, en):
    customer_with_contact(world.a)
    upsert(world.a, "T-1", subject="扩容咨询", text="增购", phone="13800138000")
    page = en(world.a.rep).get(reverse("board:board"))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-testid="service-lead"' in html and "扩容咨询" in html


def churn_notes(side):
    with tenant_context(side.tenant):
        return list(Notification.objects.filter(event=CHURN_EVENT).order_by("recipient_id"))


def test_churn_risk_notifies_the_owner_and_managers_once(world):
    customer = customer_with_contact(world.a)
    upsert(world.a, "T-1", subject="不满", text="我们要投诉", phone="13800138000")
    notes = churn_notes(world.a)
    assert {n.recipient_id for n in notes} == {world.a.rep.pk, world.a.manager.pk}
    assert notes[0].link == reverse("customers:detail", args=[customer.public_id])
    # Re-delivered, flagged again after losing the word, linked again: no second one.
    upsert(world.a, "T-1", subject="不满", text="我们要投诉，换供应商", phone="13800138000")
    upsert(world.a, "T-1", subject="不满", text="算了", phone="13800138000")
    upsert(world.a, "T-1", subject="不满", text="还是投诉", phone="13800138000")
    ticket, _, _ = upsert(world.a, "T-1", subject="不满", text="还是投诉", phone="13800138000")
    with tenant_context(world.a.tenant):
        ticket_link(
            tenant=world.a.tenant, acting_member=world.a.manager, ticket=ticket, customer=customer
        )
    assert len(churn_notes(world.a)) == 2
    assert churn_notes(world.b) == []


def test_an_unmatched_churn_ticket_notifies_when_linked(world):
    customer = customer_with_contact(world.a, phone="")
    ticket, _, _ = upsert(world.a, "T-1", text="不再合作", phone="13900001111")
    assert churn_notes(world.a) == []
    with tenant_context(world.a.tenant):
        ticket_link(
            tenant=world.a.tenant, acting_member=world.a.manager, ticket=ticket, customer=customer
        )
    assert {n.recipient_id for n in churn_notes(world.a)} == {world.a.rep.pk, world.a.manager.pk}


def test_every_ticket_is_on_the_customers_timeline(world, en):
    customer = customer_with_contact(world.a)
    upsert(world.a, "T-1", subject="设备报警", text="E17", phone="13800138000", satisfaction=4)
    upsert(world.a, "T-2", subject="扩容咨询", text="增购", phone="13800138000")
    follow_up(world.a, customer)
    html = customer_360(en(world.a.rep), customer)  # the page, then its timeline panel
    assert html.count("Service ticket") >= 2
    assert "T-1 · 设备报警" in html and "satisfaction 4/5" in html
    assert "T-2 · 扩容咨询" in html and "flags: Upsell" in html


def test_the_sections_queries_do_not_grow_with_its_items(world):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def count():
        with CaptureQueriesContext(connection) as queries:
            items = board_items(world.a)
        return len(items), len(queries)

    customer_with_contact(world.a)
    upsert(world.a, "T-0", text="增购", phone="13800138000")
    board_items(world.a)  # the default hint rule and settings exist now
    one = count()
    for n in range(1, 8):
        phone = f"1370013{n:04d}"
        customer_with_contact(world.a, f"客户{n}", phone=phone)
        upsert(world.a, f"T-{n}", text="推荐", phone=phone)
    eight = count()
    assert (one[0], eight[0]) == (1, 8)
    assert (
        one[1] == eight[1] <= 8
    )  # the tenant scope (4), tickets, settings, the cards' tickets, hints
