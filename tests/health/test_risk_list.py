"""The risk list page (/health/risk/), its CSV, the board's "At-risk customers" section and
the retention task's "done": roles, sorts, filters, query budget, empty state, tenancy."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.db import transaction as django_transaction
from django.urls import reverse
from django.utils import timezone

from crm.models import AuditEvent, Notification, Role
from crm.tenancy import tenant_context
from customers.models import Customer
from health import compute, risk
from health.models import HealthSettings, HealthSnapshot, RiskEntry
from tests.factories import MembershipFactory
from tests.health.helpers import DAY, customer, interaction, moment

pytestmark = pytest.mark.django_db

LIST = "/health/risk/"
WEIGHTS = HealthSettings().weights()


def at_risk(side, name, *, owner=None, score=40, coverage=4, recency=20.0, entered=DAY,
            province="", done=False, weights=None):  # fmt: skip
    """A customer on the list: its snapshot of DAY (the tenant's latest scored day) and an
    open entry, written as the recompute writes them."""
    cust = customer(side, name, owner=owner or side.rep)
    with tenant_context(side.tenant):
        if province:
            Customer.objects.filter(pk=cust.pk).update(province=province)
        HealthSnapshot.objects.create(
            tenant=side.tenant, customer=cust, day=DAY, score=score, coverage=coverage,
            recency_value=recency, recency_score=40, weights=weights or WEIGHTS,
        )  # fmt: skip
        settings = HealthSettings.for_tenant(side.tenant)
        HealthSettings.objects.filter(pk=settings.pk).update(computed_on=DAY)
        return RiskEntry.objects.create(
            tenant=side.tenant, customer=cust, owner=cust.owner, entered_on=entered,
            score=score, weakest="frequency", action="定制化技术方案",
            done_at=moment(side, 0) if done else None,
        )  # fmt: skip


def names(response) -> list[str]:
    return [e.customer.name for e in response.context["table"].paginated_rows.data]


def rows_of(response):
    return [row.record for row in response.context["table"].paginated_rows]


def csv_rows(response) -> list[dict]:
    text = b"".join(response.streaming_content).decode("utf-8").lstrip("\ufeff")
    return list(csv.DictReader(io.StringIO(text)))


# -- the list ---------------------------------------------------------------------------------


def test_a_rep_sees_their_own_customers_and_a_manager_everyone(world, login):
    a = world.a
    other_rep = MembershipFactory(tenant=a.tenant, role=Role.REP)
    at_risk(a, "自己的", owner=a.rep)
    at_risk(a, "别人的", owner=other_rep)
    at_risk(world.b, "另一租户的", owner=world.b.rep)
    response = login(a.rep).get(LIST)
    assert response.status_code == 200
    assert [r.customer.name for r in rows_of(response)] == ["自己的"]
    assert "filter-owner" not in response.content.decode()  # no owner filter for a rep
    for member in (a.manager, a.admin):
        response = login(member).get(LIST)
        assert sorted(r.customer.name for r in rows_of(response)) == sorted(["别人的", "自己的"])
    service = MembershipFactory(tenant=a.tenant, role=Role.SERVICE)
    assert len(rows_of(login(service).get(LIST))) == 2


def test_the_rows_show_todays_figures_and_link_to_the_customer(world, en):
    a = world.a
    entry = at_risk(a, "恒力液压", score=43, coverage=4, recency=19.0)
    body = en(a.manager).get(LIST).content.decode()
    assert f'href="/customers/{entry.customer.public_id}/"' in body
    assert ">43<" in body and "4/6" in body and "<td>19</td>" in body
    assert "定制化技术方案" in body and "To do" in body


def test_sorts(world, login):
    a = world.a
    at_risk(a, "甲", score=50, recency=10, entered=DAY - timedelta(days=3))
    at_risk(a, "乙", score=30, recency=40, entered=DAY)
    at_risk(a, "丙", score=45, recency=25, entered=DAY - timedelta(days=1))
    client = login(a.manager)
    assert [r.customer.name for r in rows_of(client.get(LIST))] == ["乙", "丙", "甲"]
    by = {
        "score": ["乙", "丙", "甲"],
        "-score": ["甲", "丙", "乙"],
        "entered_on": ["甲", "丙", "乙"],
    }
    for sort, expected in by.items():
        response = client.get(LIST, {"sort": sort})
        assert [r.customer.name for r in rows_of(response)] == expected, sort
    # Scored since the settings last changed: the highest-first sort starts below the
    # line (health.risk.list_state), and still shows every entry.
    with tenant_context(a.tenant):
        HealthSettings.objects.update(computed_at=timezone.now())
        assert risk.list_state(a.tenant) == (DAY, 60)
    assert [r.customer.name for r in rows_of(client.get(LIST, {"sort": "-score"}))] == [
        "甲", "丙", "乙"
    ]  # fmt: skip
    with tenant_context(a.tenant):
        HealthSettings.objects.get().save()  # changed after the run: no bound
        assert risk.list_state(a.tenant) == (DAY, None)
    response = client.get(LIST, {"sort": "owner"})
    assert response.status_code == 200 and len(rows_of(response)) == 3
    assert client.get(LIST, {"sort": "nonsense"}).status_code == 200


def test_filters_by_owner_and_region(world, login):
    a = world.a
    at_risk(a, "苏州客户", owner=a.rep, province="江苏省")
    at_risk(a, "杭州客户", owner=a.manager, province="浙江省")
    client = login(a.manager)
    rows = rows_of(client.get(LIST, {"owner": a.rep.pk}))
    assert [r.customer.name for r in rows] == ["苏州客户"]
    rows = rows_of(client.get(LIST, {"region": "浙江"}))
    assert [r.customer.name for r in rows] == ["杭州客户"]
    response = client.get(LIST, {"region": "广东"})
    assert response.status_code == 200 and response.context["count"] == 0
    assert 'data-testid="no-match"' in response.content.decode()
    # A bad owner id is ignored, never a 500.
    assert client.get(LIST, {"owner": "abc"}).status_code == 200
    # Another tenant's member as owner: nothing of theirs is shown.
    assert client.get(LIST, {"owner": world.b.rep.pk}).status_code == 200


def test_the_empty_state(world, login):
    response = login(world.a.rep).get(LIST)
    assert response.status_code == 200
    body = response.content.decode()
    assert 'data-testid="no-risk"' in body and 'data-testid="risk-table"' not in body


def test_the_query_count_does_not_grow_with_the_rows(world, login):
    a = world.a
    client = login(a.manager)
    at_risk(a, "客户0")
    client.get(LIST)  # warm the session and caches
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as one:
        assert len(rows_of(client.get(LIST))) == 1
    for i in range(1, 30):
        at_risk(a, f"客户{i}", owner=a.rep if i % 2 else a.manager)
    with CaptureQueriesContext(connection) as thirty:
        assert len(rows_of(client.get(LIST))) == 30
    assert len(thirty) == len(one)
    with CaptureQueriesContext(connection) as sorted_by_score:
        client.get(LIST, {"sort": "score"})
    assert len(sorted_by_score) == len(one)


def test_csv_has_the_contract_columns_and_the_rows_values(world, login):
    a = world.a
    at_risk(a, "恒力液压", score=43, coverage=4, recency=19.0, province="江苏省")
    at_risk(a, "=cmd|x", owner=a.manager, score=55, coverage=2, recency=8.0)
    # A tenant that weighs one dimension 0: coverage's denominator is 5.
    at_risk(a, "五维", score=20, coverage=3, recency=30.0, weights={**WEIGHTS, "quotes": 0})
    at_risk(world.b, "另一租户的")
    response = login(a.manager).get(LIST, {"_export": "csv", "sort": "score"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = csv_rows(response)
    header = list(rows[0].keys())
    assert header[:5] == ["customer", "owner", "score", "coverage", "days_since_interaction"]
    with tenant_context(a.tenant):
        expected = []
        for entry in RiskEntry.objects.select_related("customer", "owner__user"):
            snap = HealthSnapshot.objects.get(customer=entry.customer, day=DAY)
            counted = sum(1 for w in snap.weights.values() if w > 0)
            name = entry.customer.name
            expected.append(
                {
                    "customer": "'" + name if name.startswith("=") else name,
                    "owner": entry.owner.display_name,
                    "score": str(snap.score),
                    "coverage": f"{snap.coverage}/{counted}",
                    "days_since_interaction": str(int(snap.recency_value)),
                }
            )
    expected.sort(key=lambda r: int(r["score"]))
    got = [{k: r[k] for k in header[:5]} for r in rows]
    assert got == expected
    assert got[0]["coverage"] == "3/5"
    # A rep's CSV: their own customers only.
    rows = csv_rows(login(a.rep).get(LIST, {"_export": "csv"}))
    assert sorted(r["customer"] for r in rows) == ["五维", "恒力液压"]


def test_a_member_without_a_seat_in_the_list_is_refused(world, client):
    response = client.get(LIST)
    assert response.status_code in (302, 403)


# -- the task's done ----------------------------------------------------------------------------


def done_url(entry) -> str:
    return reverse("health:risk_done", args=[entry.public_id])


def test_the_owner_marks_the_task_done_once(world, login):
    a = world.a
    entry = at_risk(a, "恒力液压", owner=a.rep)
    client = login(a.rep)
    response = client.post(done_url(entry), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert 'data-testid="risk-task-closed"' in response.content.decode()
    with tenant_context(a.tenant):
        entry.refresh_from_db()
        assert entry.done_at is not None and entry.done_by_id == a.rep.pk
        assert AuditEvent.objects.filter(action="health.risk_done").count() == 1
    again = client.post(done_url(entry), HTTP_HX_REQUEST="true")
    assert again.status_code == 409
    with tenant_context(a.tenant):
        assert AuditEvent.objects.filter(action="health.risk_done").count() == 1
    # Without htmx: back to the list with a message.
    other = at_risk(a, "第二家", owner=a.rep)
    response = client.post(done_url(other))
    assert response.status_code == 302 and response["Location"] == LIST


def test_a_manager_marks_a_reps_task_and_a_rep_cannot_mark_anothers(world, login):
    a = world.a
    other_rep = MembershipFactory(tenant=a.tenant, role=Role.REP)
    theirs = at_risk(a, "别人的", owner=other_rep)
    assert login(a.rep).post(done_url(theirs)).status_code == 404
    assert login(a.manager).post(done_url(theirs), HTTP_HX_REQUEST="true").status_code == 200


def test_another_tenants_entry_is_404(world, login):
    theirs = at_risk(world.b, "另一租户的", owner=world.b.rep)
    for member in (world.a.rep, world.a.manager, world.a.admin):
        assert login(member).post(done_url(theirs)).status_code == 404
    with tenant_context(world.b.tenant):
        theirs.refresh_from_db()
        assert theirs.done_at is None


def test_a_left_entry_cannot_be_done(world, login):
    a = world.a
    entry = at_risk(a, "已离开", owner=a.rep)
    with tenant_context(a.tenant):
        RiskEntry.objects.filter(pk=entry.pk).update(left_on=DAY)
    response = login(a.rep).post(done_url(entry), HTTP_HX_REQUEST="true")
    assert response.status_code == 409


def test_get_is_not_allowed(world, login):
    entry = at_risk(world.a, "恒力液压")
    assert login(world.a.rep).get(done_url(entry)).status_code == 405


# -- the board ------------------------------------------------------------------------------


def board_items(client):
    response = client.get("/board/")
    assert response.status_code == 200
    [shown] = [s for s in response.context["sections"] if s.section.key == "at_risk_customers"]
    return shown.items, response.content.decode()


def test_the_board_lists_the_members_open_tasks_until_done(world, login):
    a = world.a
    mine = at_risk(a, "恒力液压", owner=a.rep, score=43, coverage=4)
    at_risk(a, "已完成", owner=a.rep, done=True)
    at_risk(a, "经理的", owner=a.manager)
    client = login(a.rep)
    items, body = board_items(client)
    assert [e.pk for e in items] == [mine.pk]
    assert "定制化技术方案" in body and "risk-task-done" in body
    client.post(done_url(mine), HTTP_HX_REQUEST="true")
    items, body = board_items(client)
    assert items == []
    assert 'data-testid="slot-at_risk_customers"' in body  # the slot with its "holds" text


def test_a_new_stay_brings_a_new_task(world, login):
    a = world.a
    first = at_risk(a, "恒力液压", owner=a.rep)
    client = login(a.rep)
    client.post(done_url(first), HTTP_HX_REQUEST="true")
    with tenant_context(a.tenant):
        RiskEntry.objects.filter(pk=first.pk).update(left_on=DAY - timedelta(days=1))
        second = RiskEntry.objects.create(
            tenant=a.tenant, customer=first.customer, owner=a.rep, entered_on=DAY,
            score=40, weakest="recency", action="定制化技术方案",
        )  # fmt: skip
    items, _body = board_items(client)
    assert [e.pk for e in items] == [second.pk]


# -- the owners told ----------------------------------------------------------------------------


def _drain(side) -> None:
    """The outbox handed to the consumers, as the worker does after the recompute commits:
    the tenant's rule "entered the risk list → retention task" (automation) gives the new
    stays their task and tells the owners once the drain commits."""
    from crm.events import process_pending

    with django_transaction.atomic(), tenant_context(side.tenant):
        while process_pending():
            pass


def test_owners_are_told_once_of_todays_new_entries(world, django_capture_on_commit_callbacks):
    a = world.a
    today = compute.local_today(a.tenant)
    for name in ("恒力液压", "东方机电"):
        cust = customer(a, name, owner=a.rep)
        interaction(a, cust, moment(a, 20, today))
    with tenant_context(a.tenant):
        result = compute.recompute(a.tenant, day=today)
        assert result.entered == 2
    with django_capture_on_commit_callbacks(execute=True):
        _drain(a)
    with tenant_context(a.tenant):
        [note] = Notification.objects.filter(event="health.risk_entered")
        assert note.recipient_id == a.rep.pk and note.params["count"] == 2
        assert "恒力液压" in note.params["customers"] and note.link == LIST
        compute.recompute(a.tenant, day=today)  # again: no new entry, nobody told again
    with django_capture_on_commit_callbacks(execute=True):
        _drain(a)
    with tenant_context(a.tenant):
        assert Notification.objects.filter(event="health.risk_entered").count() == 1
        # A past day scored again tells nobody.
        compute.recompute(a.tenant, day=today - timedelta(days=40))
    with django_capture_on_commit_callbacks(execute=True):
        _drain(a)
    with tenant_context(a.tenant):
        assert Notification.objects.filter(event="health.risk_entered").count() == 1


def test_the_background_export_reads_the_same_rows(world):
    """A long list is exported by a worker (crm.exports): its source gives the same rows."""
    from django.http import QueryDict

    from crm.exports import get_source

    a = world.a
    at_risk(a, "恒力液压", score=43)
    at_risk(a, "东方机电", score=30, owner=a.manager)
    source = get_source("health_risk")
    assert source is not None and source.list_url == "health:risk_list"
    with tenant_context(a.tenant):
        stem, rows = source.rows(a.manager, QueryDict("sort=score"))
        rows = list(rows)
        assert source.count(a.manager, QueryDict("")) == 2
        assert source.count(a.rep, QueryDict("")) == 1
    assert stem.startswith("risk-customers-")
    assert rows[0][:5] == ["customer", "owner", "score", "coverage", "days_since_interaction"]
    assert [r[0] for r in rows[1:]] == ["东方机电", "恒力液压"]
