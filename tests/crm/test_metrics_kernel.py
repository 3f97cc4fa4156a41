"""The metric kernel (crm/metrics.py) on metrics defined here over real rows: one query per
family, the breakdowns by region and rep (with the bucket of rows without one), daily
series in the tenant's time zone and over a date field, the median, the links to the
rows, the previous period, rates, who reads a figure, and reading() on the primary. The
`reports` alias on a connection of its own: tests/crm/test_metrics_reports_alias.py."""

from __future__ import annotations

from datetime import date, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.db.models import Q
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from crm import metrics
from crm.metrics import COUNT, MEDIAN, REGION, REP, SUM, Dimension, Metric, Rate
from crm.models import Role
from crm.roles import EVERYONE
from crm.tenancy import tenant_context
from leads.models import DailySummary, Lead
from tests.factories import MembershipFactory
from tests.leads.factories import make_channel

pytestmark = pytest.mark.django_db

SHANGHAI = "Asia/Shanghai"


def leads_in(tenant, start, end):
    since, until = metrics.period_bounds(tenant, start, end)
    return Lead.objects.filter(tenant=tenant, created_at__gte=since, created_at__lt=until)


def days_in(tenant, start, end):
    return DailySummary.objects.filter(tenant=tenant, day__gte=start, day__lte=end)


LEAD_DIMENSIONS = (Dimension(REGION, "province"), Dimension(REP, "owner"))
DELIVERED = Metric(
    "t.delivered",
    "Delivered",
    "Every lead.",
    leads_in,
    dimensions=LEAD_DIMENSIONS,
    dated_by="created_at",
)
SUSPECT = Metric(
    "t.suspect",
    "Suspect",
    "Suspect leads.",
    leads_in,
    where=Q(is_suspect=True),
    dimensions=LEAD_DIMENSIONS,
    dated_by="created_at",
)
SCORED = Metric(
    "t.scored",
    "Score",
    "The scores added up.",
    leads_in,
    aggregate=SUM,
    of="score",
    where=lambda tenant: Q(score__isnull=False),
    dimensions=LEAD_DIMENSIONS,
    dated_by="created_at",
)
CONTACTS = Metric(
    "t.contacts",
    "Contacts",
    "Contacts made.",
    days_in,
    aggregate=SUM,
    of="contacts",
    dimensions=(Dimension(REP, "membership"),),
    dated_by="day",
)
MEDIAN_CONTACTS = Metric(
    "t.median_contacts",
    "Median contacts",
    "The median day.",
    days_in,
    aggregate=MEDIAN,
    of="contacts",
    columns=(metrics.Column("day", "day"),),
    dimensions=(Dimension(REP, "membership"),),
    dated_by="day",
)


def local(tenant, *args) -> datetime:
    return timezone.make_aware(datetime(*args), tenant.tzinfo)


def lead(side, when, *, province="", owner=None, suspect=False, score=None):
    if "channel" not in side.extra:
        side.extra["channel"] = make_channel(side.tenant)
    with tenant_context(side.tenant):
        return Lead.objects.create(
            tenant=side.tenant,
            channel=side.extra["channel"],
            company="宁波恒力液压科技有限公司",
            source_grade="B",
            province=province,
            owner=owner,
            is_suspect=suspect,
            score=score,
            created_at=when,
        )


def summary(side, member, day, contacts):
    with tenant_context(side.tenant):
        return DailySummary.objects.create(
            tenant=side.tenant, membership=member, day=day, contacts=contacts
        )


def seed_march(world):
    """Tenant a's leads and closed days in March 2026 (and some outside it, and in b)."""
    a, t = world.a, world.a.tenant
    lead(a, local(t, 2026, 3, 1, 0, 0), province="江苏", owner=a.rep, score=10)
    lead(a, local(t, 2026, 3, 2, 9), province="江苏", owner=a.rep, suspect=True)
    lead(a, local(t, 2026, 3, 3, 9), province="浙江", owner=a.manager, score=5, suspect=True)
    lead(a, local(t, 2026, 3, 31, 23, 59), province="", owner=None, score=7)
    lead(a, local(t, 2026, 3, 15, 12), province="", owner=a.rep)
    lead(a, local(t, 2026, 2, 28, 23, 59), province="江苏", owner=a.rep, score=100)  # before
    lead(a, local(t, 2026, 4, 1, 0, 0), province="江苏", owner=a.rep, score=100)  # after
    lead(world.b, local(world.b.tenant, 2026, 3, 5, 9), province="江苏", score=1000)
    summary(a, a.rep, date(2026, 3, 2), 3)
    summary(a, a.rep, date(2026, 3, 4), 9)
    summary(a, a.manager, date(2026, 3, 4), 5)
    summary(a, a.rep, date(2026, 4, 1), 50)  # after
    summary(world.b, world.b.rep, date(2026, 3, 2), 500)


MARCH = {"start": date(2026, 3, 1), "end": date(2026, 3, 31)}


def test_values_of_reads_one_query_per_family_and_counts_as_by_hand(world):
    seed_march(world)
    tenant = world.a.tenant
    found = [DELIVERED, SUSPECT, SCORED, CONTACTS, MEDIAN_CONTACTS]
    with tenant_context(tenant), CaptureQueriesContext(connection) as queries:
        values = metrics.values_of(found, tenant=tenant, **MARCH)
    assert len(queries) == 2  # the leads' family and the closed days'
    assert values == {
        "t.delivered": 5,
        "t.suspect": 2,
        "t.scored": 22,
        "t.contacts": 17,
        "t.median_contacts": 5.0,
    }
    with tenant_context(tenant):
        for metric in found:
            table = metrics.drill_down(metric, tenant=tenant, **MARCH)
            assert metrics.recount(metric, table) == values[metric.key], metric.key


def test_an_empty_period_counts_zero_and_has_no_median(world):
    seed_march(world)
    tenant = world.a.tenant
    empty = {"start": date(2026, 1, 1), "end": date(2026, 1, 31)}
    with tenant_context(tenant):
        values = metrics.values_of([DELIVERED, SCORED, MEDIAN_CONTACTS], tenant=tenant, **empty)
    assert values == {"t.delivered": 0, "t.scored": 0, "t.median_contacts": None}


def test_values_by_region_puts_rows_without_one_in_the_empty_bucket(world):
    seed_march(world)
    tenant = world.a.tenant
    with tenant_context(tenant):
        by_region = metrics.values_by(
            [DELIVERED, SUSPECT, SCORED, CONTACTS], REGION, tenant=tenant, **MARCH
        )
    # Closed days have no region: left out.
    assert by_region == {
        "江苏": {"t.delivered": 2, "t.suspect": 1, "t.scored": 10},
        "浙江": {"t.delivered": 1, "t.suspect": 1, "t.scored": 5},
        "": {"t.delivered": 2, "t.suspect": 0, "t.scored": 7},
    }
    with tenant_context(tenant):
        for value, figures in by_region.items():
            rows = metrics.rows_of(DELIVERED, tenant=tenant, filters={REGION: value}, **MARCH)
            assert rows.count() == figures["t.delivered"]


def test_values_by_rep_is_per_membership_with_the_unowned_in_the_empty_bucket(world):
    seed_march(world)
    a, tenant = world.a, world.a.tenant
    with tenant_context(tenant):
        by_rep = metrics.values_by([DELIVERED, CONTACTS], REP, tenant=tenant, **MARCH)
        filtered = metrics.values_of([DELIVERED], tenant=tenant, filters={REP: a.rep.pk}, **MARCH)
        unowned = metrics.values_of([DELIVERED], tenant=tenant, filters={REP: ""}, **MARCH)
    assert by_rep == {
        a.rep.pk: {"t.delivered": 3, "t.contacts": 12},
        a.manager.pk: {"t.delivered": 1, "t.contacts": 5},
        "": {"t.delivered": 1},
    }
    assert filtered == {"t.delivered": 3}
    assert unowned == {"t.delivered": 1}


def test_totals_and_by_add_up_the_groups_and_read_only_the_medians_again(world):
    seed_march(world)
    tenant = world.a.tenant
    found = [DELIVERED, SUSPECT, SCORED, CONTACTS, MEDIAN_CONTACTS]
    with tenant_context(tenant):
        expected_totals = metrics.values_of(found, tenant=tenant, **MARCH)
        expected_by = metrics.values_by(found, REGION, tenant=tenant, **MARCH)
        with CaptureQueriesContext(connection) as queries:
            totals, by = metrics.totals_and_by(found, REGION, tenant=tenant, **MARCH)
    assert totals == expected_totals
    assert by == expected_by
    # The leads grouped by region; the closed days (no region) by values_of, once.
    assert len(queries) == 2


def test_a_filter_on_a_dimension_the_metric_lacks_is_refused(world):
    with tenant_context(world.a.tenant), pytest.raises(ValueError):
        metrics.values_of([CONTACTS], tenant=world.a.tenant, filters={REGION: "江苏"}, **MARCH)


def test_series_counts_per_local_day_in_shanghai(world):
    a, tenant = world.a, world.a.tenant
    assert tenant.timezone == SHANGHAI
    # 23:59 and 00:00 local are 15:59 and 16:00 UTC of the same UTC day.
    lead(a, local(tenant, 2026, 3, 1, 23, 59), suspect=True)
    lead(a, local(tenant, 2026, 3, 2, 0, 0))
    lead(a, local(tenant, 2026, 3, 2, 7, 59))  # 23:59 UTC of March 1st
    lead(a, local(tenant, 2026, 3, 4, 0, 0))  # after the range
    with tenant_context(tenant):
        counted = metrics.series(
            DELIVERED, tenant=tenant, start=date(2026, 3, 1), end=date(2026, 3, 3)
        )
        suspect = metrics.series(
            SUSPECT, tenant=tenant, start=date(2026, 3, 1), end=date(2026, 3, 3)
        )
    assert counted == [(date(2026, 3, 1), 1), (date(2026, 3, 2), 2), (date(2026, 3, 3), 0)]
    assert suspect == [(date(2026, 3, 1), 1), (date(2026, 3, 2), 0), (date(2026, 3, 3), 0)]


def test_series_over_a_date_field_sums_and_takes_medians_per_day(world):
    seed_march(world)
    tenant = world.a.tenant
    span = {"start": date(2026, 3, 2), "end": date(2026, 3, 4)}
    with tenant_context(tenant):
        sums = metrics.series(CONTACTS, tenant=tenant, **span)
        medians = metrics.series(MEDIAN_CONTACTS, tenant=tenant, **span)
    assert sums == [(date(2026, 3, 2), 3), (date(2026, 3, 3), 0), (date(2026, 3, 4), 14)]
    assert medians == [(date(2026, 3, 2), 3.0), (date(2026, 3, 3), None), (date(2026, 3, 4), 7.0)]


def test_a_metric_without_dated_by_has_no_series(world):
    undated = Metric("t.undated", "U", "U", leads_in)
    with pytest.raises(ValueError):
        metrics.series(undated, tenant=world.a.tenant, **MARCH)


@pytest.mark.parametrize(
    ("contacts", "expected"),
    [((3, 9, 5), 5.0), ((3, 9, 5, 11), 7.0), ((), None), ((4,), 4.0)],
    ids=["odd", "even", "empty", "one"],
)
def test_the_median_equals_its_recount(world, contacts, expected):
    a, tenant = world.a, world.a.tenant
    for i, n in enumerate(contacts):
        summary(a, a.rep, date(2026, 3, 1 + i), n)
    summary(a, a.rep, date(2026, 4, 1), 1000)  # outside
    with tenant_context(tenant):
        figure = metrics.value(MEDIAN_CONTACTS, tenant=tenant, **MARCH)
        table = metrics.drill_down(MEDIAN_CONTACTS, tenant=tenant, **MARCH)
    # `of` is read by the drill-down even though no column shows it.
    assert metrics.column_names(MEDIAN_CONTACTS) == ["day", "contacts"]
    assert figure == metrics.recount(MEDIAN_CONTACTS, table) == expected


def test_drill_url_carries_the_period_and_the_filters():
    url = metrics.drill_url(
        "leads.delivered",
        date(2026, 3, 1),
        date(2026, 3, 31),
        {REGION: "江苏 & 上海", REP: 17, "other": None},
    )
    parts = urlsplit(url)
    assert parts.path == "/reports/metrics/leads.delivered/"
    assert parse_qs(parts.query, keep_blank_values=True) == {
        "start": ["2026-03-01"],
        "end": ["2026-03-31"],
        "region": ["江苏 & 上海"],
        "rep": ["17"],
        "other": [""],
    }
    assert "%E6%B1%9F" in url and "&" not in parts.query.split("region=")[1].split("&rep")[0]
    plain = metrics.drill_url("t.x", date(2026, 3, 1), date(2026, 3, 1))
    assert plain == "/reports/metrics/t.x/?start=2026-03-01&end=2026-03-01"


def test_previous_period_of_months_is_the_same_days_of_the_months_before():
    # A month, the month to date, a quarter, the quarter to date: 环比 by the calendar.
    assert metrics.previous_period(date(2026, 3, 1), date(2026, 3, 31)) == (
        date(2026, 2, 1),
        date(2026, 2, 28),
    )
    assert metrics.previous_period(date(2026, 12, 1), date(2026, 12, 3)) == (
        date(2026, 11, 1),
        date(2026, 11, 3),
    )
    assert metrics.previous_period(date(2026, 1, 1), date(2026, 1, 31)) == (
        date(2025, 12, 1),
        date(2025, 12, 31),
    )
    assert metrics.previous_period(date(2026, 10, 1), date(2026, 12, 31)) == (
        date(2026, 7, 1),
        date(2026, 9, 30),
    )
    assert metrics.previous_period(date(2026, 1, 1), date(2026, 2, 12)) == (
        date(2025, 10, 1),
        date(2025, 11, 12),
    )
    assert metrics.previous_period(date(2026, 5, 1), date(2026, 5, 31)) == (
        date(2026, 4, 1),
        date(2026, 4, 30),
    )


def test_previous_period_of_other_spans_is_as_long_and_ends_the_day_before():
    # A week from Monday, the last 30 days, two months not a quarter, custom days.
    assert metrics.previous_period(date(2026, 3, 2), date(2026, 3, 8)) == (
        date(2026, 2, 23),
        date(2026, 3, 1),
    )
    assert metrics.previous_period(date(2026, 11, 4), date(2026, 12, 3)) == (
        date(2026, 10, 5),
        date(2026, 11, 3),
    )
    assert metrics.previous_period(date(2026, 2, 1), date(2026, 3, 31)) == (
        date(2025, 12, 4),
        date(2026, 1, 31),
    )
    assert metrics.previous_period(date(2026, 1, 2), date(2026, 1, 2)) == (
        date(2026, 1, 1),
        date(2026, 1, 1),
    )


def test_a_rate_meets_its_target_in_either_direction():
    higher = Rate("t.r", "R", "R", "t.suspect", "t.delivered", target=0.95)
    lower = Rate("t.l", "L", "L", "t.suspect", "t.delivered", target=0.15, higher_is_better=False)
    untargeted = Rate("t.u", "U", "U", "t.suspect", "t.delivered")
    assert higher.meets(0.95) is True and higher.meets(0.9499) is False
    assert lower.meets(0.15) is True and lower.meets(0.1501) is False
    assert higher.meets(None) is None and untargeted.meets(0.5) is None
    assert higher.share(3, 4) == 0.75 and higher.share(0, 0) is None


def test_who_reads_a_figure(monkeypatch):
    amount = Metric("t.amount", "A", "A", leads_in, aggregate=SUM, of="score", unit="amount")
    service = Metric("t.service", "S", "S", leads_in, roles=EVERYONE)
    service_amount = Metric(
        "t.service_amount", "SA", "SA", leads_in, aggregate=SUM, of="score", unit="amount",
        roles=EVERYONE,
    )  # fmt: skip
    assert metrics.readable_by(DELIVERED, Role.REP) and metrics.readable_by(amount, Role.MANAGER)
    assert not metrics.readable_by(DELIVERED, Role.SERVICE)
    assert metrics.readable_by(service, Role.SERVICE)
    assert not metrics.readable_by(service_amount, Role.SERVICE)  # never an amount
    assert not metrics.readable_by(DELIVERED, None)
    for metric in (DELIVERED, service):
        monkeypatch.setitem(metrics._registry, metric.key, metric)
    mixed = Rate("t.mixed", "M", "M", "t.service", "t.delivered")
    own = Rate("t.own", "O", "O", "t.service", "t.service")
    assert not metrics.rate_readable_by(mixed, Role.SERVICE)
    assert metrics.rate_readable_by(own, Role.SERVICE)
    assert not metrics.rate_readable_by(Rate("t.gone", "G", "G", "t.nope", "t.service"), Role.REP)


def test_reading_without_a_replica_is_the_primary_in_the_open_context(world, settings):
    assert "reports" not in settings.DATABASES
    assert metrics.reports_alias() == "default"
    seed_march(world)
    tenant = world.a.tenant
    with tenant_context(tenant), metrics.reading(tenant) as alias:
        assert alias == "default"
        with CaptureQueriesContext(connection) as queries:
            figure = metrics.value(DELIVERED, tenant=tenant, using=alias, **MARCH)
            table = metrics.drill_down(DELIVERED, tenant=tenant, using=alias, **MARCH)
    # No context of its own (no set_config): the figure and its rows, on the primary.
    assert len(queries) == 2
    assert figure == len(table) == 5


def test_a_new_member_without_rows_is_a_bucket_of_none(world):
    seed_march(world)
    tenant = world.a.tenant
    newcomer = MembershipFactory(tenant=tenant, role=Role.REP)
    with tenant_context(tenant):
        by_rep = metrics.values_by([DELIVERED], REP, tenant=tenant, **MARCH)
        mine = metrics.value(DELIVERED, tenant=tenant, filters={REP: newcomer.pk}, **MARCH)
    assert newcomer.pk not in by_rep and mine == 0
    assert DELIVERED.aggregate == COUNT
