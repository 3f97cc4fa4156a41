"""What the SLA tests share (test_sla_thresholds and test_sla_sweeps): a frozen clock,
the events registered, a sweep of one tenant, what it fired and told, the policy, and the
fixtures `a` (tenant a's side) and `channel`.

Every sweep gets `now=` explicitly; the leads' clocks (created_at, assigned_at,
first_touch_at …) are set directly.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from crm.models import Notification
from crm.tenancy import tenant_context
from leads.assignment import sla
from leads.models import Lead, SlaAlert, SlaPolicy, SlaThreshold, SourceGrade
from tests.leads.factories import make_channel, make_lead

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)

A_UNASSIGNED = SlaThreshold.A_UNASSIGNED
UNASSIGNED = SlaThreshold.UNASSIGNED
UNVERIFIED_REP = SlaThreshold.UNVERIFIED_REP
UNVERIFIED_MGR = SlaThreshold.UNVERIFIED_MANAGER
NO_FOLLOWUP = SlaThreshold.NO_FOLLOWUP
NO_SECOND_TOUCH = SlaThreshold.NO_SECOND_TOUCH


@pytest.fixture(autouse=True)
def _events():
    """The lead engineer registers these from LeadsConfig.ready(); both are idempotent."""
    from leads import notifications

    notifications.register()
    sla.register()


# --- helpers ---------------------------------------------------------------------------------


def sweep(tenant, now) -> dict[str, int]:
    with tenant_context(tenant):
        return sla.sla_sweep(now)


def fired(tenant, threshold=None) -> list[tuple[int, str, int]]:
    """(lead id, threshold, round) of every alert of the tenant, sorted."""
    with tenant_context(tenant):
        rows = SlaAlert.objects.all()
        if threshold:
            rows = rows.filter(threshold=threshold)
        return sorted(rows.values_list("lead_id", "threshold", "round"))


def told(tenant, event) -> list[tuple[int, str]]:
    """(recipient id, link) of every notification of `event` in the tenant, sorted."""
    with tenant_context(tenant):
        return sorted(Notification.objects.filter(event=event).values_list("recipient_id", "link"))


def link(lead) -> str:
    return f"/leads/{lead.public_id}/"


def only(counts: dict, **expected) -> dict:
    """The full count dict of a sweep that fired exactly `expected`."""
    return {**dict.fromkeys(SlaThreshold.values, 0), **expected}


def set_policy(tenant, **fields) -> SlaPolicy:
    with tenant_context(tenant):
        policy = sla.sla_policy()
        for name, value in fields.items():
            setattr(policy, name, value)
        policy.save()
        return policy


def reload(tenant, lead) -> Lead:
    with tenant_context(tenant):
        return Lead.objects.select_related("owner").get(pk=lead.pk)


@pytest.fixture(name="a")
def side_a(world):
    return world.a


@pytest.fixture(name="channel")
def channel_fixture(a):
    return make_channel(a.tenant)


def unassigned_lead(side, channel, at, grade=SourceGrade.B, **fields) -> Lead:
    return make_lead(side.tenant, channel=channel, created_at=at, source_grade=grade, **fields)
