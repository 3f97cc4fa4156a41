"""The webhook action's calls (F47): written by the engine with the rule's firing, in the
drain's transaction, and sent by a worker after the commit, outside any transaction, so
no database row or lock waits on a remote server.

A call is a `WebhookCall` row. `queue()` writes the rows and asks for
`automation.webhooks_send(tenant_id)` once the transaction commits; the beat's minute
fan-out (`automation.due_sweep_all`) asks again for every active tenant with a call due
(`calls_due_tenants`), so a lost message only delays a call. `send_due()` claims one due
call at a time (`FOR UPDATE SKIP LOCKED`, a lease moved ahead, committed), posts it
through the robots' sender (`crm.notify_adapters.post_body`: SSRF guard, pinned address,
timeouts, no redirects), then records the outcome: sent, or retried with the
notifications' backoff (30 s, 2 min, 8 min) and given up after `crm.notify.MAX_ATTEMPTS`
attempts.

The rule is the circuit breaker: each failed attempt counts on it, a success resets the
count, and the third failure in a row pauses it and tells the tenant's admins (as a
failed action does in the engine). While a rule is paused its calls are held, not sent;
the admin's "Resume" releases them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from datetime import datetime, timedelta
from functools import partial

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from automation.models import CallStatus, Rule, WebhookCall
from automation.pause import FAILURES_TO_PAUSE, tell_paused
from crm.celery import app
from crm.models import OutboxEvent, Tenant
from crm.notify import MAX_ATTEMPTS, backoff
from crm.notify_adapters import DeliveryError, post_body, precheck_destination
from crm.tenancy import tenant_context

logger = logging.getLogger(__name__)

# A claimed call comes back to the sweep after this if its sender never recorded it.
LEASE = timedelta(minutes=2)
SEND_LIMIT = 200  # calls per task run; the next run goes on


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """Hex HMAC-SHA256 of "timestamp." + body with the rule's secret (what the receiver
    recomputes to trust the call)."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def precheck(url: str) -> None:
    """DeliveryError when the address is refused without a DNS lookup (the engine's check
    at firing time; the full SSRF guard runs again when the call is sent)."""
    precheck_destination(url)


def body_of(rule: Rule, event: OutboxEvent, subject: str) -> str:
    return json.dumps(
        {
            "rule": rule.name,
            "event": event.kind,
            "event_id": str(event.public_id),
            "subject": subject,
            "at": event.at.isoformat(),
            "data": event.data,
        },
        ensure_ascii=False,
        sort_keys=True,
    )


def call_row(rule: Rule, event: OutboxEvent, subject: str, *, now: datetime) -> WebhookCall:
    """The unsaved call of `rule`'s webhook for `event`, due now."""
    return WebhookCall(
        tenant_id=rule.tenant_id,
        rule=rule,
        event=event,
        subject=subject,
        url=rule.webhook_url,
        body=body_of(rule, event, subject),
        status=CallStatus.PENDING,
        next_attempt_at=now,
        created_at=now,
    )


def queue(calls: list[WebhookCall]) -> list[WebhookCall]:
    """Write the calls (one statement) and ask for them to be sent after the commit."""
    if not calls:
        return calls
    WebhookCall.objects.bulk_create(calls, batch_size=1000)
    for tenant_id in {c.tenant_id for c in calls}:
        _kick(tenant_id)
    return calls


def _kick(tenant_id: int) -> None:
    connection = transaction.get_connection()
    if connection.in_atomic_block:
        for _sids, func, _robust in connection.run_on_commit:
            if isinstance(func, partial) and func.func is _send_later and func.args == (tenant_id,):
                return
    transaction.on_commit(partial(_send_later, tenant_id), robust=True)


def _send_later(tenant_id: int) -> None:
    webhooks_send.delay(tenant_id)


def release_held(rule_ids: list[int]) -> int:
    """Inside the tenant: the held calls of resumed rules, due again now."""
    released = WebhookCall.objects.filter(rule_id__in=rule_ids, status=CallStatus.HELD).update(
        status=CallStatus.PENDING, next_attempt_at=timezone.now()
    )
    if released:
        _kick(Rule.objects.filter(pk__in=rule_ids).values_list("tenant_id", flat=True)[0])
    return released


# --- Sending, outside any transaction -------------------------------------------------------


def _claim(tenant: Tenant) -> tuple[WebhookCall, Rule] | None:
    """One due call of the tenant, leased; a paused rule's calls are held on the way."""
    with tenant_context(tenant):
        while True:
            now = timezone.now()
            call = (
                WebhookCall.objects.select_for_update(skip_locked=True)
                .filter(
                    status__in=[CallStatus.PENDING, CallStatus.FAILED], next_attempt_at__lte=now
                )
                .order_by("next_attempt_at", "id")
                .first()
            )
            if call is None:
                return None
            rule = Rule.objects.get(pk=call.rule_id)
            if rule.paused_at is not None:
                WebhookCall.objects.filter(pk=call.pk).update(
                    status=CallStatus.HELD, next_attempt_at=None
                )
                continue
            WebhookCall.objects.filter(pk=call.pk).update(next_attempt_at=now + LEASE)
            return call, rule


def _post(call: WebhookCall, rule: Rule) -> tuple[int | None, str]:
    """The HTTP call: (status, error or "")."""
    body = call.body.encode()
    timestamp = str(int(time.time()))
    headers = {"Content-Type": "application/json", "X-CRM-Timestamp": timestamp}
    if rule.webhook_secret:
        headers["X-CRM-Signature"] = signature(rule.webhook_secret, timestamp, body)
    try:
        response = post_body(call.url, body, headers=headers)
    except DeliveryError as exc:
        return exc.http_status, (str(exc) or exc.__class__.__name__)[:500]
    except Exception as exc:  # a sender bug must not lose the record of the attempt
        logger.exception("webhook call %s crashed", call.pk)
        return None, f"{exc.__class__.__name__}: {exc}"[:500]
    return response.status_code, ""


def _record(tenant: Tenant, call: WebhookCall, rule: Rule, http_status, error: str) -> str:
    with tenant_context(tenant):
        now = timezone.now()
        attempts = call.attempts + 1
        if not error:
            status, next_at = CallStatus.SENT, None
        elif attempts >= MAX_ATTEMPTS:
            status, next_at = CallStatus.DEAD, None
        else:
            status, next_at = CallStatus.FAILED, now + backoff(attempts)
        WebhookCall.objects.filter(pk=call.pk).update(
            status=status,
            attempts=attempts,
            http_status=http_status,
            last_error=error,
            next_attempt_at=next_at,
            sent_at=now if not error else None,
        )
        rules = Rule.objects.filter(pk=rule.pk)
        if not error:
            rules.filter(consecutive_failures__gt=0).update(consecutive_failures=0, last_error="")
            return status
        rules.update(consecutive_failures=F("consecutive_failures") + 1, last_error=error)
        paused = rules.filter(
            paused_at__isnull=True, consecutive_failures__gte=FAILURES_TO_PAUSE
        ).update(paused_at=now)
        if paused:
            rule.refresh_from_db()
            logger.warning("automation rule %s paused: %s", rule.pk, error)
            tell_paused(rule, error)
    return status


def send_due(tenant: Tenant, *, limit: int = SEND_LIMIT) -> int:
    """Send the tenant's due calls, one at a time, each claimed and recorded in a
    transaction of its own and posted between them. How many were tried."""
    if transaction.get_connection().in_atomic_block:
        raise RuntimeError("webhook calls are sent outside any transaction")
    tried = 0
    while tried < limit:
        claimed = _claim(tenant)
        if claimed is None:
            break
        call, rule = claimed
        http_status, error = _post(call, rule)
        _record(tenant, call, rule, http_status, error)
        tried += 1
    return tried


# The tenants with calls to try: what `_claim` reads (pending or failed, next attempt
# come), on the partial index webhookcall_due (tenant, next_attempt_at) WHERE status IN
# ('pending', 'failed'), which holds only the calls in flight (a sent, dead or held call
# leaves it): the planner reads it whole, or probes it per tenant, whichever it costs
# less. The statuses are written out as the index's predicate is, so that it applies.
CALLS_DUE_TENANTS_SQL = f"""
SELECT t.id FROM crm_tenant t
WHERE t.is_active AND EXISTS (
  SELECT 1 FROM {WebhookCall._meta.db_table} c
  WHERE c.tenant_id = t.id
    AND c.status IN ('{CallStatus.PENDING.value}', '{CallStatus.FAILED.value}')
    AND c.next_attempt_at <= %(now)s)
ORDER BY t.id
"""  # noqa: S608 — the table's name and two status constants only


def calls_due_tenants(now: datetime | None = None) -> list[int]:
    """The active tenants with a webhook call due now (what `send_due` would claim: a
    paused rule's due calls included, which it then holds), in id order. A platform job
    that reads tenant ids only; each tenant's sender then runs for its own tenant. One
    statement whatever the number of tenants: the minute's fan-out queues a sender for
    these only."""
    from django.db import connections

    from crm.tenancy import PLATFORM, all_tenants_context, current_tenant

    if current_tenant() is not None:
        raise RuntimeError("the webhook calls' fan-out runs outside any tenant")
    with all_tenants_context(), connections[PLATFORM].cursor() as cursor:
        cursor.execute(CALLS_DUE_TENANTS_SQL, {"now": now or timezone.now()})
        return [row[0] for row in cursor.fetchall()]


@app.task(name="automation.webhooks_send")
def webhooks_send(tenant_id: int) -> int:
    """Send the tenant's due webhook calls, each posted outside any transaction (so not a
    TenantTask, whose transaction would span the HTTP calls). A tenant gone or inactive
    ends it quietly."""
    tenant = Tenant.objects.filter(pk=tenant_id, is_active=True).first()
    if tenant is None:
        logger.warning(
            "webhook calls of tenant %s skipped: the tenant is gone or inactive", tenant_id
        )
        return 0
    return send_due(tenant)
