"""The rules' circuit breaker, shared by the engine (a failed action) and the webhook
sender (a failed call): three failures in a row pause a rule and tell the tenant admins."""

from __future__ import annotations

from automation.models import Rule
from crm.notify import admins_of, notify

FAILURES_TO_PAUSE = 3
PAUSED_EVENT = "automation.rule_paused"


def tell_paused(rule: Rule, error: str) -> None:
    """Tell the tenant's admins that `rule` was paused after its failures."""
    notify(
        event=PAUSED_EVENT,
        recipients=admins_of(),
        params={"rule": rule.name, "failures": rule.consecutive_failures, "error": error[:200]},
        link=f"/admin/automation/rule/{rule.pk}/change/",
    )
