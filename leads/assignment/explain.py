"""“Why this rep” (F12): an assignment decision in plain words, in the reader's language.

A decision stores codes and numbers (leads.assignment.engine `decide()` writes them); this module
re-reads them the way `decide()` used them, so the words match the choice:

1. eligibility: each candidate's verdict (`ok` or why not);
2. score = max(lead score, 1) × fit, fit = 1 + the matching weights;
3. hot zone: for a hot lead, eligible reps without a lead for N days went first (the
   decision's `hot_zone` says whether that narrowed the field);
4. fairness: among the reps within `best_band` of the top score of the field (`band`),
   the largest shortfall (expected − received over the window) won; ties went to a draw
   seeded with the decision's `seed` (`random.Random(seed).choice` over the tied reps
   ordered by membership id).

`explain(decision)` is the manager's view: the outcome, the reasons, and one line per
candidate. Its `lines` never name a rep other than the chosen one, so they can be shown to
the lead's owner too. `why_not(decision, membership)` is a rep's view of one decision: only
their own verdict, set against the winner's score, without other reps' names or numbers.
The words themselves (labels, numbers, the sentences both views share) are in
leads.assignment.explain_texts.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from leads.assignment import explain_texts as texts
from leads.assignment.engine import (
    AT_CAPACITY,
    EXCLUDED,
    INDUSTRY,
    OK,
    PAUSED,
    REGION,
    UNAVAILABLE,
    Params,
)
from leads.models import AssignmentDecision, DecisionKind, DecisionOutcome, PoolReason

EPSILON = 1e-9


def params_of(decision: AssignmentDecision) -> Params:
    """The parameters of the policy version that made the decision (defaults if gone)."""
    policy = decision.policy
    return Params.of(policy) if policy is not None else Params()


@dataclass
class CandidateRow:
    """One candidate as the managers' table shows them."""

    membership_id: int
    name: str
    verdict: str  # the code
    text: str  # the verdict in words
    chosen: bool = False
    score: float | None = None
    fit: dict = field(default_factory=dict)
    fit_text: str = ""
    expected: float | None = None
    received: int | None = None
    shortfall: float | None = None
    hot: bool | None = None
    band: bool = False

    @property
    def eligible(self) -> bool:
        return self.verdict == OK

    @property
    def score_text(self) -> str:
        return texts.number(self.score)

    @property
    def expected_text(self) -> str:
        return texts.number(self.expected)

    @property
    def shortfall_text(self) -> str:
        return texts.number(self.shortfall)


@dataclass
class Explanation:
    decision: AssignmentDecision
    headline: str
    lines: list[str] = field(default_factory=list)
    score_parts: list[tuple[str, int]] = field(default_factory=list)  # (rule label, points)
    candidates: list[CandidateRow] = field(default_factory=list)

    @property
    def others(self) -> list[CandidateRow]:
        return [c for c in self.candidates if not c.chosen]


# --- reading a decision the way decide() made it ---------------------------------------------


@dataclass
class _Reading:
    """What `decide()` did with the candidates, reconstructed from the stored JSON."""

    params: Params
    entries: list[dict]
    eligible: list[dict]
    field: list[dict]  # the eligible reps the band was taken from (hot ones first)
    band: list[dict]
    tied: list[dict]
    chosen: dict | None
    top: float | None = None
    floor: float | None = None
    drawn: bool = False  # the seeded draw decided

    @property
    def best_band_percent(self) -> str:
        return texts.number(self.params.best_band * 100)


def _read(decision: AssignmentDecision) -> _Reading:
    params = params_of(decision)
    entries = list(decision.candidates or [])
    eligible = [e for e in entries if e.get("v") == OK and e.get("score") is not None]
    field_ = [e for e in eligible if e.get("hot")] if decision.hot_zone else eligible
    if not field_:
        field_ = eligible
    band = [e for e in field_ if e.get("band")]
    chosen = next((e for e in entries if e.get("m") == decision.chosen_id), None)
    reading = _Reading(params, entries, eligible, field_, band, [], chosen)
    if field_:
        reading.top = max(e["score"] for e in field_)
        reading.floor = reading.top * (1 - params.best_band)
    if band:
        most = max(e.get("short", 0) for e in band)
        tied = sorted(
            (e for e in band if e.get("short", 0) >= most - EPSILON), key=lambda e: e["m"]
        )
        reading.tied = tied
        if len(tied) > 1 and chosen is not None and decision.seed is not None:
            # The stored shortfalls are rounded: a tie is real only if the seeded draw
            # over the tied reps gives the chosen one, as decide() did.
            pick = random.Random(decision.seed).choice(tied)  # noqa: S311 (a replay)
            reading.drawn = pick.get("m") == chosen.get("m")
            if not reading.drawn:
                reading.tied = [chosen]
    return reading


def _candidate_rows(decision: AssignmentDecision, reading: _Reading) -> list[CandidateRow]:
    rows = []
    for entry in reading.entries:
        row = CandidateRow(
            membership_id=entry.get("m"),
            name=entry.get("n", "?"),
            verdict=entry.get("v", ""),
            text="",
            chosen=reading.chosen is not None and entry.get("m") == reading.chosen.get("m"),
        )
        if "score" in entry:
            row.score = entry.get("score")
            row.fit = entry.get("fit") or {}
            row.fit_text = texts.fit_text(row.fit)
            row.expected, row.received = entry.get("exp"), entry.get("rec")
            row.shortfall = entry.get("short")
            row.hot, row.band = entry.get("hot"), bool(entry.get("band"))
        row.text = _candidate_text(decision, reading, entry, row.chosen)
        rows.append(row)
    # The chosen first, then the eligible by score, then the others as listed.
    rows.sort(key=lambda r: (not r.chosen, not r.eligible, -(r.score or 0)))
    return rows


def _candidate_text(decision, reading: _Reading, entry: dict, chosen: bool) -> str:
    if chosen:
        return _("Chosen")
    if entry.get("v") != OK:
        return texts.verdict_label(entry)
    score = texts.number(entry.get("score"))
    if entry not in reading.field:
        return _("Score %(score)s, but reps without a lead for %(days)s days went first") % {
            "score": score,
            "days": reading.params.hot_zone_days,
        }
    if not entry.get("band"):
        return _("Score %(score)s, below the best band (from %(floor)s)") % {
            "score": score,
            "floor": texts.number(reading.floor),
        }
    if entry in reading.tied and reading.drawn:
        return _("In the best band with the same shortfall: not picked by the draw")
    if reading.chosen is None:
        return _("Score %(score)s") % {"score": score}
    return _("In the best band but with a smaller shortfall (%(short)s against %(best)s)") % {
        "short": texts.number(entry.get("short")),
        "best": texts.number(reading.chosen.get("short")),
    }


# --- the manager's view ---------------------------------------------------------------------------


def _chosen_name(decision: AssignmentDecision, reading: _Reading | None = None) -> str:
    if decision.chosen_id is not None and decision.chosen is not None:
        return decision.chosen.display_name
    if reading is not None and reading.chosen is not None:
        return reading.chosen.get("n", "?")
    return _("a rep no longer in the team")


def _pool_reason(decision: AssignmentDecision, pool_reason: str | None) -> str:
    """The pool reason: given (from the timeline), else read from the decision."""
    if pool_reason:
        return pool_reason
    if decision.candidates:
        return PoolReason.NO_CANDIDATE
    if decision.actor_id is not None:
        return PoolReason.MANUAL
    return ""


def headline(decision: AssignmentDecision, *, pool_reason: str | None = None) -> str:
    if decision.outcome == DecisionOutcome.ASSIGNED:
        name = _chosen_name(decision, _read(decision) if decision.candidates else None)
        if decision.kind == DecisionKind.REVISIT:
            return _("Assigned to %(name)s (revisit)") % {"name": name}
        if decision.kind == DecisionKind.MANUAL:
            if decision.previous_owner_id is None:
                return _("Assigned by hand to %(name)s") % {"name": name}
            return _("Reassigned to %(name)s") % {"name": name}
        return _("Assigned to %(name)s") % {"name": name}
    if decision.outcome == DecisionOutcome.WAITING:
        return _("Waiting for an eligible rep")
    if _pool_reason(decision, pool_reason) == PoolReason.MANUAL:
        return _("Put back in the pool by hand")
    return _("Put in the pool")


def explain(decision: AssignmentDecision, *, pool_reason: str | None = None) -> Explanation:
    """The whole decision in words, for managers and admins; `lines` name no rep but the
    chosen one, so they can be shown to the lead's owner as well.

    `pool_reason` (a `PoolReason`) words a pooled decision precisely; the lead's
    timeline has it. Without it, it is inferred from the decision.
    """
    reading = _read(decision)
    score_line, hits = texts.score_line(decision)
    result = Explanation(
        decision=decision,
        headline=headline(decision, pool_reason=pool_reason),
        score_parts=hits,
    )
    lines = result.lines
    params = reading.params
    kind, outcome = decision.kind, decision.outcome

    if outcome == DecisionOutcome.ASSIGNED and kind == DecisionKind.MANUAL:
        lines.append(
            _("%(actor)s assigned it by hand: %(reason)s")
            % {
                "actor": texts.actor_name(decision),
                "reason": decision.reason or _("no reason given"),
            }
        )
    elif outcome == DecisionOutcome.ASSIGNED and kind == DecisionKind.REVISIT:
        lines.append(
            _(
                "The same contact asked again within 30 days: a revisit goes to the first "
                "lead's owner, %(name)s, while they are an active rep."
            )
            % {"name": _chosen_name(decision)}
        )
    elif outcome == DecisionOutcome.ASSIGNED:
        if kind == DecisionKind.RETURN:
            lines.append(
                _(
                    "The lead was taken back from its previous owner and dispatched again "
                    "without them."
                )
            )
        if score_line:
            lines.append(score_line)
        lines += _assigned_lines(decision, reading)
        if decision.relaxed:
            lines.append(texts.relaxed_line(decision))
    elif outcome == DecisionOutcome.WAITING:
        if score_line:
            lines.append(score_line)
        lines.append(_nobody_line(reading))
        lines.append(
            _(
                "Dispatch is tried again after %(minutes)s minutes, with optional criteria "
                "dropped one by one."
            )
            % {"minutes": params.relax_after_minutes}
        )
    else:
        lines += _pooled_lines(decision, reading, _pool_reason(decision, pool_reason), score_line)
    policy_line = texts.policy_line(decision)
    if policy_line:
        lines.append(policy_line)
    result.candidates = _candidate_rows(decision, reading)
    return result


def _nobody_line(reading: _Reading) -> str:
    if not reading.entries:
        return _("No rep was eligible: the tenant has no active rep.")
    return _("No rep was eligible: %(summary)s.") % {
        "summary": texts.ineligible_summary(reading.entries)
    }


def _pooled_lines(decision, reading: _Reading, reason: str, score_line: str) -> list[str]:
    if reason == PoolReason.MANUAL:
        return [
            _("%(actor)s put it back in the pool: %(reason)s")
            % {
                "actor": texts.actor_name(decision),
                "reason": decision.reason or _("no reason given"),
            }
        ]
    if reason == PoolReason.NO_CANDIDATE:
        lines = [score_line] if score_line else []
        lines.append(_nobody_line(reading))
        if decision.relaxed:
            lines.append(
                _("Not even with %(criteria)s dropped.")
                % {
                    "criteria": texts.join_words(
                        texts.CRITERIA_LABELS.get(c, c) for c in decision.relaxed
                    )
                }
            )
        lines.append(_("The managers were told: it waits in the pool to be assigned by hand."))
        return lines
    if reason:
        try:
            label = PoolReason(reason).label
        except ValueError:
            label = reason
        return [_("Taken from its owner: %(reason)s.") % {"reason": label}]
    return [_("Taken from its owner and put back in the pool.")]


def _assigned_lines(decision: AssignmentDecision, reading: _Reading) -> list[str]:
    chosen = reading.chosen
    if chosen is None or chosen.get("score") is None:
        return []
    params = reading.params
    name = _chosen_name(decision, reading)
    lines = [texts.fit_line(name, chosen, decision)]
    eligible_n = len(reading.eligible)
    if eligible_n == 1:
        lines.append(
            _("%(name)s was the only eligible rep (%(others)s).")
            % {"name": name, "others": texts.ineligible_summary(reading.entries) or "—"}
            if len(reading.entries) > 1
            else _("%(name)s was the only rep.") % {"name": name}
        )
        return lines
    if decision.hot_zone:
        lines.append(
            ngettext(
                "The lead scores at least %(min)s, so the reps without a new lead for "
                "%(days)s days went first: %(n)s of %(eligible)s eligible rep.",
                "The lead scores at least %(min)s, so the reps without a new lead for "
                "%(days)s days went first: %(n)s of %(eligible)s eligible reps.",
                eligible_n,
            )
            % {
                "min": params.hot_zone_min_score,
                "days": params.hot_zone_days,
                "n": len(reading.field),
                "eligible": eligible_n,
            }
        )
    band_n = len(reading.band)
    values = {
        "name": name,
        "band": reading.best_band_percent,
        "top": texts.number(reading.top),
        "floor": texts.number(reading.floor),
        "n": band_n,
        "ledger": texts.ledger_text(chosen, params),
    }
    if band_n <= 1:
        lines.append(
            _("%(name)s had the top score (%(top)s); nobody else was within %(band)s%% of it.")
            % values
        )
        return lines
    lines.append(
        ngettext(
            "%(n)s rep was within %(band)s%% of the top score %(top)s (from %(floor)s); "
            "in this best band the one furthest behind their fair share wins.",
            "%(n)s reps were within %(band)s%% of the top score %(top)s (from %(floor)s); "
            "in this best band the one furthest behind their fair share wins.",
            band_n,
        )
        % values
    )
    if reading.drawn:
        lines.append(_("%(name)s: %(ledger)s, the largest, level with others.") % values)
        lines.append(
            ngettext(
                "%(n)s rep had the same shortfall: a draw with seed %(seed)s picked %(name)s "
                "(the same seed always picks the same rep).",
                "%(n)s reps had the same shortfall: a draw with seed %(seed)s picked %(name)s "
                "(the same seed always picks the same rep).",
                len(reading.tied),
            )
            % {"n": len(reading.tied), "seed": decision.seed, "name": name}
        )
    else:
        lines.append(_("%(name)s: %(ledger)s, the largest in the band.") % values)
    return lines


# --- one rep's view ------------------------------------------------------------------------


@dataclass
class WhyNot:
    decision: AssignmentDecision
    headline: str  # the outcome, with no other rep's name
    lines: list[str] = field(default_factory=list)
    mine: bool = False  # the lead went to this rep
    verdict: str = ""  # this rep's verdict code ("" when not a candidate)


def _masked_headline(decision: AssignmentDecision, membership, pool_reason=None) -> str:
    if decision.outcome == DecisionOutcome.ASSIGNED:
        if decision.chosen_id == membership.pk:
            return _("It went to you")
        return _("It went to another rep")
    return headline(decision, pool_reason=pool_reason)


def why_not(decision: AssignmentDecision, membership, *, pool_reason=None) -> WhyNot:
    """One decision as `membership` (a rep) may read it: their own verdict and how it
    compared with the winner's score, never another rep's name or numbers."""
    result = WhyNot(
        decision=decision,
        headline=_masked_headline(decision, membership, pool_reason),
        mine=decision.outcome == DecisionOutcome.ASSIGNED and decision.chosen_id == membership.pk,
    )
    lines = result.lines
    reading = _read(decision)
    params = reading.params
    entry = next((e for e in reading.entries if e.get("m") == membership.pk), None)
    kind = decision.kind

    if result.mine:
        if kind == DecisionKind.MANUAL:
            lines.append(_("A manager assigned it to you by hand."))
        elif kind == DecisionKind.REVISIT:
            lines.append(_("It is a revisit of a lead of yours: it comes back to you."))
        else:
            lines.append(_("You were chosen."))
            if entry is not None and entry.get("score") is not None:
                lines.append(texts.fit_line("", entry, decision, own=True))
        return result
    if entry is None:
        result.verdict = ""
        if kind == DecisionKind.MANUAL:
            lines.append(_("A manager assigned it by hand: no automatic choice was made."))
        elif kind == DecisionKind.REVISIT:
            lines.append(
                _("It is a revisit: it went to the owner of the first lead from this contact.")
            )
        elif decision.outcome == DecisionOutcome.POOLED and not decision.candidates:
            lines.append(_("It was taken from its owner; no rep was chosen in this step."))
        else:
            lines.append(
                _("You were not a candidate: only active reps of the team are considered.")
            )
        return result

    code = entry.get("v")
    result.verdict = code
    if code == UNAVAILABLE:
        lines.append(_("You were marked unavailable (leave or away) when it was dispatched."))
    elif code == PAUSED:
        lines.append(_("You were paused from dispatch (observation zone) when it was dispatched."))
    elif code == AT_CAPACITY:
        lines.append(
            _("You were at capacity: %(open)s open unverified leads of %(cap)s.")
            % {"open": entry.get("open", "?"), "cap": entry.get("cap", "?")}
        )
    elif code == REGION:
        lines.append(_("The lead's region is not one of yours, and the policy required it."))
    elif code == INDUSTRY:
        lines.append(_("The lead's industry is not one of yours, and the policy required it."))
    elif code == EXCLUDED:
        lines.append(_("It had just been taken back from you, so you were left out."))
    else:
        lines += _own_ok_lines(decision, reading, entry, params)
    if decision.relaxed and code in (REGION, INDUSTRY):
        lines.append(texts.relaxed_line(decision))
    return result


def _own_ok_lines(decision, reading: _Reading, entry: dict, params: Params) -> list[str]:
    lines = [texts.fit_line("", entry, decision, own=True)]
    winner = reading.chosen
    if winner is None:
        return lines
    values = {
        "mine": texts.number(entry.get("score")),
        "winner": texts.number(winner.get("score")),
        "floor": texts.number(reading.floor),
        "band": reading.best_band_percent,
        "days": params.hot_zone_days,
        "min": params.hot_zone_min_score,
        "ledger": texts.ledger_text(entry, params),
    }
    if entry not in reading.field:
        lines.append(
            _(
                "The lead scores at least %(min)s, so reps without a new lead for %(days)s "
                "days went first; you had received one more recently."
            )
            % values
        )
    elif not entry.get("band"):
        lines.append(
            _(
                "Your score %(mine)s was below the best band: it took scores from %(floor)s "
                "(within %(band)s%% of the top); the chosen rep scored %(winner)s."
            )
            % values
        )
    elif entry in reading.tied and reading.drawn:
        lines.append(
            _(
                "You were in the best band (score %(mine)s) and as far behind your fair share "
                "as the chosen rep (%(ledger)s): a seeded draw picked them."
            )
            % values
        )
    else:
        lines.append(
            _(
                "You were in the best band (score %(mine)s; the chosen rep scored %(winner)s), "
                "but another rep was further behind their fair share: you had %(ledger)s."
            )
            % values
        )
    return lines
