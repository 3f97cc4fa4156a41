"""Weighted assignment (F8–F10, F12): who gets a lead, and why.

Two layers:
- `decide()` is pure: lead facts + rep states + policy parameters + compiled rules →
  an `Outcome` (the chosen rep, every candidate's verdict and score breakdown). The
  worker, the replay (F14) and the benchmarks all call it.
- `dispatch()` and friends are the database path: they load the states, call `decide()`
  under a per-tenant lock, and write the decision, the lead, the ledger and the timeline.

The order of a decision (docs/assignment.md):
1. eligibility: available, not paused (observation zone), open unverified leads below the
   cap, and the region/industry filters the policy demands (optional: dropped in that
   order after the wait);
2. score = lead score × rep fit (1 + weights for industry, region, product lines,
   response speed, deal-cycle preference);
3. hot zone: for a lead scoring at least the threshold, eligible reps without a lead for
   N days go first;
4. fairness: among reps within `best_band` of the top score, the largest shortfall
   (expected − received over the rolling window) wins; ties go to a seeded draw.
"""

from __future__ import annotations

import logging
import random
import secrets
import uuid
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta

from django.db import connection, transaction
from django.db.models import Count, Sum
from django.utils import timezone

from crm import normalize
from crm.models import Membership, Role, Tenant
from crm.tenancy import NoTenantError, advisory_lock, current_tenant, tenant_today
from leads.assignment.scoring import CompiledRule, compile_rules, score_lead
from leads.models import (
    AssignmentDecision,
    AssignmentPolicy,
    CyclePreference,
    DecisionKind,
    DecisionOutcome,
    Lead,
    LeadEvent,
    LeadEventKind,
    LeadStatus,
    PolicyStatus,
    PoolReason,
    RepLedgerDay,
    RepProfile,
    ResponseTier,
    ScoreRule,
    Verification,
    Zone,
    profile_of,
    rep_available,
)

logger = logging.getLogger(__name__)

# Eligibility verdicts, stored in decisions and worded by leads.assignment.explain.
OK = "ok"
UNAVAILABLE = "unavailable"
PAUSED = "paused"
AT_CAPACITY = "at_capacity"
REGION = "region"
INDUSTRY = "industry"
EXCLUDED = "excluded"
# Optional criteria, in the order they are dropped.
RELAX_ORDER = (REGION, INDUSTRY)


# --- the pure layer ------------------------------------------------------------------------


@dataclass(frozen=True)
class Params:
    """A policy's parameters, detached from the database (a draft in a replay, say)."""

    base_score: int = 50
    default_capacity: int = 8
    weight_industry: float = 0.5
    weight_region: float = 0.3
    weight_product: float = 0.3
    weight_response: float = 0.2
    weight_cycle: float = 0.2
    require_region: bool = False
    require_industry: bool = False
    relax_after_minutes: int = 10
    best_band: float = 0.15
    fairness_window_days: int = 30
    hot_zone_days: int = 7
    hot_zone_min_score: int = 70
    observation_late_streak: int = 3
    observation_recovery: int = 5
    late_after_hours: int = 24
    long_cycle_budget: int = 500_000

    @classmethod
    def of(cls, policy: AssignmentPolicy) -> Params:
        return cls(**{f.name: getattr(policy, f.name) for f in fields(cls)})

    @classmethod
    def from_dict(cls, data: dict) -> Params:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(slots=True)
class LeadFacts:
    """What the score rules and the fit read from a lead."""

    id: int
    created_at: datetime
    channel_name: str = ""
    channel_key: str = ""
    channel_type: str = ""
    source_grade: str = ""
    budget: int | None = None
    message: str = ""
    company: str = ""
    industry: str = ""
    province: str = ""
    city: str = ""
    company_size: int | None = None
    in_tender: bool | None = None
    sample_provided: bool | None = None
    tags: frozenset = frozenset()
    is_suspect: bool = False
    is_revisit: bool = False
    first_touch_at: datetime | None = None

    @property
    def text(self) -> str:
        return " ".join(p for p in (self.message, self.company) if p)

    def region_keys(self) -> set[str]:
        return {normalize.region_key(p) for p in (self.province, self.city) if p}


def facts_of(lead: Lead, tags=None) -> LeadFacts:
    channel = lead.channel
    if tags is None:
        tags = lead.tags.values_list("name", flat=True)
    return LeadFacts(
        id=lead.pk,
        created_at=lead.created_at,
        channel_name=channel.name,
        channel_key=channel.key,
        channel_type=channel.type,
        source_grade=lead.source_grade,
        budget=normalize.parse_budget(lead.budget),
        message=lead.message,
        company=lead.company,
        industry=lead.industry,
        province=lead.province,
        city=lead.city,
        company_size=lead.company_size,
        in_tender=lead.in_tender,
        sample_provided=lead.sample_provided,
        tags=frozenset(tags),
        is_suspect=lead.is_suspect,
        is_revisit=lead.revisit_of_id is not None,
        first_touch_at=lead.first_touch_at,
    )


@dataclass(slots=True)
class RepState:
    """One rep as a decision sees them: profile, backlog and ledger."""

    membership_id: int
    name: str
    industries: frozenset = frozenset()
    regions: frozenset = frozenset()  # region keys of provinces and cities
    product_lines: tuple = ()  # lower-cased
    response_tier: str = ResponseTier.NORMAL
    cycle_preference: str = CyclePreference.ANY
    capacity: int | None = None
    share_weight: float = 1.0
    available: bool = True
    zone: str = Zone.NORMAL
    open_count: int = 0
    expected: float = 0.0
    received: int = 0
    last_assigned_at: datetime | None = None
    joined_at: datetime | None = None
    membership: Membership | None = None  # the seat, when built from one (state_of)

    @property
    def shortfall(self) -> float:
        return self.expected - self.received

    def cap(self, params: Params) -> int:
        return params.default_capacity if self.capacity is None else self.capacity

    def is_hot(self, params: Params, now: datetime) -> bool:
        since = self.last_assigned_at or self.joined_at
        return since is None or now - since >= timedelta(days=params.hot_zone_days)


def intake_verdict(rep: RepState, params: Params) -> str:
    """Whether the rep takes new leads at all, whatever the lead: `unavailable`, `paused`
    (observation zone), `at_capacity` (open load, `open_loads()`, at or above the cap), or
    `ok`. The first checks of `eligibility()`; the profile page and the board show it."""
    if not rep.available:
        return UNAVAILABLE
    if rep.zone == Zone.OBSERVATION:
        return PAUSED
    if rep.open_count >= rep.cap(params):
        return AT_CAPACITY
    return OK


def eligibility(rep: RepState, facts: LeadFacts, params: Params, relaxed, exclude) -> str:
    if rep.membership_id in exclude:
        return EXCLUDED
    verdict = intake_verdict(rep, params)
    if verdict != OK:
        return verdict
    if params.require_region and REGION not in relaxed and rep.regions:
        keys = facts.region_keys()
        if keys and rep.regions.isdisjoint(keys):
            return REGION
    industry_filter = params.require_industry and INDUSTRY not in relaxed and rep.industries
    if industry_filter and facts.industry and facts.industry not in rep.industries:
        return INDUSTRY
    return OK


def budget_class(facts: LeadFacts, params: Params) -> str:
    if facts.budget is None:
        return ""
    return (
        CyclePreference.LONG if facts.budget >= params.long_cycle_budget else CyclePreference.SHORT
    )


def fit(rep: RepState, facts: LeadFacts, params: Params) -> dict[str, float]:
    """The parts of a rep's fit for a lead; the fit is 1 + their sum."""
    parts = {}
    if facts.industry and facts.industry in rep.industries:
        parts["industry"] = params.weight_industry
    if rep.regions and not rep.regions.isdisjoint(facts.region_keys()):
        parts["region"] = params.weight_region
    if rep.product_lines:
        haystack = facts.text.lower()
        tags = {t.lower() for t in facts.tags}
        if any(p in tags or (p and p in haystack) for p in rep.product_lines):
            parts["product"] = params.weight_product
    if rep.response_tier == ResponseTier.FAST:
        parts["response"] = params.weight_response
    elif rep.response_tier == ResponseTier.NORMAL:
        parts["response"] = params.weight_response / 2
    wanted = budget_class(facts, params)
    if rep.cycle_preference == CyclePreference.ANY or not wanted:
        parts["cycle"] = params.weight_cycle / 2
    elif rep.cycle_preference == wanted:
        parts["cycle"] = params.weight_cycle
    return {k: round(v, 4) for k, v in parts.items() if v}


@dataclass
class Outcome:
    chosen: RepState | None
    lead_score: int
    breakdown: list
    seed: int
    hot_zone: bool = False
    relaxed: tuple = ()
    eligible: list = field(default_factory=list)  # RepState, for the ledger
    candidates: list = field(default_factory=list)  # the explanation, when asked for


def decide(
    facts: LeadFacts,
    reps: list[RepState],
    params: Params,
    rules: list[CompiledRule],
    *,
    now: datetime,
    seed: int,
    relaxed: tuple = (),
    exclude: frozenset = frozenset(),
    explain: bool = True,
    fit_of=None,
) -> Outcome:
    """Choose a rep for one lead; pure (no database, no clock, no global randomness).

    `fit_of(rep, facts)` may replace `fit()` with a cached equivalent (the replay).
    """
    lead_score, breakdown = score_lead(facts, rules, params.base_score, now)
    weight = max(lead_score, 1)  # a negative score still ranks reps by fit
    hot_lead = lead_score >= params.hot_zone_min_score
    eligible, scores, verdicts = [], {}, {}
    for rep in reps:
        verdict = eligibility(rep, facts, params, relaxed, exclude)
        verdicts[rep.membership_id] = verdict
        if verdict != OK:
            continue
        parts = fit_of(rep, facts) if fit_of else fit(rep, facts, params)
        scores[rep.membership_id] = (weight * (1 + sum(parts.values())), parts)
        eligible.append(rep)

    chosen, hot_used, band_ids = None, False, set()
    if eligible:
        field_ = eligible
        if hot_lead:
            hot = [r for r in eligible if r.is_hot(params, now)]
            if hot:
                field_, hot_used = hot, True
        top = max(scores[r.membership_id][0] for r in field_)
        floor = top * (1 - params.best_band) - 1e-9
        band = [r for r in field_ if scores[r.membership_id][0] >= floor]
        band_ids = {r.membership_id for r in band}
        most = max(r.shortfall for r in band)
        tied = sorted(
            (r for r in band if r.shortfall >= most - 1e-9), key=lambda r: r.membership_id
        )
        chosen = tied[0] if len(tied) == 1 else random.Random(seed).choice(tied)  # noqa: S311

    outcome = Outcome(
        chosen=chosen,
        lead_score=lead_score,
        breakdown=breakdown,
        seed=seed,
        hot_zone=hot_used,
        relaxed=tuple(relaxed),
        eligible=eligible,
    )
    if explain:
        for rep in reps:
            entry = {"m": rep.membership_id, "n": rep.name, "v": verdicts[rep.membership_id]}
            if entry["v"] == AT_CAPACITY:
                entry.update(open=rep.open_count, cap=rep.cap(params))
            if rep.membership_id in scores:
                total, parts = scores[rep.membership_id]
                entry.update(
                    fit=parts,
                    score=round(total, 2),
                    exp=round(rep.expected, 2),
                    rec=rep.received,
                    short=round(rep.shortfall, 2),
                    hot=rep.is_hot(params, now),
                    band=rep.membership_id in band_ids,
                )
            outcome.candidates.append(entry)
    return outcome


def ledger_shares(eligible: list[RepState]) -> dict[int, float]:
    """Each eligible rep's share of one lead: their weight over the eligible total."""
    total = sum(r.share_weight for r in eligible)
    if not total:
        return {}
    return {r.membership_id: r.share_weight / total for r in eligible}


def apply_to_states(outcome: Outcome, now: datetime) -> None:
    """Move the in-memory ledger and backlog on after a decision (replay, simulations)."""
    total = sum(r.share_weight for r in outcome.eligible)
    for rep in outcome.eligible:
        rep.expected += rep.share_weight / total
    if outcome.chosen is not None:
        outcome.chosen.received += 1
        outcome.chosen.open_count += 1
        outcome.chosen.last_assigned_at = now


# --- policies ------------------------------------------------------------------------------


DEFAULT_RULES = (
    # The briefs' examples (F8): website +30, budget > 500k +25, "立即报价" +20, late −15.
    {"label": "官网来源", "operator": "channel_is", "value": "官网表单", "points": 30},
    {"label": "预算 > 50 万", "field": "budget", "operator": "gt", "value": "500000", "points": 25},
    {
        "label": "含“立即报价”",
        "field": "message",
        "operator": "contains",
        "value": "立即报价",
        "points": 20,
    },
    {
        "label": "首次响应超 2 小时",
        "operator": "late_first_response",
        "value": "120",
        "points": -15,
    },
    {"label": "A 类来源", "operator": "grade_is", "value": "A", "points": 10},
)


def policy_active() -> AssignmentPolicy:
    """The published version that decides now; version 1 with the defaults if none yet."""
    tenant = current_tenant()
    if not isinstance(tenant, Tenant):
        # All-tenants mode (the platform superuser) has no single policy to read or make.
        raise NoTenantError("policy_active() runs inside one tenant")
    policy = (
        AssignmentPolicy.objects.filter(status=PolicyStatus.PUBLISHED).order_by("-version").first()
    )
    if policy is not None:
        return policy
    advisory_lock("policy", tenant.pk)
    policy = AssignmentPolicy.objects.filter(status=PolicyStatus.PUBLISHED).first()
    if policy is None:
        policy = AssignmentPolicy.objects.create(
            tenant=tenant,
            status=PolicyStatus.PUBLISHED,
            version=1,
            note="默认策略",
            published_at=timezone.now(),
        )
        _copy_default_rules(policy)
    return policy


def policy_published() -> AssignmentPolicy | None:
    """The published version that decides now, or None before the first lead: read
    without creating anything (pages use it; `policy_active()` creates version 1)."""
    return (
        AssignmentPolicy.objects.filter(status=PolicyStatus.PUBLISHED).order_by("-version").first()
    )


def active_params() -> Params:
    """`policy_published()`'s parameters, the defaults when there is none yet."""
    policy = policy_published()
    return Params.of(policy) if policy is not None else Params()


def _copy_default_rules(policy: AssignmentPolicy) -> None:
    from leads.assignment.scoring import rule_errors
    from leads.models import Channel

    names = set(Channel.objects.values_list("name", flat=True))
    rules = []
    for position, spec in enumerate(DEFAULT_RULES):
        if spec["operator"] == "channel_is" and spec["value"] not in names:
            continue
        if rule_errors(spec.get("field", ""), spec["operator"], spec["value"]):
            continue
        rules.append(ScoreRule(tenant=policy.tenant, policy=policy, position=position, **spec))
    ScoreRule.objects.bulk_create(rules)


_compiled: dict = {}  # public_id (never reused, unlike a pk) → compiled rules


def policy_rules(policy: AssignmentPolicy) -> list[CompiledRule]:
    """A policy's compiled rules. Published versions never change, so each worker
    compiles a version once; a draft is compiled afresh every time."""
    if policy.is_draft:
        return compile_rules(policy.rules.all())
    rules = _compiled.get(policy.public_id)
    if rules is None:
        if len(_compiled) > 256:
            _compiled.clear()
        rules = _compiled[policy.public_id] = compile_rules(policy.rules.all())
    return rules


def policy_draft(user=None) -> AssignmentPolicy:
    """The tenant's one draft, created as a copy of the active version when missing."""
    draft = AssignmentPolicy.objects.filter(status=PolicyStatus.DRAFT).first()
    if draft is not None:
        return draft
    active = policy_active()
    draft = AssignmentPolicy(tenant=active.tenant, status=PolicyStatus.DRAFT, created_by=user)
    for name in AssignmentPolicy.PARAMETERS:
        setattr(draft, name, getattr(active, name))
    draft.save()
    _copy_rules(active, draft)
    return draft


def _copy_rules(source: AssignmentPolicy, target: AssignmentPolicy) -> None:
    ScoreRule.objects.bulk_create(
        ScoreRule(
            tenant=target.tenant,
            policy=target,
            label=r.label,
            field=r.field,
            operator=r.operator,
            value=r.value,
            points=r.points,
            position=r.position,
        )
        for r in source.rules.all()
    )


def policy_publish(draft: AssignmentPolicy, *, user=None, note: str = "") -> AssignmentPolicy:
    """Publish the draft as the next immutable version; the draft stays for further edits."""
    from crm.audit import audit

    if not draft.is_draft:
        raise ValueError("only a draft can be published")
    advisory_lock("policy", draft.tenant_id)
    active = policy_active()
    last = AssignmentPolicy.objects.filter(status=PolicyStatus.PUBLISHED).order_by("-version")
    version = (last.values_list("version", flat=True).first() or 0) + 1
    published = AssignmentPolicy(
        tenant=draft.tenant,
        status=PolicyStatus.PUBLISHED,
        version=version,
        note=note or draft.note,
        created_by=user,
        published_at=timezone.now(),
    )
    for name in AssignmentPolicy.PARAMETERS:
        setattr(published, name, getattr(draft, name))
    published.save()
    _copy_rules(draft, published)
    changes = {
        name: [getattr(active, name), getattr(published, name)]
        for name in AssignmentPolicy.PARAMETERS
        if getattr(active, name) != getattr(published, name)
    }
    before = sorted(str(r) + f" {r.points:+d}" for r in active.rules.all())
    after = sorted(str(r) + f" {r.points:+d}" for r in published.rules.all())
    if before != after:
        changes["rules"] = [before, after]
    audit(
        tenant=draft.tenant,
        actor=user,
        action="assignment.policy_published",
        obj=published,
        changes=changes,
    )
    return published


# --- loading states ------------------------------------------------------------------------


PROFILE_FIELDS = (
    "industries",
    "provinces",
    "cities",
    "product_lines",
    "response_tier",
    "cycle_preference",
    "capacity",
    "share_weight",
    "is_available",
    "unavailable_until",
    "zone",
    "last_assigned_at",
)


def rep_states(params: Params, now: datetime) -> list[RepState]:
    """Every active rep of the tenant, with profile, open backlog and ledger (3 queries).

    Read as plain values, not model objects: at 200 reps, building the memberships,
    users and profiles as objects took most of a dispatch."""
    tenant = current_tenant()
    reps = (
        Membership.objects.in_tenant(tenant)
        .active()
        .filter(role=Role.REP)
        .order_by("id")
        .values(
            "id",
            "created_at",
            "user__username",
            "user__first_name",
            "user__last_name",
            "rep_profile__id",
            *(f"rep_profile__{f}" for f in PROFILE_FIELDS),
        )
    )
    rows = list(reps)
    missing = [r["id"] for r in rows if r["rep_profile__id"] is None]
    if missing:
        # A rep without a profile gets the defaults, kept from now on (hot zone, zones).
        RepProfile.objects.bulk_create(
            [RepProfile(tenant=tenant, membership_id=pk) for pk in missing],
            ignore_conflicts=True,
        )
        rows = list(reps.all())
    ids = [r["id"] for r in rows]
    open_counts = open_loads(ids)
    since = tenant_today(now) - timedelta(days=params.fairness_window_days - 1)
    ledger = {
        row["membership_id"]: (row["e"] or 0.0, row["r"] or 0)
        for row in RepLedgerDay.objects.filter(day__gte=since, membership_id__in=ids)
        .values("membership_id")
        .annotate(e=Sum("expected"), r=Sum("received"))
    }
    today = tenant_today(now)
    states = []
    for row in rows:
        full = f"{row['user__first_name']} {row['user__last_name']}".strip()
        profile = {f: row[f"rep_profile__{f}"] for f in PROFILE_FIELDS}
        state = _state(row["id"], full or row["user__username"], row["created_at"], profile, today)
        state.open_count = open_counts.get(row["id"], 0)
        state.expected, state.received = ledger.get(row["id"], (0.0, 0))
        states.append(state)
    return states


def open_loads(membership_ids) -> dict[int, int]:
    """Each rep's open load (F10; docs/assignment.md, "Open load"): how many leads of
    `Lead.objects.open_load()` they own, by membership id (reps with none are absent).
    The engine's cap, the profile page, "why didn't I get it" and the board all count
    with this one query."""
    return dict(
        Lead.objects.open_load()
        .filter(owner_id__in=list(membership_ids))
        .values_list("owner_id")
        .annotate(n=Count("id"))
        .values_list("owner_id", "n")
    )


@dataclass(frozen=True)
class Load:
    """A rep's open load against their cap, and whether they take new leads now."""

    open: int
    cap: int
    verdict: str  # intake_verdict(): ok, unavailable, paused or at_capacity

    @property
    def takes_leads(self) -> bool:
        return self.verdict == OK

    @property
    def free(self) -> int:
        return max(self.cap - self.open, 0)


def rep_load(
    membership: Membership,
    *,
    params: Params | None = None,
    profile: RepProfile | None = None,
    now: datetime | None = None,
    open_count: int | None = None,
) -> Load:
    """The rep's `Load` as the engine would see it now (profile defaults when they have
    none; nothing is written). `open_count`: their open load when the caller has just
    counted the same rows (the board lists them), else `open_loads()` counts it."""
    now = now or timezone.now()
    if params is None:
        params = active_params()
    if profile is None:
        profile = profile_of(membership)
    state = state_of(membership, profile, tenant_today(now))
    if open_count is None:
        open_count = open_loads([membership.pk]).get(membership.pk, 0)
    state.open_count = open_count
    return Load(open=state.open_count, cap=state.cap(params), verdict=intake_verdict(state, params))


def state_of(membership: Membership, profile: RepProfile | None, today: date) -> RepState:
    values = None if profile is None else {f: getattr(profile, f) for f in PROFILE_FIELDS}
    state = _state(membership.pk, membership.display_name, membership.created_at, values, today)
    state.membership = membership
    return state


def _state(membership_id, name, joined_at, profile: dict | None, today: date) -> RepState:
    state = RepState(membership_id=membership_id, name=name, joined_at=joined_at)
    if profile is not None:
        state.industries = frozenset(profile["industries"] or ())
        state.regions = frozenset(
            normalize.region_key(r)
            for r in [*(profile["provinces"] or ()), *(profile["cities"] or ())]
        )
        state.product_lines = tuple(p.lower() for p in profile["product_lines"] or () if p)
        state.response_tier = profile["response_tier"]
        state.cycle_preference = profile["cycle_preference"]
        state.capacity = profile["capacity"]
        state.share_weight = profile["share_weight"]
        state.available = rep_available(
            profile["is_available"], profile["unavailable_until"], today
        )
        state.zone = profile["zone"]
        state.last_assigned_at = profile["last_assigned_at"] or joined_at
    return state


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


# --- the database path --------------------------------------------------------------------


def _notify(event: str, recipients, params: dict, lead: Lead | None = None) -> None:
    from leads.notifications import send

    send(event, recipients, params, lead)


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
    from leads.notifications import managers

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
            "lead.pooled", managers(), {"lead": str(lead), "reason": PoolReason(reason).label}, lead
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
    lead: Lead, *, reason: str, now: datetime | None = None, actor=None, note: str = ""
) -> AssignmentDecision:
    """Take the lead from its owner (F13) and dispatch it again to someone else; a manual
    return (`PoolReason.MANUAL`) leaves it in the pool for a manager to hand out."""
    from leads.notifications import managers

    now = now or timezone.now()
    previous = lead.owner
    policy = policy_active()
    decision = _pool(
        lead, reason, now=now, policy=policy, kind=DecisionKind.RETURN, actor=actor, note=note
    )
    if reason == PoolReason.MANUAL:
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
        told = managers() if decision.outcome == DecisionOutcome.ASSIGNED else []
        _notify("lead.returned", [previous, *told], {"lead": str(lead)}, lead)
    return decision


def lead_reassign(
    lead: Lead, *, to: Membership, reason: str, actor, now=None
) -> AssignmentDecision:
    """A manager hands the lead to a rep of their choosing (F13), with a reason; audited."""
    from crm.audit import audit

    now = now or timezone.now()
    if to.tenant_id != lead.tenant_id or to.role != Role.REP or not to.is_active:
        raise ValueError("the new owner must be an active rep of the lead's tenant")
    previous = lead.owner
    advisory_lock("assign", lead.tenant_id)
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
        tenant=lead.tenant,
        actor=actor,
        action="lead.reassigned",
        obj=lead,
        changes={"owner": [str(previous) if previous else None, str(to)], "reason": [None, reason]},
    )
    recipients = [to] + ([previous] if previous and previous.pk != to.pk else [])
    _notify("lead.reassigned", recipients, {"lead": str(lead), "owner": to.display_name}, lead)
    return decision
