"""SLA clocks (F11) and the return to the pool (F13), threshold by threshold:
leads.assignment.sla.sla_sweep on a frozen clock fires each at its boundary and not a
minute before, tells whom it should, and returns a lead without a second touch to the pool.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest

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
    SourceGrade,
)
from tests.leads.factories import make_assigned_lead, make_channel, make_rep
from tests.leads.sla_helpers import (
    A_UNASSIGNED,
    HOUR,
    MINUTE,
    NO_FOLLOWUP,
    NO_SECOND_TOUCH,
    T0,
    UNASSIGNED,
    UNVERIFIED_MGR,
    UNVERIFIED_REP,
    _events,  # noqa: F401 (autouse: the events registered)
    channel_fixture,  # noqa: F401 (the channel fixture)
    fired,
    link,
    only,
    reload,
    set_policy,
    side_a,  # noqa: F401 (the fixture `a`)
    sweep,
    told,
    unassigned_lead,
)

pytestmark = pytest.mark.django_db


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
