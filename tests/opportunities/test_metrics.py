"""The opportunities metrics in the kernel's registry (opportunities/metrics.py): each
figure equals the count or sum of its drill-down rows, recomputed here, and the figures
of a seeded range by hand. The range is 2026-03-01 … 2026-03-31 of tenant a
(Asia/Shanghai); the edges are local midnights."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from crm import metrics
from crm.metrics import COUNT, SUM
from crm.tenancy import tenant_context
from tests.opportunities.test_forecast import local, opportunity

pytestmark = pytest.mark.django_db

START, END = date(2026, 3, 1), date(2026, 3, 31)
KEYS = (
    "opportunities.created",
    "opportunities.valid_created",
    "opportunities.won",
    "opportunities.won_amount",
    "opportunities.lost",
)


def seed(world):
    a, t = world.a, world.a.tenant
    inside = local(t, 2026, 3, 1, 0, 0, 1)
    before = local(t, 2026, 2, 28, 23, 59, 59)
    after = local(t, 2026, 4, 1, 0, 0, 0)
    # Opened in March: 5 (2 valid, 1 of them opened on the 31st at 23:59).
    opportunity(a, a.rep, amount="10000", created_at=inside)
    opportunity(a, a.rep, amount="20000", created_at=local(t, 2026, 3, 31, 23, 59), valid=True)
    opportunity(a, a.manager, created_at=local(t, 2026, 3, 15, 9), valid=True)
    # Won in March: 3 for 380,000 (one without an amount), opened earlier.
    for amount, day in (("300000", 2), ("80000", 31), (None, 20)):
        opportunity(
            a,
            a.rep,
            amount=amount,
            probability=100,
            status="won",
            won_at=local(t, 2026, 3, day, 23, 0),
            created_at=before if day == 2 else inside,
        )
    # Lost in March: 2.
    for day in (1, 30):
        opportunity(
            a,
            a.manager,
            amount="5000",
            probability=0,
            status="lost",
            lost_at=local(t, 2026, 3, day, 12),
            created_at=before,
        )
    # Outside the range or in tenant b: none counted.
    opportunity(a, a.rep, amount="1", created_at=after, valid=True)
    opportunity(
        a, a.rep, amount="1", probability=100, status="won", won_at=after, created_at=before
    )
    opportunity(a, a.rep, amount="1", probability=0, status="lost", lost_at=before)
    opportunity(world.b, world.b.rep, amount="9", probability=100, status="won", won_at=inside)


EXPECTED = {
    # 3 opened in March + the 2 won ones opened on the 1st (the others before it).
    "opportunities.created": 5,
    "opportunities.valid_created": 2,
    "opportunities.won": 3,
    "opportunities.won_amount": Decimal("380000"),
    "opportunities.lost": 2,
}


def test_each_figure_is_its_rows_and_matches_the_hand_count(world):
    seed(world)
    tenant = world.a.tenant
    for key in KEYS:
        metric = metrics.get_metric(key)
        assert metric is not None, key
        assert str(metric.label) and str(metric.definition) and metric.columns
        with tenant_context(tenant):
            shown = metrics.value(metric, tenant=tenant, start=START, end=END)
            rows = list(metrics.rows_of(metric, tenant=tenant, start=START, end=END))
            table = metrics.drill_down(metric, tenant=tenant, start=START, end=END)
        assert all(row.tenant_id == tenant.pk for row in rows), key
        assert len(table) == len(rows), key
        if metric.aggregate == COUNT:
            assert shown == len(rows), key
        else:
            assert metric.aggregate == SUM
            assert shown == sum(getattr(row, metric.of) for row in rows), key
            position = [c.path for c in metric.columns].index(metric.of)
            assert shown == sum(values[position] for values in table), key
        assert shown == EXPECTED[key], key


def test_an_empty_range_counts_zero(world):
    seed(world)
    tenant = world.a.tenant
    with tenant_context(tenant):
        for key in KEYS:
            metric = metrics.get_metric(key)
            assert (
                metrics.value(metric, tenant=tenant, start=date(2025, 1, 1), end=date(2025, 1, 31))
                == 0
            )
