"""Intake writes: receive a payload into the inbox, and turn an inbox event into a lead.

Tenant contract: every function here runs inside `tenant_context(channel.tenant)` (the
webhook, form and import views enter it; Celery tasks get it from TenantTask) and touches
only that tenant's rows.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy

from crm import inbox, normalize
from crm.jobs import task_named
from crm.normalize import keyword_matches
from crm.tenancy import (
    NoTenantError,
    advisory_lock,
    all_tenants_context,
    current_tenant,
    tenant_context,
)
from leads import events as lead_events
from leads.intake import mapping
from leads.intake.bodies import BodyError, parse_json_body, storable_json, storable_text
from leads.messages import CodedError, intake_message, intake_text_en, reason
from leads.models import (
    REPLAY_WINDOW,
    REVISIT_WINDOW,
    Channel,
    EventSource,
    EventStatus,
    ImportBatch,
    InboundEvent,
    Lead,
    LeadEvent,
    LeadEventKind,
    LeadStatus,
    TaggingRule,
)

logger = logging.getLogger(__name__)

UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
# What each UTM parameter is called where people read it (the lead page, the import page).
UTM_LABELS = {
    "utm_source": gettext_lazy("traffic source"),
    "utm_medium": gettext_lazy("medium"),
    "utm_campaign": gettext_lazy("campaign"),
    "utm_term": gettext_lazy("keyword"),
    "utm_content": gettext_lazy("ad content"),
}


class IntakeError(CodedError):
    """The event cannot become a lead as it stands; the message is kept on the event."""


# Publishing gives up quickly when the broker is down (connection refused: under a second):
# what it publishes is stored already, and a sweep publishes it again later.
PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
}


def publish_after_commit(task_name: str, *args, what: str) -> None:
    """Send the task named `task_name` with `args` to the workers once the current
    transaction commits.

    For work whose input is already stored (an inbound event, a lead): a broker that
    cannot be reached is logged with `what` (e.g. "inbound event 12"), never raised, so
    the request that stored the input is still answered; the sweep that finds such rows
    unprocessed publishes them again.
    """

    def publish() -> None:
        try:
            task_named(task_name).apply_async(args, retry=True, retry_policy=PUBLISH_RETRY_POLICY)
        except Exception:
            logger.exception("could not queue %s (%s); the sweep queues it again", what, task_name)

    transaction.on_commit(publish)


# -- announcing the inbox's events to the workers ----------------------------------------
#
# A stored event is not queued as a task of its own: the tenant's inbox is *announced*
# (`leads.process_inbound_events`, one task that works off the tenant's received events in
# batches), and an announcement still waiting for a worker covers every event stored
# before that task starts. The mark of a waiting announcement is a key in the cache (Redis),
# set with SET NX by the event that publishes the task and deleted by the task when it
# starts, before it claims anything:
#
# - an event that finds the mark set was committed before the waiting task's claims, so
#   that task takes it;
# - an event that finds no mark (none waiting, or the task has started) publishes a task;
# - a mark whose task was lost (the broker lost the message) expires after
#   ANNOUNCE_TTL seconds, and the re-drive sweep queues the tenant's events left received
#   for two minutes; a publish that fails deletes its mark at once;
# - a cache that cannot be reached announces every event (the task then often finds its
#   events taken, and ends with one statement).
ANNOUNCE_TTL = 10  # seconds
# Batches one announced task works off, each in its own transaction, before it hands the
# rest of the backlog to a new task (other tenants' tasks get a worker in between).
DRAIN_BATCHES = 20


def _announce_key(tenant_id: int) -> str:
    # The database's name: the development, bench and test databases share one Redis.
    return f"leads:inbox-announced:{connection.settings_dict['NAME']}:{tenant_id}"


def _announce(tenant_id: int, *, what: str, force: bool = False) -> None:
    """Publish the tenant's inbox task, unless one is waiting for a worker already (or
    `force`: publish whatever the mark says). Never raises: what it announces is stored,
    and the re-drive sweep queues it again if this message never reaches a worker."""
    key = _announce_key(tenant_id)
    try:
        if force:
            cache.set(key, 1, ANNOUNCE_TTL)
        elif not cache.add(key, 1, ANNOUNCE_TTL):
            return  # a waiting task will claim it
    except Exception:
        logger.warning("the cache cannot mark the announcement of %s; publishing", what)
    try:
        task_named("leads.process_inbound_events").apply_async(
            (tenant_id,), retry=True, retry_policy=PUBLISH_RETRY_POLICY
        )
    except Exception:
        logger.exception(
            "could not queue %s (leads.process_inbound_events); the sweep queues it again", what
        )
        try:
            cache.delete(key)
        except Exception:
            logger.warning("the cache cannot drop the announcement of %s", what)


def announcement_taken(tenant_id: int) -> None:
    """The inbox task has started: events stored from now on announce a new one."""
    try:
        cache.delete(_announce_key(tenant_id))
    except Exception:
        logger.warning("the cache cannot drop the inbox announcement of tenant %s", tenant_id)


def forget_announcements() -> None:
    """Drop every tenant's announcement mark: for a broker queue that was just purged
    (the test suite's and the bench's workers start from an empty one), so that the next
    event stored announces its tenant's inbox again."""
    from crm.models import Tenant

    keys = [_announce_key(pk) for pk in Tenant.objects.values_list("pk", flat=True)]
    cache.delete_many(keys)


def _queue_processing(event: InboundEvent) -> None:
    # After commit: the worker must find the row. If the announcement is lost anyway (the
    # broker is down), the re-drive sweep finds the event still `received` and queues it.
    tenant_id, what = event.tenant_id, f"inbound event {event.pk}"
    transaction.on_commit(lambda: _announce(tenant_id, what=what))


def inbound_event_receive(
    *,
    channel: Channel,
    raw_body: bytes | str,
    source: str,
    payload: object = None,
    headers: dict | None = None,
    idempotency_key: str = "",
    error: str = "",
    error_detail: dict | None = None,
    batch: ImportBatch | None = None,
    queue: bool = True,
) -> tuple[InboundEvent, bool]:
    """Store a payload in the inbox and queue it; (event, created).

    A repeated Idempotency-Key on the channel, or without one the same body on the same
    channel within 24 h, returns the first event and creates nothing. With `error` the
    event is stored as failed (e.g. a body that is not JSON), for an admin to inspect;
    `error_detail` is the same as a stored message (leads.messages), shown in the inbox.
    `queue=False` is for callers that process the event themselves at once (the demo
    loader); an event left `received` is still picked up by the re-drive sweep.
    """
    body = raw_body if isinstance(raw_body, bytes) else raw_body.encode("utf-8", "surrogatepass")
    digest = hashlib.sha256(body).hexdigest()
    # Kept as faithfully as a text column allows: bytes that are not UTF-8, NUL and lone
    # surrogates become U+FFFD; the digest is of the bytes as received.
    stored_body = storable_text(body.decode("utf-8", errors="replace"))
    headers = storable_json(headers or {})
    payload = storable_json(payload) if payload is not None else None
    error = storable_text(error)
    fields = {
        "tenant_id": channel.tenant_id,
        "channel": channel,
        "source": source,
        "headers": headers,
        "raw_body": stored_body,
        "body_sha256": digest,
        "payload": payload,
        "idempotency_key": idempotency_key,
        "status": EventStatus.FAILED if error else EventStatus.RECEIVED,
        "error": error,
        "error_detail": (error_detail or {}) if error else {},
        "batch": batch,
    }
    if source == EventSource.IMPORT:
        # An import's lines have keys of their own, claimed once with their batch: no
        # look-up first, the unique key is the belt and braces.
        try:
            with transaction.atomic():
                event = InboundEvent.objects.create(**fields)
        except IntegrityError:
            return InboundEvent.objects.get(channel=channel, idempotency_key=idempotency_key), False
    else:
        # In the caller's tenant transaction, without a savepoint: two requests with the
        # same Idempotency-Key (or, without one, the same body) take turns on this lock,
        # and the second finds the first once it is committed, so the insert below never
        # meets the unique key of a concurrent one.
        with transaction.atomic(savepoint=False):
            if idempotency_key:
                advisory_lock("inbound-key", channel.pk, idempotency_key)
            else:
                advisory_lock("inbound", channel.pk, digest)
            first = _first_delivery(channel, digest, idempotency_key)
            if first is not None:
                return InboundEvent.objects.get(pk=first), False
            event = InboundEvent.objects.create(**fields)
    if queue and not error:
        _queue_processing(event)
    return event, True


def _first_delivery(channel: Channel, digest: str, idempotency_key: str) -> int | None:
    """The id of the event that a delivery with this Idempotency-Key (or, without one,
    this body within 24 h) repeats, or None. Every webhook asks, and almost every one
    finds nothing: one plain statement (the ORM's would cost the request more to build
    than to run), on the index `inbound_idempotency_key` or `inbound_body`."""
    table = InboundEvent._meta.db_table
    if idempotency_key:
        condition, params = "idempotency_key = %s", [idempotency_key]
    else:
        condition = "idempotency_key = '' AND body_sha256 = %s AND received_at >= %s"
        params = [digest, timezone.now() - REPLAY_WINDOW]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM {table} WHERE tenant_id = %s AND channel_id = %s"  # noqa: S608
            f" AND {condition} ORDER BY received_at, id LIMIT 1",
            [channel.tenant_id, channel.pk, *params],
        )
        found = cursor.fetchone()
    return found[0] if found else None


def inbound_event_reprocess(*, event: InboundEvent) -> bool:
    """Queue a failed event again (after a rule was fixed). False if it is not failed, or
    if it failed on receipt and its body still cannot be read (the error is refreshed).

    An event refused on receipt (a webhook body that was not storable JSON) has no
    payload: its raw body is parsed again, with the webhook's own strict parse, if it is
    stored exactly as it was received."""
    event = InboundEvent.objects.filter(pk=event.pk, status=EventStatus.FAILED).first()
    if event is None:
        return False
    payload = event.payload
    if payload is None and event.source == EventSource.WEBHOOK:
        body = event.raw_body.encode("utf-8")
        if hashlib.sha256(body).hexdigest() != event.body_sha256:
            # Not the bytes as sent (they were not UTF-8, or held NUL): a payload read from
            # the stored text would be one the sender never sent.
            return False
        try:
            payload = parse_json_body(body)
        except BodyError as exc:
            InboundEvent.objects.filter(pk=event.pk).update(
                error=exc.message, error_detail=exc.detail
            )
            return False
    updated = InboundEvent.objects.filter(pk=event.pk, status=EventStatus.FAILED).update(
        status=EventStatus.RECEIVED,
        payload=payload,
        error="",
        error_detail={},
        mapping_issues=[],
    )
    if updated:
        event.refresh_from_db()
        _queue_processing(event)
    return bool(updated)


# Events one task claims at most: a backlog is worked off in batches of this size, each in
# one transaction (about a quarter of a second of work at 200 leads/s).
INTAKE_BATCH = 50


def inbound_event_process(*, event_id: int) -> InboundEvent | None:
    """Turn one received event into a lead, or mark it failed with the reason; the event,
    or None when it is processed already or being processed (`inbound_events_process`)."""
    events = inbound_events_process(event_id=event_id, limit=1)
    return events[0] if events else None


def inbound_events_process(*, event_id: int, limit: int = INTAKE_BATCH) -> list[InboundEvent]:
    """The worker's call: process the received event `event_id` and, in the same
    transaction, up to `limit - 1` more of the tenant's received events, oldest first.
    Returns the events processed.

    Idempotent: an event processed already, or held by another worker's batch, is left
    alone (the list is empty), so a redelivered or re-driven message never makes a second
    lead, and the task of an event an earlier batch took ends at once. The tenant's
    assignment lock is taken after the claim of `event_id` and held until the commit: the
    batches of one tenant run one after another, which also serialises the duplicate
    look-up (two duplicates arriving together cannot both become originals). Leads are
    written in savepoints: an event whose rows cannot be written fails alone, its error
    stored, and the others of the batch are kept.
    """
    tenant = current_tenant()
    if tenant is None:
        raise NoTenantError("inbound events are processed inside their tenant")
    tenant_id = tenant.pk
    with connection.cursor() as cursor:
        # The claim, in its cheapest form: most tasks of a backlog end here.
        cursor.execute(
            f"SELECT id FROM {InboundEvent._meta.db_table}"  # noqa: S608
            " WHERE tenant_id = %s AND id = %s AND status = %s FOR UPDATE SKIP LOCKED",
            [tenant_id, event_id, EventStatus.RECEIVED],
        )
        if cursor.fetchone() is None:
            return []
    advisory_lock("assign", tenant_id)  # the order of every intake: this lock first
    events = list(_claimable().filter(pk=event_id))  # ours already: never skipped
    if limit > 1:
        events += _claimable().exclude(pk=event_id).order_by("received_at", "id")[: limit - 1]
    _process(events)
    return events


def _claimable():
    # of=self: lock the event rows only. Locking the joined channel row too would make
    # every other worker on the same channel skip its own, unrelated events.
    return (
        InboundEvent.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("channel__tenant")
        .filter(status=EventStatus.RECEIVED)
    )


def inbound_events_next(*, limit: int = INTAKE_BATCH) -> list[InboundEvent]:
    """Process the tenant's oldest received events, at most `limit`, in the caller's
    tenant transaction; the events processed (none when every received event is taken).

    The claim comes first (FOR UPDATE SKIP LOCKED: events another batch holds are left to
    it), so a task with nothing left ends at that one statement; then the tenant's
    assignment lock, held until the commit, as in `inbound_events_process`."""
    tenant = current_tenant()
    if tenant is None:
        raise NoTenantError("inbound events are processed inside their tenant")
    events = list(_claimable().order_by("received_at", "id")[:limit])
    if events:
        advisory_lock("assign", tenant.pk)
        _process(events)
    return events


def inbound_events_drain(tenant, *, limit: int = INTAKE_BATCH, batches: int = DRAIN_BATCHES) -> int:
    """The announced task's work (`leads.process_inbound_events`): the tenant's received
    events in batches of `limit`, each in its own tenant transaction, oldest first, until a
    batch is not full; after `batches` full ones the rest goes to a new task. Returns how
    many events it processed. Called outside any transaction."""
    announcement_taken(tenant.pk)  # before the first claim: see _announce
    done = 0
    for _ in range(batches):
        with tenant_context(tenant):
            taken = len(inbound_events_next(limit=limit))
        done += taken
        if taken < limit:
            return done
    _announce(tenant.pk, what=f"the inbox of tenant {tenant.pk}", force=True)
    return done


class _Built:
    """An event's lead, built in memory (not saved), with what its writing needs."""

    __slots__ = ("event", "issues", "keys", "lead", "reasons", "tags")

    def __init__(self, event, lead, issues, reasons, tags):
        self.event, self.lead, self.issues, self.reasons, self.tags = (
            event,
            lead,
            issues,
            reasons,
            tags,
        )
        self.keys = _duplicate_keys(lead)


class _Tagging:
    """What a batch reads once for tagging: the active rules and each channel's tags."""

    def __init__(self):
        self._rules = None
        self._channel_tags: dict[int, list] = {}

    def tags_for(self, lead: Lead) -> list:
        text = " ".join(
            p for p in (lead.message, lead.company, lead.industry_remark, lead.title) if p
        )
        if lead.channel_id not in self._channel_tags:
            self._channel_tags[lead.channel_id] = list(lead.channel.tags.all())
        tags = {t.pk: t for t in self._channel_tags[lead.channel_id]}
        if text:
            if self._rules is None:
                self._rules = [
                    (rule, rule.keyword_list())
                    for rule in TaggingRule.objects.filter(is_active=True).select_related("tag")
                ]
            for rule, keywords in self._rules:
                if any(keyword_matches(k, text) for k in keywords):
                    tags.setdefault(rule.tag_id, rule.tag)
        return list(tags.values())


def _process(events: list[InboundEvent]) -> None:
    """Make the claimed events' leads; every event ends processed or failed."""
    tagging = _Tagging()
    own: list[InboundEvent] = []
    handed: dict[str, list[InboundEvent]] = {}
    for event in events:
        event.attempts += 1
        handler = inbox.handler_for(event.channel.type)
        if handler is None:
            own.append(event)
        else:
            handed.setdefault(handler.channel_type, []).append(event)
    for channel_type, group in handed.items():
        _hand_over(inbox.handler_for(channel_type), group)
    built = [b for b in (_build(e, tagging) for e in own) if b is not None]
    for chunk in _chunks(built):
        if len(chunk) == 1:
            _write_alone(chunk[0].event, tagging, chunk[0])
            continue
        try:
            with transaction.atomic():
                _write(chunk)
        except Exception:
            # One event's rows broke the chunk: each event on its own, in its savepoint.
            logger.exception("an intake batch of %s events is retried one by one", len(chunk))
            for b in chunk:
                _write_alone(b.event, tagging)
    _save_outcomes(events)


def _save_outcomes(events: list[InboundEvent]) -> None:
    """Store each event's outcome (status, error, mapping issues, lead, attempts, the
    time) in one UPDATE joined to the rows' new values, which unnest() turns from one
    array per column into rows: a statement whose size and plan do not depend on the
    batch (Django's bulk_update writes a CASE of every row for every column)."""
    if not events:
        return
    now = timezone.now()
    table = InboundEvent._meta.db_table
    columns = {"id": [], "status": [], "error": [], "detail": [], "issues": [], "lead": [], "n": []}
    for event in events:
        event.processed_at = now
        columns["id"].append(event.pk)
        columns["status"].append(event.status)
        columns["error"].append(event.error)
        columns["detail"].append(json.dumps(event.error_detail))
        columns["issues"].append(json.dumps(event.mapping_issues))
        columns["lead"].append(event.lead_id)
        columns["n"].append(event.attempts)
    sql = (
        f"UPDATE {table} AS e SET status = v.status, error = v.error,"  # noqa: S608
        " error_detail = v.detail::jsonb, mapping_issues = v.issues::jsonb,"
        " lead_id = v.lead, attempts = v.n, processed_at = %s"
        " FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[], %s::text[],"
        " %s::bigint[], %s::integer[]) AS v(id, status, error, detail, issues, lead, n)"
        " WHERE e.tenant_id = %s AND e.id = v.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [now, *columns.values(), current_tenant().pk])


def _hand_over(handler: inbox.InboxHandler, events: list[InboundEvent]) -> None:
    """The events of a channel type another app handles (crm.inbox): its handler makes
    what they become and marks each processed or failed. If it raises, what it wrote is
    rolled back and every event of the call fails with the error (re-processable)."""
    for event in events:
        event.status, event.lead, event.mapping_issues = EventStatus.RECEIVED, None, []
    try:
        with transaction.atomic():
            handler.process(events)
    except Exception as exc:
        logger.exception("the %s handler failed on %s events", handler.channel_type, len(events))
        for event in events:
            _failed(event, exc)
        return
    for event in events:
        if event.status not in (EventStatus.PROCESSED, EventStatus.FAILED):
            _failed(event, RuntimeError(f"the {handler.channel_type} handler left it unprocessed"))


def _build(event: InboundEvent, tagging: _Tagging) -> _Built | None:
    """The event's lead in memory; None, with the event failed and the reason on it, when
    the event cannot become a lead. Optional fields the mapping cannot fill are noted in
    the issues (and on the lead) instead of failing it; no way to reach the lead fails it."""
    issues: list[dict] = []
    try:
        channel = event.channel
        values = mapping.apply(channel.preset, channel.mapping, event.payload, issues)
        utm = {k: values.pop(k) for k in UTM_FIELDS if values.get(k)}
        lead = Lead(
            tenant=channel.tenant,
            channel=channel,
            source_grade=channel.default_grade,
            utm=utm,
            intake_issues=issues,
            **values,
        )
        reasons = _validate(lead)
        # An unparseable phone still counts: the lead is kept and flagged, never dropped.
        if not (lead.phone or lead.email or lead.external_id):
            raise IntakeError("no_contact")
        lead.is_suspect = bool(reasons)
        lead.suspect_reasons = reasons
        return _Built(event, lead, issues, reasons, tagging.tags_for(lead))
    except Exception as exc:
        _failed(event, exc)
        return None


def _failed(event: InboundEvent, exc: Exception) -> None:
    if isinstance(exc, CodedError):
        event.status, event.error_detail = EventStatus.FAILED, exc.detail
        event.error, event.mapping_issues = intake_text_en(exc.detail), []
        return
    # A bug or bad data we did not foresee: keep it visible.
    logger.error("inbound event %s failed", event.pk, exc_info=exc)
    event.status, event.mapping_issues = EventStatus.FAILED, []
    event.error = f"{exc.__class__.__name__}: {exc}"
    event.error_detail = intake_message("internal", exception=exc.__class__.__name__)


def _chunks(built: list[_Built]):
    """The batch in runs without two leads sharing a duplicate key: a lead that may be a
    revisit of one made in the same batch starts a new run, written after that one, so
    the duplicate look-up finds it as it would find any earlier lead."""
    chunk: list[_Built] = []
    seen: set = set()
    for b in built:
        if seen & b.keys:
            yield chunk
            chunk, seen = [], set()
        chunk.append(b)
        seen |= b.keys
    if chunk:
        yield chunk


def _write_alone(event: InboundEvent, tagging: _Tagging, built: _Built | None = None) -> None:
    """One event's lead in its own savepoint; if its assignment cannot be written, the
    lead is kept in the pool with the reason; if the lead cannot be written, the event
    fails with the error."""
    for assign in (True, False):
        b = built or _build(event, tagging)  # afresh after a rolled-back attempt
        built = None
        if b is None:
            return
        try:
            with transaction.atomic():
                _write([b], assign=assign)
            return
        except Exception as exc:
            error = exc
            logger.exception("inbound event %s: writing its lead failed", event.pk)
    _failed(event, error)


def _write(chunk: list[_Built], *, assign: bool = True) -> None:
    """Insert the leads of `chunk` (no two sharing a duplicate key) with their tags,
    timeline and assignment, in a few statements; mark their events processed."""
    from leads.assignment.dispatch import NewLeads
    from leads.models import PoolReason

    now = timezone.now()
    originals = _find_originals(chunk, now)
    plan = NewLeads(now) if assign else None
    entries, links = [], []
    for b, original in zip(chunk, originals, strict=True):
        lead = b.lead
        lead.created_at = now
        lead.revisit_of = original
        entries += _intake_entries(b, original, now)
        if plan is not None:
            assigned = plan.add(lead, [t.name for t in b.tags])
        else:
            lead.owner, lead.status = None, LeadStatus.NEW
            lead.pooled_at, lead.pool_reason = now, PoolReason.FAILED
            assigned = [(LeadEventKind.POOLED, {"reason": PoolReason.FAILED})]
        entries += (
            LeadEvent(tenant=lead.tenant, lead=lead, kind=kind, at=now, data=data)
            for kind, data in assigned
        )
    Lead.objects.bulk_create([b.lead for b in chunk])
    through = Lead.tags.through
    for b in chunk:
        links += (through(lead_id=b.lead.pk, tag_id=t.pk) for t in b.tags)
    if links:
        through.objects.bulk_create(links)
    LeadEvent.objects.bulk_create(entries)
    if plan is not None:
        plan.write()
    lead_events.emit_created([(b.lead, [t.name for t in b.tags]) for b in chunk])
    for b in chunk:
        event, lead = b.event, b.lead
        event.status, event.error, event.lead = EventStatus.PROCESSED, "", lead
        event.error_detail, event.mapping_issues = {}, b.issues
        if settings.REGISTRY_VERIFIER_URL and lead.company:
            publish_after_commit(
                "leads.verify_lead_company", lead.tenant_id, lead.pk, what=f"lead {lead.pk}"
            )


def _validate(lead: Lead) -> list[dict]:
    """Normalise in place; return the suspect reasons (F4, coded: leads.messages).
    Never drops the lead."""
    reasons = []
    if lead.phone:
        phone = normalize.parse_phone(lead.phone)
        if phone is None:
            reasons.append(reason("phone_unrecognised", phone=lead.phone))
            if normalize.looks_fake_phone(lead.phone):
                reasons.append(reason("phone_placeholder", phone=lead.phone))
        else:
            lead.phone = lead.phone_key = phone.e164
            if not lead.province and not lead.city:
                lead.province, lead.city = phone.province, phone.city
            if normalize.looks_fake_phone(phone.e164):
                reasons.append(reason("phone_placeholder", phone=phone.e164))
    if lead.email and not normalize.is_valid_email(lead.email):
        reasons.append(reason("email_malformed", email=lead.email))
    if normalize.looks_like_test_entry(lead.company, lead.contact_name):
        reasons.append(reason("test_entry"))
    lead.company_key = normalize.company_key(lead.company)
    lead.contact_key = normalize.person_key(lead.contact_name)
    return reasons


def _duplicate_keys(lead: Lead) -> set[tuple]:
    """What makes two leads the same (F5): the phone, or the company and the contact. A
    placeholder phone (13800000000 …) is shared by strangers: it matches nothing."""
    keys = set()
    if lead.phone_key and not normalize.looks_fake_phone(lead.phone_key):
        keys.add(("phone", lead.phone_key))
    if lead.company_key and lead.contact_key:
        keys.add(("company", lead.company_key, lead.contact_key))
    return keys


def _find_originals(chunk: list[_Built], now) -> list[Lead | None]:
    """Each lead's original: the first lead of the last 30 days sharing one of its keys
    (`_duplicate_keys`), or that lead's own original. One query for the chunk (whose
    leads share no key), then the originals found. The caller holds the tenant's
    assignment lock, so no other intake makes a lead of the tenant meanwhile."""
    phones = sorted({k[1] for b in chunk for k in b.keys if k[0] == "phone"})
    pairs = sorted({k[1:] for b in chunk for k in b.keys if k[0] == "company"})
    if not phones and not pairs:
        return [None] * len(chunk)
    table = Lead._meta.db_table
    sql = (
        f"SELECT id, revisit_of_id, phone_key, company_key, contact_key FROM {table}"  # noqa: S608
        " WHERE tenant_id = %s AND created_at >= %s AND ("
        " (phone_key <> '' AND phone_key = ANY(%s)) OR (company_key <> ''"
        " AND (company_key, contact_key) IN (SELECT * FROM unnest(%s::text[], %s::text[]))))"
        " ORDER BY created_at, id"
    )
    params = [
        current_tenant().pk,
        now - REVISIT_WINDOW,
        phones,
        [p[0] for p in pairs],
        [p[1] for p in pairs],
    ]
    first: dict[tuple, tuple[int, int]] = {}  # key → (rank, original id) of its first lead
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for rank, row in enumerate(cursor.fetchall()):
            pk, revisit_of_id, phone_key, company_key, contact_key = row
            for key in (("phone", phone_key), ("company", company_key, contact_key)):
                first.setdefault(key, (rank, revisit_of_id or pk))
    found = [min((first[k] for k in b.keys if k in first), default=(0, None))[1] for b in chunk]
    originals = Lead.objects.in_bulk([pk for pk in found if pk is not None])
    return [originals.get(pk) if pk is not None else None for pk in found]


def _intake_entries(b: _Built, original: Lead | None, now) -> list[LeadEvent]:
    """The intake's timeline entries: codes and data, worded when read (LeadEvent.text)."""
    lead, event, tags, reasons = b.lead, b.event, b.tags, b.reasons
    entries = [
        (
            LeadEventKind.INTAKE,
            {
                "inbound_event": str(event.public_id),
                "source": event.source,
                "channel": lead.channel.name,
            },
        ),
        (LeadEventKind.TAGGED, {"tags": [t.name for t in tags]} if tags else None),
        (
            LeadEventKind.REVISIT,
            original and {"original": str(original.public_id), "original_label": str(original)},
        ),
        (LeadEventKind.SUSPECT, {"reasons": reasons} if reasons else None),
    ]
    return [
        LeadEvent(tenant=lead.tenant, lead=lead, kind=kind, at=now, data=data)
        for kind, data in entries
        if data
    ]


def lead_record_registry_result(*, lead: Lead, status: str, detail: str = "") -> None:
    """Store the business-registry verdict; a company not found makes the lead suspect."""
    from leads.models import RegistryStatus

    lead.registry_status = status
    fields = ["registry_status"]
    if status == RegistryStatus.NOT_FOUND:
        found = reason("registry_not_found", company=lead.company)
        if found not in lead.suspect_reasons:
            lead.suspect_reasons = [*lead.suspect_reasons, found]
        lead.is_suspect = True
        fields += ["suspect_reasons", "is_suspect"]
    lead.save(update_fields=fields)
    LeadEvent.objects.create(
        tenant=lead.tenant,
        lead=lead,
        kind=LeadEventKind.REGISTRY,
        message=detail,  # the registry's own words (a name, a status), not ours
        data={"status": status},
    )


MAPPING_PROBLEM_DAYS = 30
MAPPING_PROBLEM_EVENTS = 1000  # the newest events with problems that are read


class MappingProblems(list):
    """channel_mapping_problems()'s rows, with the window they cover (`days`)."""

    days = MAPPING_PROBLEM_DAYS


def channel_mapping_problems(*, channel: Channel, now=None) -> MappingProblems:
    """What the channel's mapping could not fill lately, grouped: one row per field and
    value received ({"field", "value", "problem", "count", "last"}), most frequent first.
    One query, over at most the newest MAPPING_PROBLEM_EVENTS events that had any."""
    from leads.messages import intake_text

    since = (now or timezone.now()) - timedelta(days=MAPPING_PROBLEM_DAYS)
    rows = (
        InboundEvent.objects.filter(channel=channel, received_at__gte=since)
        .exclude(mapping_issues=[])
        .order_by("-received_at")
        .values_list("mapping_issues", "received_at")[:MAPPING_PROBLEM_EVENTS]
    )
    grouped: dict[tuple, dict] = {}
    for issues, received_at in rows:
        for issue in issues:
            value = issue.get("value", "") if issue.get("code") == "unmapped" else ""
            key = (issue.get("code"), issue.get("field"), value)
            row = grouped.get(key)
            if row is None:
                problem = issue.get("error") if issue.get("code") == "unmapped" else issue
                row = grouped[key] = {
                    "field": issue.get("field", ""),
                    "value": value,
                    "problem": intake_text(problem),
                    "count": 0,
                    "last": received_at,
                }
            row["count"] += 1
    return MappingProblems(sorted(grouped.values(), key=lambda r: (-r["count"], r["field"])))


def stale_inbound_events(limit: int = 1000) -> Iterable[tuple[int, int]]:
    """(tenant_id, event_id) of events left `received` for over 2 minutes, all tenants.

    A platform sweep: it only reads ids here; each event is then processed inside its
    own tenant by the task."""
    if current_tenant() is not None:
        raise RuntimeError("the re-drive sweep runs outside any tenant")
    with all_tenants_context():
        return list(
            InboundEvent.objects.stale()
            .order_by("received_at")
            .values_list("tenant_id", "pk")[:limit]
        )
