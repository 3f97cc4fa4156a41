"""The queue of unmatched tickets and the link by hand: oldest first with what each
carries, the customer search, the link remembered (and the waiting tickets linked with
it), bad input, who may link, and the service agent's home."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from crm.models import Role
from crm.tenancy import tenant_context
from service_feedback.models import Ticket, TicketLink
from tests.factories import MembershipFactory
from tests.service_feedback.helpers import customer_with_contact, upsert

pytestmark = pytest.mark.django_db

QUEUE = reverse("service_feedback:unmatched")


def link_url(ticket):
    return reverse("service_feedback:link", args=[ticket.public_id])


@pytest.fixture
def agent(world):
    return MembershipFactory(tenant=world.a.tenant, role=Role.SERVICE)


def received(side, ticket, ago):
    with tenant_context(side.tenant):
        Ticket.objects.filter(pk=ticket.pk).update(received_at=timezone.now() - ago)


def test_the_queue_shows_the_oldest_waiting_first_with_what_each_carries(world, en, agent):
    customer_with_contact(world.a, "恒力液压", phone="13800138000")
    newer, _, _ = upsert(world.a, "U-1", subject="较新的", email="li@example.cn")
    older, _, _ = upsert(
        world.a, "U-2", subject="较早的", phone="13911112222", customer_code="X-9",
        requester_name="李四",
    )  # fmt: skip
    upsert(world.a, "M-1", subject="已匹配", phone="13800138000")
    upsert(world.b, "B-1", subject="外租户的")
    received(world.a, newer, timedelta(hours=1))
    received(world.a, older, timedelta(days=2))
    body = en(agent).get(QUEUE).content.decode()
    assert body.index("较早的") < body.index("较新的")
    assert "已匹配" not in body and "外租户的" not in body
    assert "139 1111 2222" in body and "X-9" in body and "李四" in body
    assert "li@example.cn" in body
    assert body.count('data-testid="link-form"') == 2
    assert "2 tickets waiting" in body


def test_the_queue_empty_state(world, en, agent):
    body = en(agent).get(QUEUE).content.decode()
    assert 'data-testid="queue-empty"' in body


def test_the_queue_keeps_its_query_count(world, login, agent):
    client = login(agent)
    for i in range(3):
        upsert(world.a, f"U-{i}", phone=f"1391111{i:04d}")
    client.get(QUEUE)
    with CaptureQueriesContext(connection) as few:
        client.get(QUEUE)
    for i in range(3, 20):
        upsert(world.a, f"U-{i}", phone=f"1391111{i:04d}")
    with CaptureQueriesContext(connection) as many:
        assert client.get(QUEUE).content.decode().count('data-testid="unmatched-ticket"') == 20
    assert len(many) == len(few), [q["sql"][:160] for q in many.captured_queries]


def test_the_customer_search_finds_by_name_phone_and_code(world, en, agent):
    hengli = customer_with_contact(world.a, "恒力液压", phone="13800138000", code="HL-01")
    customer_with_contact(world.a, "东方机械", phone="13700000000")
    customer_with_contact(world.b, "恒力外租户", phone="13800138000")
    ticket, _, _ = upsert(world.a, "U-1", phone="13911112222")
    client = en(agent)
    for q in ("恒力", "138 0013 8000", "HL-01"):
        body = client.get(link_url(ticket), {"q": q}).content.decode()
        assert body.count('data-testid="link-candidate"') == 1, q
        assert str(hengli.public_id) in body and "恒力外租户" not in body
    body = client.get(link_url(ticket), {"q": "没有这个"}).content.decode()
    assert 'data-testid="link-none"' in body


def test_a_link_remembered_links_the_waiting_tickets_and_the_next_ones(world, en, agent):
    customer = customer_with_contact(world.a, "恒力液压", phone="")
    first, _, _ = upsert(world.a, "U-1", phone="13911112222", email="wang@qq.com")
    upsert(world.a, "U-2", phone="13911112222")
    upsert(world.a, "U-3", email="wang@qq.com")
    upsert(world.a, "U-4", phone="13100000000")  # someone else: still waiting
    client = en(agent)
    response = client.post(
        link_url(first), {"customer": str(customer.public_id), "remember": "on", "next": QUEUE}
    )
    assert response.status_code == 302 and response["Location"] == QUEUE
    [message] = [str(m) for m in get_messages(response.wsgi_request)]
    assert "U-1" in message and "恒力液压" in message
    assert "2 waiting tickets from the same phone or e-mail were linked with it" in message
    with tenant_context(world.a.tenant):
        linked = dict(Ticket.objects.values_list("external_id", "match_key"))
        assert linked == {"U-1": "manual", "U-2": "link", "U-3": "link", "U-4": ""}
        assert set(TicketLink.objects.values_list("key", "value")) == {
            ("phone", "+8613911112222"),
            ("email", "wang@qq.com"),
        }
    later, _, _ = upsert(world.a, "U-5", phone="13911112222")
    assert later.customer_id == customer.pk and later.match_key == "link"
    body = client.get(QUEUE).content.decode()
    assert body.count('data-testid="unmatched-ticket"') == 1


def test_a_link_not_remembered_links_that_ticket_only(world, en, agent):
    customer = customer_with_contact(world.a, "恒力液压", phone="")
    first, _, _ = upsert(world.a, "U-1", phone="13911112222")
    upsert(world.a, "U-2", phone="13911112222")
    response = en(agent).post(link_url(first), {"customer": str(customer.public_id)})
    assert response.status_code == 302
    assert response["Location"] == reverse("service_feedback:ticket", args=[first.public_id])
    [message] = [str(m) for m in get_messages(response.wsgi_request)]
    assert "waiting" not in message
    with tenant_context(world.a.tenant):
        assert not TicketLink.objects.exists()
        assert Ticket.objects.unmatched().count() == 1


def test_htmx_links_and_redirects(world, en, agent):
    customer = customer_with_contact(world.a, "恒力液压", phone="")
    ticket, _, _ = upsert(world.a, "U-1", phone="13911112222")
    response = en(agent).post(
        link_url(ticket),
        {"customer": str(customer.public_id), "remember": "on", "next": QUEUE},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 204 and response["HX-Redirect"] == QUEUE


@pytest.mark.parametrize("choice", ["", "not-a-uuid", "unknown", "foreign"])
def test_a_link_without_a_customer_of_the_tenant_is_refused_with_a_field_error(
    world, en, agent, choice
):
    ticket, _, _ = upsert(world.a, "U-1", phone="13911112222")
    foreign = customer_with_contact(world.b, "外租户客户", phone="")
    value = {"unknown": str(uuid.uuid4()), "foreign": str(foreign.public_id)}.get(choice, choice)
    client = en(agent)
    response = client.post(
        link_url(ticket), {"customer": value, "remember": "on"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 422
    body = response.content.decode()
    assert 'data-testid="link-error"' in body and "Choose the customer." in body
    assert 'data-testid="link-form"' in body and "<html" not in body
    page = client.post(link_url(ticket), {"customer": value})
    assert page.status_code == 422 and "Choose the customer." in page.content.decode()
    assert "<html" in page.content.decode()
    with tenant_context(world.a.tenant):
        assert Ticket.objects.unmatched().count() == 1


def test_reps_neither_see_the_queue_nor_link(world, login):
    customer = customer_with_contact(world.a, "恒力液压", phone="13800138000")
    mine, _, _ = upsert(world.a, "M-1", phone="13800138000")
    waiting, _, _ = upsert(world.a, "U-1", phone="13911112222")
    client = login(world.a.rep)
    assert client.get(QUEUE).status_code == 403
    # Their customer's ticket: the page is theirs, linking is not.
    assert client.post(link_url(mine), {"customer": str(customer.public_id)}).status_code == 403
    assert client.get(link_url(mine), {"q": "恒力"}).status_code == 403
    # An unmatched ticket does not exist for them.
    assert client.post(link_url(waiting), {"customer": str(customer.public_id)}).status_code == 404
    with tenant_context(world.a.tenant):
        assert Ticket.objects.unmatched().count() == 1


def test_managers_link_too(world, login):
    customer = customer_with_contact(world.a, "恒力液压", phone="")
    ticket, _, _ = upsert(world.a, "U-1", phone="13911112222")
    assert login(world.a.manager).get(QUEUE).status_code == 200
    response = login(world.a.manager).post(link_url(ticket), {"customer": str(customer.public_id)})
    assert response.status_code == 302
    with tenant_context(world.a.tenant):
        ticket.refresh_from_db()
        assert ticket.customer_id == customer.pk and ticket.match_key == "manual"


# -- the service agent's home --------------------------------------------------------------


def test_the_service_agents_home_shows_the_queue_and_recent_tickets(world, en, agent):
    customer_with_contact(world.a, "恒力液压", phone="13800138000")
    old, _, _ = upsert(world.a, "U-1", subject="最早等待的", phone="13911112222")
    upsert(world.a, "U-2", subject="后来等待的", phone="13911113333")
    upsert(world.a, "M-1", subject="匹配的工单", phone="13800138000", text="想增购")
    upsert(world.b, "B-1", subject="外租户工单")
    received(world.a, old, timedelta(days=1))
    body = en(agent).get("/").content.decode()
    queue = body[body.index('data-testid="ticket-queue"') :]
    assert '<span class="badge text-bg-warning" data-testid="ticket-queue-count">2</span>' in queue
    assert queue.index("最早等待的") < queue.index("后来等待的")
    recent = body[body.index('data-testid="recent-tickets"') :]
    assert "匹配的工单" in recent and "恒力液压" in recent and "Upsell" in recent
    assert "外租户工单" not in body
    # The customers with sales context stay on it.
    assert 'data-testid="recent-customers"' in body
    assert f'href="{reverse("service_feedback:tickets")}"' in body


def test_the_service_home_keeps_its_query_count(world, login, agent):
    client = login(agent)
    for i in range(2):
        upsert(world.a, f"U-{i}", phone=f"1391111{i:04d}")
    client.get("/")
    with CaptureQueriesContext(connection) as few:
        client.get("/")
    for i in range(2, 20):
        upsert(world.a, f"U-{i}", phone=f"1391111{i:04d}")
    with CaptureQueriesContext(connection) as many:
        body = client.get("/").content.decode()
    assert body.count('data-testid="queued-ticket"') == 5
    assert body.count('data-testid="recent-ticket"') == 8
    assert len(many) == len(few) + 1  # the count, once more than the few are waiting


def test_managers_see_the_queue_card_only_while_tickets_wait(world, en):
    # A manager's home is the dashboard (crm.views_dashboard), which shows the home cards.
    def home() -> str:
        return en(world.a.manager).get("/", follow=True).content.decode()

    assert 'data-testid="ticket-queue"' not in home()
    upsert(world.a, "U-1", phone="13911112222")
    assert 'data-testid="ticket-queue"' in home()
    assert 'data-testid="recent-tickets"' not in home()


def test_a_long_queue_is_counted_up_to_its_cap(world, en, agent, monkeypatch):
    from service_feedback import home

    monkeypatch.setattr(home, "OLDEST", 2)
    monkeypatch.setattr(home, "COUNT_CAP", 3)
    for n in range(3):
        upsert(world.a, f"U-{n}", subject=f"等待的{n}", phone=f"1391111222{n}")
    queue = en(agent).get("/").content.decode()
    assert 'data-testid="ticket-queue-count">3</span>' in queue
    upsert(world.a, "U-9", subject="再来一个", phone="13911112229")
    queue = en(agent).get("/").content.decode()
    assert 'data-testid="ticket-queue-count">3+</span>' in queue
