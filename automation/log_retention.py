"""The automation app's part of the nightly retention (crm.log_retention, which calls
`prune` for each tenant before it deletes the tenant's old events):

- the run log: `Run` rows older than `AUTOMATION_LOG_DAYS`, rule by rule as ranges of
  `run_rule_at`; `Miss` rows as old, walking the primary key in insertion order;
- handled clocks (`Due` with `done_at` set) and finished webhook calls (`sent`, `dead`)
  as old: rule by rule along `due_once`, and along the primary key;
- spent dedup rows (`Firing`): a firing older than its rule's cool-down plus a day can
  deduplicate nothing more (the window of a later event is another bucket; without a
  cool-down the window is the event's own, drained once and drained again only within
  minutes), rule by rule as ranges of `firing_rule_at`.

It also tells the kernel how long the event log must be kept for this app
(`event_days`): the longest windowed count a rule may use plus the dry run's 30 days, and
no less than the run log's days (a run never outlives its event). See
docs/automation.md, "Retention".
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings

from automation import dryrun
from automation.models import MAX_COUNT_DAYS, CallStatus, Rule
from crm.log_retention import delete_batches, delete_in_order, distinct_values
from crm.models import Tenant
from crm.tenancy import tenant_context

# A firing is kept this long after its rule's cool-down (a drain or a sweep running late).
FIRING_MARGIN = timedelta(days=1)


def log_days() -> int:
    """The days the run log, handled clocks and finished webhook calls are kept."""
    return max(settings.AUTOMATION_LOG_DAYS, 1)


def event_days() -> int:
    """How long this app needs the business-event log."""
    return max(MAX_COUNT_DAYS + dryrun.DAYS, log_days())


def prune(tenant: Tenant, now: datetime, batch: int) -> dict[str, int]:
    """The tenant's rows past their days deleted, each batch a tenant transaction of its
    own (call it outside any transaction). How many, per table."""
    cutoff = now - timedelta(days=log_days())
    with tenant_context(tenant):
        rules = dict(Rule.objects.values_list("pk", "cooldown_minutes"))
    return {
        "runs": _runs(tenant, cutoff, batch),
        "misses": delete_in_order(
            tenant,
            "automation_miss",
            doomed="at < %(cutoff)s",
            young="at >= %(cutoff)s",
            params={"cutoff": cutoff},
            batch=batch,
        ),
        "clocks": sum(_clocks(tenant, rule_id, cutoff, batch) for rule_id in rules),
        "webhook_calls": delete_in_order(
            tenant,
            "automation_webhookcall",
            doomed="status IN (%(sent)s, %(dead)s) AND created_at < %(cutoff)s",
            young="created_at >= %(cutoff)s",
            params={"cutoff": cutoff, "sent": CallStatus.SENT, "dead": CallStatus.DEAD},
            batch=batch,
        ),
        "firings": sum(
            _firings(tenant, rule_id, now - timedelta(minutes=cooldown) - FIRING_MARGIN, batch)
            for rule_id, cooldown in rules.items()
        ),
    }


def _runs(tenant: Tenant, cutoff: datetime, batch: int) -> int:
    """Per rule found in the log (a deleted rule's runs included), its runs before `cutoff`:
    one range of `run_rule_at` (tenant, rule, at)."""
    select = (
        "SELECT id FROM automation_run WHERE tenant_id = %(tenant)s AND rule_id = %(rule)s"
        " AND at < %(cutoff)s ORDER BY at LIMIT %(batch)s"
    )
    return sum(
        delete_batches(
            tenant, "automation_run", select, {"rule": rule_id, "cutoff": cutoff}, batch=batch
        )
        for rule_id in distinct_values(tenant, "automation_run", "rule_id")
    )


def _clocks(tenant: Tenant, rule_id: int, cutoff: datetime, batch: int) -> int:
    """The rule's clocks handled before `cutoff`, walking `due_once` (tenant, rule, event)
    in the events' order up to the first clock due after it (a rule's clocks fall due in
    the order of their events: its wait is the same for all)."""
    return delete_in_order(
        tenant,
        "automation_due",
        order="event_id",
        within="AND rule_id = %(rule)s",
        doomed="done_at < %(cutoff)s",
        young="due_at >= %(cutoff)s",
        params={"rule": rule_id, "cutoff": cutoff},
        batch=batch,
    )


def _firings(tenant: Tenant, rule_id: int, cutoff: datetime, batch: int) -> int:
    """The rule's firings made before `cutoff`: one range of `firing_rule_at`."""
    select = (
        "SELECT id FROM automation_firing WHERE tenant_id = %(tenant)s AND rule_id = %(rule)s"
        " AND at < %(cutoff)s ORDER BY at LIMIT %(batch)s"
    )
    return delete_batches(
        tenant, "automation_firing", select, {"rule": rule_id, "cutoff": cutoff}, batch=batch
    )
