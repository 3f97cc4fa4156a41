"""The observation zone (F10): late first touches pause a rep from dispatch, the training
card brings them back on probation, on-time touches end it, a manager can lift it.

Driven through leads.assignment.zones with real leads and touches; eligibility is read the way the
engine reads it (rep_states → eligibility)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from crm.models import AuditEvent, Notification
from crm.tenancy import tenant_context
from leads.assignment import zones
from leads.assignment.engine import OK, PAUSED, Params, eligibility, facts_of
from leads.assignment.policy import policy_active
from leads.assignment.reps import rep_states
from leads.models import Lead, RepProfile, Zone
from tests.leads.factories import make_assigned_lead, make_channel

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


@pytest.fixture(autouse=True)
def _events():
    """The lead engineer registers these from LeadsConfig.ready(); idempotent."""
    from leads import notifications

    notifications.register()


class Rep:
    """A rep of tenant a receiving leads one after another on a moving clock."""

    def __init__(self, side):
        self.side = side
        self.tenant = side.tenant
        self.member = side.rep
        self.channel = make_channel(self.tenant)
        self.clock = T0
        with tenant_context(self.tenant):
            # Room for every lead a test hands out (the default cap is 8 open leads).
            RepProfile.objects.create(tenant=self.tenant, membership=self.member, capacity=100)

    def lead(self) -> Lead:
        self.clock += 2 * 24 * HOUR
        lead = make_assigned_lead(self.tenant, self.member, self.clock, channel=self.channel)
        with tenant_context(self.tenant):
            return Lead.objects.select_related("channel", "owner__user", "tenant").get(pk=lead.pk)

    def first_touch(self, *, late: bool) -> Lead:
        """A new lead and its first touch: on time after 1 h, late after 25 h (> 24 h)."""
        lead = self.lead()
        with tenant_context(self.tenant):
            zones.lead_record_touch(
                tenant=self.tenant,
                acting_member=self.member,
                lead=lead,
                at=lead.assigned_at + (25 if late else 1) * HOUR,
            )
        return lead

    def touches(self, *pattern: bool) -> None:
        for late in pattern:
            self.first_touch(late=late)

    @property
    def profile(self) -> RepProfile:
        with tenant_context(self.tenant):
            return RepProfile.objects.get(membership=self.member)

    def verdict(self) -> str:
        """What the engine's eligibility says about this rep for a fresh lead now."""
        with tenant_context(self.tenant):
            lead = make_lead_for_verdict(self)
            params = Params.of(policy_active())
            (state,) = [
                s for s in rep_states(params, self.clock) if s.membership_id == self.member.pk
            ]
            return eligibility(state, facts_of(lead), params, (), frozenset())

    def told(self, event: str) -> set[int]:
        with tenant_context(self.tenant):
            return set(
                Notification.objects.filter(event=event).values_list("recipient_id", flat=True)
            )


def make_lead_for_verdict(rep: Rep) -> Lead:
    return Lead.objects.create(
        tenant=rep.tenant, channel=rep.channel, company="新客户", source_grade="B"
    )


@pytest.fixture
def rep(world) -> Rep:
    return Rep(world.a)


def test_three_late_first_touches_in_a_row_pause_the_rep(rep, world):
    rep.touches(True, True)
    assert rep.profile.zone == Zone.NORMAL
    assert rep.profile.late_streak == 2
    assert rep.verdict() == OK

    rep.touches(True)
    profile = rep.profile
    assert (profile.zone, profile.late_streak) == (Zone.OBSERVATION, 3)
    assert profile.zone_since == rep.clock + 25 * HOUR
    assert rep.verdict() == PAUSED
    # The rep and the sales managers are told (tenant b's are not).
    assert rep.told("zone.observation") == {world.a.rep.pk, world.a.manager.pk}
    with tenant_context(world.b.tenant):
        assert not Notification.objects.exists()
    with tenant_context(rep.tenant):
        note = Notification.objects.filter(event="zone.observation").first()
    assert note.params == {"rep": world.a.rep.display_name, "streak": 3}


def test_an_on_time_first_touch_in_between_resets_the_streak(rep):
    rep.touches(True, True, False, True, True)
    profile = rep.profile
    assert (profile.zone, profile.late_streak, profile.on_time_streak) == (Zone.NORMAL, 2, 0)
    assert rep.verdict() == OK
    assert rep.told("zone.observation") == set()


def test_only_the_first_touch_of_a_lead_counts(rep):
    lead = rep.first_touch(late=True)
    with tenant_context(rep.tenant):
        for hours in (30, 40, 50):  # later touches on the same lead
            zones.lead_record_touch(
                tenant=rep.tenant,
                acting_member=rep.member,
                lead=lead,
                at=lead.assigned_at + hours * HOUR,
            )
    assert rep.profile.late_streak == 1


def test_a_touch_logged_with_an_earlier_time_keeps_the_latest_touch(rep):
    lead = rep.first_touch(late=False)
    latest = lead.last_touch_at
    with tenant_context(rep.tenant):
        zones.lead_record_touch(
            tenant=rep.tenant, acting_member=rep.member, lead=lead, at=latest - HOUR
        )
        lead.refresh_from_db()
    assert lead.last_touch_at == latest and lead.touch_count == 2


def test_the_training_card_resumes_dispatch_on_probation(rep):
    rep.touches(True, True, True)
    assert rep.verdict() == PAUSED
    with tenant_context(rep.tenant):
        assert zones.training_acknowledge(rep.member, now=rep.clock) is True
        assert zones.training_acknowledge(rep.member, now=rep.clock) is False  # not paused
    profile = rep.profile
    assert profile.zone == Zone.PROBATION
    assert profile.training_acknowledged_at == rep.clock
    assert rep.verdict() == OK


def test_five_on_time_first_touches_end_the_probation(rep, world):
    rep.touches(True, True, True)
    with tenant_context(rep.tenant):
        zones.training_acknowledge(rep.member, now=rep.clock)

    rep.touches(False, False, False, False)
    assert rep.profile.zone == Zone.PROBATION
    assert rep.told("zone.recovered") == set()

    rep.touches(False)
    profile = rep.profile
    assert (profile.zone, profile.on_time_streak) == (Zone.NORMAL, 5)
    assert rep.told("zone.recovered") == {world.a.rep.pk, world.a.manager.pk}
    assert rep.verdict() == OK


def test_a_late_first_touch_on_probation_pauses_again(rep):
    rep.touches(True, True, True)
    with tenant_context(rep.tenant):
        zones.training_acknowledge(rep.member, now=rep.clock)
    rep.touches(False, False, True)
    profile = rep.profile
    assert profile.zone == Zone.OBSERVATION
    assert profile.training_acknowledged_at is None  # a new card to acknowledge
    assert rep.verdict() == PAUSED
    with tenant_context(rep.tenant):
        assert Notification.objects.filter(event="zone.observation").count() == 4  # 2 × 2


def test_a_manager_lifts_the_zone_at_once_audited(rep, world):
    rep.touches(True, True, True)
    with tenant_context(rep.tenant):
        lift = {"tenant": rep.tenant, "acting_member": world.a.manager, "rep": rep.member}
        assert zones.zone_lift(**lift, now=rep.clock) is True
        assert zones.zone_lift(**lift, now=rep.clock) is False
        event = AuditEvent.objects.get(action="rep.zone_lifted")
    assert event.actor == world.a.manager.user
    assert event.changes == {"zone": [Zone.OBSERVATION, ""]}
    profile = rep.profile
    assert (profile.zone, profile.late_streak) == (Zone.NORMAL, 0)
    assert rep.verdict() == OK
    assert world.a.rep.pk in rep.told("zone.recovered")


def test_a_lead_left_untouched_counts_as_late_once(rep):
    lead = rep.lead()
    with tenant_context(rep.tenant):
        assert zones.lead_mark_late(lead, now=rep.clock + 25 * HOUR) is True
        assert zones.lead_mark_late(lead, now=rep.clock + 26 * HOUR) is False
        fresh = Lead.objects.get(pk=lead.pk)
        assert zones.lead_mark_late(fresh, now=rep.clock + 27 * HOUR) is False
        # The touch that finally comes does not count a second time either.
        zones.lead_record_touch(
            tenant=rep.tenant, acting_member=rep.member, lead=fresh, at=rep.clock + 30 * HOUR
        )
        assert Lead.objects.get(pk=lead.pk).first_touch_late is True
    assert rep.profile.late_streak == 1

    on_time = rep.first_touch(late=False)
    with tenant_context(rep.tenant):
        assert zones.lead_mark_late(on_time, now=rep.clock + 30 * HOUR) is False
    assert (rep.profile.late_streak, rep.profile.on_time_streak) == (0, 1)


def test_untouched_leads_late_three_times_pause_the_rep(rep):
    for _ in range(3):
        lead = rep.lead()
        with tenant_context(rep.tenant):
            zones.lead_mark_late(lead, now=rep.clock + 25 * HOUR)
    assert rep.profile.zone == Zone.OBSERVATION
    assert rep.verdict() == PAUSED
