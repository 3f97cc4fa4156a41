"""The service report (F30): who may read it, the period it covers and refuses, and a
query count that does not grow with the tickets."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from crm.models import Role
from tests.factories import MembershipFactory
from tests.service_feedback.helpers import upsert
from tests.service_feedback.test_report import RANGE, SHANGHAI, URL, build_mix, local

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("role", "status"),
    [
        (Role.MANAGER, 200),
        (Role.ADMIN, 200),
        (Role.SERVICE, 200),
        (Role.MARKETING, 200),
        (Role.REP, 403),
    ],
)
def test_who_may_read_it(world, en, role, status):
    member = MembershipFactory(tenant=world.a.tenant, role=role)
    assert en(member).get(URL, RANGE).status_code == status
    csv = en(member).get(URL, {**RANGE, "_export": "csv", "table": "province"})
    assert csv.status_code == status


def test_another_tenants_tickets_are_not_counted(world, en):
    upsert(world.b, "B-1", opened_at=local(date(2026, 3, 10), 10))
    upsert(world.a, "A-1", opened_at=local(date(2026, 3, 10), 10))
    report = en(world.a.manager).get(URL, RANGE).context["report"]
    assert report.total.cell("tickets").value == 1


def test_it_defaults_to_the_last_30_days_in_the_tenants_zone(world, en):
    today = timezone.localdate(timezone=SHANGHAI)
    upsert(world.a, "D-1", opened_at=local(today, 0, 1))
    upsert(world.a, "D-2", opened_at=local(today - timedelta(days=29), 0, 1))
    upsert(world.a, "D-3", opened_at=local(today - timedelta(days=30), 23, 59))
    response = en(world.a.manager).get(URL)
    report = response.context["report"]
    assert (report.start, report.end, report.grain) == (today - timedelta(days=29), today, "week")
    assert report.total.cell("tickets").value == 2


def test_a_long_period_goes_by_month(world, en):
    upsert(world.a, "M-1", opened_at=local(date(2026, 1, 31), 23, 0))
    upsert(world.a, "M-2", opened_at=local(date(2026, 2, 1), 0, 30))
    params = {"opened_from": "2026-01-15", "opened_to": "2026-06-30"}
    report = en(world.a.manager).get(URL, params).context["report"]
    assert report.grain == "month"
    assert [row.label for row in report.trend] == ["2026-01", "2026-02"]
    first = report.trend[0].cell("tickets").url
    assert "opened_from=2026-01-15" in first and "opened_to=2026-01-31" in first


def test_it_refuses_a_backwards_or_too_long_period_with_field_errors(world, en):
    client = en(world.a.manager)
    response = client.get(URL, {"opened_from": "2026-03-08", "opened_to": "2026-03-02"})
    assert response.status_code == 400
    assert response.context["report"] is None
    assert 'data-testid="error-opened_to"' in response.text
    response = client.get(URL, {"opened_from": "2024-01-01", "opened_to": "2026-03-02"})
    assert response.status_code == 400
    assert 'data-testid="error-opened_from"' in response.text
    csv = client.get(URL, {"opened_from": "x", "_export": "csv"})
    assert csv.status_code == 400


def _queries(client) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(URL, RANGE).status_code == 200
    return len(captured)


def test_the_query_count_does_not_grow_with_the_tickets(world, en):
    client = en(world.a.manager)
    build_mix(world.a, count=10, seed=1)
    few = _queries(client)
    build_mix(world.b, count=5, seed=2)  # another tenant, for good measure
    for i in range(40):
        upsert(
            world.a, f"X-{i}", opened_at=local(date(2026, 3, 3 + i % 20), 9), product_line=f"L{i}"
        )
    assert _queries(client) == few


def test_the_trend_can_be_chosen_by_month(world, en):
    upsert(world.a, "G-1", opened_at=local(date(2026, 3, 10), 10))
    params = {**RANGE, "grain": "month"}
    response = en(world.a.manager).get(URL, params)
    report = response.context["report"]
    assert report.grain == "month"
    assert [row.label for row in report.trend] == ["2026-03"]
    assert '<option value="month" selected>' in response.text
    assert en(world.a.manager).get(URL, {**RANGE, "grain": "day"}).status_code == 400
