"""The stage calibration (opportunities.calibration) against a history computed by hand.

The history is written as the product writes it: opportunities inserted and moved by
queryset updates, so the triggers of migration 0002 record the `created` and `stage`
entries (dated by `stage_entered_at`) and the closes (dated by won_at / lost_at).

The default stages rank contact < needs < demo < negotiation < contract. In tenant a,
closed within the last 12 months:

| group | path (stages entered)                 | outcome | n | highest reached |
| ----- | ------------------------------------- | ------- | - | --------------- |
| A     | contact                               | lost    | 6 | contact         |
| B     | contact → needs                       | lost    | 4 | needs           |
| C     | contact → demo (needs skipped)        | lost    | 6 | demo            |
| D     | contact → negotiation → needs (back)  | lost    | 6 | negotiation     |
| E     | contact → needs → demo                | won     | 5 | every stage     |
| F     | contact → … → contract                | won     | 2 | every stage     |

(one of A opened 14 months ago: its close is in the window, so it counts), so (a won one
has passed every stage: winning checks them all):

| stage       | cases                 | won | probability                   |
| ----------- | --------------------- | --- | ----------------------------- |
| contact     | 6+4+6+6+7 = 29        | 7   | 7/29 = 24.1 → 24 %            |
| needs       | 4+6+6+7 = 23          | 7   | 7/23 = 30.43 → 30 %           |
| demo        | 6+6+7 = 19            | 7   | 19 < 20: the default, 45 %    |
| negotiation | 6+7 = 13              | 7   | the default, 70 %             |
| contract    | 7                     | 7   | the default, 90 %             |

Closed more than 12 months ago, not counted: 4 lost at negotiation and 3 won.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from crm.tenancy import tenant_context
from opportunities import calibration, services
from opportunities.models import (
    Opportunity,
    OpportunityEvent,
    OpportunityStatus,
    Stage,
    StageCalibration,
)
from opportunities.setup import ensure_defaults
from tests.opportunities.helpers import make_customer

pytestmark = pytest.mark.django_db

ORDER = ["contact", "needs", "demo", "negotiation", "contract"]


def record(side, customer, path, outcome, closed_days_ago, *, created_days_ago=None):
    """An opportunity that entered the stages of `path` one day apart and closed (`won`,
    `lost`) or not (None) `closed_days_ago` days ago."""
    now = timezone.now()
    closed = now - timedelta(days=closed_days_ago)
    created = now - timedelta(days=created_days_ago or closed_days_ago + 30)
    with tenant_context(side.tenant):
        stages = {s.code: s for s in Stage.objects.all()}
        opp = Opportunity.objects.create(
            tenant=side.tenant,
            name=f"{'-'.join(path)} {outcome}",
            customer=customer,
            owner=side.rep,
            stage=stages[path[0]],
            probability=stages[path[0]].default_probability,
            amount=Decimal("100000"),
            created_at=created,
            stage_entered_at=created,
            last_activity_at=created,
        )
        moves = Opportunity.objects.filter(pk=opp.pk)
        for step, code in enumerate(path[1:], 1):
            moves.update(
                stage=stages[code],
                probability=stages[code].default_probability,
                stage_entered_at=created + timedelta(days=step),
            )
        if outcome == "won":
            moves.update(status=OpportunityStatus.WON, won_at=closed, probability=100)
        elif outcome == "lost":
            moves.update(status=OpportunityStatus.LOST, lost_at=closed, probability=0)
        opp.refresh_from_db()
    return opp


def build_history(side):
    with tenant_context(side.tenant):
        ensure_defaults()
    customer = make_customer(side)
    groups = [
        (["contact"], "lost", 5),
        (["contact", "needs"], "lost", 4),
        (["contact", "demo"], "lost", 6),
        (["contact", "negotiation", "needs"], "lost", 6),
        (["contact", "needs", "demo"], "won", 5),
        (ORDER, "won", 2),
    ]
    for path, outcome, n in groups:
        for i in range(n):
            record(side, customer, path, outcome, closed_days_ago=10 + 11 * i)
    # Opened 14 months ago, lost 2 months ago: counts (the close is in the window).
    record(side, customer, ["contact"], "lost", 60, created_days_ago=430)
    # Closed 13 months ago: outside the window.
    for _ in range(4):
        record(side, customer, ["contact", "needs", "demo", "negotiation"], "lost", 400)
    for _ in range(3):
        record(side, customer, ORDER, "won", 395)
    # Still open: not a case; their probability follows the calibration.
    opens = {
        code: record(side, customer, ORDER[: ORDER.index(code) + 1], None, 0)
        for code in ("contact", "needs", "demo")
    }
    return customer, opens


def calibrations(side) -> dict[str, tuple[int, int, int, bool]]:
    with tenant_context(side.tenant):
        return {
            c.stage.code: (c.cases, c.won, c.probability, c.calibrated)
            for c in StageCalibration.objects.select_related("stage")
        }


EXPECTED = {
    "contact": (29, 7, 24, True),  # 7 / 29 = 24.1 %
    "needs": (23, 7, 30, True),  # 7 / 23 = 30.4 %
    "demo": (19, 7, 45, False),  # 19 < 20: the default
    "negotiation": (13, 7, 70, False),
    "contract": (7, 7, 90, False),
}


def test_calibration_matches_the_hand_computed_history(world):
    build_history(world.a)
    with tenant_context(world.a.tenant):
        result = calibration.recalibrate(world.a.tenant)
    assert calibrations(world.a) == EXPECTED
    assert (result.stages, result.calibrated) == (5, 2)
    today = timezone.localdate(timezone=world.a.tenant.tzinfo)
    assert result.window_start == calibration.months_before(today, 12)
    with tenant_context(world.a.tenant):
        assert set(StageCalibration.objects.values_list("window_start", flat=True)) == {
            result.window_start
        }


def test_a_move_takes_the_calibrated_probability_and_open_ones_are_brought_to_it(world):
    _customer, opens = build_history(world.a)
    with tenant_context(world.a.tenant):
        events = OpportunityEvent.objects.count()
        result = calibration.recalibrate(world.a.tenant)
        probabilities = dict(
            Opportunity.objects.filter(pk__in=[o.pk for o in opens.values()]).values_list(
                "stage__code", "probability"
            )
        )
        # The contact one went 10 → 24, the needs one 25 → 30; demo keeps its default.
        assert result.refreshed == 2
        assert probabilities == {"contact": 24, "needs": 30, "demo": 45}
        # A probability alone writes no history entry.
        assert OpportunityEvent.objects.count() == events
        assert services.stage_probability(Stage.objects.get(code="needs")) == 30
        assert services.stage_probability(Stage.objects.get(code="demo")) == 45
        # Closed ones keep theirs.
        assert set(
            Opportunity.objects.filter(status=OpportunityStatus.WON).values_list(
                "probability", flat=True
            )
        ) == {100}


def test_running_it_again_changes_nothing(world):
    build_history(world.a)
    with tenant_context(world.a.tenant):
        calibration.recalibrate(world.a.tenant)
        ids = set(StageCalibration.objects.values_list("pk", flat=True))
        again = calibration.recalibrate(world.a.tenant)
        assert set(StageCalibration.objects.values_list("pk", flat=True)) == ids
    assert again.refreshed == 0
    assert calibrations(world.a) == EXPECTED


def test_one_more_won_case_calibrates_the_stage_at_19(world):
    customer, _opens = build_history(world.a)
    record(world.a, customer, ORDER, "won", 20)
    with tenant_context(world.a.tenant):
        calibration.recalibrate(world.a.tenant)
    found = calibrations(world.a)
    assert found["demo"] == (20, 8, 40, True)  # 8 / 20
    assert found["contract"] == (8, 8, 90, False)


def test_a_tenant_sees_only_its_own_history(world):
    build_history(world.a)
    customer_b = make_customer(world.b, name="乙方客户")
    with tenant_context(world.b.tenant):
        ensure_defaults()
    for i in range(21):
        record(world.b, customer_b, ["contact"], "lost" if i % 3 else "won", 5 + i)
    with tenant_context(world.a.tenant):
        calibration.recalibrate(world.a.tenant)
    with tenant_context(world.b.tenant):
        calibration.recalibrate(world.b.tenant)
    assert calibrations(world.a) == EXPECTED
    # b: 21 cases everywhere (7 won, through every stage; 14 lost at contact).
    assert calibrations(world.b)["contact"] == (21, 7, 33, True)
    assert calibrations(world.b)["needs"] == (7, 7, 25, False)


def test_no_closed_history_keeps_every_default(world):
    with tenant_context(world.a.tenant):
        ensure_defaults()
        result = calibration.recalibrate(world.a.tenant)
    assert result.calibrated == 0
    assert calibrations(world.a) == {
        "contact": (0, 0, 10, False),
        "needs": (0, 0, 25, False),
        "demo": (0, 0, 45, False),
        "negotiation": (0, 0, 70, False),
        "contract": (0, 0, 90, False),
    }


def test_an_inactive_stage_gets_no_calibration_but_still_ranks(world):
    _customer, _opens = build_history(world.a)
    with tenant_context(world.a.tenant):
        Stage.objects.filter(code="negotiation").update(is_active=False)
        calibration.recalibrate(world.a.tenant)
    found = calibrations(world.a)
    assert "negotiation" not in found
    assert found["contract"] == EXPECTED["contract"]


def test_the_window_is_twelve_months_of_the_tenants_days():
    assert calibration.months_before(date(2026, 3, 31), 12) == date(2025, 3, 31)
    assert calibration.months_before(date(2024, 2, 29), 12) == date(2023, 2, 28)
    assert calibration.months_before(date(2026, 1, 15), 1) == date(2025, 12, 15)
