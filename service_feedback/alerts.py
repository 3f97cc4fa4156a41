"""Quality alerts (F29): tickets cluster by product model × fault code × region (the
province). `ServiceSettings.alert_threshold` (5) tickets of one cluster opened within
`alert_window_hours` (72) raise one `QualityAlert`; the next tickets of the cluster attach
to it while it is open (`Ticket.alert`); an alert with no new ticket for
`alert_quiet_days` closes by itself (the sweep), or a manager closes it by hand with a note.

Who is told when an alert is raised: the quality group, which is the tenant's sales
managers and admins (there is no quality role), and the owners of the affected customers.

Checked after every batch of ticket writes (`check_tickets`, from effects.tickets_saved;
`check_ticket` is its batch of one): the batch's cluster locks in one sorted statement,
their open alerts in one query, their unattached tickets counted in one grouped statement,
then every cluster settled in the batch's order with `_settle`'s outcome, and the waiting
tickets attached in one statement (the partial unique constraint `quality_alert_one_open`
behind the locks); and by the beat sweep (`sweep`, per tenant: one aggregate statement
over the window, on the index `ticket_cluster`).

A ticket counts towards a new alert only while it belongs to no alert: after an alert is
closed, its tickets do not raise the next one.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Q
from django.urls import reverse
from django.utils import timezone

from service_feedback.models import QualityAlert, ServiceSettings, Ticket
from service_feedback.review import targets

ALERT_EVENT = "service.quality_alert"


@dataclass(frozen=True)
class Cluster:
    product_model: str
    fault_code: str
    province: str

    @classmethod
    def of(cls, ticket: Ticket) -> Cluster | None:
        """The ticket's cluster, or None when it names no product model or fault code."""
        if not ticket.product_model or not ticket.fault_code:
            return None
        return cls(ticket.product_model, ticket.fault_code, ticket.province or "")

    def filter(self) -> dict:
        return {
            "product_model": self.product_model,
            "fault_code": self.fault_code,
            "province": self.province,
        }


def advisory_locks(keys) -> None:
    """Transaction advisory locks on `keys` (strings as crm.tenancy.advisory_lock makes
    them), in one statement, in sorted order: two writers locking overlapping sets take
    their common keys in the same order, so they wait on each other, never deadlock."""
    keys = sorted(set(keys))
    if not keys:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_advisory_xact_lock(hashtextextended(key, 0)))"
            " FROM unnest(%s::text[]) AS key",
            [keys],
        )


def _key(tenant, cluster: Cluster) -> str:
    parts = ("service_feedback.alert", tenant.pk, *cluster.filter().values())
    return ":".join(str(p) for p in parts)


def _lock(tenant, clusters) -> None:
    """The clusters' locks (advisory_lock's keys), in one statement, in sorted order."""
    advisory_locks(_key(tenant, c) for c in clusters)


@dataclass(frozen=True)
class Before:
    """What of a ticket's row counts for the clusters, as it was before a write."""

    alert_id: int | None
    cluster: Cluster | None
    opened_at: datetime | None

    def waiting(self, since) -> Cluster | None:
        """The cluster the row was waiting in (unattached, in the window), or None."""
        if self.alert_id is None and self.opened_at is not None and self.opened_at >= since:
            return self.cluster
        return None


def state_of(ticket: Ticket) -> Before:
    return Before(ticket.alert_id, Cluster.of(ticket), ticket.opened_at)


def check_ticket(
    ticket: Ticket, *, now: datetime | None = None, settings: ServiceSettings | None = None
) -> QualityAlert | None:
    """Attach `ticket` (saved as it is) to its cluster's open alert, or raise one if the
    cluster now has enough unattached tickets in the window: `check_tickets` of one. The
    alert the ticket belongs to, or None."""
    return check_tickets(ticket.tenant, [(ticket, state_of(ticket))], now=now, settings=settings)[0]


class _Cluster:
    """A cluster while a batch settles it: its alert and its unattached tickets."""

    __slots__ = ("alert", "attach", "last", "waiting")

    def __init__(self, alert, waiting: int, last):
        self.alert, self.waiting, self.last, self.attach = alert, waiting, last, False


def check_tickets(
    tenant,
    saved: list[tuple[Ticket | None, Before | None]],
    *,
    now: datetime | None = None,
    settings: ServiceSettings | None = None,
    clusters: list[Cluster] = (),
) -> list[QualityAlert | None]:
    """The quality clusters after a batch of ticket writes (`saved`: each ticket as just
    written, with its row's `Before` state, None for a new ticket), in the batch's order,
    with the very outcome of checking them one after another: a ticket still in its
    alert's cluster stays in it; one moved to another cluster leaves its alert; then, in
    the ticket's cluster, the unattached tickets of the window attach to the open alert,
    or raise one when there are at least the threshold's (told once, with the count at
    that ticket). `clusters`: clusters to settle with no ticket (the sweep's). Runs in
    the caller's transaction; the alert each ticket belongs to.

    Statements, whatever the batch's size: the clusters' locks (one, sorted), their open
    alerts and the tickets' former alerts (one), their unattached tickets of the window
    counted by cluster (one), at most one UPDATE detaching moved tickets, and one
    statement attaching every cluster's waiting tickets and moving its alert's last
    ticket time on; plus, per alert raised (rare), its INSERT and the message."""
    return _check(tenant, saved, now=now, settings=settings, clusters=clusters)[0]


def _check(tenant, saved, *, now, settings, clusters=()) -> tuple[list, dict]:
    """check_tickets' work: (the tickets' alerts, each cluster's state at the end)."""
    now = now or timezone.now()
    settings = settings or targets(tenant)
    since = now - timedelta(hours=settings.alert_window_hours)
    steps = [(t, b, Cluster.of(t)) for t, b in saved] + [(None, None, c) for c in clusters]
    involved = sorted({c for _t, _b, c in steps if c is not None}, key=astuple)
    former = {b.alert_id for _t, b, _c in steps if b is not None and b.alert_id is not None}
    if not involved and not former:
        return [None] * len(saved), {}
    _lock(tenant, involved)
    # The tenant's open alerts (few: one per cluster at the threshold) and the former ones.
    alerts = {
        a.pk: a for a in QualityAlert.objects.filter(Q(closed_at__isnull=True) | Q(pk__in=former))
    }
    open_alerts = {Cluster.of(a): a for a in alerts.values() if a.closed_at is None}
    ours = [t.pk for t, _b, _c in steps if t is not None]
    counted = _waiting(tenant, [c for c in involved if c not in open_alerts], ours, since)
    state = {c: _Cluster(open_alerts.get(c), *counted.get(c, (0, None))) for c in involved}
    # The batch's rows as they were: those waiting count until their ticket's turn.
    for _t, b, _c in steps:
        if b is not None and b.waiting(since) in state:
            state[b.waiting(since)].waiting += 1
    moved = [
        t.pk
        for t, b, c in steps
        if b is not None
        and b.alert_id is not None
        and (alerts.get(b.alert_id) is None or Cluster.of(alerts[b.alert_id]) != c)
    ]
    if moved:
        Ticket.objects.filter(pk__in=moved).update(alert=None)
    unattached = set(moved)  # the batch's rows with no alert, as written
    unattached |= {
        t.pk for t, b, _c in steps if t is not None and (b is None or b.alert_id is None)
    }
    results: list[QualityAlert | None] = []
    for index, (ticket, before, cluster) in enumerate(steps):
        if ticket is not None:
            was = before.waiting(since) if before is not None else None
            former_id = before.alert_id if before is not None else None
            if was in state and state[was].attach:
                former_id = state[was].alert.pk  # attached by an earlier ticket's turn
                alerts.setdefault(former_id, state[was].alert)
            elif was in state:
                state[was].waiting -= 1  # its row as it was leaves the count
            if former_id is not None:
                alert = alerts.get(former_id)
                if alert is not None and Cluster.of(alert) == cluster:
                    ticket.alert = alert
                    results.append(alert)
                    continue
                ticket.alert = None
            if cluster is None:
                results.append(None)
                continue
            if ticket.opened_at >= since:
                state[cluster].waiting += 1
        one = state[cluster]
        if one.alert is None and one.waiting >= settings.alert_threshold:
            one.alert = _raise(
                tenant, cluster, one, steps[: index + 1], steps, unattached, since, now, settings
            )
        if one.alert is not None:
            one.waiting, one.attach = 0, True
        if ticket is not None:
            if one.alert is not None:
                ticket.alert = one.alert
            results.append(one.alert)
    _attach(tenant, state, since)
    return results, state


def _columns(clusters) -> list[list[str]]:
    return [
        [c.product_model for c in clusters],
        [c.fault_code for c in clusters],
        [c.province for c in clusters],
    ]


def _waiting(tenant, clusters, ours, since) -> dict:
    """Cluster → (its unattached tickets of the window but `ours`, their last opening):
    one grouped statement on the index ticket_cluster, for all `clusters`."""
    if not clusters:
        return {}
    table = Ticket._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT v.product_model, v.fault_code, v.province, count(t.id), max(t.opened_at)"  # noqa: S608
            " FROM unnest(%s::text[], %s::text[], %s::text[])"
            " AS v(product_model, fault_code, province)"
            f" JOIN {table} AS t ON t.tenant_id = %s"
            " AND t.product_model = v.product_model AND t.fault_code = v.fault_code"
            " AND t.province = v.province AND t.alert_id IS NULL AND t.opened_at >= %s"
            " AND NOT (t.id = ANY(%s::bigint[]))"
            " GROUP BY v.product_model, v.fault_code, v.province",
            [*_columns(clusters), tenant.pk, since, list(ours)],
        )
        return {Cluster(m, f, p): (count, last) for m, f, p, count, last in cursor.fetchall()}


def _raise(tenant, cluster, one: _Cluster, done, steps, unattached, since, now, settings):
    """The cluster's alert, raised at the last of the steps `done`: the tickets waiting
    at that moment attach to it (not the batch's later ones: they attach at the end, as
    a later ticket's turn would) and are counted in the message."""
    later = [
        t.pk
        for t, b, c in steps[len(done) :]
        if t is not None and c == cluster and not (b is not None and b.waiting(since) == cluster)
    ]
    mine = [
        t.opened_at
        for t, _b, c in done
        if t is not None and c == cluster and t.pk in unattached and t.opened_at >= since
    ]
    last = max([x for x in (one.last, *mine) if x is not None], default=now)
    try:
        with transaction.atomic():
            alert = QualityAlert.objects.create(
                tenant=tenant, **cluster.filter(), opened_at=now, last_ticket_at=last
            )
    except IntegrityError:  # raised meanwhile outside the lock's key: attach to it
        alert = QualityAlert.objects.get(**cluster.filter(), closed_at__isnull=True)
    Ticket.objects.filter(**cluster.filter(), alert__isnull=True, opened_at__gte=since).exclude(
        pk__in=later
    ).update(alert=alert)
    _tell(tenant, alert, one.waiting, settings)
    return alert


def _attach(tenant, state: dict, since) -> None:
    """Every settled cluster's waiting tickets to its alert, and the alerts' last ticket
    time moved on to the latest of them: one statement."""
    settled = [(c, s.alert) for c, s in state.items() if s.attach]
    if not settled:
        return
    tickets, alerts = Ticket._meta.db_table, QualityAlert._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH attached AS (UPDATE {tickets} AS t SET alert_id = v.alert_id"  # noqa: S608
            " FROM unnest(%s::text[], %s::text[], %s::text[], %s::bigint[])"
            " AS v(product_model, fault_code, province, alert_id)"
            " WHERE t.tenant_id = %s AND t.product_model = v.product_model"
            " AND t.fault_code = v.fault_code AND t.province = v.province"
            " AND t.alert_id IS NULL AND t.opened_at >= %s RETURNING t.alert_id, t.opened_at),"
            " latest AS (SELECT alert_id, max(opened_at) AS last FROM attached GROUP BY alert_id)"
            f" UPDATE {alerts} AS a SET last_ticket_at = latest.last FROM latest"
            " WHERE a.id = latest.alert_id AND latest.last > a.last_ticket_at"
            " RETURNING a.id, a.last_ticket_at",
            [
                *_columns([c for c, _a in settled]),
                [a.pk for _c, a in settled],
                tenant.pk,
                since,
            ],
        )
        moved_on = dict(cursor.fetchall())
    for _c, alert in settled:
        alert.last_ticket_at = moved_on.get(alert.pk, alert.last_ticket_at)


def _settle(tenant, cluster: Cluster, settings: ServiceSettings, now) -> QualityAlert | None:
    """Under the cluster's lock: the unattached tickets of the window attach to the open
    alert, or raise one when there are enough of them (`check_tickets` with no ticket)."""
    with transaction.atomic():
        _results, state = _check(tenant, [], now=now, settings=settings, clusters=[cluster])
        return state[cluster].alert


def quality_group(tenant):
    """Who hears of every alert: the sales managers and the tenant admins."""
    from crm.notify import admins_of, managers_of

    return [*managers_of(tenant), *admins_of(tenant)]


def _tell(tenant, alert: QualityAlert, count: int, settings: ServiceSettings) -> None:
    from crm.models import Membership
    from crm.notify import notify

    owner_ids = (
        Ticket.objects.filter(alert=alert, customer__owner__isnull=False)
        .values_list("customer__owner_id", flat=True)
        .distinct()
    )
    owners = list(Membership.objects.filter(pk__in=owner_ids).select_related("user"))
    notify(
        event=ALERT_EVENT,
        recipients=[*quality_group(tenant), *owners],
        params={
            "alert": str(alert.public_id),
            "model": alert.product_model,
            "fault": alert.fault_code,
            "region": alert.province or "—",
            "count": count,
            "hours": settings.alert_window_hours,
        },
        link=reverse("service_feedback:alert", args=[alert.public_id]),
        tenant=tenant,
    )


def clusters_due(tenant, settings: ServiceSettings, now) -> list[Cluster]:
    """The clusters with at least the threshold's tickets opened in the window: one
    aggregate statement on the columns of the index ticket_cluster alone (tenant, product
    model, fault code, province, opened_at), read in the index's order, so an index-only
    scan serves it. Which of their tickets are unattached, or whether an alert is open,
    is `_settle`'s business, cluster by cluster: few clusters reach a threshold."""
    since = now - timedelta(hours=settings.alert_window_hours)
    rows = (
        Ticket.objects.filter(tenant=tenant, opened_at__gte=since)
        .exclude(product_model="")
        .exclude(fault_code="")
        .values("product_model", "fault_code", "province")
        .annotate(count=Count("*"))
        .filter(count__gte=settings.alert_threshold)
        .order_by("product_model", "fault_code", "province")
    )
    return [Cluster(r["product_model"], r["fault_code"], r["province"]) for r in rows]


def close_quiet(tenant, settings: ServiceSettings, now) -> int:
    """Close the open alerts with no ticket for `alert_quiet_days`: one UPDATE."""
    quiet_since = now - timedelta(days=settings.alert_quiet_days)
    return QualityAlert.objects.filter(
        closed_at__isnull=True, last_ticket_at__lt=quiet_since
    ).update(closed_at=now)


# The tenants whose sweep has something to change, with each tenant's settings (the
# defaults where it has no row): an open alert quiet for its days (`close_quiet`), or a
# cluster of the window that `clusters_due` lists (at least the threshold's tickets) and
# `_settle` changes: with an open alert, an unattached ticket of the window to attach;
# without, at least the threshold's unattached tickets to raise one. Per active tenant:
# its settings by `service_settings_one`, its open alerts by the partial unique index
# `quality_alert_one_open` (few), its tickets of the window by a range of `ticket_opened`
# (tenant, opened_at): the window's tickets only, never the tenant's history. The range
# starts at `earliest`, the widest window of any tenant back from now (a constant, so the
# planner sees how few tickets the window holds: with the tenant's own bound alone it
# guesses a third of the tenant's tickets and reads them all by another index); the
# tenant's own bound, the later one, is where the scan starts.
WIDEST_WINDOW_SQL = f"SELECT max(alert_window_hours) FROM {ServiceSettings._meta.db_table}"  # noqa: S608
DUE_TENANTS_SQL = f"""
SELECT t.id FROM crm_tenant t
LEFT JOIN {ServiceSettings._meta.db_table} s ON s.tenant_id = t.id
WHERE t.is_active AND (
  EXISTS (
    SELECT 1 FROM {QualityAlert._meta.db_table} a
    WHERE a.tenant_id = t.id AND a.closed_at IS NULL
      AND a.last_ticket_at
        < %(now)s - make_interval(hours => 24 * COALESCE(s.alert_quiet_days, %(quiet)s)))
  OR EXISTS (
    SELECT 1 FROM {Ticket._meta.db_table} k
    WHERE k.tenant_id = t.id AND k.opened_at >= %(earliest)s
      AND k.opened_at
        >= %(now)s - make_interval(hours => COALESCE(s.alert_window_hours, %(window)s))
      AND k.product_model <> '' AND k.fault_code <> ''
    GROUP BY k.product_model, k.fault_code, k.province
    HAVING count(*) >= COALESCE(s.alert_threshold, %(threshold)s)
      AND (
        count(*) FILTER (WHERE k.alert_id IS NULL) >= COALESCE(s.alert_threshold, %(threshold)s)
        OR (count(*) FILTER (WHERE k.alert_id IS NULL) > 0 AND EXISTS (
          SELECT 1 FROM {QualityAlert._meta.db_table} o
          WHERE o.tenant_id = t.id AND o.closed_at IS NULL
            AND o.product_model = k.product_model AND o.fault_code = k.fault_code
            AND o.province = k.province))))
)
ORDER BY t.id
"""  # noqa: S608 — the tables' names only


def due_tenants(now: datetime | None = None) -> list[int]:
    """The active tenants whose `sweep` would change something now (raise or feed an
    alert, close a quiet one), in id order. A platform job that reads tenant ids only;
    each tenant's sweep then runs inside its own tenant. Two statements whatever the
    number of tenants (the widest window, then DUE_TENANTS_SQL): the beat's fan-out
    queues a sweep for these only."""
    from django.db import connections

    from crm.tenancy import PLATFORM, all_tenants_context, current_tenant

    if current_tenant() is not None:
        raise RuntimeError("the quality alerts' fan-out runs outside any tenant")
    params = {
        "now": now or timezone.now(),
        **{
            name: ServiceSettings._meta.get_field(field).get_default()
            for name, field in (
                ("threshold", "alert_threshold"),
                ("window", "alert_window_hours"),
                ("quiet", "alert_quiet_days"),
            )
        },
    }
    with all_tenants_context(), connections[PLATFORM].cursor() as cursor:
        cursor.execute(WIDEST_WINDOW_SQL)
        widest = max(params["window"], cursor.fetchone()[0] or 0)
        params["earliest"] = params["now"] - timedelta(hours=widest)
        cursor.execute(DUE_TENANTS_SQL, params)
        return [row[0] for row in cursor.fetchall()]


def sweep(tenant, *, now: datetime | None = None) -> dict:
    """The beat's run for one tenant (inside its tenant): raise or feed the alerts of the
    clusters due (in case a save's check missed one: a changed threshold, a lost save),
    then close the quiet ones."""
    now = now or timezone.now()
    settings = targets(tenant)
    clusters = clusters_due(tenant, settings, now)
    raised = 0
    for cluster in clusters:
        before = QualityAlert.objects.filter(**cluster.filter(), closed_at__isnull=True).exists()
        if _settle(tenant, cluster, settings, now) is not None and not before:
            raised += 1
    closed = close_quiet(tenant, settings, now)
    return {"tenant": tenant.slug, "clusters": len(clusters), "raised": raised, "closed": closed}
