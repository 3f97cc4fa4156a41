"""Notifications (F44): `notify()` and the delivery machinery behind it.

Other apps register their event types (`register_event`) in their AppConfig.ready() and
call `notify(event=…, recipients=…, params=…, link=…)`. Every recipient gets an in-app
`Notification` (the bell is the record); the external channels the member chose for the
event (or the event's defaults) that the tenant has set up get a `Delivery`, sent by the
`crm.deliver` task after the commit. Failures are retried with backoff by the
`crm.deliver_due` beat task; three failures in a row pause a channel (circuit breaker).
See docs/notifications.md.

The two tasks are defined at the end of this module, next to what they run: notify()
queues `crm.deliver`, and a delivery that pauses its channel notifies the admins, so
queuing and delivering call each other (crm.tasks lists them with the kernel's other
tasks). The event types are kept in crm.notify_events, which the Notification model reads.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from contextlib import nullcontext
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import F, QuerySet
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from crm.audit import jsonable
from crm.celery import TenantTask, app
from crm.models import (
    CircuitState,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    Membership,
    Notification,
    NotificationPreference,
    Outlet,
    OutletKind,
    Role,
    Tenant,
)
from crm.notify_adapters import DeliveryError, adapter_for
from crm.notify_events import (
    IN_APP,
    EventType,
    add_event_type,
    event_types,
    event_types_for,
    get_event_type,
    render_template,
)
from crm.roles import ADMINS
from crm.tenancy import NoTenantError, all_tenants_context, current_tenant, tenant_context

__all__ = [
    "IN_APP",
    "DeliveryError",
    "EventType",
    "admins_of",
    "event_types",
    "event_types_for",
    "get_event_type",
    "managers_of",
    "notify",
    "notify_many",
    "register_event",
    "render_template",
]

logger = logging.getLogger(__name__)

ROBOT_KINDS = (OutletKind.WECOM, OutletKind.DINGTALK)
# The preferences table's columns, in this order.
CHANNEL_KINDS: tuple[tuple[str, str], ...] = (
    (IN_APP, _("In-app")),
    (OutletKind.EMAIL, OutletKind.EMAIL.label),
    (OutletKind.SMS, _("SMS")),
    (OutletKind.WECOM, _("WeCom robot")),
    (OutletKind.DINGTALK, _("DingTalk robot")),
)
ALL_KINDS = tuple(kind for kind, _label in CHANNEL_KINDS)

MAX_ATTEMPTS = 4
BACKOFF_BASE_SECONDS = 30  # 30 s, 2 min, 8 min: 30 s × 4^(attempt − 1)
FAILURES_TO_OPEN = 3
# A pending delivery whose broker message was lost is queued again by the sweep after this.
REDRIVE_AFTER = timedelta(minutes=2)
SWEEP_LIMIT = 500


# --- Event types ----------------------------------------------------------------------


def register_event(event_type: EventType) -> None:
    """Make an event known (call it from an AppConfig.ready()); re-registering replaces."""
    if len(event_type.key) > 40:
        raise ValueError(f"event key {event_type.key!r} is longer than 40 characters")
    unknown = set(event_type.default_channels) - set(ALL_KINDS)
    if unknown:
        raise ValueError(f"unknown channel kinds {sorted(unknown)} for {event_type.key!r}")
    add_event_type(event_type)


CHANNEL_PAUSED = "notify.channel_paused"


def register_defaults() -> None:
    """The kernel's own events (called from CrmConfig.ready)."""
    register_event(
        EventType(
            key=CHANNEL_PAUSED,
            label=_("A notification channel was paused"),
            title=_("Notification channel %(channel)s paused"),
            body=_(
                "%(failures)s deliveries in a row failed (last error: %(error)s). Messages "
                "on it are held; one is tried again after %(cooldown)s seconds."
            ),
            roles=ADMINS,
        )
    )


# --- Who --------------------------------------------------------------------------------


def _tenant_or_current(tenant: Tenant | None) -> Tenant:
    tenant = tenant or current_tenant()
    if tenant is None:
        raise NoTenantError("no tenant: pass tenant= or call inside tenant_context()")
    return tenant


def managers_of(tenant: Tenant | None = None) -> QuerySet[Membership]:
    """The tenant's active sales managers."""
    tenant = _tenant_or_current(tenant)
    return (
        Membership.objects.in_tenant(tenant)
        .active()
        .filter(role=Role.MANAGER)
        .select_related("user")
    )


def admins_of(tenant: Tenant | None = None) -> QuerySet[Membership]:
    """The tenant's active tenant admins."""
    tenant = _tenant_or_current(tenant)
    return (
        Membership.objects.in_tenant(tenant).active().filter(role=Role.ADMIN).select_related("user")
    )


# --- Channels ---------------------------------------------------------------------------


def configured_channels() -> dict[str, Outlet | None]:
    """External kinds the current tenant can deliver on now, with their channel row.

    Robots and SMS need an active row with a URL. E-mail needs no set-up: it is available
    unless its row was switched off (None: no row yet, created on first use).
    """
    rows = {c.kind: c for c in Outlet.objects.all()}
    available: dict[str, Outlet | None] = {}
    for kind in OutletKind.values:
        channel = rows.get(kind)
        if kind == OutletKind.EMAIL:
            if channel is None or channel.is_active:
                available[kind] = channel
        elif channel is not None and channel.is_active and channel.url:
            available[kind] = channel
    return available


def _email_channel(tenant: Tenant) -> Outlet:
    channel, _created = Outlet.objects.get_or_create(
        tenant=tenant,
        kind=OutletKind.EMAIL,
        defaults={"name": str(OutletKind.EMAIL.label)},
    )
    return channel


# --- notify() -----------------------------------------------------------------------------


def _recipients(recipients, tenant: Tenant, event_type: EventType) -> list[Membership]:
    if isinstance(recipients, QuerySet):
        recipients = recipients.select_related("user")
    elif isinstance(recipients, Membership):
        recipients = [recipients]
    members: list[Membership] = []
    seen: set[int] = set()
    for member in recipients:
        if member is None or member.pk in seen:
            continue
        seen.add(member.pk)
        if member.tenant_id != tenant.pk:
            logger.warning("notify(%s): member %s is not in %s", event_type.key, member.pk, tenant)
            continue
        if not member.is_active or not member.user.is_active:
            continue
        if event_type.roles is not None and member.role not in event_type.roles:
            continue
        members.append(member)
    return members


def notify(
    *,
    event: str,
    recipients: Iterable[Membership] | Membership,
    params: dict | None = None,
    link: str = "",
    tenant: Tenant | None = None,
) -> list[Notification]:
    """Tell `recipients` (memberships of the tenant) that `event` happened.

    Writes one in-app Notification per recipient (duplicates, inactive members and members
    outside the event's roles skipped) and one Delivery per external channel the member's
    preference (else the event's default) names and the tenant has set up; a robot posts
    once per call, @-mentioning the recipients' mobiles. Deliveries are sent by a worker
    after the surrounding transaction commits. Returns the Notification rows.
    """
    return notify_many(event=event, calls=[(recipients, params, link)], tenant=tenant)


def notify_many(
    *,
    event: str,
    calls: Iterable[tuple[Iterable[Membership] | Membership, dict | None, str]],
    tenant: Tenant | None = None,
) -> list[Notification]:
    """`notify()` for many messages of one event at once, each `(recipients, params,
    link)` as its arguments: the same rows and deliveries (a robot posts once per
    message), written with one statement per table whatever the number of messages (a
    rule engine's drained batch). Returns the Notification rows, message by message."""
    tenant = _tenant_or_current(tenant)
    event_type = get_event_type(event)
    if event_type is None:
        raise ValueError(f"unknown notification event {event!r}: register_event() it first")
    current = current_tenant()
    # Already inside this tenant (a worker task, a view): no second savepoint and setting.
    scope = nullcontext() if current is not None and current.pk == tenant.pk else None
    with scope or tenant_context(tenant):
        now = timezone.now()
        # (message index, member) for every recipient of every message.
        rows: list[tuple[int, Membership]] = []
        rows_of_message: list[Notification] = []
        for index, (recipients, params, link) in enumerate(calls):
            params = jsonable(dict(params or {}))
            for member in _recipients(recipients, tenant, event_type):
                rows.append((index, member))
                rows_of_message.append(
                    Notification(
                        tenant=tenant,
                        recipient=member,
                        event=event,
                        params=params,
                        link=link[:300],
                        created_at=now,
                    )
                )
        if not rows:
            return []
        notifications = Notification.objects.bulk_create(rows_of_message, batch_size=2000)
        members = {member.pk: member for _index, member in rows}
        preferences = dict(
            NotificationPreference.objects.filter(
                membership_id__in=list(members), event=event
            ).values_list("membership_id", "channels")
        )
        wanted_kinds = {
            kind
            for member in members.values()
            for kind in preferences.get(member.pk, event_type.default_channels)
        }
        if wanted_kinds <= {IN_APP}:
            return notifications  # in-app only: no channel to look up
        channels = configured_channels()

        planned: list[tuple[str, Notification, str, list[str]]] = []
        # A robot posts once per message: (message index, kind) → its first notification.
        robots: dict[tuple[int, str], tuple[Notification, list[str]]] = {}
        for (index, member), notification in zip(rows, notifications, strict=True):
            wanted = preferences.get(member.pk, event_type.default_channels)
            for kind in dict.fromkeys(wanted):
                if kind == IN_APP or kind not in channels:
                    continue
                if kind in ROBOT_KINDS:
                    _first, phones = robots.setdefault((index, kind), (notification, []))
                    if member.phone and member.phone not in phones:
                        phones.append(member.phone)
                elif kind == OutletKind.EMAIL:
                    if member.user.email:
                        planned.append((kind, notification, member.user.email, []))
                elif kind == OutletKind.SMS and member.phone:
                    planned.append((kind, notification, member.phone, []))
        for (_index, kind), (notification, phones) in robots.items():
            planned.append((kind, notification, "", phones))
        if not planned:
            return notifications

        if OutletKind.EMAIL in {p[0] for p in planned} and channels[OutletKind.EMAIL] is None:
            channels[OutletKind.EMAIL] = _email_channel(tenant)
        deliveries = Delivery.objects.bulk_create(
            [
                Delivery(
                    tenant=tenant,
                    notification=notification,
                    channel=channels[kind],
                    to=to[:254],
                    mentions=mentions,
                    status=DeliveryStatus.PENDING,
                    next_attempt_at=now + REDRIVE_AFTER,
                    created_at=now,
                )
                for kind, notification, to, mentions in planned
            ],
            batch_size=2000,
        )
        _queue(tenant.pk, [d.pk for d in deliveries])
    return notifications


def _queue(tenant_id: int, delivery_ids: Iterable[int]) -> None:
    """Send each delivery from a worker once the current transaction commits. A broker
    outage is logged, not raised: the sweep queues pending deliveries again."""
    for delivery_id in delivery_ids:
        transaction.on_commit(partial(deliver.delay, tenant_id, delivery_id), robust=True)


# --- Rendering for outbound channels ------------------------------------------------------


def absolute_url(link: str) -> str:
    if not link or "://" in link:
        return link
    return settings.PUBLIC_BASE_URL.rstrip("/") + "/" + link.lstrip("/")


def outbound_texts(notification: Notification) -> tuple[str, str]:
    """(title, body) in the tenant's language (the product's default), link appended."""
    with translation.override(settings.LANGUAGE_CODE):
        title, body = notification.title, notification.body
    if notification.link:
        body = "\n".join(part for part in (body, absolute_url(notification.link)) if part)
    return title, body


# --- Delivering (crm.deliver) ---------------------------------------------------------------


def backoff(attempt: int) -> timedelta:
    """Wait before the next try after failed attempt number `attempt` (1-based)."""
    return timedelta(seconds=BACKOFF_BASE_SECONDS * 4 ** (attempt - 1))


def _cooled_down(channel: Outlet, now) -> bool:
    return channel.opened_at is None or (
        channel.opened_at + timedelta(seconds=channel.cooldown_seconds) <= now
    )


def _start_probe(channel: Outlet, now) -> bool:
    """Become the one half-open probe of a paused channel, or say no without waiting."""
    locked = (
        Outlet.objects.select_for_update(skip_locked=True)
        .filter(pk=channel.pk, state__in=[CircuitState.OPEN, CircuitState.HALF_OPEN])
        .first()
    )
    if locked is None or not _cooled_down(locked, now):
        return False
    Outlet.objects.filter(pk=channel.pk).update(state=CircuitState.HALF_OPEN)
    return True


def deliver_one(delivery_id: int) -> str | None:
    """Claim and send one pending delivery of the current tenant (the `crm.deliver` task).

    The claim is `SELECT … FOR UPDATE SKIP LOCKED` on a pending row: a second task for the
    same delivery skips it, and a sent one is no longer pending. Returns the new status,
    or None when there was nothing to do. Never raises for a failed send.
    """
    delivery = (
        Delivery.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(pk=delivery_id, status=DeliveryStatus.PENDING)
        .first()
    )
    if delivery is None:
        return None
    channel = Outlet.objects.get(pk=delivery.channel_id)
    now = timezone.now()
    if not channel.is_active:
        delivery.status = DeliveryStatus.DEAD
        delivery.next_attempt_at = None
        delivery.last_error = "The channel is switched off."
        delivery.save(update_fields=["status", "next_attempt_at", "last_error"])
        return delivery.status

    probe = False
    if channel.state != CircuitState.CLOSED:
        if not (_cooled_down(channel, now) and _start_probe(channel, now)):
            delivery.status = DeliveryStatus.HELD
            delivery.next_attempt_at = None
            delivery.save(update_fields=["status", "next_attempt_at"])
            return delivery.status
        probe = True

    title, body = outbound_texts(delivery.notification)
    started = time.monotonic()
    http_status: int | None = None
    error = ""
    try:
        http_status = adapter_for(channel.kind).send(channel, delivery, title, body)
    except DeliveryError as exc:
        error, http_status = str(exc) or exc.__class__.__name__, exc.http_status
    except Exception as exc:  # an adapter bug must not lose the record of the attempt
        logger.exception("delivery %s over %s crashed", delivery.pk, channel.kind)
        error = f"{exc.__class__.__name__}: {exc}"
    error = error[:500]
    DeliveryAttempt.objects.create(
        tenant_id=delivery.tenant_id,
        delivery=delivery,
        at=now,
        ok=not error,
        http_status=http_status,
        error=error,
        duration_ms=round((time.monotonic() - started) * 1000),
    )
    delivery.attempts += 1
    delivery.http_status = http_status
    delivery.last_error = error
    if not error:
        delivery.status = DeliveryStatus.SENT
        delivery.sent_at = timezone.now()
        delivery.next_attempt_at = None
    elif delivery.attempts >= MAX_ATTEMPTS:
        delivery.status = DeliveryStatus.DEAD
        delivery.next_attempt_at = None
    else:
        delivery.status = DeliveryStatus.FAILED
        delivery.next_attempt_at = now + backoff(delivery.attempts)
    delivery.save(
        update_fields=[
            "status",
            "attempts",
            "http_status",
            "last_error",
            "sent_at",
            "next_attempt_at",
        ]
    )
    if error:
        _channel_failed(channel, error=error, http_status=http_status, probe=probe, now=now)
    else:
        _channel_succeeded(channel, http_status=http_status, now=now)
    return delivery.status


def _channel_failed(channel, *, error: str, http_status: int | None, probe: bool, now) -> None:
    rows = Outlet.objects.filter(pk=channel.pk)
    rows.update(
        consecutive_failures=F("consecutive_failures") + 1,
        last_error=error,
        last_status=http_status,
    )
    if probe:  # the probe failed: paused again for another cool-down
        rows.update(state=CircuitState.OPEN, opened_at=now)
        return
    opened = rows.filter(
        state=CircuitState.CLOSED, consecutive_failures__gte=FAILURES_TO_OPEN
    ).update(state=CircuitState.OPEN, opened_at=now)
    if opened:
        channel.refresh_from_db()
        logger.warning("notification channel %s paused: %s", channel.pk, error)
        notify(
            event=CHANNEL_PAUSED,
            recipients=admins_of(),
            params={
                "channel": str(channel),
                "failures": channel.consecutive_failures,
                "error": error[:200],
                "cooldown": channel.cooldown_seconds,
            },
            link=reverse("admin:crm_outlet_change", args=[channel.pk]),
        )


def _channel_succeeded(channel, *, http_status: int | None, now) -> None:
    rows = Outlet.objects.filter(pk=channel.pk)
    rows.update(consecutive_failures=0, last_error="", last_status=http_status, last_success_at=now)
    if rows.exclude(state=CircuitState.CLOSED).update(state=CircuitState.CLOSED, opened_at=None):
        release_held(channel)


def release_held(channel: Outlet) -> int:
    """Queue again the deliveries held while `channel` was paused."""
    held = Delivery.objects.filter(channel=channel, status=DeliveryStatus.HELD)
    ids = list(held.values_list("pk", flat=True))
    if ids:
        Delivery.objects.filter(pk__in=ids, status=DeliveryStatus.HELD).update(
            status=DeliveryStatus.PENDING, next_attempt_at=timezone.now() + REDRIVE_AFTER
        )
        _queue(channel.tenant_id, ids)
    return len(ids)


def close_circuit(channel: Outlet) -> int:
    """An admin's override: deliver on `channel` again now. Returns the deliveries released."""
    Outlet.objects.filter(pk=channel.pk).update(
        state=CircuitState.CLOSED, consecutive_failures=0, opened_at=None
    )
    return release_held(channel)


# --- The due sweep (crm.deliver_due) ---------------------------------------------------------


def claim_due_deliveries(limit: int = SWEEP_LIMIT) -> list[tuple[int, int]]:
    """(tenant_id, delivery_id) to send now, across tenants, each claimed exclusively.

    Due: a failed delivery whose retry time has come, a pending one whose broker message
    looks lost, and for each paused channel past its cool-down its oldest held delivery
    (the half-open probe). Claimed rows (`FOR UPDATE SKIP LOCKED`) are set pending with a
    new re-drive time in the same transaction, so a concurrent sweep never gets them too.
    A platform job: it reads only ids; each delivery is then sent inside its own tenant.
    """
    if current_tenant() is not None:
        raise RuntimeError("the delivery sweep runs outside any tenant")
    now = timezone.now()
    with all_tenants_context():
        claimed = list(
            Delivery.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(
                status__in=[DeliveryStatus.PENDING, DeliveryStatus.FAILED],
                next_attempt_at__lte=now,
            )
            .order_by("next_attempt_at")
            .values_list("tenant_id", "pk")[:limit]
        )
        paused = Outlet.objects.filter(
            state__in=[CircuitState.OPEN, CircuitState.HALF_OPEN], is_active=True
        ).values_list("pk", "opened_at", "cooldown_seconds")
        for channel_id, opened_at, cooldown in paused:
            if opened_at is not None and opened_at + timedelta(seconds=cooldown) > now:
                continue
            probe = (
                Delivery.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(channel_id=channel_id, status=DeliveryStatus.HELD)
                .order_by("created_at", "pk")
                .values_list("tenant_id", "pk")
                .first()
            )
            if probe is not None:
                claimed.append(probe)
        if claimed:
            # Tenant and id: the table's key is (tenant_id, id), there is no index on id alone.
            Delivery.objects.filter(
                tenant_id__in={t for t, _pk in claimed}, pk__in=[pk for _t, pk in claimed]
            ).update(status=DeliveryStatus.PENDING, next_attempt_at=now + REDRIVE_AFTER)
    return claimed


# --- Admin helpers ----------------------------------------------------------------------------


def send_test(channel: Outlet, *, to: str = "", mentions=()) -> tuple[bool, str]:
    """Send a test message on `channel` now (the admin's action). Records the outcome on
    the channel's last status and error, not on its circuit. Returns (ok, error)."""
    with translation.override(settings.LANGUAGE_CODE):
        title = str(_("Test message from the CRM"))
        body = str(_("If you can read this, the channel %(channel)s works.")) % {"channel": channel}
    probe = Delivery(tenant=channel.tenant, channel=channel, to=to, mentions=list(mentions))
    try:
        http_status = adapter_for(channel.kind).send(channel, probe, title, body)
    except DeliveryError as exc:
        Outlet.objects.filter(pk=channel.pk).update(
            last_error=str(exc)[:500], last_status=exc.http_status
        )
        return False, str(exc)
    Outlet.objects.filter(pk=channel.pk).update(
        last_error="", last_status=http_status, last_success_at=timezone.now()
    )
    return True, ""


# --- The tasks ----------------------------------------------------------------------------


@app.task(base=TenantTask, name="crm.deliver")
def deliver(tenant_id: int, delivery_id: int) -> str | None:
    """Send one notification delivery (claimed exclusively; retries and circuit included)."""
    return deliver_one(delivery_id)


@app.task(name="crm.deliver_due")
def deliver_due() -> int:
    """Beat, every 30 s: queue the retries that are due, lost messages and circuit probes."""
    due = claim_due_deliveries()
    for tenant_id, delivery_id in due:
        deliver.delay(tenant_id, delivery_id)
    return len(due)
