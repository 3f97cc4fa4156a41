"""Touches and zones (F10, F13): first and later touches on a lead, the late/on-time
streaks they feed, and the observation zone's way in and out.

The way back (docs/assignment.md): 3 late first touches in a row pause a rep from
dispatch and put a training card on their home page. Acknowledging the card resumes
dispatch on probation; N on-time first touches in a row (default 5) end the probation,
a late one pauses the rep again. A manager can also lift the zone at once (audited).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from crm.audit import audit
from crm.models import Membership, Tenant
from crm.services import actor_user, check_tenant
from leads import notifications
from leads.assignment.engine import Params
from leads.assignment.policy import policy_active
from leads.models import Lead, LeadEvent, LeadEventKind, RepProfile, Zone


def _profile(membership: Membership) -> RepProfile:
    profile, _created = RepProfile.objects.select_for_update().get_or_create(
        membership=membership, defaults={"tenant": membership.tenant}
    )
    return profile


def lead_record_touch(
    *,
    tenant: Tenant,
    acting_member: Membership,
    lead: Lead,
    channel: str = "phone",
    note: str = "",
    at: datetime | None = None,
) -> LeadEvent:
    """A contact `acting_member` had with the lead's person (call, message, visit …). The
    owner's first one decides whether they responded on time (within the policy's
    `late_after_hours`), which moves their streaks and maybe their zone."""
    check_tenant(tenant, lead, acting_member)
    at = at or timezone.now()
    with transaction.atomic():
        first = lead.first_touch_at is None
        lead.touch_count += 1
        # A touch logged late (a follow-up dated earlier) never moves the latest one back.
        lead.last_touch_at = at if lead.last_touch_at is None else max(lead.last_touch_at, at)
        fields = ["touch_count", "last_touch_at"]
        late = None
        if first:
            lead.first_touch_at = at
            fields.append("first_touch_at")
            if lead.first_touch_late is None and lead.assigned_at is not None:
                params = Params.of(policy_active())
                late = at - lead.assigned_at > timedelta(hours=params.late_after_hours)
                lead.first_touch_late = late
                fields.append("first_touch_late")
        lead.save(update_fields=fields)
        event = LeadEvent.objects.create(
            tenant=tenant,
            lead=lead,
            kind=LeadEventKind.TOUCH,
            at=at,
            actor=actor_user(acting_member),
            data={"channel": channel, "note": note[:300], "first": first, "late": late},
        )
        if late is not None and lead.owner_id == acting_member.pk:
            record_first_touch(acting_member, late=late, now=at)
    return event


def lead_mark_late(lead: Lead, *, now: datetime | None = None) -> bool:
    """The owner let the first-touch window pass untouched (the SLA sweep): counts as a
    late first touch, once per lead. True if it counted."""
    if lead.first_touch_late is not None or lead.owner_id is None:
        return False
    updated = Lead.objects.filter(pk=lead.pk, first_touch_late__isnull=True).update(
        first_touch_late=True
    )
    if updated:
        lead.first_touch_late = True
        record_first_touch(lead.owner, late=True, now=now or timezone.now())
    return bool(updated)


def record_first_touch(membership: Membership, *, late: bool, now: datetime) -> RepProfile:
    """Move the rep's late/on-time streaks on by one first touch, and their zone with them
    (telling the rep and the managers when they enter or leave the observation zone)."""
    params = Params.of(policy_active())
    profile = _profile(membership)
    if late:
        profile.late_streak += 1
        profile.on_time_streak = 0
        enters = profile.zone == Zone.PROBATION or (
            profile.zone == Zone.NORMAL and profile.late_streak >= params.observation_late_streak
        )
        if enters:
            profile.zone, profile.zone_since = Zone.OBSERVATION, now
            profile.training_acknowledged_at = None
            profile.save()
            notifications.send(
                "zone.observation",
                [membership, *notifications.managers()],
                {"rep": membership.display_name, "streak": profile.late_streak},
            )
            return profile
    else:
        profile.late_streak = 0
        profile.on_time_streak += 1
        if profile.zone == Zone.PROBATION and profile.on_time_streak >= params.observation_recovery:
            profile.zone, profile.zone_since = Zone.NORMAL, now
            profile.save()
            notifications.send(
                "zone.recovered",
                [membership, *notifications.managers()],
                {"rep": membership.display_name},
            )
            return profile
    profile.save()
    return profile


def training_acknowledge(membership: Membership, *, now: datetime | None = None) -> bool:
    """The rep read the training card: dispatch resumes, on probation. False if the rep
    was not paused."""
    now = now or timezone.now()
    profile = _profile(membership)
    if profile.zone != Zone.OBSERVATION:
        return False
    profile.zone, profile.zone_since = Zone.PROBATION, now
    profile.training_acknowledged_at = now
    profile.on_time_streak = 0
    profile.save()
    return True


def zone_lift(
    *,
    tenant: Tenant,
    acting_member: Membership | None,
    rep: Membership,
    now: datetime | None = None,
) -> bool:
    """A manager ends `rep`'s observation zone (paused or probation) at once; audited.
    False if the rep was not in it."""
    check_tenant(tenant, rep, acting_member)
    now = now or timezone.now()
    with transaction.atomic():
        profile = _profile(rep)
        if profile.zone == Zone.NORMAL:
            return False
        before = profile.zone
        profile.zone, profile.zone_since = Zone.NORMAL, now
        profile.late_streak = profile.on_time_streak = 0
        profile.save()
        audit(
            tenant=tenant,
            actor=actor_user(acting_member),
            action="rep.zone_lifted",
            obj=profile,
            changes={"zone": [before, ""]},
        )
        notifications.send("zone.recovered", [rep], {"rep": rep.display_name})
    return True
