"""SLA clocks (F11) and the return to the pool (F13): the sweep beat runs every minute.

The clocks are not timers: they are the lead rows themselves (`created_at`, `pooled_at`,
`assigned_at`, `verified_at`, `first_touch_at` …), scanned by `sla_sweep()` against the
tenant's `SlaPolicy`. A threshold fires once per lead and dispatch round: firing is an
`INSERT … SELECT … ON CONFLICT DO NOTHING RETURNING` into `SlaAlert`, whose unique
constraint `slaalert_once` (tenant, lead, threshold, round) lets exactly one sweep insert
the row, and only the leads whose row *this* statement inserted are notified. Two beat
processes, or beat and an operator's `manage.py sla_sweep`, cannot double-send.

On top of that, sweeps of one tenant are serialised by a transaction advisory lock
: a sweep touches leads, rep profiles and
the assignment lock in an order a concurrent sweep could invert (a deadlock, one of the
two rolled back). The second sweep waits for the first to commit and then finds every
alert already there. Correctness never depends on the lock: the constraint decides.

Thresholds (all per tenant, `SlaPolicy`):
- `a_unassigned` / `unassigned`: status new and no owner (pooled leads included) for
  `a_unassigned_minutes` (A-class only) / `unassigned_minutes`, measured from
  `created_at` in dispatch round 0 and from `pooled_at` in later rounds → managers. Not
  for a lead the engine pooled because nobody could take it (`no_candidate`): the
  managers were told then (`lead.pooled`), once.
- `unverified_rep`: status assigned for `unverified_hours` since `assigned_at` → the rep;
  an untouched lead then counts as a late first touch (`leads.assignment.zones.lead_mark_late`).
- `unverified_mgr`: still assigned `unverified_escalation_hours` after the rep was
  reminded → managers. The escalation never precedes the reminder.
- `no_followup`: status valid, no touch for `no_followup_hours` after `verified_at` (or
  after `assigned_at` when the lead came to its owner verified), and no next step of the
  owner's scheduled for today or later → rep and managers.
- `no_second_touch`: exactly one touch in this round, `second_touch_hours` old, status
  assigned or valid, and no next step of the owner's due within the last
  `second_touch_hours` or later (a scheduled step is the next touch until it is that far
  overdue) → back to the pool and dispatched again to another rep
  (`leads.assignment.dispatch.lead_return_to_pool`, which tells the previous owner, and the
  managers once). It runs before `no_followup`: a lead returned now is not also told as
  unfollowed.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.db.models.functions import Greatest
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm import roles
from crm.models import Membership
from crm.tenancy import NoTenantError, advisory_lock, current_tenant, tenant_today
from leads.assignment.dispatch import dispatch_due, lead_return_to_pool
from leads.assignment.zones import lead_mark_late
from leads.models import (
    Lead,
    LeadEvent,
    LeadEventKind,
    LeadStatus,
    PoolReason,
    SlaAlert,
    SlaPolicy,
    SlaThreshold,
    SourceGrade,
)

logger = logging.getLogger(__name__)

# The notification event of each threshold (no_second_touch: lead_return_to_pool tells).
EVENTS = {
    SlaThreshold.A_UNASSIGNED: "sla.a_unassigned",
    SlaThreshold.UNASSIGNED: "sla.unassigned",
    SlaThreshold.UNVERIFIED_REP: "sla.unverified_rep",
    SlaThreshold.UNVERIFIED_MANAGER: "sla.unverified_manager",
    SlaThreshold.NO_FOLLOWUP: "sla.no_followup",
}


def register() -> None:
    """Register the SLA notification events with crm.notify (idempotent: re-registering
    replaces). Called from LeadsConfig.ready()."""
    from crm.notify import EventType, register_event

    for event in (
        EventType(
            EVENTS[SlaThreshold.A_UNASSIGNED],
            _("An A-class lead is waiting for a rep"),
            _("A-class lead %(lead)s unassigned for %(minutes)s minutes"),
            _("Nobody has the lead yet: hand it to a rep."),
            roles=roles.MANAGERS,
        ),
        EventType(
            EVENTS[SlaThreshold.UNASSIGNED],
            _("A lead is waiting for a rep"),
            _("Lead %(lead)s unassigned for %(minutes)s minutes"),
            _("Nobody has the lead yet: hand it to a rep."),
            roles=roles.MANAGERS,
        ),
        EventType(
            EVENTS[SlaThreshold.UNVERIFIED_REP],
            _("A lead of mine is not verified in time"),
            _("Lead %(lead)s is not verified after %(hours)s hours"),
            _("Call or message the contact and record whether the lead is valid."),
            roles=roles.OWNERS,
        ),
        EventType(
            EVENTS[SlaThreshold.UNVERIFIED_MANAGER],
            _("A rep has not verified a lead in time"),
            _("%(rep)s has not verified lead %(lead)s after %(hours)s hours"),
            _("The rep was reminded and the lead is still not verified."),
            roles=roles.MANAGERS,
        ),
        EventType(
            EVENTS[SlaThreshold.NO_FOLLOWUP],
            _("A valid lead has no follow-up"),
            _("Valid lead %(lead)s (%(rep)s): no follow-up for %(hours)s hours"),
            _("The lead was verified as valid and nobody has contacted it since."),
            roles=roles.OWNERS | roles.MANAGERS,
        ),
    ):
        register_event(event)


def sla_policy() -> SlaPolicy:
    """The current tenant's SLA policy, created with the defaults on first use."""
    tenant = current_tenant()
    if tenant is None:
        raise NoTenantError("sla_policy() runs inside tenant_context()")
    policy = SlaPolicy.objects.first()
    if policy is not None:
        return policy
    try:
        with transaction.atomic():
            return SlaPolicy.objects.create(tenant=tenant)
    except IntegrityError:  # created meanwhile by a concurrent first use
        return SlaPolicy.objects.get()


def sla_sweep(now: datetime | None = None) -> dict[str, int]:
    """Run the current tenant's SLA clocks once; returns how many leads each threshold
    fired for (all thresholds present, 0 when none). Retries due dispatches first."""
    now = now or timezone.now()
    tenant = current_tenant()
    if tenant is None:
        raise NoTenantError("sla_sweep() runs inside tenant_context()")
    counts = dict.fromkeys(SlaThreshold.values, 0)
    with transaction.atomic():
        advisory_lock("sla", tenant.pk)
        try:
            with transaction.atomic():
                dispatch_due(now)
        except Exception:  # a failing dispatch must not stop the clocks
            logger.exception("dispatch retry of tenant %s failed", tenant.pk)
        policy = sla_policy()
        if not policy.is_active:
            return counts
        sweep = _Sweep(tenant, policy, now)
        for threshold, run in (
            (SlaThreshold.A_UNASSIGNED, sweep.a_unassigned),
            (SlaThreshold.UNASSIGNED, sweep.unassigned),
            (SlaThreshold.UNVERIFIED_REP, sweep.unverified_rep),
            (SlaThreshold.UNVERIFIED_MANAGER, sweep.unverified_manager),
            # Returns first: a lead returned now is in a new round with a new owner (or in
            # the pool), so "no follow-up" does not tell about it as well.
            (SlaThreshold.NO_SECOND_TOUCH, sweep.no_second_touch),
            (SlaThreshold.NO_FOLLOWUP, sweep.no_followup),
        ):
            counts[threshold] = run()
    return counts


# --- which tenants have clocks due (the per-minute fan-out) ---------------------------------

# One statement over every tenant's open leads: a tenant is listed when one of its leads
# has a due dispatch retry, or has passed a threshold's time without that threshold's
# alert in its round. The conditions are those of `_Sweep`'s candidate sets with each
# tenant's policy (its defaults where it has none yet) and without their "a next step is
# scheduled" exclusions: a superset, so a tenant listed may find nothing to fire, and a
# tenant not listed has nothing to fire (tests/leads/test_sla_due.py holds both sides).
_ALERTED = """EXISTS (SELECT 1 FROM leads_slaalert a WHERE a.tenant_id = c.tenant_id
    AND a.lead_id = c.id AND a.threshold = '{threshold}' AND a.round = c.dispatch_round{extra})"""
# The clocks first (a materialised step: the leads past a threshold's time, with each
# tenant's policy), then the alerts probed for those leads only.
_DUE_SQL = f"""
WITH clocks AS MATERIALIZED (
  SELECT l.tenant_id, l.id, l.dispatch_round,
    COALESCE(p.unverified_escalation_hours, %(escalation)s) AS escalation,
    (l.status = 'new' AND l.dispatch_after <= %(now)s) AS retry,
    (l.status = 'new' AND l.owner_id IS NULL AND l.pool_reason <> 'no_candidate'
     AND l.source_grade = 'A'
     AND CASE WHEN l.dispatch_round = 0 THEN l.created_at ELSE l.pooled_at END
       <= %(now)s - make_interval(mins => COALESCE(p.a_unassigned_minutes, %(a_unassigned)s))
    ) AS a_unassigned,
    (l.status = 'new' AND l.owner_id IS NULL AND l.pool_reason <> 'no_candidate'
     AND CASE WHEN l.dispatch_round = 0 THEN l.created_at ELSE l.pooled_at END
       <= %(now)s - make_interval(mins => COALESCE(p.unassigned_minutes, %(unassigned)s))
    ) AS unassigned,
    (l.status = 'assigned' AND l.verification = ''
     AND l.assigned_at
       <= %(now)s - make_interval(hours => COALESCE(p.unverified_hours, %(unverified)s))
    ) AS unverified_rep,
    -- The reminder came after the assignment: escalated only past this much since it.
    (l.status = 'assigned' AND l.verification = ''
     AND l.assigned_at <= %(now)s - make_interval(hours =>
       COALESCE(p.unverified_escalation_hours, %(escalation)s))
    ) AS unverified_mgr,
    (l.status IN ('assigned', 'valid') AND l.touch_count = 1
     AND l.first_touch_at
       <= %(now)s - make_interval(hours => COALESCE(p.second_touch_hours, %(second_touch)s))
     AND (l.assigned_at IS NULL OR l.first_touch_at >= l.assigned_at)
    ) AS no_second_touch,
    (l.status = 'valid' AND l.verified_at IS NOT NULL
     AND (l.last_touch_at IS NULL OR l.last_touch_at <= GREATEST(l.verified_at, l.assigned_at))
     AND GREATEST(l.verified_at, l.assigned_at)
       <= %(now)s - make_interval(hours => COALESCE(p.no_followup_hours, %(no_followup)s))
    ) AS no_followup,
    COALESCE(p.is_active, %(is_active)s) AS active
  FROM leads_lead l
  JOIN crm_tenant t ON t.id = l.tenant_id AND t.is_active
  LEFT JOIN leads_slapolicy p ON p.tenant_id = l.tenant_id
  WHERE l.status IN ('new', 'assigned', 'valid')
)
SELECT DISTINCT c.tenant_id FROM clocks c
WHERE c.retry OR (c.active AND (
  (c.a_unassigned AND NOT {_ALERTED.format(threshold=SlaThreshold.A_UNASSIGNED, extra="")})
  OR (c.unassigned AND NOT {_ALERTED.format(threshold=SlaThreshold.UNASSIGNED, extra="")})
  OR (c.unverified_rep
      AND NOT {_ALERTED.format(threshold=SlaThreshold.UNVERIFIED_REP, extra="")})
  OR (c.unverified_mgr AND {
    _ALERTED.format(
        threshold=SlaThreshold.UNVERIFIED_REP,
        extra=" AND a.fired_at <= %(now)s - make_interval(hours => c.escalation)",
    )
}
      AND NOT {_ALERTED.format(threshold=SlaThreshold.UNVERIFIED_MANAGER, extra="")})
  OR (c.no_second_touch
      AND NOT {_ALERTED.format(threshold=SlaThreshold.NO_SECOND_TOUCH, extra="")})
  OR (c.no_followup AND NOT {_ALERTED.format(threshold=SlaThreshold.NO_FOLLOWUP, extra="")})
))
ORDER BY c.tenant_id
"""  # noqa: S608 — the thresholds' names only


def sla_due_tenants(now: datetime | None = None) -> list[int]:
    """The active tenants whose SLA sweep may have something to do now (a superset: see
    _DUE_SQL), in id order. A platform job that reads tenant ids only; each tenant's
    sweep then runs inside its own tenant. One statement whatever the number of tenants:
    the per-minute fan-out queues a sweep for these only, not for every tenant."""
    from django.db import connections

    from crm.tenancy import PLATFORM, all_tenants_context

    if current_tenant() is not None:
        raise RuntimeError("the SLA fan-out runs outside any tenant")
    now = now or timezone.now()
    params = {
        "now": now,
        **{
            name: SlaPolicy._meta.get_field(field).get_default()
            for name, field in (
                ("is_active", "is_active"),
                ("a_unassigned", "a_unassigned_minutes"),
                ("unassigned", "unassigned_minutes"),
                ("unverified", "unverified_hours"),
                ("escalation", "unverified_escalation_hours"),
                ("second_touch", "second_touch_hours"),
                ("no_followup", "no_followup_hours"),
            )
        },
    }
    with all_tenants_context(), connections[PLATFORM].cursor() as cursor:
        cursor.execute(_DUE_SQL, params)
        return [row[0] for row in cursor.fetchall()]


# --- firing --------------------------------------------------------------------------------


def fire(threshold: str, candidates: QuerySet, now: datetime) -> list[tuple[int, int]]:
    """Insert one SlaAlert per candidate lead in its current dispatch round, skipping
    those already fired; returns (lead_id, round) of the rows this statement inserted.

    One statement for any number of leads. A row
    another transaction is inserting at the same moment makes this one wait for it and
    then skip it: of two concurrent sweeps exactly one gets each lead back.
    """
    inner = candidates.order_by().values("tenant_id", "id", "dispatch_round", "owner_id")
    select_sql, select_params = inner.query.sql_with_params()
    qn = connection.ops.quote_name
    new_uuid = "gen_random_uuid()"
    columns = ", ".join(
        qn(c)
        for c in ("tenant_id", "public_id", "lead_id", "threshold", "round", "owner_id", "fired_at")
    )
    sql = (
        f"INSERT INTO {qn(SlaAlert._meta.db_table)} ({columns})"  # noqa: S608 (names only)
        f" SELECT c.tenant_id, {new_uuid}, c.id, %s, c.dispatch_round, c.owner_id, %s"
        f" FROM ({select_sql}) c WHERE 1 = 1 ORDER BY c.id"
        f" ON CONFLICT ({qn('tenant_id')}, {qn('lead_id')}, {qn('threshold')}, {qn('round')})"
        f" DO NOTHING RETURNING {qn('lead_id')}, {qn('round')}"
    )
    params = [threshold, connection.ops.adapt_datetimefield_value(now), *select_params]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return sorted(cursor.fetchall())


def _link(lead: Lead) -> str:
    return reverse("leads:detail", args=[lead.public_id])


class _Sweep:
    """One run of the thresholds for one tenant at one instant."""

    def __init__(self, tenant, policy: SlaPolicy, now: datetime):
        from crm.notify import managers_of

        self.tenant = tenant
        self.policy = policy
        self.now = now
        self._managers_qs = managers_of(self.tenant)
        self._managers: list[Membership] | None = None

    @property
    def managers(self) -> list[Membership]:
        if self._managers is None:
            self._managers = list(self._managers_qs)
        return self._managers

    # -- the candidate sets --

    def _unassigned(self, minutes: int) -> Q:
        since = self.now - timedelta(minutes=minutes)
        # A lead the engine pooled because nobody could take it was told to the managers
        # then (lead.pooled, "assign it by hand"): one notice per pooled lead.
        return (
            Q(status=LeadStatus.NEW, owner__isnull=True)
            & ~Q(pool_reason=PoolReason.NO_CANDIDATE)
            & (
                Q(dispatch_round=0, created_at__lte=since)
                | Q(dispatch_round__gt=0, pooled_at__lte=since)
            )
        )

    def a_unassigned(self) -> int:
        minutes = self.policy.a_unassigned_minutes
        rows = Lead.objects.filter(self._unassigned(minutes), source_grade=SourceGrade.A)
        return self._fired(
            SlaThreshold.A_UNASSIGNED,
            rows,
            lambda lead: (self.managers, {"lead": str(lead), "minutes": minutes}),
        )

    def unassigned(self) -> int:
        minutes = self.policy.unassigned_minutes
        rows = Lead.objects.filter(self._unassigned(minutes))
        return self._fired(
            SlaThreshold.UNASSIGNED,
            rows,
            lambda lead: (self.managers, {"lead": str(lead), "minutes": minutes}),
        )

    def unverified_rep(self) -> int:
        hours = self.policy.unverified_hours
        # Fired even for a lead whose owner's seat is gone (nobody to remind): the
        # managers' escalation follows the reminder, so it must exist.
        rows = Lead.objects.filter(
            status=LeadStatus.ASSIGNED,
            verification="",
            assigned_at__lte=self.now - timedelta(hours=hours),
        )

        def message(lead):
            if lead.first_touch_at is None:
                # Untouched past the window: a late first touch, once per lead.
                lead_mark_late(lead, now=self.now)
            return [lead.owner], {"lead": str(lead), "hours": hours}

        return self._fired(SlaThreshold.UNVERIFIED_REP, rows, message)

    def unverified_manager(self) -> int:
        hours = self.policy.unverified_escalation_hours
        reminded = SlaAlert.objects.filter(
            lead=OuterRef("pk"),
            threshold=SlaThreshold.UNVERIFIED_REP,
            round=OuterRef("dispatch_round"),
            fired_at__lte=self.now - timedelta(hours=hours),
        )
        rows = Lead.objects.filter(Exists(reminded), status=LeadStatus.ASSIGNED, verification="")
        total = self.policy.unverified_hours + hours
        return self._fired(
            SlaThreshold.UNVERIFIED_MANAGER,
            rows,
            lambda lead: (self.managers, {"lead": str(lead), "hours": total, "rep": _rep(lead)}),
        )

    def _next_step(self, due_from) -> Exists:
        """The owner has an open next step on the lead (the verdict's, or a follow-up's)
        due on `due_from` or later (a date in the tenant's time zone)."""
        from customers.models import Interaction

        return Exists(
            Interaction.objects.filter(
                lead=OuterRef("pk"),
                by=OuterRef("owner"),
                next_done_at__isnull=True,
                next_action_due__gte=due_from,
            )
        )

    def no_followup(self) -> int:
        hours = self.policy.no_followup_hours
        # Measured from the verdict, or from the hand-over when the lead came to its owner
        # verified (returned to the pool, reassigned): a new owner gets the same time.
        since = Greatest("verified_at", "assigned_at")
        rows = (
            Lead.objects.alias(since=since)
            .filter(
                Q(last_touch_at__isnull=True) | Q(last_touch_at__lte=F("since")),
                status=LeadStatus.VALID,
                verified_at__isnull=False,
                since__lte=self.now - timedelta(hours=hours),
            )
            # A next step that is not overdue yet is the follow-up, scheduled.
            .exclude(self._next_step(tenant_today(self.now)))
        )
        return self._fired(
            SlaThreshold.NO_FOLLOWUP,
            rows,
            lambda lead: (
                [lead.owner, *self.managers],
                {"lead": str(lead), "hours": hours, "rep": _rep(lead)},
            ),
        )

    def no_second_touch(self) -> int:
        rows = Lead.objects.filter(self._one_touch())
        fired = fire(SlaThreshold.NO_SECOND_TOUCH, rows, self.now)
        count = 0
        for lead_id, round_ in fired:
            if self._return(lead_id, round_):
                count += 1
        return count

    def _one_touch(self) -> Q:
        # Only a touch in this round counts: a lead handed over verified keeps its touches
        # (the counters are per lead), which belong to the previous owner.
        window = timedelta(hours=self.policy.second_touch_hours)
        # A next step the owner scheduled (the verdict's visit, a follow-up's action) is
        # the lead's next touch: it is returned only once that step is `window` overdue.
        scheduled = self._next_step(tenant_today(self.now - window))
        return (
            Q(
                status__in=[LeadStatus.ASSIGNED, LeadStatus.VALID],
                touch_count=1,
                first_touch_at__lte=self.now - window,
            )
            & (Q(assigned_at__isnull=True) | Q(first_touch_at__gte=F("assigned_at")))
            & ~Q(scheduled)
        )

    def _return(self, lead_id: int, round_: int) -> bool:
        alert = SlaAlert.objects.filter(
            lead_id=lead_id, threshold=SlaThreshold.NO_SECOND_TOUCH, round=round_
        )
        try:
            with transaction.atomic():
                lead = (
                    Lead.objects.select_for_update(of=("self",))
                    .select_related("channel", "tenant", "owner__user")
                    .filter(self._one_touch(), pk=lead_id, dispatch_round=round_)
                    .first()
                )
                if lead is None:  # touched or moved since the insert's snapshot
                    alert.delete()
                    return False
                self._timeline([(lead_id, round_)], SlaThreshold.NO_SECOND_TOUCH)
                lead_return_to_pool(
                    tenant=self.tenant,
                    acting_member=None,
                    lead=lead,
                    reason=PoolReason.NO_SECOND_TOUCH,
                    now=self.now,
                )
        except Exception:
            # Rolled back to the savepoint; drop the alert so the next sweep tries again.
            logger.exception("returning lead %s to the pool failed", lead_id)
            alert.delete()
            return False
        return True

    # -- recording and telling --

    def _fired(self, threshold: str, candidates: QuerySet, message) -> int:
        """Fire `threshold` for the candidates; for each lead this sweep fired it for,
        a timeline entry and `message(lead) -> (recipients, params)` notified."""
        fired = fire(threshold, candidates, self.now)
        if not fired:
            return 0
        self._timeline(fired, threshold)
        event = EVENTS[threshold]
        ids = [lead_id for lead_id, _round in fired]
        for start in range(0, len(ids), 500):
            # Loaded chunk by chunk, not iterated: telling writes rows.
            chunk = Lead.objects.filter(pk__in=ids[start : start + 500])
            for lead in chunk.select_related("owner__user").order_by("pk"):
                recipients, params = message(lead)
                _notify(self.tenant, event, recipients, params, lead)
        return len(fired)

    def _timeline(self, fired: list[tuple[int, int]], threshold: str) -> None:
        LeadEvent.objects.bulk_create(
            [
                LeadEvent(
                    tenant=self.tenant,
                    lead_id=lead_id,
                    kind=LeadEventKind.SLA,
                    at=self.now,
                    data={"threshold": str(threshold), "round": round_},
                )
                for lead_id, round_ in fired
            ],
            batch_size=500,
        )


def _rep(lead: Lead) -> str:
    return lead.owner.display_name if lead.owner_id else "—"


def _notify(tenant, event: str, recipients, params: dict, lead: Lead) -> None:
    from crm.notify import notify

    recipients = [r for r in recipients if r is not None]
    if recipients:
        notify(event=event, recipients=recipients, params=params, link=_link(lead), tenant=tenant)
