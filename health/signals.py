"""Signals in (F32): the events of `POST /track/<key>/` and the opens of tracked links.

docs/tracking.md is the contract. Two ways in, both public and both found by an
unguessable string that names the tenant:

- `settings_by_key(key)`: the tenant whose tracking key it is (then its HMAC secret proves
  the sender, health.views_track). `parse_events` checks a body's events and
  `signals_record` resolves each to a customer (a tracked link's token, else the customer
  code, a contact's e-mail, a contact's phone, in that order) and stores the resolved
  ones; an event no customer matches is refused, logged and stored nowhere.
- `link_by_token(token)`: the tracked link (and so the tenant) a `/t/<token>` names;
  `link_open` counts the open and records its signal, at most once per link in
  OPEN_WINDOW (a mail scanner's burst of fetches counts once).

Signals are append-only: nothing here updates one, and PostgreSQL refuses it
(migration 0002_signal_append_only).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import connection, transaction
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from crm.models import Tenant
from crm.normalize import parse_phone
from crm.services import check_tenant
from crm.tenancy import advisory_lock, tenant_context
from customers.models import Contact, Customer
from health import events as health_events
from health.models import (
    HealthSettings,
    LinkKind,
    ResolvedBy,
    Signal,
    SignalKind,
    TrackedLink,
)

logger = logging.getLogger(__name__)

MAX_EVENTS = 100  # per request
MAX_FUTURE = timedelta(minutes=5)  # an event dated later than now + this is refused
OPEN_WINDOW = timedelta(seconds=10)  # one counted open per link in this long
EVENT_TYPES = ("download", "quote_open", "visit", "search")
# Keys and tokens are URL-safe Base64 (secrets.token_urlsafe); anything else names nothing.
_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,40}")
_URL_MAX = Signal._meta.get_field("url").max_length
_QUERY_MAX = Signal._meta.get_field("query").max_length
_CODE_MAX = Customer._meta.get_field("code").max_length
# The signal a tracked link's open records, by the link's kind.
OPEN_KIND = {LinkKind.DOCUMENT: SignalKind.DOWNLOAD, LinkKind.QUOTE: SignalKind.QUOTE_OPEN}


# -- finding the tenant -----------------------------------------------------------------------


def settings_by_key(key: str) -> HealthSettings | None:
    """The health settings (with their tenant) whose tracking key is `key`, whichever
    tenant's: the SECURITY DEFINER function `health_settings_by_key` answers only the ids
    (health.registrations), the row is then read inside its tenant."""
    if not _KEY.fullmatch(key or ""):
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT settings_id, tenant_id FROM health_settings_by_key(%s)", [key])
        found = cursor.fetchone()
    if found is None:
        return None
    settings_id, tenant_id = found
    with tenant_context(Tenant(pk=tenant_id)):
        return HealthSettings.objects.select_related("tenant").filter(pk=settings_id).first()


def link_by_token(token: str) -> TrackedLink | None:
    """The tracked link (with its tenant) `token` names, whichever tenant's (through
    `health_link_by_token`), or None."""
    if not _TOKEN.fullmatch(token or ""):
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT link_id, tenant_id FROM health_link_by_token(%s)", [token])
        found = cursor.fetchone()
    if found is None:
        return None
    link_id, tenant_id = found
    with tenant_context(Tenant(pk=tenant_id)):
        return TrackedLink.objects.select_related("tenant").filter(pk=link_id).first()


# -- the events of POST /track/ ---------------------------------------------------------------


@dataclass
class Event:
    """One checked event of a /track/ body (`index`: its place in the body)."""

    index: int
    type: str
    at: datetime
    token: str = ""
    customer_code: str = ""
    email: str = ""
    phone: str = ""  # E.164
    url: str = ""
    query: str = ""


@dataclass
class Refusal:
    index: int
    message: str

    def as_json(self) -> dict:
        return {"index": self.index, "message": self.message}


def _text(raw: dict, name: str, limit: int, problems: list[str]) -> str:
    value = raw.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        problems.append(f"{name} must be a string")
        return ""
    value = value.strip()
    if len(value) > limit:
        problems.append(f"{name} is over {limit} characters")
        return ""
    return value


def _moment(value, now: datetime, tz, problems: list[str]) -> datetime:
    if value is None:
        return now
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            at = datetime.fromtimestamp(value, tz=UTC)
        except (OverflowError, OSError, ValueError):
            problems.append("at is not a time")
            return now
    elif isinstance(value, str):
        try:
            at = parse_datetime(value.strip())
        except ValueError:
            at = None
        if at is None:
            problems.append("at must be ISO 8601 or unix seconds")
            return now
        if timezone.is_naive(at):
            at = timezone.make_aware(at, tz)  # the tenant's local time
    else:
        problems.append("at must be ISO 8601 or unix seconds")
        return now
    if at > now + MAX_FUTURE:
        problems.append(f"at is more than {int(MAX_FUTURE.total_seconds() // 60)} min ahead")
    return at


def _event(index: int, raw, now: datetime, tz) -> tuple[Event | None, list[str]]:
    if not isinstance(raw, dict):
        return None, ["an event is a JSON object"]
    problems: list[str] = []
    kind = raw.get("type")
    if kind not in EVENT_TYPES:
        problems.append("type must be one of " + ", ".join(EVENT_TYPES))
    at = _moment(raw.get("at"), now, tz, problems)
    token = _text(raw, "token", 64, problems)
    code = _text(raw, "customer_code", _CODE_MAX, problems)
    email = _text(raw, "email", 254, problems).lower()
    if email and "@" not in email:
        problems.append("email is not an e-mail address")
    phone = _text(raw, "phone", 32, problems)
    parsed = parse_phone(phone) if phone else None
    if phone and parsed is None:
        problems.append("phone is not a phone number")
    if not (token or code or email or phone):
        problems.append("name the customer: token, customer_code, email or phone")
    url = _text(raw, "url", _URL_MAX, problems)
    query = _text(raw, "query", _QUERY_MAX, problems)
    if kind == "search" and not query:
        problems.append("a search needs its query")
    if problems:
        return None, problems
    return (
        Event(
            index=index,
            type=kind,
            at=at,
            token=token,
            customer_code=code,
            email=email,
            phone=parsed.e164 if parsed else "",
            url=url,
            query=query,
        ),
        [],
    )


def parse_events(payload, *, now: datetime, tz) -> tuple[list[Event], list[Refusal]]:
    """The events of a /track/ body (one event, or {"events": [...]}), and what is wrong
    with it: (events, []) when every event is well formed, else ([], the problems, each
    with its event's index; index -1 for the body itself). `tz`: the tenant's zone, for
    a time given without an offset."""
    if isinstance(payload, dict) and "events" in payload:
        raws = payload["events"]
        if not isinstance(raws, list) or not raws:
            return [], [Refusal(-1, "events must be a non-empty list")]
        if len(raws) > MAX_EVENTS:
            return [], [Refusal(-1, f"at most {MAX_EVENTS} events per request")]
    elif isinstance(payload, dict):
        raws = [payload]
    else:
        return [], [Refusal(-1, 'the body is one event or {"events": [...]}')]
    events, problems = [], []
    for index, raw in enumerate(raws):
        event, wrong = _event(index, raw, now, tz)
        problems.extend(Refusal(index, message) for message in wrong)
        if event is not None:
            events.append(event)
    return (events, []) if not problems else ([], problems)


def competitor_in(query: str, competitors: list[str]) -> str:
    """The competitor a search query names (case-insensitive; the one named first), or ""."""
    folded = query.casefold()
    found = [(folded.find(word.casefold()), word) for word in competitors]
    found = [(at, word) for at, word in found if at >= 0]
    return min(found)[1] if found else ""


def _unique(rows) -> dict:
    """key → (customer_id, contact_id) for the keys that name exactly one customer."""
    seen: dict = {}
    for key, customer_id, contact_id in rows:
        if key in seen and seen[key] is not None and seen[key][0] != customer_id:
            seen[key] = None  # two customers: ambiguous, names none
        elif key not in seen:
            seen[key] = (customer_id, contact_id)
    return {key: value for key, value in seen.items() if value is not None}


@dataclass
class _Lookups:
    links: dict  # token → TrackedLink
    codes: dict  # code → (customer_id, None)
    emails: dict  # e-mail → (customer_id, contact_id)
    phones: dict  # E.164 → (customer_id, contact_id)


def _lookups(events: list[Event]) -> _Lookups:
    """Every key of the batch looked up at once: four queries whatever its size."""
    tokens = {e.token for e in events if e.token}
    codes = {e.customer_code for e in events if e.customer_code and not e.token}
    emails = {e.email for e in events if e.email and not e.token}
    phones = {e.phone for e in events if e.phone and not e.token}
    links = {}
    if tokens:
        links = {link.token: link for link in TrackedLink.objects.filter(token__in=tokens)}
    found_codes = {}
    if codes:
        rows = Customer.objects.filter(code__in=codes).values_list("code", "id")
        found_codes = _unique((code, pk, None) for code, pk in rows)
    found_emails = {}
    if emails:
        rows = (
            Contact.objects.annotate(key=Lower("email"))
            .filter(key__in=emails)
            .order_by("id")
            .values_list("key", "customer_id", "id")
        )
        found_emails = _unique(rows)
    found_phones = {}
    if phones:
        rows = (
            Contact.objects.filter(phone_key__in=phones)
            .order_by("id")
            .values_list("phone_key", "customer_id", "id")
        )
        found_phones = _unique(rows)
    return _Lookups(links, found_codes, found_emails, found_phones)


def _resolve(event: Event, found: _Lookups):
    """(resolved_by, customer_id, contact_id, link) or a refusal's message. A token, when
    given, decides alone: an unknown one is refused, never matched another way."""
    if event.token:
        link = found.links.get(event.token)
        if link is None:
            return "unknown token"
        return ResolvedBy.TOKEN, link.customer_id, link.contact_id, link
    for by, value, table in (
        (ResolvedBy.CODE, event.customer_code, found.codes),
        (ResolvedBy.EMAIL, event.email, found.emails),
        (ResolvedBy.PHONE, event.phone, found.phones),
    ):
        if value and value in table:
            customer_id, contact_id = table[value]
            return by, customer_id, contact_id, None
    return "no customer matches"


def signals_record(
    *, tenant: Tenant, settings: HealthSettings, events: list[Event], now: datetime
) -> tuple[list[Signal], list[Refusal]]:
    """Store the events a customer of `tenant` matches, in one transaction; refuse (and
    log) the others. An event resolved by the token of a document or quote link that
    says it was downloaded or opened also counts as an open of that link."""
    check_tenant(tenant, settings)
    competitors = settings.competitor_list()
    stored: list[Signal] = []
    refused: list[Refusal] = []
    with transaction.atomic():
        found = _lookups(events)
        for event in events:
            resolved = _resolve(event, found)
            if isinstance(resolved, str):
                refused.append(Refusal(event.index, resolved))
                logger.warning(
                    "tracking: tenant %s refused event %s (%s): %s",
                    tenant.pk,
                    event.index,
                    event.type,
                    resolved,
                )
                continue
            by, customer_id, contact_id, link = resolved
            kind, competitor = event.type, ""
            if kind == SignalKind.SEARCH:
                competitor = competitor_in(event.query, competitors)
                if competitor:
                    kind = SignalKind.COMPETITOR_SEARCH
            stored.append(
                Signal(
                    tenant=tenant,
                    customer_id=customer_id,
                    contact_id=contact_id,
                    link=link,
                    kind=kind,
                    at=event.at,
                    resolved_by=by,
                    url=event.url,
                    query=event.query,
                    competitor=competitor,
                    received_at=now,
                )
            )
            if link is not None and OPEN_KIND.get(link.kind) == kind:
                _count_open(tenant, link, event.at)
        Signal.objects.bulk_create(stored)
        health_events.emit_signals(stored)
    return stored, refused


def _count_open(tenant: Tenant, link: TrackedLink, at: datetime) -> None:
    """One more open of `link` at `at` (its first open the earliest one seen)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE health_trackedlink SET open_count = open_count + 1,"
            " first_opened_at = LEAST(COALESCE(first_opened_at, %s), %s)"
            " WHERE tenant_id = %s AND id = %s",
            [at, at, tenant.pk, link.pk],
        )


# -- the opens of /t/<token> ------------------------------------------------------------------


def link_open(*, tenant: Tenant, link: TrackedLink, now: datetime | None = None) -> Signal | None:
    """Count an open of `link` and record its signal (a download for a document, a quote
    opened for a quote, matched by the token); None when the link was counted in the
    last OPEN_WINDOW already (a scanner's or a double click's repeat: nothing recorded).

    One UPDATE … RETURNING counts the open and sets the first open once; an advisory lock
    on the link makes concurrent opens take turns, so the window holds under a burst."""
    check_tenant(tenant, link)
    now = now or timezone.now()
    with transaction.atomic():
        advisory_lock("health.link_open", link.pk)
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE health_trackedlink l SET open_count = l.open_count + 1,"
                " first_opened_at = COALESCE(l.first_opened_at, %(now)s)"
                " WHERE l.tenant_id = %(tenant)s AND l.id = %(link)s AND NOT EXISTS ("
                "   SELECT 1 FROM health_signal s WHERE s.tenant_id = %(tenant)s"
                "   AND s.link_id = l.id AND s.resolved_by = %(token)s"
                "   AND s.received_at > %(since)s)"
                " RETURNING l.customer_id, l.contact_id, l.kind",
                {
                    "now": now,
                    "tenant": tenant.pk,
                    "link": link.pk,
                    "token": ResolvedBy.TOKEN,
                    "since": now - OPEN_WINDOW,
                },
            )
            counted = cursor.fetchone()
        if counted is None:
            return None
        customer_id, contact_id, kind = counted
        return Signal.objects.create(
            tenant=tenant,
            customer_id=customer_id,
            contact_id=contact_id,
            link=link,
            kind=OPEN_KIND[kind],
            at=now,
            resolved_by=ResolvedBy.TOKEN,
            url=link.target_url[:_URL_MAX],
            received_at=now,
        )
