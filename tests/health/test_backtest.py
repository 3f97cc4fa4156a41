"""The back-test of draft settings on hand-built histories: snapshots with chosen values,
interactions and won orders after them, and the shares stated by hand."""

from __future__ import annotations

from datetime import timedelta

import pytest

from crm.tenancy import tenant_context
from health import backtest, compute
from health.models import HealthSettings, HealthSnapshot
from opportunities.models import Opportunity
from tests.health.helpers import DAY, customer, interaction
from tests.opportunities.helpers import make_opportunity

pytestmark = pytest.mark.django_db

# 2026-11-30 - 90 days = 2026-09-01: the newest day with 90 days of aftermath.
EVAL = DAY - timedelta(days=120)


def only(dimension: str, tenant=None) -> HealthSettings:
    """Settings that score by one dimension alone (its weight 100), default bands."""
    weights = {f"weight_{d}": 0 for d in compute.DIMENSIONS}
    weights[f"weight_{dimension}"] = 100
    return HealthSettings(tenant=tenant, **weights)


def snap(side, cust, day, **values):
    with tenant_context(side.tenant):
        HealthSnapshot.objects.create(
            tenant=side.tenant,
            customer=cust,
            day=day,
            **{f"{d}_value": v for d, v in values.items()},
        )


def after(side, day, days: float):
    return compute.as_of(side.tenant, day) + timedelta(days=days)


def won(side, cust, at):
    opportunity = make_opportunity(side, customer=cust)
    with tenant_context(side.tenant):
        Opportunity.objects.filter(pk=opportunity.pk).update(status="won", won_at=at)


def run(side, draft, saved):
    with tenant_context(side.tenant):
        return backtest.run(side.tenant, draft=draft, saved=saved, today=DAY)


def test_shares_in_the_bottom_decile_now_and_with_the_draft(world):
    a = world.a
    # Ten customers on one evaluation day: the bottom decile is one customer.
    # By frequency ("now"): Quiet has 12 interactions (100), Orders none (10), the rest 3 (60).
    # By recency (the draft): Quiet's last interaction is 100 days old (0), Orders' 5 (100),
    # the rest 10 (85).
    quiet = customer(a, "沉默客户")
    orders = customer(a, "复购客户")
    snap(a, quiet, EVAL, recency=100, frequency=12)
    snap(a, orders, EVAL, recency=5, frequency=0)
    rest = []
    for i in range(8):
        other = customer(a, f"客户{i}")
        snap(a, other, EVAL, recency=10, frequency=3)
        rest.append(other)
    # Afterwards: everyone but Quiet is heard from within 90 days; Orders orders on day 10;
    # an order on day 95 and an interaction of Quiet on day 91 are too late to count.
    for cust in [orders, *rest]:
        interaction(a, cust, after(a, EVAL, 30))
    interaction(a, quiet, after(a, EVAL, 91))
    won(a, orders, after(a, EVAL, 10))
    won(a, rest[0], after(a, EVAL, 95))

    result = run(a, draft=only("recency", a.tenant), saved=only("frequency", a.tenant))

    assert result.enough
    assert result.days == [EVAL]
    assert (result.customers, result.pairs_now, result.pairs_draft) == (10, 10, 10)
    # Quiet: 1 customer-day; in the bottom decile by recency, not by frequency.
    assert (result.quiet.now_count, result.quiet.now_share) == (1, 0.0)
    assert (result.quiet.draft_count, result.quiet.draft_share) == (1, 100.0)
    # Ordered: 1 customer-day; in the bottom decile by frequency, not by recency.
    assert (result.ordered.now_share, result.ordered.draft_share) == (100.0, 0.0)
    assert result.quiet.change == 100.0


def test_ties_at_the_decile_edge_count_in_part_and_unscored_are_not_ranked(world):
    a = world.a
    # Ten scored customers (and one without data): by recency, three tie at the bottom
    # (0 points); the decile holds one, so each of the three counts 1/3.
    tied = [customer(a, f"并列{i}") for i in range(3)]
    for cust in tied:
        snap(a, cust, EVAL, recency=200)
    others = [customer(a, f"活跃{i}") for i in range(7)]
    for cust in others:
        snap(a, cust, EVAL, recency=3)
        interaction(a, cust, after(a, EVAL, 1))
    nobody = customer(a, "无数据")
    snap(a, nobody, EVAL)  # no value at all: no score, not ranked, not counted
    interaction(a, tied[2], after(a, EVAL, 1))  # two of the tied go quiet, one does not

    result = run(a, draft=only("recency", a.tenant), saved=only("recency", a.tenant))

    assert result.customers == 10
    # Quiet: tied[0] and tied[1] (1/3 each) → (2/3) / 2 = 33.3 %.
    assert (result.quiet.now_count, result.quiet.now_share) == (2, 33.3)
    assert result.quiet.draft_share == 33.3
    assert result.ordered.now_count == 0 and result.ordered.now_share is None


def test_evaluation_days_are_a_week_apart_with_ninety_days_after(world):
    a = world.a
    cust = customer(a)
    # Snapshots every day of two weeks before EVAL, and one too recent to have 90 days after.
    for back in range(14):
        snap(a, cust, EVAL - timedelta(days=back), recency=3)
    snap(a, cust, DAY - timedelta(days=89), recency=3)
    # And one older than the 26 weeks looked at.
    snap(a, cust, DAY - timedelta(days=90 + 182), recency=3)
    with tenant_context(a.tenant):
        days, oldest, latest = backtest.evaluation_days(a.tenant, DAY)
    assert days == [EVAL - timedelta(days=7), EVAL]
    assert oldest == DAY - timedelta(days=90 + 182)
    assert latest == DAY - timedelta(days=90)


def test_not_enough_history(world):
    a = world.a
    cust = customer(a)
    draft = only("recency", a.tenant)
    result = run(a, draft=draft, saved=draft)
    assert not result.enough and result.oldest is None
    snap(a, cust, DAY - timedelta(days=30), recency=3)  # too recent to judge
    result = run(a, draft=draft, saved=draft)
    assert not result.enough
    assert result.oldest == DAY - timedelta(days=30)
    assert result.needed_before == DAY - timedelta(days=90)


def test_the_rescoring_sql_agrees_with_the_python_scores(world):
    """The back-test's score of a snapshot's values is the recompute's: band_score and
    overall (weighted mean over the dimensions with data, half up), for random values."""
    import random

    from django.db import connection

    a = world.a
    rng = random.Random(16)
    settings = HealthSettings(
        tenant=a.tenant,
        weight_recency=30,
        weight_frequency=0,
        weight_service=25,
        weight_downloads=5,
        weight_quotes=15,
        weight_competitor=25,
        bands={"recency": {"bands": [[3, 100], [10.5, 70], [45, 30]], "else": 5}},
    )
    table, weights = settings.band_table(), settings.weights()
    expected = {}
    for i in range(60):
        cust = customer(a, f"随机{i}")
        values = {
            d: (None if rng.random() < 0.3 else rng.choice([0, 1, 3, 10.5, 11, 50, 94.9, 95, 200]))
            for d in compute.DIMENSIONS
        }
        snap(a, cust, EVAL, **values)
        scores = {d: compute.band_score(d, v, table) for d, v in values.items()}
        expected[cust.pk] = compute.overall(scores, weights)[0]
    params: dict = {"tenant": a.tenant.pk}
    score = backtest._score_sql(settings, "x_", params)
    with tenant_context(a.tenant), connection.cursor() as cursor:
        cursor.execute(
            f"SELECT s.customer_id, {score} FROM health_healthsnapshot s"
            " WHERE s.tenant_id = %(tenant)s",
            params,
        )
        got = dict(cursor.fetchall())
    assert got == expected
