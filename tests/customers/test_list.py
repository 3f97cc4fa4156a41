"""The customer list (`/customers/`): who sees which customers, the columns, search and
filters, sorting, pages, the streamed CSV export, the query budget; and the latest
follow-up's time that PostgreSQL keeps on each customer for it."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.http import StreamingHttpResponse
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from crm.models import Role
from crm.tenancy import tenant_context
from customers import services
from customers.models import Contact, Customer, Interaction, PresetKind
from tests.factories import MembershipFactory
from tests.leads.factories import make_lead

pytestmark = pytest.mark.django_db

LIST = reverse("customers:list")
# 1 December 2026, 02:00 UTC = 10:00 in Shanghai.
DAY = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


REP = object()  # the side's rep


def make_customer(side, name, *, owner=REP, phone="", contact="", **fields):
    with tenant_context(side.tenant):
        customer = Customer.objects.create(
            tenant=side.tenant, name=name, owner=side.rep if owner is REP else owner, **fields
        )
        if phone or contact:
            Contact.objects.create(
                tenant=side.tenant,
                customer=customer,
                name=contact,
                phone=phone,
                phone_key=phone,
            )
        return customer


def follow_up(side, customer, at, by=None):
    """A follow-up on the customer at `at` (the next action due tomorrow, as it may be)."""
    with tenant_context(side.tenant):
        action = services.presets(PresetKind.ACTION).first()
        return services.interaction_log(
            tenant=side.tenant,
            acting_member=by or customer.owner or side.rep,
            customer=customer,
            channel="phone",
            next_action=action,
            next_action_due=services.tenant_today() + timedelta(days=1),
            at=at,
        )


def names(response) -> list[str]:
    assert response.status_code == 200, response.status_code
    table = response.context["table"]
    with tenant_context(response.wsgi_request.tenant):  # rows the page did not render
        return [row.record.name for row in table.paginated_rows]


def csv_rows(response) -> list[list[str]]:
    assert isinstance(response, StreamingHttpResponse)
    text = b"".join(response.streaming_content).decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))


# -- who sees what ------------------------------------------------------------------------------


def test_readers_see_the_tenants_customers_and_reps_their_own(world, login):
    make_customer(world.a, "甲公司", owner=world.a.rep)
    make_customer(world.a, "乙公司", owner=world.a.manager)
    make_customer(world.b, "外租户公司", owner=world.b.rep)
    for who in (
        world.a.manager,
        world.a.admin,
        MembershipFactory(tenant=world.a.tenant, role=Role.MARKETING),
        MembershipFactory(tenant=world.a.tenant, role=Role.SERVICE),
    ):
        assert sorted(names(login(who).get(LIST))) == ["乙公司", "甲公司"], who.role
    assert names(login(world.a.rep).get(LIST)) == ["甲公司"]
    assert names(login(world.b.manager).get(LIST)) == ["外租户公司"]


def test_the_list_is_in_the_menu_for_every_role(world, login):
    for who in (world.a.rep, world.a.manager, world.a.admin):
        page = login(who).get("/", follow=True).text
        assert f'href="{LIST}"' in page, who.role


# -- columns ----------------------------------------------------------------------------------


def test_the_columns_say_who_where_and_when(world, login):
    customer = make_customer(
        world.a,
        "宁波恒力液压科技有限公司",
        level="A",
        province="浙江省",
        city="宁波市",
        industry="manufacturing",
    )
    follow_up(world.a, customer, DAY)
    make_lead(world.a.tenant, customer=customer, status="valid")
    make_lead(world.a.tenant, customer=customer, status="valid")
    page = login(world.a.manager).get(LIST).text
    row = page[page.index("宁波恒力液压科技有限公司") - 300 :]
    assert reverse("customers:detail", args=[customer.public_id]) in row
    assert world.a.rep.display_name in row
    assert "浙江省 宁波市" in row
    assert "制造业" in row  # the industry's label, not its code
    assert "2026-12-01 10:00" in row  # the last follow-up, in the tenant's time zone
    assert "<td>2</td>" in row  # its leads
    assert "manufacturing" not in page


# -- search and filters ------------------------------------------------------------------------


def test_it_searches_names_and_phones(world, login):
    make_customer(world.a, "宁波恒力液压", phone="+8613800138000", contact="王伟")
    make_customer(world.a, "苏州精测仪器", phone="+8613912345678", contact="李娜")
    client = login(world.a.manager)
    assert names(client.get(LIST, {"q": "恒力"})) == ["宁波恒力液压"]
    assert names(client.get(LIST, {"q": "138 0013 8000"})) == ["宁波恒力液压"]
    assert names(client.get(LIST, {"q": "+86 138-0013-8000"})) == ["宁波恒力液压"]
    assert names(client.get(LIST, {"q": "13912345678"})) == ["苏州精测仪器"]
    assert names(client.get(LIST, {"q": "2345"})) == ["苏州精测仪器"]
    assert names(client.get(LIST, {"q": "没有这家"})) == []


def test_it_filters_by_level_owner_and_last_contact(world, login):
    other_rep = MembershipFactory(tenant=world.a.tenant, role=Role.REP)
    recent = make_customer(world.a, "最近联系", level="A")
    older = make_customer(world.a, "上周联系", level="B", owner=other_rep)
    make_customer(world.a, "从未联系", level="A", owner=None)
    follow_up(world.a, recent, DAY)
    follow_up(world.a, older, DAY - timedelta(days=7), by=other_rep)
    client = login(world.a.manager)
    assert sorted(names(client.get(LIST, {"level": "A"}))) == ["从未联系", "最近联系"]
    assert names(client.get(LIST, {"owner": other_rep.pk})) == ["上周联系"]
    assert names(client.get(LIST, {"owner": "null"})) == ["从未联系"]
    # Local days in the tenant's zone, both ends included.
    in_range = client.get(LIST, {"contacted_from": "2026-11-24", "contacted_to": "2026-11-24"})
    assert names(in_range) == ["上周联系"]
    assert names(client.get(LIST, {"contacted_from": "2026-11-25"})) == ["最近联系"]
    assert names(client.get(LIST, {"never_contacted": "never"})) == ["从未联系"]
    # A date that is not one is ignored rather than an error.
    assert len(names(client.get(LIST, {"contacted_from": "someday"}))) == 3
    # Reps have no owner filter: they see their own customers only.
    rep_page = login(world.a.rep).get(LIST)
    assert 'data-testid="filter-owner"' not in rep_page.text


def test_it_says_when_nothing_matches_and_when_there_is_nothing(world, en):
    client = en(world.a.manager)
    assert "No customers yet" in client.get(LIST).text
    make_customer(world.a, "某公司")
    page = client.get(LIST, {"q": "nothing like it"}).text
    assert 'data-testid="no-match"' in page and "Clear filters" in page


# -- order and pages --------------------------------------------------------------------------


def test_it_sorts_by_last_contact_newest_first_never_contacted_last(world, login):
    never = make_customer(world.a, "从未联系")
    old = make_customer(world.a, "很久以前")
    new = make_customer(world.a, "刚刚联系")
    follow_up(world.a, old, DAY - timedelta(days=30))
    follow_up(world.a, new, DAY)
    client = login(world.a.manager)
    assert names(client.get(LIST)) == [new.name, old.name, never.name]
    assert names(client.get(LIST, {"sort": "last_contact"})) == [never.name, old.name, new.name]
    assert names(client.get(LIST, {"sort": "name"})) == sorted([never.name, old.name, new.name])


def test_it_pages_by_fifty(world, login):
    for i in range(55):
        make_customer(world.a, f"客户{i:03d}")
    client = login(world.a.manager)
    assert len(names(client.get(LIST))) == 50
    assert len(names(client.get(LIST, {"page": 2}))) == 5
    assert len(names(client.get(LIST, {"q": "客户", "page": 2}))) == 5


def test_it_keeps_the_query_count_constant_whatever_the_row_count(world, login):
    reps = [MembershipFactory(tenant=world.a.tenant, role=Role.REP) for _ in range(3)]

    def add(n, start):
        for i in range(start, start + n):
            customer = make_customer(
                world.a, f"客户{i:03d}", owner=reps[i % 3], phone=f"+86139{i:08d}", contact="王工"
            )
            follow_up(world.a, customer, DAY - timedelta(hours=i))
            make_lead(world.a.tenant, customer=customer, status="valid", owner=reps[i % 3])

    client = login(world.a.manager)
    add(3, 0)
    client.get(LIST)  # warm-up (session, caches)
    with CaptureQueriesContext(connection) as few:
        assert len(names(client.get(LIST))) == 3
    add(60, 3)
    with CaptureQueriesContext(connection) as many:
        assert len(names(client.get(LIST))) == 50
    assert len(many) == len(few), [q["sql"][:160] for q in many.captured_queries]
    with CaptureQueriesContext(connection) as searched:
        assert len(names(client.get(LIST, {"q": "客户0", "level": "C"}))) == 50
    assert len(searched) <= len(few)


# -- the CSV export ---------------------------------------------------------------------------


def test_it_streams_every_matching_customer_as_csv(world, en):
    for i in range(60):
        customer = make_customer(world.a, f"客户{i:03d}", level="B" if i % 2 else "A")
        if i == 0:
            follow_up(world.a, customer, DAY)
    make_customer(world.b, "外租户公司")
    response = en(world.a.manager).get(LIST, {"_export": "csv", "level": "A"})
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="customers-')
    header, *rows = csv_rows(response)
    assert header == [
        "Name",
        "Level",
        "Owner",
        "Province/city",
        "Industry",
        "Last contact",
        "Leads",
    ]
    assert len(rows) == 30 and all(r[1] == "A: key account" for r in rows)
    assert "2026-12-01 10:00" in [r[5] for r in rows]
    assert "外租户公司" not in {r[0] for r in rows}


def test_a_reps_export_holds_their_own_customers_only(world, login):
    make_customer(world.a, "我的客户", owner=world.a.rep)
    make_customer(world.a, "别人的客户", owner=world.a.manager)
    _header, *rows = csv_rows(login(world.a.rep).get(LIST, {"_export": "csv"}))
    assert [r[0] for r in rows] == ["我的客户"]


def test_exported_cells_cannot_run_as_formulas(world, login):
    make_customer(world.a, '=HYPERLINK("http://x.invalid","click")')
    _header, *rows = csv_rows(login(world.a.manager).get(LIST, {"_export": "csv"}))
    assert rows[0][0].startswith("'=")


# -- the last contact, kept by PostgreSQL ------------------------------------------------------


def test_the_last_contact_follows_every_write_of_follow_ups(world):
    customer = make_customer(world.a, "某公司")
    other = make_customer(world.a, "另一家")
    first = follow_up(world.a, customer, DAY - timedelta(days=2))
    second = follow_up(world.a, customer, DAY)
    with tenant_context(world.a.tenant):

        def last(c):
            return Customer.objects.get(pk=c.pk).last_contact_at

        assert last(customer) == DAY
        # A bulk insert (the demo, imports) counts as well.
        Interaction.objects.bulk_create(
            [
                Interaction(
                    tenant=world.a.tenant,
                    customer=other,
                    by=world.a.rep,
                    at=DAY + timedelta(hours=h),
                    channel="phone",
                    next_action=first.next_action,
                    next_action_due=first.next_action_due,
                )
                for h in (1, 3, 2)
            ]
        )
        assert last(other) == DAY + timedelta(hours=3)
        # Moved in time, moved to another customer, deleted: recomputed each time.
        Interaction.objects.filter(pk=second.pk).update(at=DAY - timedelta(days=5))
        assert last(customer) == DAY - timedelta(days=2)
        Interaction.objects.filter(pk=first.pk).update(customer=other)
        assert last(customer) == DAY - timedelta(days=5)
        Interaction.objects.filter(customer=customer).delete()
        assert last(customer) is None
        # Closing the previous follow-up (next_done_at) changes nothing here.
        assert last(other) == DAY + timedelta(hours=3)


def test_a_long_list_counts_up_to_its_cap(world, en, monkeypatch):
    """Past COUNT_CAP customers the list shows the planner's estimate ("about …")
    instead of counting them all (an exact count reads every row), and counts exactly on
    demand; narrower lists and searches are counted exactly."""
    monkeypatch.setattr("customers.views.COUNT_CAP", 3)
    for i in range(5):
        make_customer(world.a, f"客户{i}", level="A" if i < 2 else "C")
    client = en(world.a.manager)
    page = client.get(LIST)
    assert page.context["count_capped"]
    assert page.context["count"] >= 4  # never below the cap
    assert f"about {page.context['count']} customers" in page.text
    assert 'data-testid="exact-count"' in page.text
    exact = client.get(LIST, {"count": "exact"})
    assert not exact.context["count_capped"]
    assert 'data-testid="customer-count">5 customers<' in exact.text
    assert 'data-testid="customer-count">2 customers match' in client.get(LIST, {"level": "A"}).text
    searched = client.get(LIST, {"q": "客户"})
    assert "5 customers match" in searched.text and len(names(searched)) == 5
