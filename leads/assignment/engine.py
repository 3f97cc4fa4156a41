"""Weighted assignment (F8–F10, F12): who gets a lead, and why: the pure decision.

`decide()` is pure: lead facts + rep states + policy parameters + compiled rules → an
`Outcome` (the chosen rep, every candidate's verdict and score breakdown). The worker, the
replay (F14) and the benchmarks all call it. Around it, in this room:
- `leads.assignment.policy`: the policy versions (the active one, drafts, publishing);
- `leads.assignment.reps`: the reps' states and open loads, read from the database;
- `leads.assignment.dispatch`: the database path: it loads the states, calls `decide()`
  under a per-tenant lock, and writes the decision, the lead, the ledger and the timeline;
  the manual reassignment and the return to the pool.

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

import random
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta

from crm import normalize
from crm.models import Membership
from leads.assignment.scoring import CompiledRule, score_lead
from leads.models import AssignmentPolicy, CyclePreference, Lead, ResponseTier, Zone

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
