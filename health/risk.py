"""The risk list (F34) as people use it: who sees which entries, each open entry with its
customer's health on the latest scored day, the retention task's "done", and the rule
action that gives a new stay its task and tells its owner.

The entries themselves are opened and closed by the nightly recompute
(health.compute._settle_risk): once per stay, with the playbook step of the customer's
weakest dimension, and its `health.risk_entered` event. The tenant's automation rule
"a customer entered the risk list → retention task" (on for every tenant) gives the stay
its task (`retention_task`): it is on its owner's board (health.board) until it is marked
done here or the customer leaves the list; coming back opens a new stay, and so a new
task.

Today's figures (score, coverage, days since the last interaction) come from the
snapshot of the latest scored day (`HealthSettings.computed_on`), joined on the
snapshot's unique (tenant, customer, day) key: one join, indexed, in the list's own
query, whatever the number of rows.
"""

from __future__ import annotations

from datetime import date
from functools import partial

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import FloatField, IntegerField, JSONField
from django.db.models.expressions import RawSQL
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.audit import audit
from crm.events import ActionFailed
from crm.models import Membership, Tenant
from crm.roles import CUSTOMER_ALL, MANAGERS
from crm.services import actor_user, check_tenant
from crm.tenancy import tenant_context
from health.models import Dimension, HealthSettings, RiskEntry

ENTERED_EVENT = "health.risk_entered"
# The rule action that gives a stay its retention task (crm.events.register_action).
RETENTION_ACTION = "retention_task"
DONE_ACTION = "health.risk_done"
# The names a notification lists before "and N more".
NAMES_SHOWN = 5

_SNAPSHOT = "health_healthsnapshot"
# The snapshot's columns an entry carries as today's figures: (column, SQL type).
_TODAY = {
    "today_score": ("score", "smallint"),
    "today_coverage": ("coverage", "smallint"),
    "today_recency": ("recency_value", "float8"),
    "today_weights": ("weights", "jsonb"),
}
_FIELDS = {
    "today_score": IntegerField(),
    "today_coverage": IntegerField(),
    "today_recency": FloatField(),
    "today_weights": JSONField(),
}


def scored_day(tenant: Tenant) -> date | None:
    """The latest day the tenant's customers were scored (None before the first run)."""
    return list_state(tenant)[0]


def list_state(tenant: Tenant) -> tuple[date | None, int | None]:
    """(the latest scored day, the score every open entry's snapshot of that day is below,
    when known) in one query. The bound is the tenant's `risk_score_below` when the
    settings have not changed since that run: the run closed every entry that did not
    qualify by it, so each open one's score is below it. A sort from the highest score
    down starts there instead of walking the healthy customers' snapshots first."""
    row = (
        HealthSettings.objects.filter(tenant=tenant)
        .values_list("computed_on", "computed_at", "updated_at", "risk_score_below")
        .first()
    )
    if row is None:
        return None, None
    day, computed_at, updated_at, below = row
    unchanged = day is not None and computed_at is not None and updated_at <= computed_at
    return day, below if unchanged else None


# `with_today`'s day: the tenant's latest scored day, read by the same query (the board).
LATEST = "latest"
_LATEST_DAY = (
    '"health_healthsnapshot"."day" = '
    '(SELECT "computed_on" FROM "health_healthsettings" WHERE "tenant_id" = %s)'
)


def with_today(queryset, day: date | str | None, *, tenant: Tenant | None = None):
    """Entries with their customer's snapshot of `day` joined in: `today_score`,
    `today_coverage`, `today_recency` (days since the last interaction, NULL when none)
    and `today_weights` (for coverage's denominator). The snapshot's unique key (tenant,
    customer, day) makes it one row per entry; with no scored day, none is joined and
    the figures are NULL. `day=LATEST` (with `tenant`): the latest scored day, read by
    a subquery of the same statement rather than one more query."""
    if day is None:
        sql = {name: f"NULL::{cast}" for name, (_c, cast) in _TODAY.items()}
    else:
        # Only our own table and column names are formatted in; the day is a parameter.
        queryset = queryset.extra(  # noqa: S610
            tables=[_SNAPSHOT],
            where=[
                f'"{_SNAPSHOT}"."tenant_id" = "health_riskentry"."tenant_id"',
                f'"{_SNAPSHOT}"."customer_id" = "health_riskentry"."customer_id"',
                f'"{_SNAPSHOT}"."day" = %s' if day != LATEST else _LATEST_DAY,
            ],
            params=[day if day != LATEST else tenant.pk],
        )
        sql = {name: f'"{_SNAPSHOT}"."{c}"' for name, (c, _t) in _TODAY.items()}
    columns = {n: RawSQL(sql[n], (), output_field=_FIELDS[n]) for n in _TODAY}  # noqa: S611
    return queryset.annotate(**columns)


def coverage_text(entry) -> str:
    """ "4/6": the dimensions with data over those that count (a weight above 0)."""
    if entry.today_coverage is None:
        return ""
    weights = entry.today_weights if isinstance(entry.today_weights, dict) else {}
    # health.compute.weighted_dimensions over the weights the snapshot was scored with
    # (not imported: the recompute imports this module).
    counted = sum(1 for d in Dimension.values if (weights.get(d) or 0) > 0)
    return f"{entry.today_coverage}/{counted}"


def days_since(entry) -> int | None:
    return int(entry.today_recency) if entry.today_recency is not None else None


def entries_visible_to(membership: Membership):
    """The entries `membership` may read (the customers.access rule: managers, marketing,
    service and admins every customer's, a rep those of the customers they own)."""
    qs = RiskEntry.objects.all()
    if membership.role in CUSTOMER_ALL:
        return qs
    # The stay's owner (its index; the recompute keeps it the customer's) and, as the
    # customer page says, the customer's own owner.
    return qs.filter(owner=membership, customer__owner=membership)


def open_entries(membership: Membership):
    """The customers on the list now, as `membership` sees them."""
    return entries_visible_to(membership).filter(left_on__isnull=True)


def can_mark_done(membership: Membership, entry: RiskEntry) -> bool:
    """The task's owner and the managers (and admins) mark a retention task done."""
    return entry.owner_id == membership.pk or membership.role in MANAGERS


# -- the services -----------------------------------------------------------------------------


def risk_task_done(*, tenant: Tenant, acting_member: Membership, entry: RiskEntry) -> RiskEntry:
    """Mark a stay's retention task done (its owner, or a manager). ValidationError when the
    customer has left the list or the task is done already; PermissionDenied for
    anyone else."""
    check_tenant(tenant, entry, acting_member)
    if not can_mark_done(acting_member, entry):
        raise PermissionDenied(_("The task's owner or a manager marks it done."))
    with transaction.atomic():
        entry = RiskEntry.objects.select_for_update().get(pk=entry.pk)
        if entry.left_on is not None:
            raise ValidationError(_("The customer has left the risk list: the task is closed."))
        if entry.task_at is None:
            raise ValidationError(_("No rule gave this stay a retention task."))
        if entry.done_at is not None:
            raise ValidationError(_("The retention task is done already."))
        entry.done_at = timezone.now()
        entry.done_by = acting_member
        entry.save(update_fields=["done_at", "done_by"])
        audit(
            tenant=tenant,
            actor=actor_user(acting_member),
            action=DONE_ACTION,
            obj=entry,
            changes={"customer": entry.customer_id, "action": entry.action},
        )
    return entry


def retention_task(event) -> str:
    """The rule action "retention task" (crm.events.register_action), for an event
    `health.risk_entered`: give the stay its task (on the owner's board from now on) and
    tell the owner after the commit, one notification per owner and drained batch naming
    the customers (`notify_entered`). The run log's detail."""
    entry = (
        RiskEntry.objects.select_for_update(of=("self",))
        .select_related("customer")
        .filter(pk=event.object_id)
        .first()
    )
    if entry is None:
        raise ActionFailed(_("The risk list entry is gone."))
    if entry.left_on is not None:
        return _("%(customer)s has left the risk list already.") % {"customer": entry.customer}
    if entry.task_at is not None:
        return _("%(customer)s: the task was given already.") % {"customer": entry.customer}
    entry.task_at = timezone.now()
    entry.save(update_fields=["task_at"])
    if entry.owner_id is not None:
        _tell_after_commit(entry.tenant_id, entry.pk)
    return f"{entry.customer.name}: {entry.action}"


def _tell_after_commit(tenant_id: int, entry_id: int) -> None:
    """Queue the owners' notification of `entry_id` for after the commit: one callback per
    transaction and tenant, gathering the entries (a savepoint rolled back leaves its id
    there, but its `task_at` NULL: `notify_entered` passes over it)."""
    for _sids, func, _robust in transaction.get_connection().run_on_commit:
        if isinstance(func, partial) and func.func is _tell and func.args[0] == tenant_id:
            func.args[1].append(entry_id)
            return
    transaction.on_commit(partial(_tell, tenant_id, [entry_id]), robust=True)


def _tell(tenant_id: int, entry_ids: list[int]) -> None:
    tenant = Tenant.objects.get(pk=tenant_id)
    with tenant_context(tenant):
        notify_entered(tenant, entry_ids)


def notify_entered(tenant: Tenant, entry_ids: list[int]) -> int:
    """Tell each owner which of their customers entered the list (the entries `entry_ids`
    whose task was just given): one notification per owner, naming the customers. How
    many owners were told."""
    from crm.notify import notify

    rows = (
        RiskEntry.objects.filter(pk__in=entry_ids, owner__isnull=False, task_at__isnull=False)
        .order_by("owner_id", "score", "id")
        .values_list("owner_id", "customer__name")
    )
    by_owner: dict[int, list[str]] = {}
    for owner_id, name in rows:
        by_owner.setdefault(owner_id, []).append(name)
    if not by_owner:
        return 0
    owners = {
        m.pk: m
        for m in Membership.objects.in_tenant(tenant).filter(pk__in=by_owner).select_related("user")
    }
    link = reverse("health:risk_list")
    told = 0
    for owner_id, names in by_owner.items():
        owner = owners.get(owner_id)
        if owner is None:
            continue
        shown = "、".join(names[:NAMES_SHOWN])
        if len(names) > NAMES_SHOWN:
            shown += " …"
        told += bool(
            notify(
                event=ENTERED_EVENT,
                recipients=[owner],
                params={"count": len(names), "customers": shown},
                link=link,
                tenant=tenant,
            )
        )
    return told
