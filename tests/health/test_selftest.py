"""Customer health's self-test indicator (health/selftest.py): at least one action a month
triggered by a customer's signals, a retention task of the risk list done. Passed and
failed by rows built here, recounted by hand, no data without risk-list entries; tenant
b's rows are never counted.

The day is TODAY (Monday 16 March 2026) of tenant a; the window 14 February – 15 March."""

from __future__ import annotations

from datetime import date

import pytest

from crm import selftest
from crm.tenancy import tenant_context
from health.models import RiskEntry
from tests.crm.selftest_helpers import customer, local, outcome
from tests.crm.selftest_helpers import owners as owners_of

pytestmark = pytest.mark.django_db


def entry(side, name, entered_on, *, owner=None, done_at=None):
    cust = customer(side, name, owner=owner or side.rep)
    with tenant_context(side.tenant):
        return RiskEntry.objects.create(
            tenant=side.tenant,
            customer=cust,
            owner=cust.owner,
            entered_on=entered_on,
            score=42,
            action="定制化技术方案 + 限时服务响应承诺",
            done_at=done_at,
        )


def build_entries(world, *, done_in_window: int):
    """Three customers put on the risk list in the window (the first on its first day, the
    last on its last), `done_in_window` of their tasks done; one entered the day before the
    window with its task done, and tenant b's done one, are not counted."""
    a, t = world.a, world.a.tenant
    days = (date(2026, 2, 14), date(2026, 3, 1), date(2026, 3, 15))
    for i, day in enumerate(days):
        done = local(t, 2026, 3, 15, 18) if i < done_in_window else None
        entry(a, f"风险客户{i}", day, owner=a.manager if i == 2 else a.rep, done_at=done)
    entry(a, "更早的风险客户", date(2026, 2, 13), done_at=local(t, 2026, 2, 14, 9))
    b = world.b
    entry(b, "乙方风险客户", date(2026, 3, 1), done_at=local(b.tenant, 2026, 3, 2, 9))


def test_signal_actions_pass_with_one_task_done_in_the_month(world):
    build_entries(world, done_in_window=1)
    found = outcome(world.a, "signal_actions")
    assert (found.result.numerator_value, found.result.denominator_value) == (1, 3)
    assert found.result.value == 1
    assert found.status == selftest.PASSED


def test_signal_actions_fail_with_none_done_and_name_the_owners(world):
    build_entries(world, done_in_window=0)
    found = outcome(world.a, "signal_actions")
    assert (found.result.numerator_value, found.result.denominator_value) == (0, 3)
    assert found.status == selftest.FAILED
    assert found.result.failing_value == 3
    assert owners_of(found) == [
        (world.a.rep.user.username, 2),
        (world.a.manager.user.username, 1),
    ]


def test_signal_actions_without_risk_entries_have_no_data(world):
    entry(world.a, "更早的风险客户", date(2026, 2, 13))
    assert outcome(world.a, "signal_actions").status == selftest.NO_DATA
