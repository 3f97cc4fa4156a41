"""The database path of assignment (F8–F13): dispatching a lead, and the hand-overs a
person or a clock makes.

`dispatch()` loads the rep states (leads.assignment.reps), calls the pure `decide()`
(leads.assignment.engine) under a per-tenant lock, and writes the decision, the lead, the
fairness ledger and the timeline, telling the chosen rep and emitting `lead.assigned`
(crm.events) for every hand-over. `dispatch_new_lead()` is the intake's call;
`dispatch_due()` retries the leads whose wait is over (the SLA sweep).

The services (the write contract, crm.services): `lead_return_to_pool()` (the SLA sweep's
"no second touch", a manager's manual return) and `lead_reassign()` (a manager's choice).
"""

from __future__ import annotations

import logging
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
from leads import events as lead_events
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

logger = logging.getLogger(__name__)

# --- the fairness ledger -------------------------------------------------------------------


def _ledger_add(day: date, shares: dict[int, float], chosen_id: int | None) -> None:
    """Add one decision to the day's ledger rows in one statement (an upsert per rep)."""
    rows = {membership_id: [share, 0] for membership_id, share in shares.items()}
    if chosen_id is not None:
        rows.setdefault(chosen_id, [0.0, 0])[1] = 1
    _ledger_upsert(day, rows)


def _ledger_upsert(day: date, rows: dict[int, list]) -> None:
    """Add {membership id: [expected, received]} to the day's ledger rows, one statement."""
    if not rows:
        return
    tenant_id = current_tenant().pk
    table = RepLedgerDay._meta.db_table
    values, params = [], []
    for membership_id, (expected, received) in sorted(rows.items()):
        values.append("(%s, %s, %s, %s, %s, %s)")
        params += [tenant_id, uuid.uuid4(), membership_id, day, expected, received]
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


def _record(lead: Lead, **kwargs) -> AssignmentDecision:
    decision = _decision(lead, **kwargs)
    decision.save(force_insert=True)
    return decision


def _decision(
    lead: Lead,
    *,
    kind: str,
    outcome: str,
    policy: AssignmentPolicy | None,
    now: datetime,
    result: Outcome | None = None,
    chosen: Membership | None = None,
    chosen_id: int | None = None,
    previous_id: int | None = None,
    reason: str = "",
    actor=None,
) -> AssignmentDecision:
    """The decision row, not saved yet (`_record` saves it; a batch inserts many at once).
    The chosen rep: `chosen`, or only their id (`chosen_id`)."""
    who = {"chosen": chosen} if chosen is not None else {"chosen_id": chosen_id}
    return AssignmentDecision(
        tenant_id=lead.tenant_id,
        lead=lead,
        policy=policy,
        kind=kind,
        outcome=outcome,
        **who,
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
    """Make `member` the lead's owner (`_take`, and their profile's last assignment)."""
    _take(lead, member.pk, now)
    lead.owner = member
    RepProfile.objects.filter(membership=member).update(last_assigned_at=now)


def _take(lead: Lead, member_id: int, now: datetime) -> None:
    """The lead's side of a hand-over to `member_id`, in memory. A lead with a verdict
    keeps it, its status, its customer and its touches: the new owner follows a verified
    lead up (no 24 h verification clock, no new first touch). An unverified lead handed to
    someone else starts their clocks afresh (first touch on time? second touch within
    72 h?); the earlier touches stay on the timeline."""
    if lead.verification:
        lead.status = (
            LeadStatus.VALID if lead.verification in Verification.valid() else LeadStatus.INVALID
        )
    else:
        if lead.dispatch_round and lead.owner_id != member_id:
            lead.first_touch_at = lead.last_touch_at = lead.first_touch_late = None
            lead.touch_count = 0
        lead.status = LeadStatus.ASSIGNED
    lead.owner_id = member_id
    lead.assigned_at = now
    lead.dispatch_round += 1
    lead.dispatch_after = None
    lead.pooled_at = None
    lead.pool_reason = ""


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
    result = _choose(facts_of(lead, tags), reps, params, rules, kind=kind, now=now, exclude=exclude)
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
        # The SLA sweep's retry, the return to the pool's new owner (automation's trigger).
        lead_events.emit_lead(lead_events.ASSIGNED, lead, at=now)
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


def _choose(facts, reps, params, rules, *, kind, now, exclude=frozenset()) -> Outcome:
    """The decision among `reps`; a retry or a return (or a policy without a wait) drops
    the optional criteria one by one until someone qualifies."""
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
    return result


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
            lead_events.emit_lead(lead_events.ASSIGNED, lead, at=now)
            _notify("lead.revisit", [owner], {"lead": str(lead)}, lead)
            return decision
    lead.owner, lead.status = None, LeadStatus.NEW
    return dispatch(lead, now=now, tags=tags)


def _take_over_verdict(lead: Lead, original: Lead, now: datetime) -> None:
    _timeline(lead, LeadEventKind.VERIFIED, now, **_verdict_taken_over(lead, original, now))


def _verdict_taken_over(lead: Lead, original: Lead, now: datetime) -> dict:
    """A revisit of a lead verified valid is the same customer asking again: it takes over
    the verdict, the customer and the contact at intake (verified by nobody, now), so
    nobody is asked to verify it again and it never counts as open load. Its owner sees
    it on the board as a revisit to follow up. Returns the timeline entry's data."""
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
    return data


class NewLeads:
    """The dispatch of an intake batch's new leads: the decisions `dispatch_new_lead()`
    makes, one lead after the other, taken in memory with the policy and the reps read
    once, then written in a few statements.

    The caller holds the tenant's assignment lock from before the first `add()` until its
    transaction ends (the intake takes it when it claims the events). For each new lead,
    in order, `add(lead, tags)` before the lead is inserted: it sets the owner, status,
    score and clocks on it and returns the timeline entries (kind, data) to write after
    the intake's own. Once the leads are inserted, `write()` stores the decisions, the
    ledger, the reps' last assignment and the notices.
    """

    def __init__(self, now: datetime):
        self.now = now
        self.policy = policy_active()
        self.params = Params.of(self.policy)
        self.rules = policy_rules(self.policy)
        self.decisions: list[AssignmentDecision] = []
        self.ledger: dict[int, list] = {}  # membership id → [expected, received]
        self.taken: set[int] = set()  # reps whose last assignment is now
        self.notices: list[tuple] = []  # (event, recipients, params, lead)
        self._owners: dict[int, Membership | None] = {}
        try:
            self.reps = rep_states(self.params, now)
        except Exception:  # bad profile data: every lead of the batch goes to the pool
            logger.exception("the reps of an intake batch could not be read")
            self.reps = None
        self._by_id = {r.membership_id: r for r in self.reps or ()}

    def add(self, lead: Lead, tags: list[str]) -> list[tuple[str, dict]]:
        """Decide for one new lead (not saved yet; `revisit_of`, if any, is). If the
        assignment fails, the lead goes to the pool with the reason, for a manager."""
        before = {f.attname: getattr(lead, f.attname) for f in Lead._meta.concrete_fields}
        try:
            if self.reps is None:
                raise RuntimeError("no rep states")
            return self._add(lead, tags)
        except Exception:
            logger.exception("assignment of new lead %s failed", lead.public_id)
            for name, value in before.items():
                setattr(lead, name, value)
            lead.owner_id, lead.status = None, LeadStatus.NEW
            lead.pooled_at, lead.pool_reason = self.now, PoolReason.FAILED
            return [(LeadEventKind.POOLED, {"reason": PoolReason.FAILED})]

    def _add(self, lead: Lead, tags: list[str]) -> list[tuple[str, dict]]:
        now, params = self.now, self.params
        entries = []
        original = lead.revisit_of
        if original is not None and original.verification in Verification.valid():
            entries.append((LeadEventKind.VERIFIED, _verdict_taken_over(lead, original, now)))
        facts = facts_of(lead, tags)
        owner = self._owner(original.owner_id) if original is not None else None
        if owner is not None:
            # Scored like any lead (the board ranks a revisit to verify by it), no choice made.
            score, breakdown = score_lead(facts, self.rules, params.base_score, now)
            lead.score = score
            _take(lead, owner.pk, now)
            result = Outcome(chosen=None, lead_score=score, breakdown=breakdown, seed=None)
            decision = self._decide(lead, DecisionKind.REVISIT, DecisionOutcome.ASSIGNED, result)
            decision.chosen = owner
            entries.append(self._entry(LeadEventKind.ASSIGNED, decision, owner=owner.display_name))
            self.notices.append(("lead.revisit", [owner], {"lead": str(lead)}, lead))
            self._taken(lead, owner.pk)
            return entries
        lead.owner_id, lead.status = None, LeadStatus.NEW
        result = _choose(facts, self.reps, params, self.rules, kind=DecisionKind.AUTO, now=now)
        lead.score = result.lead_score
        chosen = result.chosen
        if chosen is not None:
            _take(lead, chosen.membership_id, now)
            decision = self._decide(lead, DecisionKind.AUTO, DecisionOutcome.ASSIGNED, result)
            decision.chosen_id = chosen.membership_id
            entries.append(self._entry(LeadEventKind.ASSIGNED, decision, owner=chosen.name))
            if lead.verification:
                notice = ("lead.assigned_verified", {"lead": str(lead)})
            else:
                notice = ("lead.assigned", {"lead": str(lead), "score": lead.score})
            self.notices.append((notice[0], [chosen.membership_id], notice[1], lead))
            for membership_id, share in ledger_shares(result.eligible).items():
                self.ledger.setdefault(membership_id, [0.0, 0])[0] += share
                self._by_id[membership_id].expected += share
            self.ledger.setdefault(chosen.membership_id, [0.0, 0])[1] += 1
            chosen.received += 1
            self._taken(lead, chosen.membership_id)
            return entries
        if params.relax_after_minutes > 0:
            lead.dispatch_after = now + timedelta(minutes=params.relax_after_minutes)
            decision = self._decide(lead, DecisionKind.AUTO, DecisionOutcome.WAITING, result)
            entries.append(
                self._entry(LeadEventKind.WAITING, decision, minutes=params.relax_after_minutes)
            )
            return entries
        lead.dispatch_after = None
        lead.pooled_at, lead.pool_reason = now, PoolReason.NO_CANDIDATE
        decision = self._decide(lead, DecisionKind.AUTO, DecisionOutcome.POOLED, result)
        entries.append(self._entry(LeadEventKind.POOLED, decision, reason=PoolReason.NO_CANDIDATE))
        label = PoolReason(PoolReason.NO_CANDIDATE).label
        self.notices.append(("lead.pooled", None, {"lead": str(lead), "reason": label}, lead))
        return entries

    def _decide(self, lead, kind, outcome, result) -> AssignmentDecision:
        decision = _decision(
            lead, kind=kind, outcome=outcome, policy=self.policy, now=self.now, result=result
        )
        self.decisions.append(decision)
        return decision

    def _entry(self, kind, decision, **data) -> tuple[str, dict]:
        return kind, {**data, "decision": str(decision.public_id)}

    def _owner(self, membership_id: int | None) -> Membership | None:
        """The first lead's owner when still an active member (a revisit goes to them)."""
        if membership_id is None:
            return None
        if membership_id not in self._owners:
            self._owners[membership_id] = (
                Membership.objects.active()
                .filter(pk=membership_id, tenant_id=current_tenant().pk)
                .select_related("user")
                .first()
            )
        return self._owners[membership_id]

    def _taken(self, lead: Lead, membership_id: int) -> None:
        """The rep's state after the hand-over, as the next lead of the batch sees it."""
        self.taken.add(membership_id)
        rep = self._by_id.get(membership_id)
        if rep is not None:
            rep.last_assigned_at = self.now
            if lead.status == LeadStatus.ASSIGNED and not lead.verification:
                rep.open_count += 1  # Lead.objects.open_load()

    def write(self) -> None:
        """The rows of the decisions, once the leads are inserted."""
        AssignmentDecision.objects.bulk_create(self.decisions)
        _ledger_upsert(tenant_today(self.now), self.ledger)
        if self.taken:
            RepProfile.objects.filter(membership_id__in=sorted(self.taken)).update(
                last_assigned_at=self.now
            )
        wanted = {
            r
            for _, recipients, _, _ in self.notices
            for r in recipients or ()
            if isinstance(r, int)
        }
        members = {}
        if wanted:
            members = {
                m.pk: m
                for m in Membership.objects.filter(
                    pk__in=wanted, tenant_id=current_tenant().pk
                ).select_related("user")
            }
        managers = None
        for event, recipients, params, lead in self.notices:
            if recipients is None:
                if managers is None:
                    managers = notifications.managers()
                recipients = managers
            else:
                recipients = [members.get(r) if isinstance(r, int) else r for r in recipients]
            _notify(event, [r for r in recipients if r is not None], params, lead)


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
        lead_events.emit_lead(lead_events.ASSIGNED, lead, at=now)
        recipients = [to] + ([previous] if previous and previous.pk != to.pk else [])
        _notify("lead.reassigned", recipients, {"lead": str(lead), "owner": to.display_name}, lead)
    return decision
