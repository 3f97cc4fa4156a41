"""The words of "why this rep" (F12; leads.assignment.explain): the labels of the fit's
parts, the criteria and the verdicts, numbers as the pages show them, and the sentences
the manager's and the rep's views share (the lead score, a fit, a ledger, the policy
version). Each is worded in the reader's language when called.
"""

from __future__ import annotations

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext, pgettext

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
from leads.models import AssignmentDecision

FIT_LABELS = {
    "industry": gettext_lazy("industry match"),
    "region": gettext_lazy("region match"),
    "product": gettext_lazy("product line match"),
    "response": gettext_lazy("response speed"),
    "cycle": gettext_lazy("deal-cycle preference"),
}
CRITERIA_LABELS = {
    REGION: gettext_lazy("the region requirement"),
    INDUSTRY: gettext_lazy("the industry requirement"),
}
# Short verdicts of ineligible candidates (the candidates table, the summaries).
VERDICT_LABELS = {
    UNAVAILABLE: gettext_lazy("Unavailable (leave or away)"),
    PAUSED: gettext_lazy("Paused (observation zone)"),
    AT_CAPACITY: gettext_lazy("At capacity %(open)s/%(cap)s"),
    REGION: gettext_lazy("Not in the lead's region"),
    INDUSTRY: gettext_lazy("Not in the lead's industry"),
    EXCLUDED: gettext_lazy("Left out: the lead was just taken back from them"),
}


def number(value) -> str:
    """12 → "12", 2.5 → "2.5", 1.2345 → "1.23"; None → "—"."""
    if value is None:
        return "—"
    value = round(float(value), 2)
    if value == int(value):
        return str(int(value))
    return f"{value:.2f}".rstrip("0")


def join_words(items) -> str:
    return pgettext("list separator", ", ").join(str(i) for i in items)


def signed(value) -> str:
    return ("+" if float(value) >= 0 else "−") + number(abs(float(value)))


def fit_text(parts: dict) -> str:
    """ "industry match +0.5, response speed +0.1" (or "no match" when empty)."""
    if not parts:
        return _("no match")
    order = list(FIT_LABELS)  # stored as JSONB, the parts come back in any order
    keys = sorted(parts, key=lambda k: (order.index(k) if k in order else len(order), k))
    return join_words(f"{FIT_LABELS.get(k, k)} {signed(parts[k])}" for k in keys)


def verdict_label(entry: dict) -> str:
    """The short verdict of an ineligible candidate."""
    code = entry.get("v")
    label = VERDICT_LABELS.get(code)
    if label is None:
        return str(code)
    if code == AT_CAPACITY:
        return str(label) % {"open": entry.get("open", "?"), "cap": entry.get("cap", "?")}
    return str(label)


def score_line(decision: AssignmentDecision) -> tuple[str, list[tuple[str, int]]]:
    hits = [(h.get("label", ""), int(h.get("points", 0))) for h in decision.score_breakdown or []]
    if decision.lead_score is None:
        return "", hits
    base = decision.lead_score - sum(p for _label, p in hits)
    if not hits:
        line = _("Lead score %(score)s: the base score, no rule matched.") % {
            "score": decision.lead_score
        }
    else:
        rules = join_words(f"{label} {signed(points)}" for label, points in hits)
        line = _("Lead score %(score)s: base %(base)s, %(rules)s.") % {
            "score": decision.lead_score,
            "base": base,
            "rules": rules,
        }
    return line, hits


def fit_line(name: str, entry: dict, decision: AssignmentDecision, *, own=False) -> str:
    parts = entry.get("fit") or {}
    fit = 1 + sum(parts.values())
    values = {
        "name": name,
        "parts": fit_text(parts),
        "fit": number(fit),
        "weight": max(decision.lead_score or 0, 1),
        "score": number(entry.get("score")),
    }
    if own:
        return (
            _("Your fit: 1 + %(parts)s = %(fit)s; your score %(fit)s × %(weight)s = %(score)s.")
            % values
        )
    return (
        _("Fit of %(name)s: 1 + %(parts)s = %(fit)s; score %(fit)s × %(weight)s = %(score)s.")
        % values
    )


def ledger_text(entry: dict, params: Params) -> str:
    return _(
        "%(received)s received against %(expected)s expected over the last %(days)s days "
        "(shortfall %(short)s)"
    ) % {
        "received": entry.get("rec", 0),
        "expected": number(entry.get("exp")),
        "days": params.fairness_window_days,
        "short": number(entry.get("short")),
    }


def ineligible_summary(entries: list[dict]) -> str:
    counts: dict[str, int] = {}
    for entry in entries:
        code = entry.get("v")
        if code != OK:
            counts[code] = counts.get(code, 0) + 1
    words = {
        UNAVAILABLE: lambda n: ngettext("%(n)s unavailable", "%(n)s unavailable", n),
        PAUSED: lambda n: ngettext("%(n)s paused", "%(n)s paused", n),
        AT_CAPACITY: lambda n: ngettext("%(n)s at capacity", "%(n)s at capacity", n),
        REGION: lambda n: ngettext("%(n)s outside the region", "%(n)s outside the region", n),
        INDUSTRY: lambda n: ngettext("%(n)s outside the industry", "%(n)s outside the industry", n),
        EXCLUDED: lambda n: ngettext("%(n)s left out", "%(n)s left out", n),
    }
    parts = [
        words[code](n) % {"n": n} if code in words else f"{n} {code}" for code, n in counts.items()
    ]
    return join_words(parts)


def policy_line(decision: AssignmentDecision) -> str:
    if decision.policy is None or decision.policy.version is None:
        return ""
    return _("Decided under assignment policy version %(version)s.") % {
        "version": decision.policy.version
    }


def relaxed_line(decision: AssignmentDecision) -> str:
    if not decision.relaxed:
        return ""
    return _("Nobody was eligible with every criterion, so these were dropped: %(criteria)s.") % {
        "criteria": join_words(CRITERIA_LABELS.get(c, c) for c in decision.relaxed)
    }


def actor_name(decision: AssignmentDecision) -> str:
    actor = decision.actor
    if actor is None:
        return _("a manager")
    return actor.get_full_name() or actor.get_username()
