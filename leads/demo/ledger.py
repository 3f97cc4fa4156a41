"""The demo's fairness ledger: rebuilt from the assignment decisions by the tenant's day,
as the engine would have written it had the story's leads arrived over the days they are
dated (the story and the board part both end with it)."""

from __future__ import annotations

from collections import defaultdict

from django.utils import timezone

from leads.assignment.engine import OK
from leads.models import AssignmentDecision, DecisionKind, DecisionOutcome, RepLedgerDay, RepProfile

# Decisions the ledger counts: a manual one adds to `received` only (it has no candidates);
# a revisit is not counted (same customer, not a new lead).
LEDGER_KINDS = (DecisionKind.AUTO, DecisionKind.RETRY, DecisionKind.RETURN, DecisionKind.MANUAL)


def rebuild_ledger(tenant) -> None:
    """The ledger as the engine would have written it day by day: rebuilt from the
    decisions (each one records its eligible reps), by the tenant's day."""
    weights = dict(RepProfile.objects.values_list("membership_id", "share_weight"))
    tzinfo = tenant.tzinfo
    days: dict = defaultdict(lambda: [0.0, 0])
    decisions = AssignmentDecision.objects.filter(
        outcome=DecisionOutcome.ASSIGNED, kind__in=LEDGER_KINDS
    ).values_list("chosen_id", "candidates", "decided_at")
    for chosen_id, candidates, decided_at in decisions:
        day = timezone.localtime(decided_at, tzinfo).date()
        eligible = [c["m"] for c in candidates or () if c.get("v") == OK]
        total = sum(weights.get(m, 1.0) for m in eligible)
        for m in eligible:
            days[(m, day)][0] += weights.get(m, 1.0) / total
        if chosen_id is not None:
            days[(chosen_id, day)][1] += 1
    RepLedgerDay.objects.all().delete()
    RepLedgerDay.objects.bulk_create(
        [
            RepLedgerDay(
                tenant=tenant,
                membership_id=m,
                day=day,
                expected=round(expected, 6),
                received=received,
            )
            for (m, day), (expected, received) in sorted(days.items())
        ],
        batch_size=500,
    )
