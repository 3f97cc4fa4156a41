"""SLA clocks (F11) and the return to the pool (F13): leads.assignment.sla.sla_sweep on a
frozen clock.

Every sweep gets `now=` explicitly; the leads' clocks (created_at, assigned_at,
first_touch_at …) are set directly. Concurrency is proven on real PostgreSQL connections,
and the beat path through a real Celery worker.
"""

from __future__ import annotations

import io
import json
import threading
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from crm.models import Notification
from crm.tenancy import tenant_context
from leads.assignment import sla
from leads.assignment.dispatch import lead_reassign
from leads.models import (
    AssignmentDecision,
    DecisionKind,
    Lead,
    LeadEvent,
    LeadEventKind,
    LeadStatus,
    PoolReason,
    RepProfile,
    SlaAlert,
    SlaPolicy,
    SlaThreshold,
    SourceGrade,
)
from tests.conftest import wait_for
from tests.leads.factories import make_assigned_lead, make_channel, make_lead, make_rep

pytestmark = pytest.mark.django_db

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


@pytest.fixture
def a(world):
    return world.a


@pytest.fixture
def channel(a):
    return make_channel(a.tenant)


def unassigned_lead(side, channel, at, grade=SourceGrade.B, **fields) -> Lead:
    return make_lead(side.tenant, channel=channel, created_at=at, source_grade=grade, **fields)


def test_the_link_helper_matches_the_lead_page(a, channel):
    from django.urls import reverse

    lead = unassigned_lead(a, channel, T0)
    assert reverse("leads:detail", args=[lead.public_id]) == link(lead)


# --- the policy ------------------------------------------------------------------------------


def test_the_policy_is_created_with_the_defaults_on_first_use(a, world):
    with tenant_context(a.tenant):
        assert not SlaPolicy.objects.exists()
        policy = sla.sla_policy()
        assert sla.sla_policy().pk == policy.pk
        assert SlaPolicy.objects.count() == 1
    assert (
        policy.a_unassigned_minutes,
        policy.unassigned_minutes,
        policy.unverified_hours,
        policy.unverified_escalation_hours,
        policy.no_followup_hours,
        policy.second_touch_hours,
        policy.is_active,
    ) == (30, 120, 24, 8, 72, 72, True)
    with tenant_context(world.b.tenant):
        assert not SlaPolicy.objects.exists()


# --- unassigned ------------------------------------------------------------------------------


def test_unassigned_thresholds_fire_at_their_boundary_and_not_a_minute_before(a, channel):
    lead_a = unassigned_lead(a, channel, T0, grade=SourceGrade.A)
    lead_b = unassigned_lead(a, channel, T0)

    assert sweep(a.tenant, T0 + 30 * MINUTE - MINUTE) == only({})
    assert fired(a.tenant) == []

    assert sweep(a.tenant, T0 + 30 * MINUTE) == only({}, a_unassigned=1)
    assert fired(a.tenant) == [(lead_a.pk, A_UNASSIGNED, 0)]
    assert told(a.tenant, "sla.a_unassigned") == [(a.manager.pk, link(lead_a))]

    assert sweep(a.tenant, T0 + 120 * MINUTE - MINUTE) == only({})
    assert sweep(a.tenant, T0 + 120 * MINUTE) == only({}, unassigned=2)
    assert fired(a.tenant, UNASSIGNED) == sorted(
        [(lead_a.pk, UNASSIGNED, 0), (lead_b.pk, UNASSIGNED, 0)]
    )
    assert told(a.tenant, "sla.unassigned") == sorted(
        [(a.manager.pk, link(lead_a)), (a.manager.pk, link(lead_b))]
    )
    # Managers only: the rep and the admin (not a sales manager) are not told.
    with tenant_context(a.tenant):
        assert set(Notification.objects.values_list("recipient_id", flat=True)) == {a.manager.pk}
        timeline = LeadEvent.objects.filter(lead=lead_a, kind=LeadEventKind.SLA)
        assert sorted(e.data["threshold"] for e in timeline) == ["a_unassigned", "unassigned"]
        assert {e.data["round"] for e in timeline} == {0}
        assert all(e.at == T0 + 30 * MINUTE or e.at == T0 + 120 * MINUTE for e in timeline)


def test_an_assigned_or_closed_lead_is_not_unassigned(a, channel):
    unassigned_lead(a, channel, T0, grade=SourceGrade.A, status=LeadStatus.INVALID)
    make_assigned_lead(a.tenant, a.rep, T0 + 10 * MINUTE, channel=channel, created_at=T0)
    assert sweep(a.tenant, T0 + 3 * HOUR) == only({})


def test_a_pooled_lead_is_measured_from_when_it_was_pooled(a, channel):
    pooled = T0 + 5 * HOUR
    lead = unassigned_lead(
        a,
        channel,
        T0,
        dispatch_round=1,
        pooled_at=pooled,
        pool_reason=PoolReason.NO_SECOND_TOUCH,
    )
    # Created long ago, but only in the pool since `pooled`: round 1's clock starts there.
    assert sweep(a.tenant, pooled + 120 * MINUTE - MINUTE) == only({})
    assert sweep(a.tenant, pooled + 120 * MINUTE) == only({}, unassigned=1)
    assert fired(a.tenant) == [(lead.pk, UNASSIGNED, 1)]
    with tenant_context(a.tenant):
        alert = SlaAlert.objects.get()
    assert isinstance(alert.public_id, uuid.UUID)
    assert (alert.owner_id, alert.fired_at) == (None, pooled + 120 * MINUTE)


def test_a_lead_pooled_for_want_of_a_rep_is_not_told_again(a, channel):
    """The engine pooled it and told the managers (lead.pooled): one notice per pooled
    lead, no "unassigned" alerts after it. A lead pooled because assignment failed was
    told to nobody: its alerts stay."""
    nobody = unassigned_lead(
        a, channel, T0, grade=SourceGrade.A, pooled_at=T0, pool_reason=PoolReason.NO_CANDIDATE
    )
    failed = unassigned_lead(
        a, channel, T0, grade=SourceGrade.A, pooled_at=T0, pool_reason=PoolReason.FAILED
    )
    assert sweep(a.tenant, T0 + 3 * HOUR) == only({}, a_unassigned=1, unassigned=1)
    assert {lead_id for lead_id, _t, _r in fired(a.tenant)} == {failed.pk}
    assert nobody.pk not in {lead_id for lead_id, _t, _r in fired(a.tenant)}


def test_thresholds_are_per_tenant(a, world, channel):
    set_policy(a.tenant, a_unassigned_minutes=10, unassigned_minutes=45)
    lead = unassigned_lead(a, channel, T0, grade=SourceGrade.A)
    other = unassigned_lead(world.b, make_channel(world.b.tenant), T0, grade=SourceGrade.A)

    assert sweep(a.tenant, T0 + 9 * MINUTE) == only({})
    assert sweep(a.tenant, T0 + 10 * MINUTE) == only({}, a_unassigned=1)
    assert sweep(a.tenant, T0 + 44 * MINUTE) == only({})
    assert sweep(a.tenant, T0 + 45 * MINUTE) == only({}, unassigned=1)
    assert fired(a.tenant) == sorted([(lead.pk, A_UNASSIGNED, 0), (lead.pk, UNASSIGNED, 0)])
    # Tenant b keeps the defaults.
    assert sweep(world.b.tenant, T0 + 29 * MINUTE) == only({})
    assert sweep(world.b.tenant, T0 + 30 * MINUTE) == only({}, a_unassigned=1)
    assert fired(world.b.tenant) == [(other.pk, A_UNASSIGNED, 0)]


# --- assigned, not verified ------------------------------------------------------------------


def test_the_rep_is_reminded_first_and_the_manager_told_after_the_escalation(a, channel):
    lead = make_assigned_lead(a.tenant, a.rep, T0, channel=channel)
    remind = T0 + 24 * HOUR

    assert sweep(a.tenant, remind - MINUTE) == only({})
    assert sweep(a.tenant, remind) == only({}, unverified_rep=1)
    assert fired(a.tenant) == [(lead.pk, UNVERIFIED_REP, 1)]
    assert told(a.tenant, "sla.unverified_rep") == [(a.rep.pk, link(lead))]
    assert told(a.tenant, "sla.unverified_manager") == []

    assert sweep(a.tenant, remind + 8 * HOUR - MINUTE) == only({})
    assert sweep(a.tenant, remind + 8 * HOUR) == only({}, unverified_mgr=1)
    assert told(a.tenant, "sla.unverified_manager") == [(a.manager.pk, link(lead))]
    assert told(a.tenant, "sla.unverified_rep") == [(a.rep.pk, link(lead))]
    with tenant_context(a.tenant):
        order = list(SlaAlert.objects.order_by("fired_at").values_list("threshold", "fired_at"))
        note = Notification.objects.get(event="sla.unverified_manager")
    assert order == [(UNVERIFIED_REP, remind), (UNVERIFIED_MGR, remind + 8 * HOUR)]
    assert note.params == {"lead": str(lead), "hours": 32, "rep": a.rep.display_name}


def test_after_an_outage_the_escalation_still_waits_for_the_reminder(a, channel):
    """Beat was down for two days: the first sweep reminds the rep only; the manager hears
    of it `unverified_escalation_hours` later, never before the rep."""
    set_policy(a.tenant, unverified_hours=4, unverified_escalation_hours=2)
    lead = make_assigned_lead(a.tenant, a.rep, T0, channel=channel)
    back = T0 + 48 * HOUR
    assert sweep(a.tenant, back) == only({}, unverified_rep=1)
    assert sweep(a.tenant, back + 2 * HOUR - MINUTE) == only({})
    assert sweep(a.tenant, back + 2 * HOUR) == only({}, unverified_mgr=1)
    assert fired(a.tenant) == sorted([(lead.pk, UNVERIFIED_REP, 1), (lead.pk, UNVERIFIED_MGR, 1)])


def test_the_reminder_marks_an_untouched_lead_late_once(a, channel):
    untouched = make_assigned_lead(a.tenant, a.rep, T0, channel=channel)
    touched = make_assigned_lead(
        a.tenant,
        a.rep,
        T0,
        channel=channel,
        first_touch_at=T0 + HOUR,
        last_touch_at=T0 + HOUR,
        touch_count=1,
        first_touch_late=False,
    )
    assert sweep(a.tenant, T0 + 24 * HOUR) == only({}, unverified_rep=2)
    assert reload(a.tenant, untouched).first_touch_late is True
    assert reload(a.tenant, touched).first_touch_late is False
    sweep(a.tenant, T0 + 40 * HOUR)
    with tenant_context(a.tenant):
        assert RepProfile.objects.get(membership=a.rep).late_streak == 1


def test_a_verified_lead_stops_the_unverified_clock(a, channel):
    lead = make_assigned_lead(a.tenant, a.rep, T0, channel=channel)
    assert sweep(a.tenant, T0 + 24 * HOUR) == only({}, unverified_rep=1)
    with tenant_context(a.tenant):
        Lead.objects.filter(pk=lead.pk).update(status=LeadStatus.VALID, verified_at=T0 + 25 * HOUR)
    assert sweep(a.tenant, T0 + 40 * HOUR) == only({})


def test_a_new_dispatch_round_re_arms_the_owner_clocks(a, channel):
    rep2 = make_rep(a.tenant, "alpha-rep2")
    lead = make_assigned_lead(a.tenant, a.rep, T0, channel=channel)
    assert sweep(a.tenant, T0 + 24 * HOUR) == only({}, unverified_rep=1)

    handed = T0 + 30 * HOUR
    with tenant_context(a.tenant):
        lead = Lead.objects.select_related("channel", "tenant", "owner").get(pk=lead.pk)
        lead_reassign(
            tenant=a.tenant,
            acting_member=a.manager,
            lead=lead,
            to=rep2,
            reason="客户要求",
            now=handed,
        )
    assert reload(a.tenant, lead).dispatch_round == 2

    # Round 1's escalation is moot (the round changed); round 2's clock starts at the hand-over.
    assert sweep(a.tenant, handed + 24 * HOUR - MINUTE) == only({})
    assert sweep(a.tenant, handed + 24 * HOUR) == only({}, unverified_rep=1)
    assert fired(a.tenant) == sorted([(lead.pk, UNVERIFIED_REP, 1), (lead.pk, UNVERIFIED_REP, 2)])
    assert told(a.tenant, "sla.unverified_rep") == sorted(
        [(a.rep.pk, link(lead)), (rep2.pk, link(lead))]
    )
    with tenant_context(a.tenant):
        alert = SlaAlert.objects.get(round=2)
    assert alert.owner_id == rep2.pk


# --- valid lead without follow-up -----------------------------------------------------------


def test_a_valid_lead_without_follow_up_tells_the_rep_and_the_managers(a, channel):
    verified = T0 + 2 * HOUR
    touched_before = dict(
        first_touch_at=T0 + HOUR, last_touch_at=T0 + HOUR, touch_count=2, first_touch_late=False
    )
    idle = make_assigned_lead(
        a.tenant,
        a.rep,
        T0,
        channel=channel,
        status=LeadStatus.VALID,
        verified_at=verified,
        **touched_before,
    )
    never_touched = make_assigned_lead(
        a.tenant, a.rep, T0, channel=channel, status=LeadStatus.VALID, verified_at=verified
    )
    followed = make_assigned_lead(
        a.tenant,
        a.rep,
        T0,
        channel=channel,
        status=LeadStatus.VALID,
        verified_at=verified,
        **{**touched_before, "last_touch_at": verified + HOUR},
    )

    assert sweep(a.tenant, verified + 72 * HOUR - MINUTE) == only({})
    assert sweep(a.tenant, verified + 72 * HOUR) == only({}, no_followup=2)
    assert fired(a.tenant) == sorted(
        [(idle.pk, NO_FOLLOWUP, 1), (never_touched.pk, NO_FOLLOWUP, 1)]
    )
    assert told(a.tenant, "sla.no_followup") == sorted(
        [(who.pk, link(lead)) for who in (a.rep, a.manager) for lead in (idle, never_touched)]
    )
    assert followed.pk not in {lead_id for lead_id, _t, _r in fired(a.tenant)}
    assert sweep(a.tenant, verified + 200 * HOUR) == only({})


def test_a_valid_lead_with_its_next_step_scheduled_is_neither_returned_nor_alerted(a, channel):
    """Verified valid with a visit booked five days out, the verification its only touch:
    72 h later it is not returned to the pool and "no follow-up" is quiet. Once the visit
    day has passed without a follow-up, "no follow-up" tells; 72 h after that day the
    lead goes back to the pool."""
    from datetime import date
    from zoneinfo import ZoneInfo

    from leads.verification import lead_verify

    sh = ZoneInfo("Asia/Shanghai")
    make_rep(a.tenant, "alpha-rep2")  # somebody to return it to
    lead = make_assigned_lead(a.tenant, a.rep, T0, channel=channel)
    verified = T0 + HOUR  # Monday 2026-03-02, 10:00 in Shanghai
    with tenant_context(a.tenant):
        lead_verify(
            tenant=lead.tenant,
            acting_member=a.rep,
            lead=lead,
            outcome="valid_visit",
            visit_date=date(2026, 3, 7),
            now=verified,
        )
    lead = reload(a.tenant, lead)
    assert (lead.status, lead.touch_count) == (LeadStatus.VALID, 1)

    assert sweep(a.tenant, verified + 72 * HOUR) == only({})
    assert sweep(a.tenant, datetime(2026, 3, 7, 23, 59, tzinfo=sh)) == only({})
    assert reload(a.tenant, lead).owner_id == a.rep.pk
    # The visit day is over, nothing logged: the rep and the managers are told, once.
    assert sweep(a.tenant, datetime(2026, 3, 8, 9, 0, tzinfo=sh)) == only({}, no_followup=1)
    assert told(a.tenant, "sla.no_followup") == sorted(
        [(a.rep.pk, link(lead)), (a.manager.pk, link(lead))]
    )
    # 72 h after the visit day: back to the pool, and on to the other rep.
    assert sweep(a.tenant, datetime(2026, 3, 10, 23, 59, tzinfo=sh)) == only({})
    assert sweep(a.tenant, datetime(2026, 3, 11, 0, 0, tzinfo=sh)) == only({}, no_second_touch=1)
    assert reload(a.tenant, lead).owner_id != a.rep.pk


# --- no second touch: back to the pool (F13) -------------------------------------------------


def test_no_second_touch_returns_the_lead_and_re_dispatches_it_to_another_rep(a, channel):
    rep2 = make_rep(a.tenant, "alpha-rep2")
    first = T0 + HOUR
    lead = make_assigned_lead(
        a.tenant,
        a.rep,
        T0,
        channel=channel,
        status=LeadStatus.VALID,
        verified_at=first,
        first_touch_at=first,
        last_touch_at=first + MINUTE,  # followed up: no_followup stays quiet
        touch_count=1,
        first_touch_late=False,
    )
    assert sweep(a.tenant, first + 72 * HOUR - MINUTE) == only({})
    returned = first + 72 * HOUR
    assert sweep(a.tenant, returned) == only({}, no_second_touch=1)

    lead = reload(a.tenant, lead)
    assert (lead.owner_id, lead.status, lead.dispatch_round) == (
        rep2.pk,
        LeadStatus.ASSIGNED,
        2,
    )
    assert lead.assigned_at == returned
    assert fired(a.tenant) == [(lead.pk, NO_SECOND_TOUCH, 1)]
    with tenant_context(a.tenant):
        decisions = list(
            AssignmentDecision.objects.filter(lead=lead)
            .order_by("id")
            .values_list("kind", "outcome", "chosen_id", "previous_owner_id")
        )
        timeline = list(
            LeadEvent.objects.filter(lead=lead).order_by("id").values_list("kind", flat=True)
        )
    assert decisions[-1] == (DecisionKind.RETURN, "assigned", rep2.pk, a.rep.pk)
    assert timeline == [LeadEventKind.SLA, LeadEventKind.POOLED, LeadEventKind.ASSIGNED]
    # The previous owner and the managers hear of the return; the new owner of the lead.
    assert told(a.tenant, "lead.returned") == sorted(
        [(a.rep.pk, link(lead)), (a.manager.pk, link(lead))]
    )
    assert told(a.tenant, "lead.assigned") == [(rep2.pk, link(lead))]

    # The old touch belongs to round 1: round 2 is not returned again for it.
    assert sweep(a.tenant, returned + MINUTE)[NO_SECOND_TOUCH] == 0
    assert sweep(a.tenant, returned + 100 * HOUR)[NO_SECOND_TOUCH] == 0
    assert reload(a.tenant, lead).owner_id == rep2.pk


def _returned_alike(a, channel, **fields):
    """A valid lead whose verification was its only touch, 72 h ago at T0 + 73 h: both
    "no follow-up" and "no second touch" are due."""
    first = T0 + HOUR
    return make_assigned_lead(
        a.tenant,
        a.rep,
        T0,
        channel=channel,
        status=LeadStatus.VALID,
        verified_at=first,
        first_touch_at=first,
        last_touch_at=first,
        touch_count=1,
        first_touch_late=False,
        **fields,
    )


def test_a_returned_lead_is_told_to_the_managers_once(a, channel):
    make_rep(a.tenant, "alpha-rep2")
    lead = _returned_alike(a, channel)
    assert sweep(a.tenant, T0 + 73 * HOUR) == only({}, no_second_touch=1)
    with tenant_context(a.tenant):
        to_manager = list(
            Notification.objects.filter(recipient=a.manager, link=link(lead)).values_list(
                "event", flat=True
            )
        )
    assert to_manager == ["lead.returned"]
    assert reload(a.tenant, lead).owner_id not in (None, a.rep.pk)


def test_a_returned_lead_nobody_can_take_is_told_to_the_managers_once(a, channel):
    lead = _returned_alike(a, channel)  # no other rep: it stays in the pool
    assert sweep(a.tenant, T0 + 73 * HOUR) == only({}, no_second_touch=1)
    lead = reload(a.tenant, lead)
    assert (lead.owner_id, lead.pool_reason) == (None, PoolReason.NO_CANDIDATE)
    with tenant_context(a.tenant):
        to_manager = list(
            Notification.objects.filter(recipient=a.manager, link=link(lead)).values_list(
                "event", flat=True
            )
        )
        to_rep = list(
            Notification.objects.filter(recipient=a.rep, link=link(lead)).values_list(
                "event", flat=True
            )
        )
    assert to_manager == ["lead.pooled"]
    assert to_rep == ["lead.returned"]


def test_a_second_touch_keeps_the_lead(a, channel):
    make_rep(a.tenant, "alpha-rep2")
    lead = make_assigned_lead(
        a.tenant,
        a.rep,
        T0,
        channel=channel,
        first_touch_at=T0 + HOUR,
        last_touch_at=T0 + 2 * HOUR,
        touch_count=2,
        first_touch_late=False,
    )
    assert sweep(a.tenant, T0 + 100 * HOUR)[NO_SECOND_TOUCH] == 0
    assert reload(a.tenant, lead).owner_id == a.rep.pk


# --- off switch and isolation ----------------------------------------------------------------


def _every_threshold_due(side, channel) -> list[Lead]:
    """One lead past each threshold at T0 + 100 h."""
    tenant, rep = side.tenant, side.rep
    return [
        make_lead(tenant, channel=channel, created_at=T0, source_grade=SourceGrade.A),
        make_assigned_lead(tenant, rep, T0, channel=channel),
        make_assigned_lead(
            tenant, rep, T0, channel=channel, status=LeadStatus.VALID, verified_at=T0
        ),
        make_assigned_lead(
            tenant,
            rep,
            T0,
            channel=channel,
            first_touch_at=T0 + HOUR,
            last_touch_at=T0 + HOUR,
            touch_count=1,
            first_touch_late=False,
        ),
    ]


def test_an_inactive_policy_fires_nothing(a, channel):
    set_policy(a.tenant, is_active=False)
    leads = _every_threshold_due(a, channel)
    for hours in (1, 30, 40, 100):
        assert sweep(a.tenant, T0 + hours * HOUR) == only({})
    assert fired(a.tenant) == []
    with tenant_context(a.tenant):
        assert not Notification.objects.exists()
        assert not LeadEvent.objects.filter(kind=LeadEventKind.SLA).exists()
    assert reload(a.tenant, leads[3]).owner_id == a.rep.pk


def test_a_sweep_touches_only_its_own_tenant(a, world, channel):
    make_rep(a.tenant, "alpha-rep2")
    make_rep(world.b.tenant, "beta-rep2")
    ours = _every_threshold_due(a, channel)
    theirs = _every_threshold_due(world.b, make_channel(world.b.tenant))

    counts = sweep(a.tenant, T0 + 100 * HOUR)
    assert counts == only(
        {}, a_unassigned=1, unassigned=1, unverified_rep=2, no_followup=1, no_second_touch=1
    )
    assert {lead_id for lead_id, _t, _r in fired(a.tenant)} == {lead.pk for lead in ours}
    assert fired(world.b.tenant) == []
    with tenant_context(world.b.tenant):
        assert not Notification.objects.exists()
        assert not LeadEvent.objects.filter(kind=LeadEventKind.SLA).exists()
        assert not SlaPolicy.objects.exists()
    assert reload(world.b.tenant, theirs[3]).owner_id == world.b.rep.pk
    # b's own sweep then fires b's, the same way.
    assert sweep(world.b.tenant, T0 + 100 * HOUR) == counts


# --- once, and cheaply ------------------------------------------------------------------------


def test_each_threshold_fires_once_across_repeated_sweeps(a, channel):
    make_rep(a.tenant, "alpha-rep2")
    leads = _every_threshold_due(a, channel)
    total = Counter()
    for minutes in range(0, 10):
        total.update(sweep(a.tenant, T0 + 100 * HOUR + minutes * MINUTE))
    # The escalation comes 8 h after the reminder; the returned lead's new round gets its
    # own reminder 24 h after the re-dispatch (T0 + 124 h).
    for hours in (108, 109, 130, 131):
        total.update(sweep(a.tenant, T0 + hours * HOUR))
    assert dict(total) == only(
        {},
        a_unassigned=1,
        unassigned=1,
        unverified_rep=3,
        unverified_mgr=1,
        no_followup=1,
        no_second_touch=1,
    )
    with tenant_context(a.tenant):
        assert SlaAlert.objects.count() == 8
        per_key = Counter(
            Notification.objects.values_list("event", "recipient_id", "link").order_by()
        )
    assert per_key and set(per_key.values()) == {1}
    assert {link(lead) for lead in leads} <= {key[2] for key in per_key}


def test_a_sweep_with_nothing_due_is_a_handful_of_statements(
    a, channel, django_assert_max_num_queries
):
    with tenant_context(a.tenant):
        Lead.objects.bulk_create(
            Lead(
                tenant=a.tenant,
                channel=channel,
                company=f"公司{i}",
                source_grade=SourceGrade.A,
                created_at=T0,
            )
            for i in range(300)
        )
    assert sweep(a.tenant, T0 + 3 * HOUR) == only({}, a_unassigned=300, unassigned=300)
    with django_assert_max_num_queries(25):
        assert sweep(a.tenant, T0 + 3 * HOUR + MINUTE) == only({})


# --- the operator's command -------------------------------------------------------------------


def test_the_command_sweeps_a_tenant_as_of_a_given_time(a, world, channel):
    lead = unassigned_lead(a, channel, T0, grade=SourceGrade.A)
    unassigned_lead(world.b, make_channel(world.b.tenant), T0, grade=SourceGrade.A)
    out = io.StringIO()
    # 09:30 in Shanghai (the tenant's zone) is T0 + 30 min.
    call_command("sla_sweep", "--tenant", a.tenant.slug, "--now", "2026-03-02T09:30", stdout=out)
    assert json.loads(out.getvalue()) == {a.tenant.slug: only({}, a_unassigned=1)}
    assert fired(a.tenant) == [(lead.pk, A_UNASSIGNED, 0)]
    assert fired(world.b.tenant) == []

    out = io.StringIO()
    call_command("sla_sweep", "--now", "2026-03-02T01:30:00+00:00", stdout=out)
    result = json.loads(out.getvalue())
    assert result[a.tenant.slug] == only({})
    assert result[world.b.tenant.slug] == only({}, a_unassigned=1)


# --- two sweeps at once ---------------------------------------------------------------------


def _race(tenant, work, n=2):
    """Run `work()` in n threads, each on its own connection inside the tenant's
    transaction, released together by a barrier; returns their results."""
    start = threading.Barrier(n)
    results, errors = [None] * n, []

    def run(i):
        try:
            with tenant_context(tenant):
                start.wait(timeout=10)
                results[i] = work(i)
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    return results


@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_the_same_time_fire_and_tell_once(world):
    a = world.a
    make_rep(a.tenant, "alpha-rep2")
    channel = make_channel(a.tenant)
    leads = _every_threshold_due(a, channel)
    leads += [
        make_lead(a.tenant, channel=channel, created_at=T0, source_grade=SourceGrade.A)
        for _ in range(20)
    ]
    now = T0 + 100 * HOUR

    results = _race(a.tenant, lambda i: sla.sla_sweep(now))

    total = Counter()
    for counts in results:
        total.update(counts)
    assert dict(total) == only(
        {}, a_unassigned=21, unassigned=21, unverified_rep=2, no_followup=1, no_second_touch=1
    )
    with tenant_context(a.tenant):
        per_alert = Counter(SlaAlert.objects.values_list("lead_id", "threshold", "round"))
        per_note = Counter(
            Notification.objects.values_list("event", "recipient_id", "link").order_by()
        )
        returns = AssignmentDecision.objects.filter(kind=DecisionKind.RETURN).count()
        sla_events = LeadEvent.objects.filter(kind=LeadEventKind.SLA).count()
    assert len(per_alert) == 46 and set(per_alert.values()) == {1}
    assert set(per_note.values()) == {1}
    assert per_note[("sla.a_unassigned", a.manager.pk, link(leads[0]))] == 1
    assert per_note[("sla.unverified_rep", a.rep.pk, link(leads[1]))] == 1
    assert per_note[("lead.returned", a.rep.pk, link(leads[3]))] == 1
    assert returns == 2  # the pooling and the re-dispatch, once
    assert sla_events == 46


@pytest.mark.django_db(transaction=True)
def test_the_constraint_alone_lets_one_of_two_concurrent_inserts_fire(world):
    """Without the sweep's lock: two transactions insert the same alerts at the same
    moment. The second waits for the first's uncommitted rows and then skips them, so
    each lead comes back to exactly one of them: only that one tells anyone."""
    a = world.a
    channel = make_channel(a.tenant)
    with tenant_context(a.tenant):
        Lead.objects.bulk_create(
            Lead(tenant=a.tenant, channel=channel, company=f"公司{i}", source_grade="A")
            for i in range(200)
        )
    now = timezone.now()
    inserted = threading.Event()

    def work(i):
        if i == 1:
            inserted.wait(timeout=10)  # the first has inserted and not committed yet
        rows = sla.fire(A_UNASSIGNED, Lead.objects.all(), now)
        if i == 0:
            inserted.set()
            threading.Event().wait(0.5)  # hold the transaction open a moment
        return rows

    first, second = _race(a.tenant, work)
    assert len(first) == 200 and second == []

    # And released together, both racing over the same rows:
    with tenant_context(a.tenant):
        Lead.objects.update(dispatch_round=1)
    one, two = _race(a.tenant, lambda i: sla.fire(A_UNASSIGNED, Lead.objects.all(), now))
    assert len(one) + len(two) == 200
    assert not {lead_id for lead_id, _r in one} & {lead_id for lead_id, _r in two}
    with tenant_context(a.tenant):
        assert SlaAlert.objects.count() == 400


# --- through beat's task and a real worker ----------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_beat_task_sweeps_every_tenant_on_a_worker(world, celery_worker_thread):
    from leads.tasks import sla_sweep_all

    late = timezone.now() - 31 * MINUTE
    ours = make_lead(
        world.a.tenant, make_channel(world.a.tenant), created_at=late, source_grade="A"
    )
    theirs = make_lead(
        world.b.tenant, make_channel(world.b.tenant), created_at=late, source_grade="A"
    )
    sla_sweep_all.delay()

    def alerted(tenant, lead):
        return lambda: fired(tenant) == [(lead.pk, A_UNASSIGNED, 0)]

    assert wait_for(alerted(world.a.tenant, ours))
    assert wait_for(alerted(world.b.tenant, theirs))
    assert wait_for(lambda: told(world.a.tenant, "sla.a_unassigned") != [])
    assert told(world.a.tenant, "sla.a_unassigned") == [(world.a.manager.pk, link(ours))]


def test_every_sla_event_is_registered_with_a_title(english):
    from crm.notify import get_event_type, render_template

    sla.register()
    sla.register()  # idempotent
    params = {"lead": "宁波恒力 · 王工", "minutes": 30, "hours": 24, "rep": "张三"}
    for key in sla.EVENTS.values():
        event = get_event_type(key)
        assert event is not None, key
        title = render_template(event.title, params)
        assert "%(" not in title and "宁波恒力" in title, (key, title)
