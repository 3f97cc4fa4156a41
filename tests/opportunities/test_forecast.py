"""The weighted forecast (opportunities.forecast): live, frozen on a month's first day and
closed against what was signed, each figure recomputed here from the opportunities' rows.

March 2026 (tenant a, Asia/Shanghai), open and expected that month:

| owner   | amount     | probability | weighted     | valid |
| ------- | ---------- | ----------- | ------------ | ----- |
| rep     | 100,000    | 25          | 25,000       |       |
| rep     | 333,333.33 | 45          | 149,999.9985 |       |
| rep     | (none)     | 70          | 0            |       |
| rep     | 200,000    | 70          | 140,000      | yes   |
| manager | 50,000     | 10          | 5,000        |       |

Won in March (local time): the rep 120,000 (on the 31st at 23:59) and 80,000; a second
rep 50,000 with nothing expected. Won just outside March (1 April 00:00:30, 28 February
23:59:59 local) and everything of tenant b: not counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.utils import timezone

from crm.models import Role
from crm.tenancy import tenant_context
from opportunities import forecast
from opportunities.models import (
    BudgetBand,
    ForecastMonth,
    Opportunity,
    OpportunityStatus,
    Stage,
)
from opportunities.setup import ensure_defaults
from tests.factories import MembershipFactory
from tests.opportunities.helpers import make_customer

pytestmark = pytest.mark.django_db

MARCH = date(2026, 3, 1)
APRIL = date(2026, 4, 1)
CENT = Decimal("0.01")


def local(tenant, *args) -> datetime:
    return timezone.make_aware(datetime(*args), tenant.tzinfo)


def opportunity(side, owner, *, amount=None, probability=10, month=None, valid=False, **extra):
    """An opportunity written as it is stored (the history by the triggers)."""
    with tenant_context(side.tenant):
        ensure_defaults()
        customer = side.extra.get("customer")
        if customer is None:
            customer = side.extra["customer"] = make_customer(side, name=f"{side.tenant.slug}客户")
        fields = {}
        if valid:
            now = timezone.now()
            fields = {
                "visit_at": now,
                "evidence_at": now,
                "approved_at": now,
                "budget_band": BudgetBand.TO_500K,
            }
        opp = Opportunity.objects.create(
            tenant=side.tenant,
            name=f"机会 {amount}",
            customer=customer,
            owner=owner,
            stage=Stage.objects.order_by("position").first(),
            amount=None if amount is None else Decimal(amount),
            probability=probability,
            expected_close=month,
            **fields,
            **extra,
        )
        opp.refresh_from_db()
        assert opp.is_valid == valid
        return opp


def won(side, owner, amount, won_at):
    return opportunity(
        side,
        owner,
        amount=amount,
        probability=100,
        month=MARCH,
        status=OpportunityStatus.WON,
        won_at=won_at,
    )


@dataclass
class March:
    side: object
    rep2: object


def build_march(world) -> March:
    a = world.a
    rep2 = MembershipFactory(tenant=a.tenant, role=Role.REP, user__username="alpha-rep2")
    opportunity(a, a.rep, amount="100000", probability=25, month=MARCH)
    opportunity(a, a.rep, amount="333333.33", probability=45, month=MARCH)
    opportunity(a, a.rep, amount=None, probability=70, month=MARCH)
    opportunity(a, a.rep, amount="200000", probability=70, month=MARCH, valid=True)
    opportunity(a, a.manager, amount="50000", probability=10, month=MARCH)
    # Not March's forecast: another month, no month, closed, another tenant.
    opportunity(a, a.rep, amount="999999", probability=90, month=APRIL)
    opportunity(a, a.rep, amount="999999", probability=90, month=None)
    opportunity(
        a,
        a.rep,
        amount="999999",
        probability=0,
        month=MARCH,
        status=OpportunityStatus.LOST,
        lost_at=timezone.now(),
    )
    opportunity(world.b, world.b.rep, amount="777777", probability=90, month=MARCH)
    # Signed in March, and just outside it.
    won(a, a.rep, "120000", local(a.tenant, 2026, 3, 31, 23, 59))
    won(a, a.rep, "80000", local(a.tenant, 2026, 3, 10, 9, 0))
    won(a, rep2, "50000", local(a.tenant, 2026, 3, 2, 9, 0))
    won(a, a.rep, "999999", local(a.tenant, 2026, 4, 1, 0, 0, 30))
    won(a, a.manager, "999999", local(a.tenant, 2026, 2, 28, 23, 59, 59))
    won(world.b, world.b.rep, "777777", local(world.b.tenant, 2026, 3, 15, 12, 0))
    return March(a, rep2)


def recount_forecast(side, month) -> dict:
    """Per owner id (None: the team): (forecast, valid forecast, count), from the rows."""
    with tenant_context(side.tenant):
        rows = list(
            Opportunity.objects.filter(status="open", expected_close=month).values(
                "owner_id", "amount", "probability", "is_valid"
            )
        )
    out: dict = {}
    for row in rows:
        weight = (row["amount"] or Decimal(0)) * row["probability"] / 100
        for key in (row["owner_id"], None):
            f, v, n = out.get(key, (Decimal(0), Decimal(0), 0))
            out[key] = (f + weight, v + (weight if row["is_valid"] else 0), n + 1)
    return {
        k: (f.quantize(CENT, ROUND_HALF_UP), Decimal(v).quantize(CENT, ROUND_HALF_UP), n)
        for k, (f, v, n) in out.items()
    }


def recount_signed(side, month) -> dict:
    since, until = forecast.month_bounds(side.tenant, month)
    with tenant_context(side.tenant):
        rows = Opportunity.objects.filter(status="won", won_at__gte=since, won_at__lt=until)
        out: dict = {}
        for row in rows:
            for key in (row.owner_id, None):
                out[key] = out.get(key, Decimal(0)) + (row.amount or 0)
    return out


def frozen(side, month) -> dict:
    with tenant_context(side.tenant):
        return {
            row.owner_id: row
            for row in ForecastMonth.objects.filter(month=month).order_by("owner_id")
        }


def test_freeze_writes_the_team_and_each_owner_as_recounted(world):
    m = build_march(world)
    a = m.side
    with tenant_context(a.tenant):
        written = forecast.freeze(a.tenant, MARCH)
    expected = recount_forecast(a, MARCH)
    rows = frozen(a, MARCH)
    assert written == 3 and set(rows) == {None, a.rep.pk, a.manager.pk}
    for owner, (value, valid, count) in expected.items():
        assert (rows[owner].forecast, rows[owner].valid_forecast, rows[owner].opportunities) == (
            value,
            valid,
            count,
        )
    # The hand-computed figures of the docstring.
    assert rows[None].forecast == Decimal("320000.00")
    assert rows[a.rep.pk].forecast == Decimal("315000.00")
    assert rows[a.rep.pk].valid_forecast == rows[None].valid_forecast == Decimal("140000.00")
    assert rows[a.manager.pk].forecast == Decimal("5000.00")
    assert rows[None].opportunities == 5
    assert all(r.signed is None and r.closed_at is None for r in rows.values())
    # Tenant b's month is its own.
    assert frozen(world.b, MARCH) == {}


def test_a_frozen_month_is_never_recomputed(world):
    m = build_march(world)
    a = m.side
    with tenant_context(a.tenant):
        forecast.freeze(a.tenant, MARCH)
    before = {k: (r.forecast, r.frozen_at) for k, r in frozen(a, MARCH).items()}
    opportunity(a, a.rep, amount="500000", probability=90, month=MARCH)
    opportunity(a, m.rep2, amount="500000", probability=90, month=MARCH)
    with tenant_context(a.tenant):
        assert forecast.freeze(a.tenant, date(2026, 3, 15)) == 0
    assert {k: (r.forecast, r.frozen_at) for k, r in frozen(a, MARCH).items()} == before


def test_a_month_with_nothing_expected_freezes_a_forecast_of_zero(world):
    with tenant_context(world.a.tenant):
        assert forecast.freeze(world.a.tenant, date(2026, 7, 1)) == 1
    rows = frozen(world.a, date(2026, 7, 1))
    assert list(rows) == [None]
    assert (rows[None].forecast, rows[None].valid_forecast, rows[None].opportunities) == (0, 0, 0)


def test_close_sets_what_was_signed_and_the_accuracy(world):
    m = build_march(world)
    a = m.side
    with tenant_context(a.tenant):
        forecast.freeze(a.tenant, MARCH)
        closed = forecast.close(a.tenant, MARCH, today=date(2026, 4, 1))
    signed = recount_signed(a, MARCH)
    rows = frozen(a, MARCH)
    # The team, the rep, the manager closed; rep2 (signed, nothing expected) added.
    assert closed == 4 and set(rows) == {None, a.rep.pk, a.manager.pk, m.rep2.pk}
    for owner, row in rows.items():
        assert row.signed == signed.get(owner, 0)
        assert row.closed_at is not None
        if row.signed:
            accuracy = 1 - abs(row.forecast - row.signed) / row.signed
            assert row.accuracy == accuracy.quantize(Decimal("0.0001"), ROUND_HALF_UP)
        else:
            assert row.accuracy is None
    # By hand.
    assert rows[None].signed == Decimal("250000")
    assert rows[None].accuracy == Decimal("0.7200")  # 1 - 70,000 / 250,000
    assert rows[a.rep.pk].signed == Decimal("200000")
    assert rows[a.rep.pk].accuracy == Decimal("0.4250")  # 1 - 115,000 / 200,000
    assert (rows[a.manager.pk].signed, rows[a.manager.pk].accuracy) == (0, None)
    assert (rows[m.rep2.pk].forecast, rows[m.rep2.pk].signed) == (0, Decimal("50000"))
    assert rows[m.rep2.pk].accuracy == 0
    assert rows[m.rep2.pk].frozen_at == rows[None].frozen_at
    # The reps' rows add up to the team's.
    reps = [r for k, r in rows.items() if k is not None]
    assert sum(r.forecast for r in reps) == rows[None].forecast
    assert sum(r.signed for r in reps) == rows[None].signed


def test_a_closed_month_is_kept_as_it_was(world):
    m = build_march(world)
    a = m.side
    with tenant_context(a.tenant):
        forecast.freeze(a.tenant, MARCH)
        forecast.close(a.tenant, MARCH, today=date(2026, 5, 2))
    before = {k: (r.signed, r.accuracy, r.closed_at) for k, r in frozen(a, MARCH).items()}
    won(a, a.rep, "1000000", local(a.tenant, 2026, 3, 20, 9, 0))
    with tenant_context(a.tenant):
        assert forecast.close(a.tenant, MARCH, today=date(2026, 5, 2)) == 0
    assert {k: (r.signed, r.accuracy, r.closed_at) for k, r in frozen(a, MARCH).items()} == before


def test_a_month_is_closed_only_after_it_ends_and_only_if_frozen(world):
    build_march(world)
    tenant = world.a.tenant
    with tenant_context(tenant):
        assert forecast.close(tenant, MARCH, today=date(2026, 4, 1)) == 0  # never frozen
        assert not ForecastMonth.objects.exists()
        forecast.freeze(tenant, MARCH)
        with pytest.raises(ValueError):
            forecast.close(tenant, MARCH, today=date(2026, 3, 31))


def test_close_ended_catches_up_every_frozen_month_before_today(world):
    build_march(world)
    tenant = world.a.tenant
    with tenant_context(tenant):
        for month in (date(2026, 2, 1), MARCH, APRIL):
            forecast.freeze(tenant, month)
        assert forecast.close_ended(tenant, date(2026, 4, 9)) == [date(2026, 2, 1), MARCH]
        assert forecast.close_ended(tenant, date(2026, 4, 10)) == []
        open_months = ForecastMonth.objects.filter(closed_at__isnull=True)
        assert set(open_months.values_list("month", flat=True)) == {APRIL}


def test_the_live_forecast_adds_up_the_open_ones_by_owner_and_month(world):
    m = build_march(world)
    a = m.side
    with tenant_context(a.tenant):
        live = forecast.live(Opportunity.objects.all(), MARCH, months=2)
        mine = forecast.live(Opportunity.objects.filter(owner=a.rep), MARCH, months=2)
    expected = recount_forecast(a, MARCH)
    assert live.months == [MARCH, APRIL]
    team = live.team[MARCH]
    assert (team.forecast.quantize(CENT), team.valid.quantize(CENT), team.count) == expected[None]
    rep = live.by_owner[a.rep.pk][MARCH]
    assert (rep.forecast.quantize(CENT), rep.count) == (expected[a.rep.pk][0], 4)
    assert live.team[APRIL].forecast == Decimal("899999.1")
    assert set(mine.by_owner) == {a.rep.pk}
    assert mine.team[MARCH].count == 4


def test_month_bounds_are_the_tenants_local_month(world):
    since, until = forecast.month_bounds(world.a.tenant, date(2026, 12, 1))
    assert since == local(world.a.tenant, 2026, 12, 1)
    assert until == local(world.a.tenant, 2027, 1, 1)
    assert forecast.add_months(date(2026, 1, 1), -13) == date(2024, 12, 1)
