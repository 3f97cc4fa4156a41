"""The demo tenant's lead-intake and assignment part (`python manage.py seed_demo` runs it in
the demo tenant's context): a channel of every type, tags and tagging rules, six reps with
their profiles, and about 300 leads of the last 14 days, some of them revisits and some
suspect, plus a few failed inbox events.

Leads go through the real pipeline (`inbound_event_receive`, then `inbound_event_process`
at once, so no worker is needed; the messages queued on commit then find nothing to do),
in chronological order so that originals come before their revisits. The pipeline also
assigns each lead with the real engine (leads/assignment/engine.py). It stamps "now": right after
each lead, its times are moved to when it arrived (created, decided, timeline, notices).

The reps' work is interleaved in time order with the arrivals: touches on the real path
(`leads.assignment.zones.lead_record_touch`, so first-touch streaks and zones are real) and
verifications. The story (docs/assignment.md):
- rep1 is the senior (share 1.5), rep4 has a smaller cap (6); regions, industries and
  product lines differ (华东, 华南, 华北, 西南);
- version 2 of the policy is published a week ago; the draft holds a pending change, for
  the replay page's "simulate";
- rep5 answers a day late from four days ago: three late first touches in a row put them in
  the observation zone (paused from dispatch, training card on the home page);
- rep6 is away for the last three days ("unavailable" in those decisions) and until a date;
- leads older than 30 hours are verified (valid or invalid), younger ones still open;
- during the team meeting of the last hour (the reps present marked away) a lead waits
  and, retried with the optional criteria dropped, is pooled; another one still waits;
  the manager reassigns one lead by hand;
- the ledger is rebuilt from the decisions by their day, and the SLA sweep runs once:
  reminders for leads untouched after 24 hours, and valid leads verified on the first
  call whose next step is more than 72 hours past go back to the pool and on to another
  rep, their verdict kept;
- every rep present ends with room below their cap (their open load, docs/assignment.md),
  so new leads spread.

Idempotent: channels, tags, rules and rep profiles are created when missing; leads (and
the whole story) only when the tenant has none. Deterministic content
(random.Random(2026), stdlib only: Faker is a dev extra and the Docker image's seed runs
without it); the times follow today's date and the engine's tie-breaks are its own draws.

Its parts: the fixed data and the story's calendar (data.py), the leads' content and the
plan of arrivals (maker.py), the channels, tags, inbox examples and reps (tenant.py), the
arrivals through the intake (timeline.py), the reps' work replayed in time order
(work.py), the fairness ledger rebuilt from the decisions (ledger.py). Here: the run,
today's cases, and `seed()`.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta

from django.db.models import Count, F, Max
from django.urls import reverse
from django.utils import timezone

from crm.models import AuditEvent, Notification
from leads.assignment import sla
from leads.assignment.dispatch import dispatch_due, lead_reassign
from leads.assignment.policy import policy_active, policy_draft
from leads.assignment.reps import open_loads
from leads.assignment.zones import record_first_touch
from leads.demo import board as demo_board
from leads.demo.data import (
    AWAY_UNTIL_DAYS,
    DAYS,
    DRAFT_NOTE,
    OPEN_AT_END,
    REASSIGN_REASON,
    RECENT,
    SEED,
    TAGS,
)
from leads.demo.ledger import LEDGER_KINDS, rebuild_ledger
from leads.demo.maker import Maker
from leads.demo.tenant import (
    ACTIVE,
    AWAY,
    CAPACITY,
    DEFAULT_CAPACITY,
    GENERATION_CAPACITY,
    REP_PROFILES,
    SLOW,
    failed_examples,
    rep_profiles,
    tenant_channels,
)
from leads.demo.timeline import Arrivals
from leads.demo.work import RepWork
from leads.models import (
    AssignmentDecision,
    AssignmentPolicy,
    Channel,
    ChannelType,
    DecisionKind,
    DecisionOutcome,
    EventStatus,
    InboundEvent,
    Lead,
    LeadStatus,
    PolicyStatus,
    RepProfile,
    Zone,
)

# The ledger's rule and the reassignment's reason are read by the demo's tests.
__all__ = ["LEDGER_KINDS", "REASSIGN_REASON", "seed"]


class _Story(Arrivals, RepWork):
    """14 days of leads through the intake and the assignment engine, with the reps'
    touches and verifications interleaved in time order (leads/demo/timeline.py and
    leads/demo/work.py), then today's open cases."""

    def __init__(self, world, channels: dict[str, Channel]):
        self.world = world
        self.tenant = world.demo
        self.channels = channels
        self.reps = {u: m for u, m in world.memberships.items() if u in REP_PROFILES}
        self.rep_ids = {m.pk for m in self.reps.values()}
        self.now = timezone.now()
        # The pipeline stamps "now": a row stamped at or after this was stamped by it.
        self.since = self.now
        self.rnd = random.Random(SEED + 1)  # noqa: S311 — demo data, not secrets
        self.maker = Maker()
        self.todo: list = []  # heap of (when, seq, action, lead id, data)
        self.seq = 0
        self.untouched: Counter = Counter()
        self.open: Counter = Counter()  # leads left open at the end, by owner
        self.open_limit = {
            m.pk: min(OPEN_AT_END, CAPACITY.get(u, DEFAULT_CAPACITY) - 5)
            for u, m in self.reps.items()
        }
        self.returns = 0
        self.version_2 = None
        self.on_leave = False
        self.failed_moments: list = []
        self.counts = {"revisit": 0, "suspect": 0, "leads": 0}

    # -- the run ---------------------------------------------------------------------------
    def run(self) -> dict:
        self._start()
        self._history()
        self._rep5_fallback()
        self._reassignment()
        self._away()
        self._waiting_and_pooled()
        self._finish()
        return self.counts

    def _start(self) -> None:
        RepProfile.objects.filter(membership__in=self.reps.values()).update(
            capacity=GENERATION_CAPACITY, created_at=self.now - timedelta(days=DAYS + 1)
        )
        policy = policy_active()  # version 1 with the default rules
        AssignmentPolicy.objects.filter(pk=policy.pk).update(
            created_at=self.now - timedelta(days=DAYS + 1),
            published_at=self.now - timedelta(days=DAYS + 1),
        )
        self.relax = timedelta(minutes=policy.relax_after_minutes)

    # -- today's cases ---------------------------------------------------------------------
    def _rep5_fallback(self) -> None:
        """Should rep5 have had too few leads for the late streak (the engine's draws are
        random), the streak is completed on the real path all the same."""
        rep5 = self.reps[SLOW]
        for minutes in (50, 40, 30):
            profile = RepProfile.objects.get(membership=rep5)
            if profile.zone == Zone.OBSERVATION:
                return
            at = self.now - timedelta(hours=20, minutes=minutes)
            record_first_touch(rep5, late=True, now=at)
            Notification.objects.filter(created_at__gte=self.since).update(created_at=at)

    def _reassignment(self) -> None:
        """The manager hands one of today's leads to another rep: the customer asked."""
        open_leads = Lead.objects.filter(
            status=LeadStatus.ASSIGNED,
            owner_id__in=[self.reps[u].pk for u in ACTIVE],
            revisit_of__isnull=True,
            assigned_at__lte=self.now - timedelta(hours=1),
        ).select_related("owner__user", "tenant", "channel")
        # An untouched lead of the last day; else (a quiet weekend) the latest open one.
        lead = (
            open_leads.filter(
                first_touch_at__isnull=True, created_at__gte=self.now - timedelta(hours=20)
            )
            .order_by("created_at", "id")
            .first()
        ) or open_leads.order_by("-assigned_at", "-id").first()
        if lead is None:
            return
        open_counts = self._open_counts()
        to = min(
            (self.reps[u] for u in ACTIVE if self.reps[u].pk != lead.owner_id),
            key=lambda m: (open_counts.get(m.pk, 0), m.pk),
        )
        at = min(lead.assigned_at + timedelta(minutes=40), self.now - timedelta(minutes=20))
        if lead.last_touch_at is not None:
            at = max(at, lead.last_touch_at + timedelta(minutes=10))
        manager = self.world.memberships["manager"]
        lead_reassign(
            tenant=self.tenant,
            acting_member=manager,
            lead=lead,
            to=to,
            reason=REASSIGN_REASON,
            now=at,
        )
        link = reverse("leads:detail", args=[lead.public_id])
        Notification.objects.filter(link=link, created_at__gte=self.since).update(created_at=at)
        AuditEvent.objects.filter(action="lead.reassigned", at__gte=self.since).update(at=at)

    def _away(self) -> None:
        """rep6 is away until a date now: back on dispatch by itself after it."""
        today = timezone.localtime(self.now, self.tenant.tzinfo).date()
        RepProfile.objects.filter(membership=self.reps[AWAY]).update(
            is_available=True, unavailable_until=today + timedelta(days=AWAY_UNTIL_DAYS)
        )

    def _open_counts(self) -> dict[int, int]:
        return open_loads(self.rep_ids)

    def _waiting_and_pooled(self) -> None:
        """The team meeting of the last hour: the reps present are marked away for it
        (unavailable), rep5 is paused and rep6 on leave. Two leads arrive meanwhile and
        wait; the first one's retry, with the optional criteria dropped, still finds nobody
        and pools it (the managers are told). The meeting is over: the second one's retry
        finds the reps back, with room below their caps (restored here from the story's)."""
        for username, membership in self.reps.items():
            RepProfile.objects.filter(membership=membership).update(capacity=CAPACITY.get(username))
        in_meeting = RepProfile.objects.filter(membership__in=[self.reps[u] for u in ACTIVE])
        in_meeting.update(is_available=False)
        first = self.now - timedelta(minutes=45)
        person = self.maker.person()
        payload = self.maker.payload(
            ChannelType.WEB_FORM, person, "急需2台移动DR，新院区下月开诊，请立即报价。"
        )
        intake = self._intake(ChannelType.WEB_FORM, payload)
        if intake is not None:
            event, lead = intake
            self._backdate(lead, [first + timedelta(seconds=3)], created=first, event=event)
            dispatch_due(now=first + self.relax + timedelta(seconds=20))
            link = reverse("leads:detail", args=[lead.public_id])
            Notification.objects.filter(link=link, created_at__gte=self.since).update(
                created_at=first + self.relax + timedelta(seconds=20)
            )
        second = self.now - timedelta(minutes=3)
        person = self.maker.person()
        payload = self.maker.payload(
            ChannelType.DOUYIN, person, "想了解便携超声的价格，基层卫生院用。"
        )
        intake = self._intake(ChannelType.DOUYIN, payload)
        if intake is not None:
            event, lead = intake
            self._backdate(lead, [second + timedelta(seconds=2)], created=second, event=event)
        in_meeting.update(is_available=True)

    def _finish(self) -> None:
        draft = policy_draft(tenant=self.tenant, acting_member=self.world.memberships["admin"])
        draft.weight_region, draft.note = 0.6, DRAFT_NOTE  # pending: "simulate" moves leads
        draft.save(update_fields=["weight_region", "note"])
        rebuild_ledger(self.tenant)
        for membership in self.reps.values():
            last = (
                AssignmentDecision.objects.filter(
                    chosen=membership, outcome=DecisionOutcome.ASSIGNED
                )
                .aggregate(at=Max("decided_at"))
                .get("at")
            )
            RepProfile.objects.filter(membership=membership).update(last_assigned_at=last)
        # What the reps dealt with long ago is read.
        Notification.objects.filter(created_at__lt=self.now - RECENT, read_at__isnull=True).update(
            read_at=F("created_at") + timedelta(hours=1)
        )
        failed = failed_examples(self.channels)
        for event, moment in zip(failed, self.failed_moments, strict=False):
            InboundEvent.objects.filter(pk=event.pk).update(received_at=moment, processed_at=moment)
        # The clocks, once, now: reminders for untouched leads, the returns to the pool.
        self.counts["sla"] = sla.sla_sweep()


def _summary(tenant) -> str:
    profiles = list(RepProfile.objects.select_related("membership__user"))
    today = timezone.localtime(timezone.now(), tenant.tzinfo).date()
    versions = AssignmentPolicy.objects.filter(status=PolicyStatus.PUBLISHED).count()
    draft = AssignmentPolicy.objects.filter(status=PolicyStatus.DRAFT).exists()
    statuses = dict(
        Lead.objects.values_list("status").annotate(n=Count("id")).values_list("status", "n")
    )
    pooled = Lead.objects.filter(status=LeadStatus.NEW, pooled_at__isnull=False).count()
    waiting = Lead.objects.filter(status=LeadStatus.NEW, dispatch_after__isnull=False).count()
    manual = AssignmentDecision.objects.filter(kind=DecisionKind.MANUAL).count()
    observed = [p.membership.display_name for p in profiles if p.zone == Zone.OBSERVATION]
    away = [p.membership.display_name for p in profiles if not p.available_on(today)]
    return (
        f"assignment: {len(profiles)} rep profiles, {versions} policy versions"
        f"{' and a draft' if draft else ''}; {statuses.get(LeadStatus.ASSIGNED, 0)} assigned, "
        f"{statuses.get(LeadStatus.VALID, 0)} valid, {statuses.get(LeadStatus.INVALID, 0)} "
        f"invalid, {pooled} pooled, {waiting} waiting, {manual} reassigned by hand; "
        f"observation zone: {'、'.join(observed) or '—'}; away: {'、'.join(away) or '—'}"
    )


def seed(*, world, stdout) -> None:
    tenant = world.demo
    channels = tenant_channels(tenant)
    rep_profiles(tenant, {u: m for u, m in world.memberships.items() if u in REP_PROFILES})
    if Lead.objects.exists():
        stdout.write(f"leads: {len(channels)} channels; demo leads already there, none added")
        stdout.write(_summary(tenant))
        return
    counts = _Story(world, channels).run()
    failed_count = InboundEvent.objects.filter(status=EventStatus.FAILED).count()
    stdout.write(
        f"leads: {len(channels)} channels, {len(TAGS)} tags, {counts['leads']} leads over "
        f"{DAYS} days ({counts['revisit']} revisits, {counts['suspect']} suspect), "
        f"{failed_count} failed inbox events"
    )
    stdout.write(_summary(tenant))
    fired = {k: v for k, v in counts["sla"].items() if v}
    stdout.write(f"SLA sweep: {', '.join(f'{k} {v}' for k, v in fired.items()) or 'nothing due'}")
    demo_board.seed(world=world, stdout=stdout)  # verifications, follow-ups, today's work
