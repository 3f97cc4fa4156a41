"""The demo story's replay of the reps' work: each lead's owner touches it
(`leads.assignment.zones.lead_record_touch`, so first-touch streaks and zones are real),
verifies it (`leads.verification.lead_verify`, with `leads.demo.board.verdict_for`'s
arguments) and follows it up, at moments planned from the lead's age at the end of the
story (`_plan_work`) and done in time order between the arrivals (a heap, `_until`).

A mixin of `leads.demo.story._Story`, which holds the state (the clock, the random draws,
the reps, the counters of what is left open)."""

from __future__ import annotations

import heapq
from datetime import timedelta

from django.utils import timezone

from crm.models import AuditEvent, Notification
from leads.assignment.zones import lead_record_touch
from leads.demo import board as demo_board
from leads.demo.data import (
    FIRST_NOTES_INVALID,
    FIRST_NOTES_VALID,
    FOLLOW_CHANNELS,
    FOLLOW_NOTES,
    LEAVE_DAYS,
    OPEN_AGE,
    RECENT,
    RECENT_NOTES,
    RETURN_AGE,
    RETURNS,
    SLOW_SINCE,
)
from leads.demo.tenant import AWAY, DEFAULT_CAPACITY, SLOW
from leads.models import ContactMethod, Lead, LeadStatus
from leads.verification import lead_verify


class RepWork:
    """The reps' touches, verdicts and follow-ups, planned per lead and done in time order."""

    def _push(self, at, action: str, lead_id: int, **data) -> None:
        self.seq += 1
        heapq.heappush(self.todo, (at, self.seq, action, lead_id, data))

    def _until(self, moment) -> None:
        away = self.reps[AWAY].pk
        leave = self.now - timedelta(days=LEAVE_DAYS)
        while self.todo and self.todo[0][0] <= moment:
            at, _seq, action, lead_id, data = heapq.heappop(self.todo)
            if at >= leave and Lead.objects.filter(pk=lead_id, owner_id=away).exists():
                # rep6 does nothing once the leave has begun: follow-ups planned past it
                # stay undone (the SLA clocks run on; `_plan_work` has the first call and
                # the verdict made before it).
                continue
            if action == "touch":
                self._touch(lead_id, at, **data)
            else:
                self._verify(lead_id, at, **data)

    def _touch(self, lead_id: int, at, *, channel: str, note: str) -> None:
        lead = Lead.objects.select_related("owner__user", "tenant").get(pk=lead_id)
        if lead.owner is None or lead.status not in (LeadStatus.ASSIGNED, LeadStatus.VALID):
            return
        first = lead.first_touch_at is None
        lead_record_touch(
            tenant=self.tenant,
            acting_member=lead.owner,
            lead=lead,
            channel=channel,
            note=note,
            at=at,
        )
        if first:  # a zone change tells the rep and the managers: then, not now
            Notification.objects.filter(created_at__gte=self.since).update(created_at=at)

    def _verify(self, lead_id: int, at, *, status: str, step_days=None) -> None:
        """The owner's verdict through the real service at its moment: the outcome, an
        invalid reason from what the first call found, a valid lead's next step (the
        visit's date, or the missing information's action), the customer and contact."""
        from customers.models import Contact, Customer

        lead = Lead.objects.select_related("owner__user", "tenant", "channel").get(pk=lead_id)
        if lead.owner is None or lead.status != LeadStatus.ASSIGNED or lead.verification:
            return  # handed on meanwhile, or verified already
        since = timezone.now()
        first = lead.first_touch_at is None
        arguments = demo_board.verdict_for(
            lead, at, valid=status == LeadStatus.VALID, rnd=self.rnd, step_days=step_days
        )
        last_touch = lead.last_touch_at
        lead_verify(tenant=self.tenant, acting_member=lead.owner, lead=lead, now=at, **arguments)
        if last_touch is not None and last_touch > at:  # a later touch stays the last one
            Lead.objects.filter(pk=lead.pk).update(last_touch_at=last_touch)
        # The verdict's audit rows (lead.verified, the customer and the next step it made).
        AuditEvent.objects.filter(at__gte=since).update(at=at)
        Customer.objects.filter(created_at__gte=since).update(created_at=at)
        Contact.objects.filter(created_at__gte=since).update(created_at=at)
        if first:  # the verdict was the first touch: a zone change is told then
            Notification.objects.filter(created_at__gte=self.since).update(created_at=at)

    def _plan_work(self, lead: Lead, created, assigned) -> None:
        """What the owner does with the lead, by its age at the end of the story."""
        rnd, owner, age = self.rnd, lead.owner_id, self.now - created
        if owner == self.reps[SLOW].pk and created >= self.now - SLOW_SINCE:
            # rep5 answers a day late: late first touches in a row → observation zone.
            first = assigned + timedelta(hours=24, minutes=rnd.randint(30, 240))
            if first < self.now - timedelta(minutes=10):
                valid = rnd.random() < 0.6
                notes = FIRST_NOTES_VALID if valid else FIRST_NOTES_INVALID
                self._push(
                    first, "touch", lead.pk, channel=ContactMethod.PHONE, note=rnd.choice(notes)
                )
                status = LeadStatus.VALID if valid else LeadStatus.INVALID
                self._push(
                    first + timedelta(minutes=rnd.randint(2, 20)), "verify", lead.pk, status=status
                )
            return
        if age < OPEN_AGE and self.open[owner] < self.open_limit.get(owner, DEFAULT_CAPACITY):
            self.open[owner] += 1  # still open at the end; contacted already, or not yet
            latest = min(timedelta(hours=3), age - timedelta(minutes=15))
            if rnd.random() < 0.5 and latest > timedelta(minutes=10):
                at = assigned + timedelta(seconds=rnd.uniform(600, latest.total_seconds()))
                note = rnd.choice(RECENT_NOTES)
                self._push(at, "touch", lead.pk, channel=ContactMethod.PHONE, note=note)
            return
        if OPEN_AGE <= age < RECENT and self.untouched[owner] < 1 and rnd.random() < 0.7:
            self.untouched[owner] += 1  # untouched past 24 h: the SLA sweep reminds the rep
            self.open[owner] += 1
            return
        # Worked: touched (mostly within the hour) and verified, before the end.
        latest = min(240.0, (age - timedelta(minutes=30)).total_seconds() / 60)
        if latest < 5:
            self.open[owner] += 1  # arrived a moment ago
            return
        first = assigned + timedelta(minutes=min(latest, 5 + rnd.expovariate(1 / 45)))
        leave = self.now - timedelta(days=LEAVE_DAYS)
        before_leave = owner == self.reps[AWAY].pk and first >= leave - timedelta(minutes=30)
        if before_leave:
            # rep6 finishes before the leave what they start: a lead touched once and left
            # unverified would go back to the pool unverified, and every lead left
            # untouched counts as a late first touch (three make a streak). Only one that
            # arrives as the leave begins stays untouched.
            if assigned >= leave - timedelta(minutes=2):
                self.open[owner] += 1
                return
            first = min(first, leave - timedelta(minutes=2))
        valid = rnd.random() < (0.25 if lead.is_suspect else 0.65)
        if valid and self.returns < RETURNS and age > RETURN_AGE and rnd.random() < 0.12:
            # Verified on the first call, its next step due that day, then nothing: more
            # than 72 h after that day the SLA sweep returns it to the pool, verdict kept.
            self.returns += 1
            self._push(first, "verify", lead.pk, status=LeadStatus.VALID, step_days=0)
            return
        notes = FIRST_NOTES_VALID if valid else FIRST_NOTES_INVALID
        self._push(first, "touch", lead.pk, channel=ContactMethod.PHONE, note=rnd.choice(notes))
        verified = first + timedelta(minutes=rnd.randint(2, 25))
        if before_leave:
            verified = min(verified, leave - timedelta(seconds=30))
        status = LeadStatus.VALID if valid else LeadStatus.INVALID
        self._push(verified, "verify", lead.pk, status=status)
        if not valid:
            return
        stale = self.now - first > timedelta(hours=72)
        extra = rnd.choice([1, 1, 2]) if stale else rnd.choice([0, 1, 1, 2])
        room = min(48 * 3600.0, (self.now - verified).total_seconds() - 3600)
        if room < 3 * 3600:
            return
        for at in sorted(
            verified + timedelta(seconds=rnd.uniform(3 * 3600, room)) for _ in range(extra)
        ):
            channel = rnd.choice(FOLLOW_CHANNELS)
            self._push(at, "touch", lead.pk, channel=channel, note=rnd.choice(FOLLOW_NOTES))
