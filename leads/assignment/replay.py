"""Replay before apply (F14): the last N days of leads re-decided under a draft policy.

`replay()` is pure: it walks the leads in the order they arrived and calls
`leads.assignment.engine.decide()` for each, moving an in-memory ledger and backlog on with
`apply_to_states()`. Nothing is written. `leads.assignment.replay_runs` loads what it needs
in a handful of bulk queries, replays the window twice — under the active published
version (the "now" column) and under the draft — and stores the comparison in
`ReplayRun.result`.

Both columns are replays of the same leads with the same inputs, so the only thing that
differs between them is the policy:

- every rep starts the window with an empty ledger and backlog;
- a lead handed to a rep keeps that rep's backlog open for as long as the real lead
  stayed open (from its `assigned_at` to its `verified_at`, or until the end of the window
  while never verified); a lead that was never assigned counts 24 hours;
- who was available on a day comes from the real ledger (`RepLedgerDay`): a rep with a
  row on that day but nothing expected and nothing received, or with no row on a day
  other reps have rows for, was away; on a day the tenant has no rows for, everyone is
  available (the profiles' current availability and zones describe today, not then);
- the tie-break seed of a lead is derived from its public id alone, so the same lead
  draws the same way under both policies and on every run: the same inputs always give
  the same result;
- a lead nobody could take waits `relax_after_minutes` and is retried with the optional
  criteria dropped (as `dispatch_due` does); still nobody, it counts as pooled;
- a revisit goes to the owner of its first lead, as at intake: the simulated owner when
  the first lead is in the window too, else the real one.
"""

from __future__ import annotations

import heapq
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, tzinfo

from django.utils import timezone

from leads.assignment.engine import (
    INDUSTRY,
    OK,
    REGION,
    RELAX_ORDER,
    LeadFacts,
    Params,
    RepState,
    apply_to_states,
    budget_class,
    decide,
    eligibility,
    fit,
)
from leads.assignment.scoring import score_lead
from leads.models import Zone

SEED_MASK = 2**63 - 1


def seed_of(public_id: uuid.UUID | str) -> int:
    """The tie-break seed of a lead in a replay: its public id, as a 63-bit integer."""
    return int(uuid.UUID(str(public_id))) & SEED_MASK


@dataclass(slots=True)
class ReplayLead:
    """One lead as the replay sees it: the facts a decision reads, plus how long the real
    lead stayed open once assigned, and where a revisit would go."""

    facts: LeadFacts
    public_id: uuid.UUID
    label: str
    open_for: timedelta
    seed: int
    grade_a: bool = False
    revisit_of: int | None = None  # the first lead's id
    original_owner: int | None = None  # the first lead's real owner (membership id)
    regions: frozenset | None = None  # the facts' region keys, once computed
    who: tuple = ("", "")  # contact name and phone, for the label

    def text(self) -> str:
        """The lead as `str(lead)` names it."""
        return self.label or lead_label(
            self.facts.company, self.who[0], self.who[1], self.public_id
        )


@dataclass
class Window:
    """The replayed period and what the real ledger says about it."""

    start: datetime
    end: datetime
    tz: tzinfo
    # Days with ledger rows → the reps available that day; a day not listed: everyone.
    available: dict[date, frozenset] = field(default_factory=dict)

    def day(self, moment: datetime) -> date:
        return timezone.localtime(moment, self.tz).date()


@dataclass
class ReplayResult:
    """One policy's replay: who each lead went to (None: nobody, pooled)."""

    chosen: list  # membership id or None, in the order of the leads given
    received: dict  # membership id → leads received (revisits included)
    received_a: dict  # membership id → A-class leads received


def gini(counts: Iterable[float]) -> float:
    """The Gini coefficient of `counts`: 0 when everyone has the same, towards 1 when one
    has everything. 0 for no counts or all zeros."""
    values = sorted(float(c) for c in counts)
    n, total = len(values), sum(values)
    if n == 0 or total <= 0:
        return 0.0
    weighted = sum(i * v for i, v in enumerate(values, start=1))
    return (2 * weighted) / (n * total) - (n + 1) / n


def lead_label(company: str, contact_name: str, phone: str, public_id) -> str:
    """What `str(lead)` gives."""
    who = " · ".join(p for p in (company, contact_name) if p)
    return who or phone or str(public_id)[:8]


# --- the pure replay -------------------------------------------------------------------------


_NOBODY: frozenset = frozenset()


class _FitCache:
    """`fit()` cached per (rep, lead fit key). The key holds everything `fit()` reads from
    a lead — industry, region keys, budget class, the product lines it matches — and a
    rep's own fields do not change during a replay, so equal keys give equal fits.

    Underneath, per rep, a second cache keyed by what of those facts the rep's fit can
    tell apart (the lead's industry is one of theirs, a region of theirs, a product line
    of theirs; the budget class): at most 24 real `fit()` calls per rep, whatever the
    number of leads. Per lead key, the reps that match its industry, regions and product
    lines are found once, by set unions. tests/leads/test_replay.py checks every cached
    value against `fit()`.
    """

    def __init__(self, leads: Sequence[ReplayLead], reps: Sequence[RepState], params: Params):
        self.params = params
        self.reps = list(reps)
        lines = sorted({p for r in reps for p in r.product_lines if p})
        ids: dict[tuple, int] = {}
        self.seen: list[tuple] = []  # key → (industry, region keys, budget class, lines)
        self.key_of: dict[int, int] = {}
        for lead in leads:
            facts = lead.facts
            if lead.regions is None:
                lead.regions = frozenset(facts.region_keys())
            if lines:
                haystack = facts.text.lower()
                tags = {t.lower() for t in facts.tags}
                matched = frozenset(p for p in lines if p in tags or p in haystack)
            else:
                matched = _NOBODY
            seen = (facts.industry, lead.regions, budget_class(facts, params), matched)
            key = ids.get(seen)
            if key is None:
                key = ids[seen] = len(self.seen)
                self.seen.append(seen)
            self.key_of[facts.id] = key
        # Who has each industry, region key and product line.
        self.by_industry: dict[str, set] = {}
        self.by_region: dict[str, set] = {}
        self.by_line: dict[str, set] = {}
        for rep in reps:
            for industry in rep.industries:
                self.by_industry.setdefault(industry, set()).add(rep.membership_id)
            for region in rep.regions:
                self.by_region.setdefault(region, set()).add(rep.membership_id)
            for line in rep.product_lines:
                if line:
                    self.by_line.setdefault(line, set()).add(rep.membership_id)
        self.matching: dict[int, tuple] = {}
        self.cache: dict[int, dict[int, dict]] = {r.membership_id: {} for r in reps}
        self.by_rep: dict[int, dict[tuple, tuple]] = {r.membership_id: {} for r in reps}

    def __call__(self, rep: RepState, facts: LeadFacts) -> dict:
        row = self.cache[rep.membership_id]
        key = self.key_of[facts.id]
        parts = row.get(key)
        if parts is None:
            parts = row[key] = self._known(rep, facts, self._matching(key))[0]
        return parts

    def totals(self, facts: LeadFacts) -> list[tuple[float, RepState]]:
        """(1 + fit, rep) for every rep: what `decide()` multiplies the lead score by."""
        matching = self._matching(self.key_of[facts.id])
        known = self._known
        return [(known(rep, facts, matching)[1], rep) for rep in self.reps]

    def _matching(self, key: int) -> tuple:
        found = self.matching.get(key)
        if found is None:
            industry, regions, budget, matched = self.seen[key]
            found = self.matching[key] = (
                frozenset(self.by_industry.get(industry, ())) if industry else _NOBODY,
                frozenset().union(*(self.by_region.get(k, ()) for k in regions)),
                frozenset().union(*(self.by_line.get(p, ()) for p in matched)),
                budget,
            )
        return found

    def _known(self, rep: RepState, facts: LeadFacts, matching: tuple) -> tuple[dict, float]:
        industry, region, line, budget = matching
        member = rep.membership_id
        told_apart = (member in industry, member in region, member in line, budget)
        row = self.by_rep[member]
        known = row.get(told_apart)
        if known is None:
            parts = fit(rep, facts, self.params)
            known = row[told_apart] = (parts, 1 + sum(parts.values()))
        return known


def _starting_states(reps: Sequence[RepState]) -> list[RepState]:
    """Copies with an empty ledger and backlog; the zone is history's (see the window)."""
    return [
        replace(r, expected=0.0, received=0, open_count=0, available=True, zone=Zone.NORMAL)
        for r in reps
    ]


class _Replay:
    """One policy's pass over the leads (see `replay()`)."""

    def __init__(self, leads, reps, params: Params, rules, window: Window):
        self.leads, self.params, self.rules, self.window = leads, params, rules, window
        self.states = _starting_states(reps)
        self.by_id = {r.membership_id: r for r in self.states}
        self.caps = {r.membership_id: r.cap(params) for r in self.states}
        self.fit_of = _FitCache(leads, self.states, params)
        self.index_of = {lead.facts.id: i for i, lead in enumerate(leads)}
        self.chosen: list = [None] * len(leads)
        self.received = dict.fromkeys(self.by_id, 0)
        self.received_a = dict.fromkeys(self.by_id, 0)
        self.sequence = 0
        self.releases: list = []  # (when, sequence, membership id): backlog closing
        self.retries: list = []  # (when, sequence, lead index): waiting leads
        # Who is available today, and of them who is below their cap: the eligible
        # field as far as the day and the backlog decide.
        self.today: set = set(self.by_id)
        self.open_field: set = set()
        self.field_changes = 0  # counts changes of open_field, for the cached list below
        self.field_list: tuple = (-1, [])
        # The hot zone: who has had no lead for hot_zone_days, kept up to date by time.
        self.hot_after = timedelta(days=params.hot_zone_days)
        self.hot: set = set()
        self.hot_at: dict = {}
        self.hot_queue: list = []
        for rep in self.states:
            self._hot_clock(rep, rep.last_assigned_at or rep.joined_at)
        # The rolling fairness window (see _begin_day).
        self.span = max(params.fairness_window_days, 1)
        self.offsets = {m: (0.0, 0) for m in self.by_id}
        self.day_starts: dict = {}
        self.day: date | None = None
        self.rankings: dict = {}
        self.filters: dict = {}
        self.probes = [
            replace(r, open_count=0, capacity=1, available=True, zone=Zone.NORMAL)
            for r in self.states
        ]
        self.retry_steps = [(), *(RELAX_ORDER[: i + 1] for i in range(len(RELAX_ORDER)))]
        self.first_steps = self.retry_steps if params.relax_after_minutes == 0 else [()]
        self.relax_wait = timedelta(minutes=params.relax_after_minutes)

    # -- time ------------------------------------------------------------------------------
    def _hot_clock(self, rep: RepState, since: datetime | None) -> None:
        member = rep.membership_id
        self.hot.discard(member)
        if since is None:
            self.hot.add(member)  # RepState.is_hot: no date at all counts as hot
            self.hot_at[member] = None
            return
        self.hot_at[member] = since + self.hot_after
        self.sequence += 1
        heapq.heappush(self.hot_queue, (self.hot_at[member], self.sequence, member))

    def _advance(self, moment: datetime) -> None:
        while self.releases and self.releases[0][0] <= moment:
            _when, _seq, member = heapq.heappop(self.releases)
            rep = self.by_id[member]
            rep.open_count -= 1
            reopens = member in self.today and member not in self.open_field
            if reopens and rep.open_count < self.caps[member]:
                self.open_field.add(member)
                self.field_changes += 1
        while self.hot_queue and self.hot_queue[0][0] <= moment:
            when, _seq, member = heapq.heappop(self.hot_queue)
            if self.hot_at.get(member) == when:  # not superseded by a later lead
                self.hot.add(member)
        day = self.window.day(moment)
        if self.day is None:
            self._begin_day(day)
        while self.day < day:
            self._begin_day(self.day + timedelta(days=1))

    def _begin_day(self, day: date) -> None:
        """Who is available (the real ledger), and the fairness window moved on: the
        ledger keeps the last `fairness_window_days` days, so what the day leaving it had
        added is taken off (from the cumulative figures at the start of each day)."""
        self.day = day
        cumulative = {
            r.membership_id: (
                r.expected + self.offsets[r.membership_id][0],
                r.received + self.offsets[r.membership_id][1],
            )
            for r in self.states
        }
        self.day_starts[day] = cumulative
        base = self.day_starts.get(day - timedelta(days=self.span - 1))
        if base is not None:
            for rep in self.states:
                e0, r0 = base[rep.membership_id]
                total_e, total_r = cumulative[rep.membership_id]
                self.offsets[rep.membership_id] = (e0, r0)
                rep.expected, rep.received = total_e - e0, total_r - r0
        available = self.window.available.get(day)
        self.today = set(self.by_id) if available is None else set(available) & set(self.by_id)
        for rep in self.states:
            rep.available = rep.membership_id in self.today
        self.open_field = {m for m in self.today if self.by_id[m].open_count < self.caps[m]}
        self.field_changes += 1

    # -- one lead ----------------------------------------------------------------------------
    def _ranking(self, facts: LeadFacts) -> list:
        """Every rep by fit for this kind of lead, best first: (1 + fit, rep)."""
        key = self.fit_of.key_of[facts.id]
        ranking = self.rankings.get(key)
        if ranking is None:
            ranking = sorted(  # best first, then by membership (ids are unique)
                (-total, rep.membership_id, rep) for total, rep in self.fit_of.totals(facts)
            )
            ranking = self.rankings[key] = [(-minus, rep) for minus, _m, rep in ranking]
        return ranking

    def _filtered(self, facts: LeadFacts, relaxed: tuple) -> frozenset | None:
        """The reps the policy's region/industry requirements let through (None: no
        requirement applies), by the engine's own `eligibility()`."""
        params = self.params
        if not (
            (params.require_region and REGION not in relaxed)
            or (params.require_industry and INDUSTRY not in relaxed)
        ):
            return None
        key = (facts.industry, facts.province, facts.city, relaxed)
        passing = self.filters.get(key)
        if passing is None:
            passing = self.filters[key] = frozenset(
                p.membership_id
                for p in self.probes
                if eligibility(p, facts, params, relaxed, frozenset()) == OK
            )
        return passing

    def _contenders(self, facts: LeadFacts, moment: datetime, eligible: set) -> list:
        """The eligible reps that can win: the hot ones when the hot zone applies, else
        those within the best band of the top fit (with a margin: `decide()` draws the
        exact band itself). The others could only lose."""
        hot = self.hot & eligible
        if hot:
            params = self.params
            score, _hits = score_lead(facts, self.rules, params.base_score, moment)
            if score >= params.hot_zone_min_score:
                return [self.by_id[m] for m in sorted(hot)]
        contenders, floor = [], None
        for total, rep in self._ranking(facts):
            if rep.membership_id not in eligible:
                continue
            if floor is None:
                floor = total * (1 - self.params.best_band) - 1e-6
            elif total < floor:
                break
            contenders.append(rep)
        return contenders

    def attempt(self, i: int, moment: datetime, steps) -> bool:
        lead = self.leads[i]
        facts, params = lead.facts, self.params
        for relaxed in steps:
            passing = self._filtered(facts, relaxed)
            eligible = self.open_field if passing is None else self.open_field & passing
            if not eligible:
                continue
            outcome = decide(
                facts,
                self._contenders(facts, moment, eligible),
                params,
                self.rules,
                now=moment,
                seed=lead.seed,
                relaxed=relaxed,
                explain=False,
                fit_of=self.fit_of,
            )
            if outcome.chosen is None:
                continue
            # The ledger shares go to every eligible rep, as in the real decision, not
            # only to the contenders handed to decide().
            outcome.eligible = self._eligible_list(eligible, passing is None)
            apply_to_states(outcome, moment)
            self._hand_over(i, outcome.chosen, moment)
            return True
        return False

    def _eligible_list(self, eligible: set, whole_field: bool) -> list:
        """The eligible reps in membership order; the whole open field's list is kept
        until the field changes (most decisions leave it as it was)."""
        if not whole_field:
            return [self.by_id[m] for m in sorted(eligible)]
        changes, cached = self.field_list
        if changes != self.field_changes:
            cached = [self.by_id[m] for m in sorted(self.open_field)]
            self.field_list = (self.field_changes, cached)
        return cached

    def _hand_over(self, i: int, rep: RepState, moment: datetime) -> None:
        lead, member = self.leads[i], rep.membership_id
        self.chosen[i] = member
        self.received[member] += 1
        if lead.grade_a:
            self.received_a[member] += 1
        if rep.open_count >= self.caps[member] and member in self.open_field:
            self.open_field.discard(member)
            self.field_changes += 1
        self._hot_clock(rep, moment)
        self.sequence += 1
        heapq.heappush(self.releases, (moment + lead.open_for, self.sequence, member))

    def _revisit_owner(self, lead: ReplayLead) -> RepState | None:
        if lead.revisit_of is None:
            return None
        original = self.index_of.get(lead.revisit_of)
        owner_id = self.chosen[original] if original is not None else lead.original_owner
        return self.by_id.get(owner_id) if owner_id is not None else None

    # -- the run -----------------------------------------------------------------------------
    def run(self) -> ReplayResult:
        leads, n, next_lead = self.leads, len(self.leads), 0
        while next_lead < n or self.retries:
            arrival = leads[next_lead].facts.created_at if next_lead < n else None
            if self.retries and (arrival is None or self.retries[0][0] < arrival):
                moment, _seq, i = heapq.heappop(self.retries)
                self._advance(moment)
                self.attempt(i, moment, self.retry_steps)
                continue
            moment, i = arrival, next_lead
            next_lead += 1
            self._advance(moment)
            owner = self._revisit_owner(leads[i])
            if owner is not None:
                # A revisit goes to the first lead's owner and is not counted in the ledger.
                owner.open_count += 1
                owner.last_assigned_at = moment
                self._hand_over(i, owner, moment)
                continue
            if not self.attempt(i, moment, self.first_steps) and self.params.relax_after_minutes:
                # Nobody now: retried after the wait, with optional criteria dropped.
                self.sequence += 1
                heapq.heappush(self.retries, (moment + self.relax_wait, self.sequence, i))
        return ReplayResult(chosen=self.chosen, received=self.received, received_a=self.received_a)


def replay(
    leads_facts: Sequence[ReplayLead],
    reps: Sequence[RepState],
    params: Params,
    rules: list,
    *,
    window: Window,
) -> ReplayResult:
    """Re-decide `leads_facts` (sorted by arrival) among `reps` under `params` and the
    compiled `rules`; pure: the reps given are copied, nothing is written.

    Every choice is `decide()`'s, and `apply_to_states()` moves the ledger and backlog on.
    For speed `decide()` is handed only the contenders: the reps eligible now (available
    that day, below their cap, through the policy's requirements) that can win — the
    hot ones when the hot zone applies, else those within the best band of the best fit.
    A rep outside them could only lose, so the choice is the same as among everyone
    (tests/leads/test_replay.py replays against `decide()` over every rep); the ledger
    still credits every eligible rep with their share.
    """
    return _Replay(leads_facts, reps, params, rules, window).run()
