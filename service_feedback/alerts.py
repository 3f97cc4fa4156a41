"""Quality alerts (F29): tickets cluster by product model × fault code × region (the
province). `ServiceSettings.alert_threshold` (5) tickets of one cluster opened within
`alert_window_hours` (72) raise one `QualityAlert`; the next tickets of the cluster attach
to it while it is open (`Ticket.alert`); an alert with no new ticket for
`alert_quiet_days` closes by itself (the sweep), or a manager closes it by hand with a note.

Who is told when an alert is raised: the quality group, which is the tenant's sales
managers and admins (there is no quality role), and the owners of the affected customers.

Checked on every ticket save (`check_ticket`, from effects.ticket_saved: one query on the
cluster, under a transaction advisory lock on the cluster, the partial unique constraint
`quality_alert_one_open` behind it) and by the beat sweep (`sweep`, per tenant: one
aggregate statement over the window, on the index `ticket_cluster`).

A ticket counts towards a new alert only while it belongs to no alert: after an alert is
closed, its tickets do not raise the next one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Count, Max
from django.urls import reverse
from django.utils import timezone

from crm.tenancy import advisory_lock
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


def _lock(tenant, cluster: Cluster) -> None:
    advisory_lock("service_feedback.alert", tenant.pk, *cluster.filter().values())


def check_ticket(
    ticket: Ticket, *, now: datetime | None = None, settings: ServiceSettings | None = None
) -> QualityAlert | None:
    """Attach `ticket` to its cluster's open alert, or raise one if the cluster now has
    enough unattached tickets in the window. Runs inside the caller's transaction. The
    alert the ticket belongs to, or None."""
    cluster = Cluster.of(ticket)
    if ticket.alert_id is not None:
        alert = QualityAlert.objects.filter(pk=ticket.alert_id).first()
        if alert is not None and cluster == Cluster.of(alert):
            return alert
        # Re-delivered with another model, fault or region: out of the old alert.
        Ticket.objects.filter(pk=ticket.pk).update(alert=None)
        ticket.alert = None
    if cluster is None:
        return None
    settings = settings or targets(ticket.tenant)
    alert = _settle(ticket.tenant, cluster, settings, now or timezone.now())
    if alert is not None:
        ticket.alert = alert
    return alert


def _settle(tenant, cluster: Cluster, settings: ServiceSettings, now) -> QualityAlert | None:
    """Under the cluster's lock: the unattached tickets of the window attach to the open
    alert, or raise one when there are enough of them."""
    with transaction.atomic():
        _lock(tenant, cluster)
        since = now - timedelta(hours=settings.alert_window_hours)
        waiting = Ticket.objects.filter(
            **cluster.filter(), alert__isnull=True, opened_at__gte=since
        )
        alert = QualityAlert.objects.filter(**cluster.filter(), closed_at__isnull=True).first()
        if alert is not None:
            found = waiting.aggregate(last=Max("opened_at"))
            if found["last"] is not None:
                waiting.update(alert=alert)
                if found["last"] > alert.last_ticket_at:
                    alert.last_ticket_at = found["last"]
                    alert.save(update_fields=["last_ticket_at"])
            return alert
        found = waiting.aggregate(count=Count("id"), last=Max("opened_at"))
        if found["count"] < settings.alert_threshold:
            return None
        try:
            with transaction.atomic():
                alert = QualityAlert.objects.create(
                    tenant=tenant, **cluster.filter(), opened_at=now, last_ticket_at=found["last"]
                )
        except IntegrityError:  # raised meanwhile outside the lock's key: attach to it
            alert = QualityAlert.objects.get(**cluster.filter(), closed_at__isnull=True)
        waiting.update(alert=alert)
        _tell(tenant, alert, found["count"], settings)
        return alert


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
