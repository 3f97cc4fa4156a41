"""The nightly recompute: each dimension's bands on hand-built histories, re-weighting and
coverage, idempotency, and the SQL against the pure-Python reference (a property test)."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm.tenancy import tenant_context
from health import compute, reference
from health.models import HealthSettings, HealthSnapshot, LinkKind, SignalKind
from tests.health.helpers import (
    DAY,
    customer,
    interaction,
    link,
    moment,
    resolved_ticket,
    signal,
)

pytestmark = pytest.mark.django_db


def run(side, day=DAY):
    with tenant_context(side.tenant):
        return compute.recompute(side.tenant, day=day)


def snapshot(side, cust, day=DAY) -> HealthSnapshot:
    with tenant_context(side.tenant):
        return HealthSnapshot.objects.get(customer=cust, day=day)


DEFAULTS = HealthSettings().band_table()


@pytest.mark.parametrize(
    ("dimension", "value", "score"),
    [
        ("recency", 0, 100), ("recency", 7, 100), ("recency", 8, 85), ("recency", 30, 65),
        ("recency", 31, 40), ("recency", 90, 20), ("recency", 91, 0),
        ("frequency", 0, 10), ("frequency", 1, 40), ("frequency", 5, 60), ("frequency", 12, 100),
        ("service", 100, 100), ("service", 94.9, 80), ("service", 50, 40), ("service", 0, 15),
        ("downloads", 0, 30), ("downloads", 3, 80), ("quotes", 0, 0), ("quotes", 100, 100),
        ("competitor", 0, 100), ("competitor", 1, 70), ("competitor", 6, 10),
    ],
)  # fmt: skip
def test_band_score_by_default_bands(dimension, value, score):
    assert compute.band_score(dimension, value, DEFAULTS) == score
    assert compute.band_score(dimension, None, DEFAULTS) is None


def test_overall_reweights_over_the_dimensions_with_data():
    weights = HealthSettings().weights()  # 25 20 20 10 15 10
    scores = {"recency": 100, "frequency": 40, "service": None, "downloads": None,
              "quotes": None, "competitor": None}  # fmt: skip
    # (25·100 + 20·40) / 45 = 73.33 → 73, over 2 of the 6
    assert compute.overall(scores, weights) == (73, 2)
    assert compute.overall(dict.fromkeys(scores), weights) == (None, 0)
    # a weight of 0 leaves its dimension out of the score and the coverage
    assert compute.overall(scores, {**weights, "frequency": 0}) == (100, 1)
    # half up: (1·0 + 1·1)/2 = 0.5 → 1
    assert compute.overall({"recency": 0, "frequency": 1}, {"recency": 1, "frequency": 1}) == (
        1,
        2,
    )


def test_each_dimension_on_a_hand_built_history(world):
    a = world.a
    cust = customer(a)
    # recency 19 days (last interaction 19.5 days before the day starts); 3 in 90 days
    interaction(a, cust, moment(a, 19.5))
    interaction(a, cust, moment(a, 40))
    interaction(a, cust, moment(a, 89))
    interaction(a, cust, moment(a, 120))  # outside 90 days
    interaction(a, cust, moment(a, -0.5))  # after the day started: not counted
    # service: 3 of 4 resolved within 24 h in 180 days; one older ignored
    resolved_ticket(a, cust, moment(a, 10), 2, "T1")
    resolved_ticket(a, cust, moment(a, 20), 30, "T2")
    resolved_ticket(a, cust, moment(a, 30), 5, "T3")
    resolved_ticket(a, cust, moment(a, 170), 1, "T4")
    resolved_ticket(a, cust, moment(a, 200), 50, "T5")
    # downloads: 2 in 90 days; quotes: 1 of 3 sent in 180 days opened before the day
    signal(a, cust, SignalKind.DOWNLOAD, moment(a, 5))
    signal(a, cust, SignalKind.DOWNLOAD, moment(a, 60))
    signal(a, cust, SignalKind.DOWNLOAD, moment(a, 100))
    link(a, cust, LinkKind.QUOTE, moment(a, 30), opened_at=moment(a, 29))
    link(a, cust, LinkKind.QUOTE, moment(a, 20))
    link(a, cust, LinkKind.QUOTE, moment(a, 10), opened_at=moment(a, -1))  # opened later
    link(a, cust, LinkKind.QUOTE, moment(a, 200), opened_at=moment(a, 199))  # too old
    # competitor: 2 searches in 90 days
    signal(a, cust, SignalKind.COMPETITOR_SEARCH, moment(a, 3), competitor="西门子")
    signal(a, cust, SignalKind.COMPETITOR_SEARCH, moment(a, 50), competitor="ABB")

    result = run(a)
    assert result.scored == 1
    snap = snapshot(a, cust)
    assert snap.recency_value == 19 and snap.recency_score == 65
    assert snap.frequency_value == 3 and snap.frequency_score == 60
    assert snap.service_value == 75 and snap.service_score == 60
    assert snap.downloads_value == 2 and snap.downloads_score == 60
    assert snap.quotes_value == pytest.approx(100 / 3) and snap.quotes_score == 50
    assert snap.competitor_value == 2 and snap.competitor_score == 70
    # (25·65 + 20·60 + 20·60 + 10·60 + 15·50 + 10·70) / 100 = 60.75 → 61
    assert (snap.score, snap.coverage) == (61, 6)


def test_a_customer_without_data_has_no_score(world):
    a = world.a
    cust = customer(a)
    run(a)
    snap = snapshot(a, cust)
    assert snap.score is None and snap.coverage == 0
    assert all(getattr(snap, f"{d}_value") is None for d in compute.DIMENSIONS)


def test_data_presence_rules(world):
    a = world.a
    cust = customer(a)
    # a document sent, never downloaded: downloads 0 is real data (score 30)
    link(a, cust, LinkKind.DOCUMENT, moment(a, 10))
    run(a)
    snap = snapshot(a, cust)
    assert snap.downloads_value == 0 and snap.downloads_score == 30
    # no signal yet: the competitor dimension has no data
    assert snap.competitor_value is None
    assert (snap.score, snap.coverage) == (30, 1)


def test_recompute_is_idempotent(world):
    a = world.a
    cust = customer(a)
    interaction(a, cust, moment(a, 3))
    run(a)
    with tenant_context(a.tenant):
        first = list(HealthSnapshot.objects.values().order_by("id"))
    # a follow-up logged later the same day does not change the day's rows
    interaction(a, cust, moment(a, -0.2))
    run(a)
    with tenant_context(a.tenant):
        second = list(HealthSnapshot.objects.values().order_by("id"))
    assert first == second and len(first) == 1


def test_tenants_are_scored_apart(world):
    a, b = world.a, world.b
    mine, theirs = customer(a), customer(b, "别家")
    interaction(b, theirs, moment(b, 2))
    assert run(a).scored == 1
    assert snapshot(a, mine).score is None
    with tenant_context(b.tenant):
        assert not HealthSnapshot.objects.exists()


def _random_history(side, rnd: random.Random, customers: int) -> None:
    made = [customer(side, f"客户{i}") for i in range(customers)]
    for i, cust in enumerate(made):
        for _ in range(rnd.randrange(0, 6)):
            interaction(side, cust, moment(side, rnd.uniform(-2, 200)))
        for j in range(rnd.randrange(0, 4)):
            resolved_ticket(
                side, cust, moment(side, rnd.uniform(-2, 250)), rnd.uniform(0.5, 60), f"R{i}-{j}"
            )
        for _ in range(rnd.randrange(0, 5)):
            kind = rnd.choice(list(SignalKind.values))
            signal(side, cust, kind, moment(side, rnd.uniform(-2, 150)))
        for _ in range(rnd.randrange(0, 4)):
            sent = rnd.uniform(-1, 220)
            opened = sent - rnd.uniform(0, 20) if rnd.random() < 0.5 else None
            kind = rnd.choice(list(LinkKind.values))
            link(
                side, cust, kind, moment(side, sent),
                opened_at=moment(side, opened) if opened is not None else None,
            )  # fmt: skip


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(seed=st.integers(0, 10**6), custom=st.booleans())
def test_sql_equals_the_python_reference(world, seed, custom):
    a = world.a
    rnd = random.Random(seed)
    with tenant_context(a.tenant):
        HealthSnapshot.objects.all().delete()
        from customers.models import Customer

        Customer.objects.all().delete()
        hs = HealthSettings.for_tenant(a.tenant)
        if custom:
            hs.weight_recency, hs.weight_frequency, hs.weight_service = 40, 0, 10
            hs.weight_downloads, hs.weight_quotes, hs.weight_competitor = 10, 30, 10
            hs.bands = {
                "recency": {"bands": [[3, 100], [10.5, 50]], "else": 5},
                "quotes": {"bands": [[50, 90]], "else": 20},
            }
        else:
            hs.weight_recency, hs.weight_frequency, hs.weight_service = 25, 20, 20
            hs.weight_downloads, hs.weight_quotes, hs.weight_competitor = 10, 15, 10
            hs.bands = {}
        hs.full_clean()
        hs.save()
    _random_history(a, rnd, customers=8)
    run(a)
    with tenant_context(a.tenant):
        expected = reference.score_all(a.tenant, DAY)
        rows = {s.customer_id: s for s in HealthSnapshot.objects.filter(day=DAY)}
    assert set(rows) == set(expected)
    for customer_id, want in expected.items():
        got = rows[customer_id]
        for d in compute.DIMENSIONS:
            value = getattr(got, f"{d}_value")
            if want["values"][d] is None:
                assert value is None, (d, customer_id)
            else:
                assert value == pytest.approx(want["values"][d]), (d, customer_id)
            assert getattr(got, f"{d}_score") == want["scores"][d], (d, customer_id)
        assert (got.score, got.coverage) == (want["score"], want["coverage"]), customer_id


def test_the_day_windows_follow_the_tenant_time_zone(world):
    a = world.a
    with tenant_context(a.tenant):
        a.tenant.timezone = "Asia/Shanghai"
        a.tenant.save(update_fields=["timezone"])
    cust = customer(a)
    # 23:30 Shanghai time on the day before: 0 whole days before the day's start
    interaction(a, cust, compute.as_of(a.tenant, DAY) - timedelta(minutes=30))
    run(a)
    assert snapshot(a, cust).recency_value == 0


def test_the_nightly_run_once_a_day_from_two_and_pruning(world):
    from datetime import datetime

    from health import tasks

    a = world.a
    cust = customer(a)
    interaction(a, cust, moment(a, 3))
    with tenant_context(a.tenant):
        early = datetime(2026, 11, 30, 1, 30, tzinfo=a.tenant.tzinfo)
        assert tasks.nightly(a.tenant, now=early) is None  # before 02:00 local
        at_two = datetime(2026, 11, 30, 2, 5, tzinfo=a.tenant.tzinfo)
        done = tasks.nightly(a.tenant, now=at_two)
        assert done["day"] == "2026-11-30" and done["scored"] == 1
        assert tasks.nightly(a.tenant, now=at_two.replace(hour=3)) is None  # done today
        # old snapshots: daily ones go, a month's last day stays
        for day in (date(2025, 1, 15), date(2025, 1, 31), date(2026, 11, 1)):
            HealthSnapshot.objects.create(tenant=a.tenant, customer=cust, day=day)
        assert tasks.prune(a.tenant, date(2026, 11, 30)) == 1
        kept = set(HealthSnapshot.objects.values_list("day", flat=True))
        assert kept == {date(2025, 1, 31), date(2026, 11, 1), date(2026, 11, 30)}


def test_a_customer_created_after_the_day_began_is_not_scored_that_day(world):
    a = world.a
    old = customer(a, "老客户")
    new = customer(a, "新客户", created_at=moment(a, -0.25))  # 06:00 on the day
    assert run(a).scored == 1
    with tenant_context(a.tenant):
        assert set(HealthSnapshot.objects.values_list("customer_id", flat=True)) == {old.pk}
    next_day = DAY + timedelta(days=1)
    assert run(a, next_day).scored == 2
    assert snapshot(a, new, next_day).score is None
