"""The demo story's timeline of arrivals: LEAD_COUNT leads over the last DAYS days through
the real intake (`inbound_event_receive`, then `inbound_event_process` at once) and so the
real engine, in chronological order, each moved right after to when it arrived (its
inbound event, decisions, timeline entries, notices and business events). Version 2 of the policy is
published between two arrivals a week ago, and rep6's leave begins three days ago.

A mixin of `leads.demo.story._Story`, which holds the state (the clock, the maker, the
channels, the reps) and whose other mixin (`leads.demo.work.RepWork`) plans and does the
reps' work on each lead."""

from __future__ import annotations

import json
from datetime import timedelta

from django.db.models import Q
from django.urls import reverse

from crm import normalize
from crm.models import AuditEvent, Notification, OutboxEvent
from leads import events as lead_events
from leads.assignment.policy import policy_draft, policy_publish
from leads.demo.data import (
    DAYS,
    LEAD_COUNT,
    LEAVE_DAYS,
    SOURCES,
    TODAY_REVISITS,
    VERSION_2_AGO,
    VERSION_2_NOTE,
)
from leads.demo.tenant import AWAY
from leads.intake.services import inbound_event_process, inbound_event_receive
from leads.models import (
    AssignmentDecision,
    AssignmentPolicy,
    EventSource,
    InboundEvent,
    Lead,
    LeadEvent,
    LeadStatus,
    RepProfile,
)


class Arrivals:
    """The leads' arrivals, in time order with the reps' work (`_until`, `_plan_work`)."""

    def _history(self) -> None:
        plan = self.maker.plan(LEAD_COUNT)
        moments = self.maker.times(len(plan) + 3, self.now)
        self.failed_moments = moments[-3:]
        previous = self.now - timedelta(days=DAYS)
        for (channel_type, payload, kind, person), moment in zip(plan, moments, strict=False):
            # Due work first (a touch a few seconds after `moment` too: its lead is decided
            # at `moment` plus a few seconds, so every decision sees the zone it records).
            self._until(moment + timedelta(seconds=9))
            if self.version_2 is None and moment >= self.now - VERSION_2_AGO:
                # Published between two arrivals: each lead's decision names its version.
                self._publish_version_2(max(moment - timedelta(minutes=30), previous))
            if not self.on_leave and moment >= self.now - timedelta(days=LEAVE_DAYS):
                self.on_leave = True  # rep6 leaves: "unavailable" in every decision from here
                RepProfile.objects.filter(membership=self.reps[AWAY]).update(is_available=False)
            previous = moment + timedelta(seconds=10)
            if kind != "new" and (moment >= self.now - TODAY_REVISITS or self._of_away_rep(person)):
                # The last hours are the board's: its revisit is each rep's only one then
                # (and a "测试" suspect would be a revisit of the previous one). A revisit
                # of rep6's customer during the leave would be theirs, left untouched: a
                # late first touch at the sweep.
                person = self.maker.person()
                payload = self.maker.payload(channel_type, person, self.maker.message(person))
            intake = self._intake(channel_type, payload)
            if intake is None:
                continue
            event, lead = intake
            assigned = moment + timedelta(seconds=self.rnd.randint(2, 8))
            self._backdate(lead, [assigned], created=moment, event=event)
            self.counts["leads"] += 1
            self.counts["revisit"] += lead.revisit_of_id is not None
            self.counts["suspect"] += lead.is_suspect
            if lead.status == LeadStatus.ASSIGNED:
                self._plan_work(lead, moment, assigned)
        self._until(self.now)

    def _of_away_rep(self, person: dict) -> bool:
        """During rep6's leave: does `person` match (phone, or company and contact) an
        earlier lead of rep6's, so that the engine would hand it to them?"""
        if not self.on_leave:
            return False
        match = Q(
            company_key=normalize.company_key(person["company"]),
            contact_key=normalize.person_key(person["name"]),
        )
        if len(person["phone"]) >= 8:
            match |= Q(phone_key__endswith=person["phone"][-8:])
        return Lead.objects.filter(match, owner=self.reps[AWAY]).exists()

    def _intake(self, channel_type: str, payload: dict):
        event, created = inbound_event_receive(
            channel=self.channels[channel_type],
            raw_body=json.dumps(payload, ensure_ascii=False),
            source=SOURCES.get(channel_type, EventSource.WEBHOOK),
            payload=payload,
            queue=False,  # processed right here: no message for the worker to find idle
        )
        if not created:
            return None  # the same body twice: a replay, no second lead
        event = inbound_event_process(event_id=event.pk)
        if event is None or event.lead is None:
            return None
        return event, event.lead

    def _backdate(self, lead: Lead, times: list, *, created=None, event=None) -> None:
        """Move what the pipeline stamped "now" for this lead to when it happened: the
        decisions (in order) to `times`, their timeline entries and notices with them."""
        if event is not None:
            InboundEvent.objects.filter(pk=event.pk).update(
                received_at=created - timedelta(seconds=1), processed_at=created
            )
        decisions = list(
            AssignmentDecision.objects.filter(lead=lead, decided_at__gte=self.since).order_by(
                "decided_at", "id"
            )
        )
        when = {}
        for decision, at in zip(decisions, times, strict=False):
            AssignmentDecision.objects.filter(pk=decision.pk).update(decided_at=at)
            when[str(decision.public_id)] = at
        last = times[min(len(decisions), len(times)) - 1] if decisions else created
        entries = list(LeadEvent.objects.filter(lead=lead, at__gte=self.since))
        for entry in entries:
            entry.at = when.get((entry.data or {}).get("decision"), created or last)
        LeadEvent.objects.bulk_update(entries, ["at"])
        changes = {}
        if created is not None:
            changes["created_at"] = lead.created_at = created
        # The intake's lead instance is the one the engine saved: its stamps are current.
        if lead.assigned_at is not None and lead.assigned_at >= self.since:
            changes["assigned_at"] = lead.assigned_at = last
        if lead.pooled_at is not None and lead.pooled_at >= self.since:
            changes["pooled_at"] = lead.pooled_at = last
        if lead.dispatch_after is not None and lead.dispatch_after >= self.since:
            changes["dispatch_after"] = lead.dispatch_after = times[0] + self.relax
        if changes:
            Lead.objects.filter(pk=lead.pk).update(**changes)
        # Its business events (crm.events) with it: automation's dry run reads them.
        stamped = OutboxEvent.objects.filter(
            object_type="leads.lead", object_id=lead.pk, at__gte=self.since
        )
        stamped.filter(kind=lead_events.CREATED).update(at=created or last)
        stamped.filter(kind=lead_events.ASSIGNED).update(at=last)
        link = reverse("leads:detail", args=[lead.public_id])
        Notification.objects.filter(link=link, created_at__gte=self.since).update(created_at=last)

    def _publish_version_2(self, at) -> None:
        draft = policy_draft(tenant=self.tenant, acting_member=self.world.memberships["admin"])
        draft.weight_product = 0.4
        draft.save(update_fields=["weight_product"])
        self.version_2 = policy_publish(
            tenant=self.tenant,
            acting_member=self.world.memberships["admin"],
            draft=draft,
            note=VERSION_2_NOTE,
        )
        AssignmentPolicy.objects.filter(pk=self.version_2.pk).update(created_at=at, published_at=at)
        AssignmentPolicy.objects.filter(pk=draft.pk).update(created_at=at - timedelta(hours=1))
        AuditEvent.objects.filter(action="assignment.policy_published", at__gte=self.since).update(
            at=at
        )
