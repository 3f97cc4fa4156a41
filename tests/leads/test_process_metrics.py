"""The leads app's sales process figures (leads/reports/process.py): the first-touch
median and its counts, the 72 h follow-up rate and the action completion rate, each built
from hand-made rows of tenant a (Asia/Shanghai) over 2026-03-02 … 2026-03-08 and recounted
here in Python from the rows, without the metrics' code; per rep and for the team; and each
rate's numerator rows among its denominator's."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from crm import metrics
from crm.metrics import REP
from crm.models import Role
from crm.tenancy import tenant_context
from customers.models import Interaction, InteractionKind, Preset, PresetKind
from leads.models import AssignmentDecision, DecisionKind, DecisionOutcome, Verification
from tests.factories import MembershipFactory
from tests.leads.factories import make_assigned_lead, make_channel

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
START, END = date(2026, 3, 2), date(2026, 3, 8)
H72 = timedelta(hours=72)


def at(day: int, hour: int, minute: int = 0, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=SHANGHAI)


@dataclass
class Leads:
    """The hand-made leads, interactions and steps of tenant a, and of b (never counted)."""

    world: object
    rep2: object = None
    leads: list = field(default_factory=list)
    steps: list = field(default_factory=list)


def interaction(tenant, *, by, at_, lead=None, kind=InteractionKind.FOLLOW_UP, **fields):
    action = Preset.objects.get_or_create(
        tenant=tenant, kind=PresetKind.ACTION, defaults={"name": "发送资料"}
    )[0]
    # A follow-up's own next step falls due after every range of these tests (unless given).
    fields.setdefault("next_action_due", date(2026, 4, 30))
    return Interaction.objects.create(
        tenant=tenant,
        kind=kind,
        lead=lead,
        by=by,
        at=at_,
        channel="phone",
        next_action=action,
        **fields,
    )


def build(world) -> Leads:
    a, t = world.a, world.a.tenant
    rep1 = a.rep
    rep2 = MembershipFactory(tenant=t, role=Role.REP, user__username="alpha-rep2")
    channel = make_channel(t)
    made = Leads(world, rep2)

    def lead(owner, assigned, **fields):
        found = make_assigned_lead(t, owner, assigned, channel=channel, **fields)
        made.leads.append(found)
        return found

    with tenant_context(t):
        # rep1: touched after 30 min, followed up within 72 h.
        l1 = lead(rep1, at(2, 10), first_touch_at=at(2, 10, 30))
        interaction(t, by=rep1, at_=at(3, 9), lead=l1)
        # rep1: touched after 120 min, followed up only after the 72 h.
        l2 = lead(rep1, at(3, 9), first_touch_at=at(3, 11))
        interaction(t, by=rep1, at_=at(3, 9) + H72 + timedelta(minutes=1), lead=l2)
        # rep1: verified invalid 3 hours after: no follow-up due.
        lead(
            rep1,
            at(4, 9),
            verification=Verification.INVALID_CONTACT,
            verified_at=at(4, 12),
            status="invalid",
        )
        # rep1: touched after 10 min; the follow-up within 72 h is someone else's.
        l4 = lead(rep1, at(5, 9), first_touch_at=at(5, 9, 10))
        interaction(t, by=rep2, at_=at(5, 15), lead=l4)
        # rep1: assigned on the range's last minute, touched 31 min later, followed up.
        l5 = lead(rep1, at(8, 23, 59), first_touch_at=at(9, 0, 30))
        interaction(t, by=rep1, at_=at(9, 8), lead=l5, kind=InteractionKind.VERIFICATION)
        # rep1: handed over verified: its first touch was before, not theirs; no follow-up.
        lead(
            rep1,
            at(6, 9),
            first_touch_at=at(5, 9),
            verification=Verification.VALID_MORE_INFO,
            verified_at=at(5, 10),
            status="valid",
        )
        # rep2: touched after 60 min, the verification call within 72 h.
        l9 = lead(rep2, at(2, 14), first_touch_at=at(2, 15))
        interaction(t, by=rep2, at_=at(2, 15), lead=l9, kind=InteractionKind.VERIFICATION)
        # Not counted: outside the range, in the pool, another tenant.
        lead(rep1, at(9, 0), first_touch_at=at(9, 0, 5))
        lead(rep1, at(1, 23, 59), first_touch_at=at(2, 0, 5))
        lead(None, at(3, 9), status="new")

        # The next steps (Interaction "before DATE do ACTION") due in the range.
        def step(by, due: int, done=None, lead=None):
            made.steps.append(
                interaction(
                    t,
                    by=by,
                    at_=at(1, 9),
                    lead=lead,
                    next_action_due=date(2026, 3, due),
                    next_done_at=done,
                )
            )
            return made.steps[-1]

        step(rep1, 3, at(3, 15))  # on time
        step(rep1, 4, at(5, 9))  # a day late
        step(rep1, 5)  # still open, its day over
        step(rep1, 6, at(6, 23, 30))  # at 23:30 local on its day: on time
        handed = lead(rep2, at(6, 10))
        step(rep1, 7, at(6, 10), lead=handed)  # a hand-over closed it before its day
        AssignmentDecision.objects.create(
            tenant=t,
            lead=handed,
            kind=DecisionKind.MANUAL,
            outcome=DecisionOutcome.ASSIGNED,
            chosen=rep2,
            previous_owner=rep1,
            decided_at=at(6, 10),
        )
        late_handed = lead(rep2, at(8, 10))
        step(rep1, 7, at(8, 10), lead=late_handed)  # overdue, then handed over: missed
        AssignmentDecision.objects.create(
            tenant=t,
            lead=late_handed,
            kind=DecisionKind.MANUAL,
            outcome=DecisionOutcome.ASSIGNED,
            chosen=rep2,
            previous_owner=rep1,
            decided_at=at(8, 10),
        )
        step(rep2, 8, at(8, 18))  # on time
        step(rep1, 9)  # due after the range
    b = world.b
    with tenant_context(b.tenant):
        other = make_assigned_lead(b.tenant, b.rep, at(3, 9), first_touch_at=at(3, 9, 1))
        interaction(b.tenant, by=b.rep, at_=at(3, 10), lead=other, next_action_due=date(2026, 3, 4))
    return made


# -- the recount, in Python, from the rows ------------------------------------------------------


def recount(made: Leads, rep=None) -> dict:
    """Every figure from the rows, by the definitions in docs/process.md."""
    t = made.world.a.tenant
    since = datetime(2026, 3, 2, tzinfo=SHANGHAI)
    until = datetime(2026, 3, 9, tzinfo=SHANGHAI)
    now = timezone.now()
    today = timezone.localdate(timezone=SHANGHAI)
    with tenant_context(t):
        from leads.models import Lead

        leads = [
            lead
            for lead in Lead.objects.filter(owner__isnull=False)
            if lead.assigned_at
            and since <= lead.assigned_at < until
            and (rep is None or lead.owner_id == rep)
        ]
        minutes, due, followed = [], 0, 0
        for lead in leads:
            if lead.first_touch_at and lead.first_touch_at >= lead.assigned_at:
                minutes.append((lead.first_touch_at - lead.assigned_at).total_seconds() / 60)
            invalid_early = (
                lead.verification in ("invalid_contact", "invalid_not_target")
                and lead.verified_at <= lead.assigned_at + H72
            )
            if invalid_early:
                continue
            did = any(
                lead.assigned_at <= i.at <= lead.assigned_at + H72
                for i in Interaction.objects.filter(lead=lead, by=lead.owner_id)
            )
            if did or lead.assigned_at + H72 <= now:
                due += 1
                followed += did
        steps = [
            s
            for s in Interaction.objects.all()
            if START <= s.next_action_due <= END and (rep is None or s.by_id == rep)
        ]
        counted = on_time = 0
        for s in steps:
            done_on = s.next_done_at.astimezone(SHANGHAI).date() if s.next_done_at else None
            is_on_time = done_on is not None and done_on <= s.next_action_due
            handed = (
                s.lead_id is not None
                and AssignmentDecision.objects.filter(
                    lead_id=s.lead_id, decided_at=s.next_done_at
                ).exists()
            )
            settled = s.next_done_at is not None or s.next_action_due < today
            if not settled or (is_on_time and handed):
                continue
            counted += 1
            on_time += is_on_time and not handed
    return {
        "leads.process_assigned": len(leads),
        "leads.process_touched": len(minutes),
        "leads.process_first_touch_median": statistics.median(minutes) if minutes else None,
        "leads.process_follow_up_due": due,
        "leads.process_followed_72h": followed,
        "leads.process_not_followed_72h": due - followed,
        "leads.process_steps_due": counted,
        "leads.process_steps_on_time": on_time,
        "leads.process_steps_missed": counted - on_time,
    }


KEYS = (
    "leads.process_assigned",
    "leads.process_touched",
    "leads.process_first_touch_median",
    "leads.process_follow_up_due",
    "leads.process_followed_72h",
    "leads.process_not_followed_72h",
    "leads.process_steps_due",
    "leads.process_steps_on_time",
    "leads.process_steps_missed",
)

BY_HAND = {
    # rep1: L1 L2 L3 L4 L5 L8 and the two handed leads are rep2's.
    None: {
        "leads.process_assigned": 9,
        "leads.process_touched": 5,
        "leads.process_first_touch_median": 31.0,  # 10 30 31 60 120
        "leads.process_follow_up_due": 8,
        "leads.process_followed_72h": 3,
        "leads.process_not_followed_72h": 5,
        "leads.process_steps_due": 6,
        "leads.process_steps_on_time": 3,
        "leads.process_steps_missed": 3,
    },
    "rep1": {
        "leads.process_assigned": 6,
        "leads.process_touched": 4,
        "leads.process_first_touch_median": 30.5,  # 10 30 31 120
        "leads.process_follow_up_due": 5,
        "leads.process_followed_72h": 2,
        "leads.process_not_followed_72h": 3,
        "leads.process_steps_due": 5,
        "leads.process_steps_on_time": 2,
        "leads.process_steps_missed": 3,
    },
    "rep2": {
        "leads.process_assigned": 3,
        "leads.process_touched": 1,
        "leads.process_first_touch_median": 60.0,
        "leads.process_follow_up_due": 3,
        "leads.process_followed_72h": 1,
        "leads.process_not_followed_72h": 2,
        "leads.process_steps_due": 1,
        "leads.process_steps_on_time": 1,
        "leads.process_steps_missed": 0,
    },
}


def test_each_figure_matches_the_hand_count_and_the_recount_per_rep_and_team(world):
    made = build(world)
    t = world.a.tenant
    reps = {"rep1": world.a.rep.pk, "rep2": made.rep2.pk}
    found = [metrics.get_metric(k) for k in KEYS]
    assert all(m is not None and m.group == "process" for m in found)
    with tenant_context(t):
        team = metrics.values_of(found, tenant=t, start=START, end=END)
        by_rep = metrics.values_by(found, REP, tenant=t, start=START, end=END)
    assert team == BY_HAND[None] == recount(made)
    for name, pk in reps.items():
        assert by_rep[pk] == BY_HAND[name] == recount(made, pk), name
    # The drill-down rows add up to each figure (the median from its listed minutes).
    with tenant_context(t):
        for metric in found:
            for rep in (None, *reps.values()):
                filters = {REP: rep} if rep else None
                table = metrics.drill_down(metric, tenant=t, start=START, end=END, filters=filters)
                shown = metrics.value(metric, tenant=t, start=START, end=END, filters=filters)
                assert metrics.recount(metric, table) == shown, (metric.key, rep)


def test_each_rates_numerator_rows_are_among_its_denominators_and_act_on_is_the_rest(world):
    build(world)
    t = world.a.tenant
    for key in ("leads.process_follow_up_72h", "leads.process_action_completion"):
        rate = metrics.get_rate(key)
        assert rate.group == "process" and str(rate.advice) and rate.target
        with tenant_context(t):
            rows = {
                name: set(
                    metrics.rows_of(
                        metrics.get_metric(k), tenant=t, start=START, end=END
                    ).values_list("pk", flat=True)
                )
                for name, k in (
                    ("num", rate.numerator),
                    ("den", rate.denominator),
                    ("act", rate.act_on),
                )
            }
        assert rows["num"] and rows["num"] <= rows["den"], key
        assert rows["act"] == rows["den"] - rows["num"], key


def test_a_lead_whose_72_hours_are_still_running_is_not_a_miss_yet(world):
    t, rep = world.a.tenant, world.a.rep
    now = timezone.now()
    today = timezone.localdate(timezone=t.tzinfo)
    waiting = make_assigned_lead(t, rep, now - timedelta(hours=1))
    late = make_assigned_lead(t, rep, now - timedelta(hours=73))
    done = make_assigned_lead(t, rep, now - timedelta(hours=2))
    with tenant_context(t):
        interaction(t, by=rep, at_=now - timedelta(hours=1), lead=done)
        # A step due today, still open, is not missed yet; one due yesterday is.
        interaction(t, by=rep, at_=now - timedelta(days=2), next_action_due=today)
        interaction(
            t, by=rep, at_=now - timedelta(days=2), next_action_due=today - timedelta(days=1)
        )
        start, end = today - timedelta(days=6), today
        keys = ("leads.process_follow_up_due", "leads.process_followed_72h")
        rows = {
            k: set(
                metrics.rows_of(metrics.get_metric(k), tenant=t, start=start, end=end).values_list(
                    "pk", flat=True
                )
            )
            for k in (*keys, "leads.process_steps_due", "leads.process_steps_missed")
        }
    assert rows["leads.process_follow_up_due"] == {late.pk, done.pk}
    assert waiting.pk not in rows["leads.process_follow_up_due"]
    assert rows["leads.process_followed_72h"] == {done.pk}
    assert len(rows["leads.process_steps_due"]) == 1 == len(rows["leads.process_steps_missed"])
