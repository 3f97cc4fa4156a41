"""The opportunities app's self-test indicators (opportunities/selftest.py): the stage
update lag of open opportunities, and last month's forecast deviation. Each is passed and
failed by rows built here (the forecast frozen and closed by opportunities.forecast itself),
recounted by hand, and shown as no data when the tenant has none; tenant b's rows are
never counted.

The day is TODAY (Monday 16 March 2026) of tenant a: the lag is measured at 16 March 00:00
local, the forecast is February's."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from crm import selftest
from crm.tenancy import tenant_context
from opportunities import forecast
from opportunities.models import Opportunity, OpportunityStatus, Stage
from opportunities.setup import ensure_defaults
from tests.crm.selftest_helpers import TODAY, local, outcome
from tests.crm.selftest_helpers import owners as owners_of
from tests.opportunities.helpers import make_customer
from tests.opportunities.test_forecast import opportunity

pytestmark = pytest.mark.django_db

MEASURED_AT = (2026, 3, 16, 0, 0)


# -- 2. stage update lag -------------------------------------------------------------------------


def in_stage(side, owner, stage, since, **fields):
    """An opportunity in `stage` since `since`, written as it is stored."""
    with tenant_context(side.tenant):
        customer = side.extra.get("customer")
        if customer is None:
            customer = side.extra["customer"] = make_customer(side, name="恒力液压")
        fields.setdefault("created_at", local(side.tenant, 2026, 1, 5, 9))
        return Opportunity.objects.create(
            tenant=side.tenant,
            name="液压机改造",
            customer=customer,
            owner=owner,
            stage=stage,
            probability=stage.default_probability,
            stage_entered_at=since,
            **fields,
        )


def stages(side) -> tuple[Stage, Stage]:
    """The tenant's first two stages, given 14 and 30 days to stall."""
    with tenant_context(side.tenant):
        ensure_defaults()
        first, second = Stage.objects.order_by("position")[:2]
        Stage.objects.filter(pk=first.pk).update(days_to_stall=14)
        Stage.objects.filter(pk=second.pk).update(days_to_stall=30)
        first.refresh_from_db()
        second.refresh_from_db()
        return first, second


def build_lag(world, *, lagging_first_stage: bool):
    """Open and in time: 5 six days in the first stage, 1 exactly its 14 days, 1 24 days in
    the second (30 allowed). Lagging: 1 43 days in the second stage (the manager's) and,
    with `lagging_first_stage`, 1 14 days and a minute in the first (the rep's). Closed
    ones, one opened today and tenant b's are not counted."""
    a, t = world.a, world.a.tenant
    first, second = stages(a)
    end = local(t, *MEASURED_AT)
    for _ in range(5):
        in_stage(a, a.rep, first, end - timedelta(days=6))
    in_stage(a, a.rep, first, end - timedelta(days=14))
    in_stage(a, a.rep, second, end - timedelta(days=24))
    in_stage(a, a.manager, second, end - timedelta(days=43))
    if lagging_first_stage:
        in_stage(a, a.rep, first, end - timedelta(days=14, minutes=1))
    old = end - timedelta(days=200)
    in_stage(a, a.rep, first, old, status=OpportunityStatus.WON, won_at=old)
    in_stage(a, a.rep, first, old, status=OpportunityStatus.LOST, lost_at=old)
    in_stage(a, a.rep, first, old, created_at=local(t, 2026, 3, 16, 8))
    b_first, _b_second = stages(world.b)
    in_stage(world.b, world.b.rep, b_first, old)


def test_stage_lag_passes_under_15_percent(world):
    build_lag(world, lagging_first_stage=False)
    found = outcome(world.a, "stage_lag")
    assert (found.result.numerator_value, found.result.denominator_value) == (1, 8)
    assert found.result.value == 1 / 8
    assert found.status == selftest.PASSED


def test_stage_lag_fails_at_15_percent_or_more_and_names_the_owners(world):
    build_lag(world, lagging_first_stage=True)
    found = outcome(world.a, "stage_lag")
    assert (found.result.numerator_value, found.result.denominator_value) == (2, 9)
    assert found.status == selftest.FAILED
    assert found.result.failing == "selftest.stage_lagging"
    assert sorted(owners_of(found)) == [
        (world.a.manager.user.username, 1),
        (world.a.rep.user.username, 1),
    ]


def test_stage_lag_without_open_opportunities_has_no_data(world):
    first, _second = stages(world.a)
    old = local(world.a.tenant, 2025, 6, 1, 9)
    in_stage(world.a, world.a.rep, first, old, status=OpportunityStatus.WON, won_at=old)
    assert outcome(world.a, "stage_lag").status == selftest.NO_DATA


# -- 6. forecast deviation -------------------------------------------------------------------------

FEBRUARY = date(2026, 2, 1)


def build_february(world, *, rep_amount: str) -> tuple[Decimal, Decimal]:
    """February's forecast frozen on its first day and closed after it, by the forecast's
    own functions: the rep expects `rep_amount` at 50 % and signs 95,000; the manager
    expects 100,000 at 50 % and signs 60,000. Returns the forecast and what was signed,
    added up here. January's rows, March's (not closed) and tenant b's are not counted."""
    a, t = world.a, world.a.tenant
    rep_deal = opportunity(a, a.rep, amount=rep_amount, probability=50, month=FEBRUARY)
    manager_deal = opportunity(a, a.manager, amount="100000", probability=50, month=FEBRUARY)
    with tenant_context(t):
        forecast.freeze(t, FEBRUARY, now=local(t, 2026, 2, 1, 2))
        for deal, signed in ((rep_deal, "95000"), (manager_deal, "60000")):
            Opportunity.objects.filter(pk=deal.pk).update(
                status=OpportunityStatus.WON,
                won_at=local(t, 2026, 2, 20, 15),
                amount=Decimal(signed),
            )
        forecast.close(t, FEBRUARY, today=TODAY)
        # March is frozen, not closed: not last month, and not closed anyway.
        opportunity(a, a.rep, amount="999999", probability=90, month=date(2026, 3, 1))
        forecast.freeze(t, date(2026, 3, 1), now=local(t, 2026, 3, 1, 2))
    b = world.b
    opportunity(b, b.rep, amount="500000", probability=50, month=FEBRUARY)
    with tenant_context(b.tenant):
        forecast.freeze(b.tenant, FEBRUARY, now=local(b.tenant, 2026, 2, 1, 2))
        forecast.close(b.tenant, FEBRUARY, today=TODAY)
    expected = Decimal(rep_amount) / 2 + Decimal("50000")
    return expected, Decimal("155000")


def test_forecast_passes_under_12_percent_deviation(world):
    frozen, signed = build_february(world, rep_amount="200000")
    found = outcome(world.a, "forecast")
    assert (found.result.numerator_value, found.result.denominator_value) == (frozen, signed)
    assert (found.result.start, found.result.end) == (FEBRUARY, date(2026, 2, 28))
    assert found.result.value == pytest.approx(float(abs(frozen - signed) / signed))
    assert found.result.value < 0.12
    assert found.status == selftest.PASSED
    # The manager's own forecast was off (50,000 for 60,000 signed), the team's was not.
    assert found.result.failing_value == 1


def test_forecast_fails_at_12_percent_or_more_and_names_the_reps(world):
    frozen, signed = build_february(world, rep_amount="400000")
    found = outcome(world.a, "forecast")
    assert (found.result.numerator_value, found.result.denominator_value) == (frozen, signed)
    assert found.result.value == pytest.approx(float((frozen - signed) / signed))
    assert found.status == selftest.FAILED
    assert sorted(owners_of(found)) == [
        (world.a.manager.user.username, 1),
        (world.a.rep.user.username, 1),
    ]


def test_forecast_without_a_closed_month_has_no_data(world):
    opportunity(world.a, world.a.rep, amount="100000", probability=50, month=FEBRUARY)
    with tenant_context(world.a.tenant):
        forecast.freeze(world.a.tenant, FEBRUARY, now=local(world.a.tenant, 2026, 2, 1, 2))
    found = outcome(world.a, "forecast")
    assert found.status == selftest.NO_DATA
