"""The database path of assignment (F8–F13): dispatching a lead, and the hand-overs a
person or a clock makes.

`dispatch()` loads the rep states (leads.assignment.reps), calls the pure `decide()`
(leads.assignment.engine) under a per-tenant lock, and writes the decision, the lead, the
fairness ledger and the timeline, telling the chosen rep. `dispatch_new_lead()` is the
intake's call; `dispatch_due()` retries the leads whose wait is over (the SLA sweep).

The services (the write contract, crm.services): `lead_return_to_pool()` (the SLA sweep's
"no second touch", a manager's manual return) and `lead_reassign()` (a manager's choice).
"""

from __future__ import annotations

import secrets
import uuid
from datetime import date, datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from crm import roles
from crm.audit import audit
from crm.models import Membership, Tenant
from crm.services import actor_user, check_tenant
from crm.tenancy import advisory_lock, current_tenant, tenant_today
from leads import notifications
from leads.assignment.engine import RELAX_ORDER, Outcome, Params, decide, facts_of, ledger_shares
from leads.assignment.policy import policy_active, policy_rules
from leads.assignment.reps import rep_states
from leads.assignment.scoring import score_lead
from leads.models import (
    AssignmentDecision,
    AssignmentPolicy,
    DecisionKind,
    DecisionOutcome,
    Lead,
    LeadEvent,
    LeadEventKind,
    LeadStatus,
    PoolReason,
    RepLedgerDay,
    RepProfile,
    Verification,
)

# --- the fairness ledger -------------------------------------------------------------------


def _ledger_add(day: date, shares: dict[int, float], chosen_id: int | None) -> None:
    """Add to the day's ledger rows in one statement (an upsert per rep)."""
    rows = dict(shares)
    if chosen_id is not None:
        rows.setdefault(chosen_id, 0.0)
    if not rows:
        return
    tenant_id = current_tenant().pk
    table = RepLedgerDay._meta.db_table
    values, params = [], []
    for membership_id, share in rows.items():
        values.append("(%s, %s, %s, %s, %s, %s)")
        params += [
            tenant_id,
            uuid.uuid4(),
            membership_id,
            day,
            share,
            1 if membership_id == chosen_id else 0,
        ]
    sql = (
        f"INSERT INTO {table} (tenant_id, public_id, membership_id, day, expected, received)"  # noqa: S608
        f" VALUES {', '.join(values)}"
        " ON CONFLICT (tenant_id, membership_id, day) DO UPDATE SET"
        f" expected = {table}.expected + excluded.expected,"
        f" received = {table}.received + excluded.received"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


# --- dispatching ----------------------------------------------------------------------------


def _notify(event: str, recipients, params: dict, lead: Lead | None = None) -> None:
    notifications.send(event, recipients, params, lead)


def _record(
    lead: Lead,
    *,
    kind: str,
    outcome: str,
    policy: AssignmentPolicy | None,
    now: datetime,
    result: Outcome | None = None,
    chosen: Membership | None = None,
    previous_id: int | None = None,
    reason: str = "",
    actor=None,
) -> AssignmentDecision:
    return AssignmentDecision.objects.create(
        tenant_id=lead.tenant_id,
        lead=lead,
        policy=policy,
        kind=kind,
        outcome=outcome,
        chosen=chosen,
        previous_owner_id=previous_id,
        decided_at=now,
        seed=result.seed if result else None,
        lead_score=result.lead_score if result else lead.score,
        score_breakdown=result.breakdown if result else [],
        candidates=result.candidates if result else [],
        relaxed=list(result.relaxed) if result else [],
        hot_zone=result.hot_zone if result else False,
        reason=reason,
        actor=actor,
    )


def _hand_over(lead: Lead, member: Membership, now: datetime) -> None:
    """Make `member` the lead's owner. A lead with a verdict keeps it, its status, its
    customer and its touches: the new owner follows a verified lead up (no 24 h
    verification clock, no new first touch). An unverified lead handed to someone else
    starts their clocks afresh (first touch on time? second touch within 72 h?); the
    earlier touches stay on the timeline."""
    if lead.verification:
        lead.status = (
            LeadStatus.VALID if lead.verification in Verification.valid() else LeadStatus.INVALID
        )
    else:
        if lead.dispatch_round and lead.owner_id != member.pk:
            lead.first_touch_at = lead.last_touch_at = lead.first_touch_late = None
            lead.touch_count = 0
        lead.status = LeadStatus.ASSIGNED
    lead.owner = member
    lead.assigned_at = now
    lead.dispatch_round += 1
    lead.dispatch_after = None
    lead.pooled_at = None
    lead.pool_reason = ""
    RepProfile.objects.filter(membership=member).update(last_assigned_at=now)


def dispatch(
    lead: Lead,
    *,
    kind: str = DecisionKind.AUTO,
    exclude: frozenset = frozenset(),
    now: datetime | None = None,
    previous_id: int | None = None,
    tags=None,
) -> AssignmentDecision:
    """Decide and hand over one unassigned lead; or make it wait; or pool it.

    The first attempt with nobody eligible sets `dispatch_after` (the wait); the retry
    (`kind=RETRY`, from `dispatch_due`) drops the optional criteria one by one and pools
    the lead, telling the managers, when still nobody qualifies.
    """
    now = now or timezone.now()
    advisory_lock("assign", lead.tenant_id)  # one decision at a time per tenant
    policy = policy_active()
    params = Params.of(policy)
    rules = policy_rules(policy)
    reps = rep_states(params, now)
    facts = facts_of(lead, tags)
    seed = secrets.randbits(63)
    steps = [()]
    if kind in (DecisionKind.RETRY, DecisionKind.RETURN) or params.relax_after_minutes == 0:
        steps += [RELAX_ORDER[: i + 1] for i in range(len(RELAX_ORDER))]
    result = None
    for relaxed in steps:
        result = decide(
            facts, reps, params, rules, now=now, seed=seed, relaxed=relaxed, exclude=exclude
        )
        if result.chosen is not None:
            break
    lead.score = result.lead_score
    if result.chosen is not None:
        member = result.chosen.membership or (
            Membership.objects.select_related("user").get(pk=result.chosen.membership_id)
        )
        _hand_over(lead, member, now)
        lead.save()
        _ledger_add(tenant_today(now), ledger_shares(result.eligible), member.pk)
        decision = _record(
            lead,
            kind=kind,
            outcome=DecisionOutcome.ASSIGNED,
            policy=policy,
            now=now,
            result=result,
            chosen=member,
            previous_id=previous_id,
        )
        _timeline(lead, LeadEventKind.ASSIGNED, now, owner=member.display_name, decision=decision)
        if lead.verification:
            _notify("lead.assigned_verified", [member], {"lead": str(lead)}, lead)
        else:
            _notify("lead.assigned", [member], {"lead": str(lead), "score": lead.score}, lead)
        return decision
    if kind == DecisionKind.AUTO and params.relax_after_minutes > 0:
        lead.dispatch_after = now + timedelta(minutes=params.relax_after_minutes)
        lead.save()
        decision = _record(
            lead, kind=kind, outcome=DecisionOutcome.WAITING, policy=policy, now=now, result=result
        )
        _timeline(
            lead, LeadEventKind.WAITING, now, minutes=params.relax_after_minutes, decision=decision
        )
        return decision
    return _pool(lead, PoolReason.NO_CANDIDATE, now=now, policy=policy, result=result, kind=kind)


def _close_steps(lead: Lead, owner_id: int | None, now: datetime) -> None:
    """The rep the lead leaves: their open next steps on it close with it (`next_done_at`),
    so the lead leaves their board; the new owner sets their own."""
    from customers.models import Interaction

    if owner_id is not None:
        Interaction.objects.filter(lead=lead, by_id=owner_id, next_done_at__isnull=True).update(
            next_done_at=now
        )


def _pool(lead, reason, *, now, policy, result=None, kind=DecisionKind.AUTO, actor=None, note=""):
    _close_steps(lead, lead.owner_id, now)
    lead.owner = None
    lead.status = LeadStatus.NEW
    lead.dispatch_after = None
    lead.pooled_at = now
    lead.pool_reason = reason
    lead.save()
    decision = _record(
        lead,
        kind=kind,
        outcome=DecisionOutcome.POOLED,
        policy=policy,
        now=now,
        result=result,
        reason=note,
        actor=actor,
    )
    _timeline(lead, LeadEventKind.POOLED, now, reason=reason, decision=decision, actor=actor)
    if reason not in (PoolReason.MANUAL, PoolReason.NO_SECOND_TOUCH):
        # A return is dispatched again at once (lead.returned tells who it concerns);
        # if nobody can take it, dispatch pools it again with NO_CANDIDATE and tells.
        _notify(
            "lead.pooled",
            notifications.managers(),
            {"lead": str(lead), "reason": PoolReason(reason).label},
            lead,
        )
    return decision


def _timeline(lead, kind, now, *, decision=None, actor=None, **data) -> None:
    if decision is not None:
        data["decision"] = str(decision.public_id)
    LeadEvent.objects.create(
        tenant_id=lead.tenant_id, lead=lead, kind=kind, at=now, data=data, actor=actor
    )


def dispatch_new_lead(
    lead: Lead, *, now: datetime | None = None, tags=None
) -> AssignmentDecision | None:
    """The intake's call, in the worker task that created the lead (F11: within seconds).

    A revisit goes to the first lead's owner when that rep is still active (F5); any
    other lead is dispatched."""
    now = now or timezone.now()
    original = lead.revisit_of
    if original is not None and original.verification in Verification.valid():
        _take_over_verdict(lead, original, now)
    if original is not None and original.owner_id:
        owner = (
            Membership.objects.active()
            .filter(pk=original.owner_id, tenant_id=lead.tenant_id)
            .select_related("user")
            .first()
        )
        if owner is not None:
            policy = policy_active()
            # Scored like any lead (the board ranks a revisit to verify by it), no choice made.
            params = Params.of(policy)
            score, breakdown = score_lead(
                facts_of(lead, tags), policy_rules(policy), params.base_score, now
            )
            lead.score = score
            _hand_over(lead, owner, now)
            lead.save()
            decision = _record(
                lead,
                kind=DecisionKind.REVISIT,
                outcome=DecisionOutcome.ASSIGNED,
                policy=policy,
                now=now,
                result=Outcome(chosen=None, lead_score=score, breakdown=breakdown, seed=None),
                chosen=owner,
            )
            _timeline(
                lead, LeadEventKind.ASSIGNED, now, owner=owner.display_name, decision=decision
            )
            _notify("lead.revisit", [owner], {"lead": str(lead)}, lead)
            return decision
    lead.owner, lead.status = None, LeadStatus.NEW
    return dispatch(lead, now=now, tags=tags)


def _take_over_verdict(lead: Lead, original: Lead, now: datetime) -> None:
    """A revisit of a lead verified valid is the same customer asking again: it takes over
    the verdict, the customer and the contact at intake (verified by nobody, now), so
    nobody is asked to verify it again and it never counts as open load. Its owner sees
    it on the board as a revisit to follow up."""
    lead.verification = original.verification
    lead.verified_at = now
    lead.verified_by = None
    lead.customer_id, lead.contact_id = original.customer_id, original.contact_id
    data = {
        "outcome": original.verification,
        "inherited_from": str(original.public_id),
        "original_label": str(original),
    }
    if original.customer_id is not None:
        data.update(customer=str(original.customer.public_id), customer_name=original.customer.name)
    _timeline(lead, LeadEventKind.VERIFIED, now, **data)


def dispatch_due(now: datetime | None = None, limit: int = 500) -> int:
    """Retry the leads whose wait is over (beat, via the SLA sweep); returns how many."""
    now = now or timezone.now()
    ids = list(
        Lead.objects.filter(dispatch_after__lte=now, status=LeadStatus.NEW)
        .order_by("dispatch_after")
        .values_list("pk", flat=True)[:limit]
    )
    done = 0
    for lead_id in ids:
        with transaction.atomic():
            lead = (
                Lead.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("channel", "tenant")
                .filter(pk=lead_id, dispatch_after__lte=now, status=LeadStatus.NEW)
                .first()
            )
            if lead is None:
                continue
            dispatch(lead, kind=DecisionKind.RETRY, now=now)
            done += 1
    return done


def lead_return_to_pool(
    *,
    tenant: Tenant,
    acting_member: Membership | None,
    lead: Lead,
    reason: str,
    note: str = "",
    now: datetime | None = None,
) -> AssignmentDecision:
    """Take the lead from its owner (F13) and dispatch it again to someone else; a manual
    return (`PoolReason.MANUAL`, a manager's, audited) leaves it in the pool for a manager
    to hand out. `note`: the manager's words, kept with the decision."""
    check_tenant(tenant, lead, acting_member)
    now = now or timezone.now()
    actor = actor_user(acting_member)
    with transaction.atomic():
        previous = lead.owner
        policy = policy_active()
        decision = _pool(
            lead, reason, now=now, policy=policy, kind=DecisionKind.RETURN, actor=actor, note=note
        )
        if reason == PoolReason.MANUAL:
            audit(
                tenant=tenant,
                actor=actor,
                action="lead.returned_to_pool",
                obj=lead,
                changes={
                    "owner": [str(previous) if previous else None, None],
                    "reason": [None, note],
                },
            )
            return decision
        exclude = frozenset({previous.pk}) if previous is not None else frozenset()
        decision = dispatch(
            lead,
            kind=DecisionKind.RETURN,
            exclude=exclude,
            now=now,
            previous_id=previous.pk if previous else None,
        )
        if previous is not None:
            # One notice per return for the managers: this one when the lead went on to
            # another rep; when nobody could take it, dispatch told them it is in the pool.
            told = notifications.managers() if decision.outcome == DecisionOutcome.ASSIGNED else []
            _notify("lead.returned", [previous, *told], {"lead": str(lead)}, lead)
    return decision


def lead_reassign(
    *,
    tenant: Tenant,
    acting_member: Membership | None,
    lead: Lead,
    to: Membership,
    reason: str,
    now: datetime | None = None,
) -> AssignmentDecision:
    """A manager hands the lead to a rep of their choosing (F13), with a reason; audited."""
    check_tenant(tenant, lead, to, acting_member)
    now = now or timezone.now()
    if to.role not in roles.OWNERS or not to.is_active:
        raise ValueError("the new owner must be an active rep of the lead's tenant")
    actor = actor_user(acting_member)
    with transaction.atomic():
        previous = lead.owner
        advisory_lock("assign", tenant.pk)
        policy = policy_active()
        if previous is not None and previous.pk != to.pk:
            _close_steps(lead, previous.pk, now)
        _hand_over(lead, to, now)
        lead.save()
        _ledger_add(tenant_today(now), {}, to.pk)
        decision = _record(
            lead,
            kind=DecisionKind.MANUAL,
            outcome=DecisionOutcome.ASSIGNED,
            policy=policy,
            now=now,
            chosen=to,
            previous_id=previous.pk if previous else None,
            reason=reason,
            actor=actor,
        )
        _timeline(
            lead,
            LeadEventKind.REASSIGNED,
            now,
            decision=decision,
            actor=actor,
            owner=to.display_name,
            previous=previous.display_name if previous else "",
            reason=reason,
        )
        audit(
            tenant=tenant,
            actor=actor,
            action="lead.reassigned",
            obj=lead,
            changes={
                "owner": [str(previous) if previous else None, str(to)],
                "reason": [None, reason],
            },
        )
        recipients = [to] + ([previous] if previous and previous.pk != to.pk else [])
        _notify("lead.reassigned", recipients, {"lead": str(lead), "owner": to.display_name}, lead)
    return decision
