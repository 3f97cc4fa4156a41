"""The ticket list, its CSV and a ticket's page: filters, CSV headers and values, a
constant query count, empty states, who reads which tickets, another tenant's ids."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.db import connection
from django.http import QueryDict
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from crm.models import Role
from crm.tenancy import tenant_context
from customers.models import Customer
from service_feedback import exports
from tests.factories import MembershipFactory
from tests.service_feedback.helpers import customer_with_contact, upsert

pytestmark = pytest.mark.django_db

LIST = reverse("service_feedback:tickets")


def subjects(response) -> list[str]:
    body = response.content.decode()
    return [
        part.split(">", 1)[1].split("<", 1)[0]
        for part in body.split('data-testid="ticket-link"')[1:]
    ]


def read_csv(response) -> list[dict]:
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


@pytest.fixture
def agent(world):
    return MembershipFactory(tenant=world.a.tenant, role=Role.SERVICE)


@pytest.fixture
def tickets(world):
    """Three matched tickets of the rep's customer 恒力液压 and one unmatched."""
    now = timezone.now()
    hengli = customer_with_contact(world.a, "恒力液压", phone="13800138000", code="C-1")
    upsert(
        world.a,
        "T-1",
        subject="液压泵漏油",
        text="客户想增购两台",
        customer_code="C-1",
        requester_name="王工",
        product_model="HP-200",
        fault_code="E12",
        province="广东省",
        city="深圳市",
        status="resolved",
        opened_at=now - timedelta(days=3, hours=2),
        first_response_at=now - timedelta(days=3, hours=2) + timedelta(minutes=10),
        resolved_at=now - timedelta(days=3),
        satisfaction=4,
    )
    upsert(
        world.a,
        "T-2",
        subject="控制器报警",
        text="再出问题就投诉",
        phone="13800138000",
        product_model="CT-9",
        fault_code="A01",
        province="浙江省",
        opened_at=now - timedelta(days=1),
    )
    upsert(
        world.a,
        "T-3",
        subject="时间错乱",
        customer_code="C-1",
        opened_at=now - timedelta(hours=5),
        resolved_at=now - timedelta(hours=6),
        status="closed",
    )
    upsert(world.a, "T-4", subject="陌生来电", phone="13911112222", requester_name="李四")
    return hengli


def test_the_list_shows_the_tenants_tickets_newest_first(world, en, tickets):
    upsert(world.b, "B-1", subject="外租户工单")
    response = en(world.a.manager).get(LIST)
    assert response.status_code == 200
    assert subjects(response) == ["陌生来电", "时间错乱", "控制器报警", "液压泵漏油"]
    body = response.content.decode()
    assert 'data-testid="unmatched"' in body and "恒力液压" in body
    assert 'data-flag="upsell"' in body and 'data-flag="churn"' in body


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"status": "resolved"}, ["液压泵漏油"]),
        ({"matched": "no"}, ["陌生来电"]),
        ({"matched": "yes"}, ["时间错乱", "控制器报警", "液压泵漏油"]),
        ({"flag": "upsell"}, ["液压泵漏油"]),
        ({"flag": "churn"}, ["控制器报警"]),
        ({"flag": "referral"}, []),
        ({"quality": "duration"}, ["时间错乱"]),
        ({"product_model": "HP-200"}, ["液压泵漏油"]),
        ({"fault_code": "A01"}, ["控制器报警"]),
        ({"region": "浙江"}, ["控制器报警"]),
        ({"region": "广东省"}, ["液压泵漏油"]),
        ({"q": "报警"}, ["控制器报警"]),
        ({"q": "李四"}, ["陌生来电"]),
        ({"q": "恒力"}, ["时间错乱", "控制器报警", "液压泵漏油"]),
        ({"q": "139 1111 2222"}, ["陌生来电"]),
        ({"q": "T-2"}, ["控制器报警"]),
    ],
)
def test_the_list_filters(world, en, tickets, query, expected):
    assert subjects(en(world.a.manager).get(LIST, query)) == expected


def test_the_opened_date_range_and_the_customer_filter(world, en, tickets):
    today = timezone.localdate()
    client = en(world.a.manager)
    got = subjects(client.get(LIST, {"opened_from": str(today - timedelta(days=1))}))
    assert "液压泵漏油" not in got and "控制器报警" in got
    got = subjects(client.get(LIST, {"opened_to": str(today - timedelta(days=2))}))
    assert got == ["液压泵漏油"]
    other = customer_with_contact(world.a, "别的客户", phone="13700000000")
    upsert(world.a, "T-9", subject="别的客户的工单", phone="13700000000")
    got = subjects(client.get(LIST, {"customer": str(other.public_id)}))
    assert got == ["别的客户的工单"]


def test_the_csv_has_the_fixed_headers_and_the_values(world, en, tickets):
    response = en(world.a.manager).get(LIST, {"_export": "csv", "status": "resolved"})
    assert response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    header = next(csv.reader(io.StringIO(text)))
    assert header[:5] == ["external_id", "customer", "status", "resolution_minutes", "flags"]
    for name in ("opened_at", "first_response_minutes", "product_model", "fault_code"):
        assert name in header
    for name in ("province", "match_key", "satisfaction"):
        assert name in header
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 1
    row = rows[0]
    assert row["external_id"] == "T-1" and row["customer"] == "恒力液压"
    assert row["status"] == "resolved" and row["resolution_minutes"] == "120"
    assert row["flags"] == "upsell" and row["first_response_minutes"] == "10"
    assert row["match_key"] == "code" and row["satisfaction"] == "4"
    assert row["product_model"] == "HP-200" and row["province"] == "广东省"
    assert "amount" not in header


def test_the_csv_leaves_implausible_minutes_empty_and_says_why(world, en, tickets):
    rows = read_csv(en(world.a.manager).get(LIST, {"_export": "csv", "q": "时间错乱"}))
    assert rows[0]["resolution_minutes"] == "" and "negative" in rows[0]["duration_issue"]


def test_the_background_export_sends_the_streamed_rows(world, tickets):
    with tenant_context(world.a.tenant):
        stem, rows = exports.ticket_rows(world.a.manager, QueryDict("flag=churn"))
        rows = list(rows)
        assert stem.startswith("tickets-")
        assert rows[0][:5] == ["external_id", "customer", "status", "resolution_minutes", "flags"]
        assert [r[0] for r in rows[1:]] == ["T-2"]
        assert exports.ticket_count(world.a.manager, QueryDict("")) == 4
    from crm.exports import get_source

    assert get_source("tickets").list_url == "service_feedback:tickets"


def test_the_list_keeps_its_query_count(world, login):
    customer = customer_with_contact(world.a, "恒力液压", code="C-1")
    client = login(world.a.manager)

    def add(n, start):
        for i in range(start, start + n):
            upsert(
                world.a,
                f"Q-{i}",
                subject=f"工单{i:03d}",
                customer_code="C-1" if i % 2 else "",
                text="增购" if i % 3 else "",
            )

    add(3, 0)
    client.get(LIST)
    with CaptureQueriesContext(connection) as few:
        assert len(subjects(client.get(LIST))) == 3
    add(27, 3)
    with CaptureQueriesContext(connection) as many:
        assert len(subjects(client.get(LIST))) == 30
    assert len(many) == len(few), [q["sql"][:160] for q in many.captured_queries]
    assert customer.pk


def test_the_list_pages(world, login):
    for i in range(55):
        upsert(world.a, f"P-{i}", subject=f"工单{i:03d}")
    client = login(world.a.manager)
    assert len(subjects(client.get(LIST))) == 50
    assert len(subjects(client.get(LIST, {"page": 2}))) == 5


def test_the_empty_states(world, en):
    body = en(world.a.manager).get(LIST).content.decode()
    assert 'data-testid="no-tickets"' in body and 'data-testid="ticket-filters"' not in body
    upsert(world.a, "E-1", subject="一张工单")
    body = en(world.a.manager).get(LIST, {"status": "closed"}).content.decode()
    assert 'data-testid="no-match"' in body and 'data-testid="ticket-filters"' in body
    body = en(world.a.rep).get(LIST).content.decode()
    assert 'data-testid="no-tickets"' in body and "No ticket of your customers yet" in body


def test_a_rep_reads_only_their_customers_tickets(world, en, tickets):
    other_rep = MembershipFactory(tenant=world.a.tenant, role=Role.REP)
    with tenant_context(world.a.tenant):
        theirs = Customer.objects.create(
            tenant=world.a.tenant, name="别人的客户", owner=other_rep, code="C-2"
        )
    foreign, _, _ = upsert(world.a, "T-5", subject="别人客户的工单", customer_code="C-2")
    unmatched = upsert(world.a, "T-4", subject="陌生来电", phone="13911112222")[0]
    client = en(world.a.rep)
    assert subjects(client.get(LIST)) == ["时间错乱", "控制器报警", "液压泵漏油"]
    rows = read_csv(client.get(LIST, {"_export": "csv"}))
    assert sorted(r["external_id"] for r in rows) == ["T-1", "T-2", "T-3"]
    for ticket in (foreign, unmatched):
        url = reverse("service_feedback:ticket", args=[ticket.public_id])
        assert client.get(url).status_code == 404
    assert theirs.pk
    # Their own customer's ticket opens.
    with tenant_context(world.a.tenant):
        own = tickets.tickets.get(external_id="T-1")
    assert client.get(reverse("service_feedback:ticket", args=[own.public_id])).status_code == 200


def test_the_ticket_page(world, en, tickets):
    with tenant_context(world.a.tenant):
        ticket = tickets.tickets.get(external_id="T-1")
    response = en(world.a.manager).get(reverse("service_feedback:ticket", args=[ticket.public_id]))
    body = response.content.decode()
    assert response.status_code == 200
    assert "液压泵漏油" in body and "客户想增购两台" in body
    assert 'data-flag="upsell"' in body and "<mark>增购</mark>" in body
    assert "Customer code" in body and "(C-1)" in body  # matched by the code
    assert reverse("customers:detail", args=[tickets.public_id]) in body
    assert "120 minutes" in body and "10 minutes" in body
    assert 'data-testid="ticket-others"' in body  # T-2, T-3 of the same customer
    assert 'data-testid="ticket-link-card"' in body  # a manager may relink


def test_the_ticket_page_names_a_duration_problem(world, en, tickets):
    with tenant_context(world.a.tenant):
        ticket = tickets.tickets.get(external_id="T-3")
    body = en(world.a.rep).get(reverse("service_feedback:ticket", args=[ticket.public_id]))
    text = body.content.decode()
    assert 'data-testid="duration-issue"' in text and "negative" in text
    assert 'data-testid="ticket-link-card"' not in text  # reps do not link


def test_another_tenants_ticket_is_not_found(world, login):
    theirs, _, _ = upsert(world.b, "B-1", subject="外租户工单")
    client = login(world.a.admin)
    for name in ("service_feedback:ticket", "service_feedback:link"):
        url = reverse(name, args=[theirs.public_id])
        assert client.get(url).status_code == 404, name
    url = reverse("service_feedback:link", args=[theirs.public_id])
    assert client.post(url, {"customer": "", "remember": "on"}).status_code == 404
    import uuid

    unknown = reverse("service_feedback:ticket", args=[uuid.uuid4()])
    assert client.get(unknown).status_code == 404


def test_the_menu_offers_tickets_to_whoever_reads_them(world, en, agent):
    for who in (agent, world.a.manager, world.a.rep):
        assert f'href="{LIST}"' in en(who).get("/customers/").content.decode()


def test_admins_reach_the_raw_inbound_event_from_the_ticket(world, en):
    from service_feedback.services import TicketData, ticket_upsert
    from tests.leads.factories import make_event
    from tests.service_feedback.helpers import helpdesk

    channel = helpdesk(world.a)
    event = make_event(world.a.tenant, channel, payload={"ticket_id": "EV-1"})
    with tenant_context(world.a.tenant):
        ticket, _, _ = ticket_upsert(
            tenant=world.a.tenant,
            channel=channel,
            data=TicketData(external_id="EV-1", subject="原始事件"),
            event=event,
        )
    url = reverse("service_feedback:ticket", args=[ticket.public_id])
    event_url = reverse("admin:leads_inboundevent_change", args=[event.pk])
    assert event_url in en(world.a.admin).get(url).content.decode()
    assert event_url not in en(world.a.manager).get(url).content.decode()
    assert en(world.a.admin).get(event_url).status_code == 200
