"""Helpdesk tickets in through the leads' inbox (F27): the handler of channel type
`helpdesk` (crm.inbox), registered by `register()` from the app's ready().

A helpdesk channel is a `leads.Channel` of type helpdesk; its webhook (POST /hooks/<key>/)
stores the raw body as an inbound event, as for leads, and the inbox's task hands the
events to `process_events`. The channel's preset says which format its helpdesk sends:

- ``sobot``: Sobot (智齿) ticket push, e.g. on "ticket closed";
- ``zendesk``: a Zendesk ticket event (event subscription), or a trigger webhook whose
  JSON body holds a ``ticket`` object;
- ``freshdesk``: a Freshdesk automation webhook (``freshdesk_webhook`` object);
- blank: our own field names (`TicketData`'s), documented in docs/webhooks.md.

Besides our X-CRM-Signature, a request may be signed the helpdesk's own way
(`verify_native`): Zendesk's HMAC headers, or Sobot's md5 sign. The channel's secret is
the signing secret either way; Sobot's appid is the channel's `native_app_id`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import sys
import time
import zoneinfo
from datetime import UTC, datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from crm import inbox
from service_feedback.models import TicketStatus
from service_feedback.services import (
    TicketData,
    TicketItem,
    check_ticket_data,
    flag_keywords,
    settings_for,
    ticket_runs,
    tickets_write,
)

logger = logging.getLogger(__name__)

CHANNEL_TYPE = "helpdesk"
SOBOT, ZENDESK, FRESHDESK, GENERIC = "sobot", "zendesk", "freshdesk", ""
PRESETS = {
    SOBOT: _("Sobot (智齿) ticket push"),
    ZENDESK: _("Zendesk ticket event"),
    FRESHDESK: _("Freshdesk automation webhook"),
}
# How far a native signature's timestamp may be from now, as our own contract allows.
MAX_SKEW = 300  # seconds


class PayloadError(Exception):
    """The payload cannot be read as a ticket; the message is stored on the event."""


# -- reading values -------------------------------------------------------------------------


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float | str):
        return str(value).strip()
    raise PayloadError(f"expected a text, got {type(value).__name__}: {str(value)[:80]!r}")


def _int(value, name: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        number = float(str(value).strip())
    except ValueError:
        raise PayloadError(f"{name}: {str(value)[:80]!r} is not a number") from None
    if number != int(number):
        raise PayloadError(f"{name}: {value!r} is not a whole number")
    return int(number)


_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M:%S", "%a, %d %b, %Y at %I:%M %p")


def _datetime(value, name: str, tz) -> datetime | None:
    """An aware datetime from ISO 8601, "2026-12-01 09:12:33" (in `tz`), Freshdesk's
    "Tue, 01 Dec, 2026 at 09:12 AM", or unix seconds / milliseconds."""
    if value in (None, ""):
        return None
    if isinstance(value, int | float) or (isinstance(value, str) and value.strip().isdigit()):
        seconds = float(value)
        if seconds > 10**11:  # milliseconds
            seconds /= 1000
        return datetime.fromtimestamp(seconds, tz=UTC)
    if not isinstance(value, str):
        raise PayloadError(f"{name}: {str(value)[:80]!r} is not a date and time")
    raw = value.strip()
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        parsed = None
        for fmt in _FORMATS:
            try:
                parsed = datetime.strptime(raw, fmt)
                break
            except ValueError:
                continue
    if parsed is None:
        raise PayloadError(f"{name}: {raw[:80]!r} is not a date and time")
    return parsed if timezone.is_aware(parsed) else parsed.replace(tzinfo=tz)


def _object(payload, name: str = "the payload") -> dict:
    if not isinstance(payload, dict):
        raise PayloadError(f"{name} is not a JSON object")
    return payload


# -- the presets ----------------------------------------------------------------------------

_GENERIC_TEXT = (
    "external_id", "subject", "text", "customer_code", "requester_name", "phone", "email",
    "product_line", "product_model", "fault_code", "province", "city",
)  # fmt: skip
_GENERIC_TIMES = ("opened_at", "first_response_at", "resolved_at")
_GENERIC_NUMBERS = ("sentiment", "nps", "satisfaction")


def from_generic(payload, tz) -> TicketData:
    """Our own field names (TicketData's); other keys are kept in `extra`."""
    payload = _object(payload)
    values = {k: _text(payload.get(k)) for k in _GENERIC_TEXT}
    values.update({k: _datetime(payload.get(k), k, tz) for k in _GENERIC_TIMES})
    values.update({k: _int(payload.get(k), k) for k in _GENERIC_NUMBERS})
    status = _text(payload.get("status")).lower() or TicketStatus.OPEN
    if status not in TicketStatus.values:
        raise PayloadError(f"status: {status!r} is not one of {', '.join(TicketStatus.values)}")
    known = {*_GENERIC_TEXT, *_GENERIC_TIMES, *_GENERIC_NUMBERS, "status", "extra"}
    extra = dict(payload.get("extra") or {}) if isinstance(payload.get("extra"), dict) else {}
    extra.update({k: v for k, v in payload.items() if k not in known})
    return TicketData(status=status, extra=extra, **values)


# Sobot's ticket states: 0 not yet accepted, 1 in progress, 2 waiting for the customer,
# 3 solved, 99 closed (98: deleted, not sent as a ticket).
_SOBOT_STATUS = {
    "0": TicketStatus.OPEN,
    "1": TicketStatus.OPEN,
    "2": TicketStatus.OPEN,
    "3": TicketStatus.RESOLVED,
    "99": TicketStatus.CLOSED,
}
# Sobot's custom ticket fields (extend_fields) by their name in the Sobot console.
_SOBOT_FIELDS = {
    "客户编码": "customer_code",
    "客户编号": "customer_code",
    "产品线": "product_line",
    "产品型号": "product_model",
    "型号": "product_model",
    "故障代码": "fault_code",
    "故障码": "fault_code",
    "省份": "province",
    "城市": "city",
}


def from_sobot(payload, tz) -> TicketData:
    """Sobot's ticket push: the ticket in `data` (or at the top), Sobot's field names."""
    payload = _object(payload)
    ticket = _object(payload.get("data", payload), "data")
    external_id = _text(ticket.get("ticketid") or ticket.get("ticket_code"))
    if not external_id:
        raise PayloadError("data.ticketid is missing: not a Sobot ticket push")
    raw_status = _text(ticket.get("ticket_status"))
    if raw_status not in _SOBOT_STATUS:
        raise PayloadError(f"data.ticket_status: {raw_status!r} is not a Sobot ticket state")
    values: dict = {}
    for item in ticket.get("extend_fields") or []:
        item = _object(item, "an extend_fields entry")
        target = _SOBOT_FIELDS.get(_text(item.get("field_name")))
        if target:
            values[target] = _text(item.get("field_value"))
    evaluation = ticket.get("customer_evaluation") or {}
    return TicketData(
        external_id=external_id,
        status=_SOBOT_STATUS[raw_status],
        subject=_text(ticket.get("ticket_title")),
        text=_text(ticket.get("ticket_content")),
        opened_at=_datetime(ticket.get("create_time"), "data.create_time", tz),
        first_response_at=_datetime(ticket.get("first_reply_time"), "data.first_reply_time", tz),
        resolved_at=_datetime(
            ticket.get("solve_time") or ticket.get("close_time"), "data.solve_time", tz
        ),
        requester_name=_text(ticket.get("customer_name")),
        phone=_text(ticket.get("customer_tel")),
        email=_text(ticket.get("customer_email")),
        satisfaction=_int(_object(evaluation, "data.customer_evaluation").get("score"), "score"),
        extra={"ticket_code": _text(ticket.get("ticket_code")), "source": "sobot"},
        **values,
    )


_ZENDESK_STATUS = {
    "new": TicketStatus.OPEN,
    "open": TicketStatus.OPEN,
    "pending": TicketStatus.OPEN,
    "hold": TicketStatus.OPEN,
    "solved": TicketStatus.RESOLVED,
    "closed": TicketStatus.CLOSED,
}


def _zendesk_status(raw, name: str) -> str:
    status = _text(raw).lower()
    if status not in _ZENDESK_STATUS:
        raise PayloadError(f"{name}: {status!r} is not a Zendesk ticket status")
    return _ZENDESK_STATUS[status]


def from_zendesk(payload, tz) -> TicketData:
    """A ticket event of a Zendesk event subscription (`type` zen:event-type:ticket.*,
    the ticket in `detail`), or a trigger webhook whose body holds a `ticket` object."""
    payload = _object(payload)
    if "ticket" in payload:
        ticket = _object(payload["ticket"], "ticket")
        requester = _object(ticket.get("requester") or {}, "ticket.requester")
        organization = _object(ticket.get("organization") or {}, "ticket.organization")
        external_id = _text(ticket.get("id"))
        if not external_id:
            raise PayloadError("ticket.id is missing: not a Zendesk ticket")
        return TicketData(
            external_id=external_id,
            status=_zendesk_status(ticket.get("status"), "ticket.status"),
            subject=_text(ticket.get("title") or ticket.get("subject")),
            text=_text(ticket.get("description")),
            opened_at=_datetime(ticket.get("created_at"), "ticket.created_at", tz),
            resolved_at=_datetime(ticket.get("solved_at"), "ticket.solved_at", tz),
            customer_code=_text(organization.get("external_id")),
            requester_name=_text(requester.get("name")),
            phone=_text(requester.get("phone")),
            email=_text(requester.get("email")),
            extra={"source": "zendesk", "via": _text(ticket.get("via"))},
        )
    event_type = _text(payload.get("type"))
    if not event_type.startswith("zen:event-type:ticket."):
        raise PayloadError(
            f"type {event_type[:80]!r} is not a Zendesk ticket event (zen:event-type:ticket.*)"
        )
    detail = _object(payload.get("detail"), "detail")
    external_id = _text(detail.get("id"))
    if not external_id:
        raise PayloadError("detail.id is missing: not a Zendesk ticket event")
    status = _zendesk_status(detail.get("status"), "detail.status")
    updated = _datetime(detail.get("updated_at"), "detail.updated_at", tz)
    return TicketData(
        external_id=external_id,
        status=status,
        subject=_text(detail.get("subject")),
        text=_text(detail.get("description")),
        opened_at=_datetime(detail.get("created_at"), "detail.created_at", tz),
        resolved_at=updated if status != TicketStatus.OPEN else None,
        extra={
            "source": "zendesk",
            "event": event_type,
            "requester_id": _text(detail.get("requester_id")),
            "organization_id": _text(detail.get("organization_id")),
            "tags": [_text(t) for t in detail.get("tags") or []],
        },
    )


_FRESHDESK_STATUS = {
    "open": TicketStatus.OPEN,
    "pending": TicketStatus.OPEN,
    "waiting on customer": TicketStatus.OPEN,
    "waiting on third party": TicketStatus.OPEN,
    "resolved": TicketStatus.RESOLVED,
    "closed": TicketStatus.CLOSED,
    "2": TicketStatus.OPEN,
    "3": TicketStatus.OPEN,
    "4": TicketStatus.RESOLVED,
    "5": TicketStatus.CLOSED,
}


def from_freshdesk(payload, tz) -> TicketData:
    """A Freshdesk automation webhook: the placeholders in a `freshdesk_webhook` object
    (ticket_id, ticket_subject, ticket_status, ticket_contact_email, …)."""
    payload = _object(payload)
    hook = _object(payload.get("freshdesk_webhook", payload), "freshdesk_webhook")
    external_id = _text(hook.get("ticket_id"))
    if not external_id:
        raise PayloadError("freshdesk_webhook.ticket_id is missing: not a Freshdesk webhook")
    raw_status = _text(hook.get("ticket_status")).lower()
    if raw_status not in _FRESHDESK_STATUS:
        raise PayloadError(f"ticket_status: {raw_status!r} is not a Freshdesk ticket status")

    def first(*keys):
        return next((_text(hook[k]) for k in keys if hook.get(k) not in (None, "")), "")

    return TicketData(
        external_id=external_id,
        status=_FRESHDESK_STATUS[raw_status],
        subject=first("ticket_subject"),
        text=first("ticket_description_text", "ticket_description"),
        opened_at=_datetime(hook.get("ticket_created_at"), "ticket_created_at", tz),
        first_response_at=_datetime(
            hook.get("ticket_first_responded_at"), "ticket_first_responded_at", tz
        ),
        resolved_at=_datetime(hook.get("ticket_resolved_at"), "ticket_resolved_at", tz),
        customer_code=first("ticket_company_code", "ticket_cf_customer_code"),
        requester_name=first("ticket_contact_name", "ticket_requester_name"),
        phone=first("ticket_contact_phone", "ticket_contact_mobile", "ticket_requester_phone"),
        email=first("ticket_contact_email", "ticket_requester_email"),
        product_line=first("ticket_cf_product_line"),
        product_model=first("ticket_cf_product_model"),
        fault_code=first("ticket_cf_fault_code"),
        province=first("ticket_cf_province"),
        city=first("ticket_cf_city"),
        extra={"source": "freshdesk", "company": first("ticket_company_name")},
    )


MAPPERS = {
    SOBOT: from_sobot,
    ZENDESK: from_zendesk,
    FRESHDESK: from_freshdesk,
    GENERIC: from_generic,
}


def ticket_data(preset: str, payload, tz) -> TicketData:
    """The payload as a ticket, by the channel's preset; PayloadError when it is not one."""
    mapper = MAPPERS.get(preset)
    if mapper is None:
        raise PayloadError(f"preset {preset!r} is not a helpdesk preset")
    return mapper(payload, tz)


# -- processing -----------------------------------------------------------------------------


def _validation_text(exc: ValidationError) -> str:
    if hasattr(exc, "message_dict"):
        return "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
    return " ".join(exc.messages)


def process_events(events) -> None:
    """The inbox's events of helpdesk channels → tickets (crm.inbox's contract), as a
    batch: every payload mapped by its preset (one that is no ticket fails its event with
    the reason), then the tickets written in runs (`services.ticket_runs`: a ticket
    delivered twice in the batch is written twice, in order), each run in a few
    statements (`services.tickets_write`) in its savepoint. A run that cannot be written
    is written again event by event, each in its own savepoint: an event whose ticket
    cannot be written fails alone, its error stored.

    The inbox claims one tenant's events and holds that tenant's intake lock ("assign")
    until its commit, so batches of one tenant never overlap; the tickets' own locks,
    taken by `tickets_write` as `ticket_upsert` takes them, still order a batch against
    a ticket written outside the inbox (the demo, the bench)."""
    by_tenant: dict[int, tuple] = {}
    with translation.override("en"):  # the stored error is the technical record
        for event in events:
            channel = event.channel
            tenant = channel.tenant
            try:
                data = ticket_data(
                    channel.preset, event.payload, zoneinfo.ZoneInfo(tenant.timezone)
                )
                check_ticket_data(data)
            except PayloadError as exc:
                inbox.mark_failed(event, f"not a ticket: {exc}")
                continue
            except ValidationError as exc:
                inbox.mark_failed(event, f"not a ticket: {_validation_text(exc)}")
                continue
            by_tenant.setdefault(tenant.pk, (tenant, []))[1].append(
                TicketItem(channel=channel, data=data, event=event)
            )
        for tenant, items in by_tenant.values():
            settings, keywords = settings_for(tenant), flag_keywords(tenant)  # read once
            for run in ticket_runs(items):
                _write(tenant, run, settings, keywords)


def _write(tenant, run: list[TicketItem], settings, keywords) -> None:
    """One run of tickets in its savepoint; if it cannot be written, each of its events
    alone in its own savepoint, an event that still cannot be written failed."""
    try:
        with transaction.atomic():
            tickets_write(tenant=tenant, items=run, settings=settings, keywords=keywords)
    except Exception:
        if len(run) > 1:
            logger.exception("a helpdesk batch of %s tickets is retried one by one", len(run))
            for item in run:
                _write(tenant, [item], settings, keywords)
            return
        (item,) = run
        logger.exception("inbound event %s: writing its ticket failed", item.event.pk)
        error = sys.exc_info()[1]
        inbox.mark_failed(item.event, f"{error.__class__.__name__}: {error}")
        return
    for item in run:
        inbox.mark_processed(item.event)


# -- native signatures ----------------------------------------------------------------------


def _skew_problem(moment: float, header: str) -> str | None:
    skew = abs(time.time() - moment)
    if skew > MAX_SKEW:
        return f"{header} is {int(skew)} s away from now (at most {MAX_SKEW} s)"
    return None


def zendesk_signature(secret: str, timestamp: str, body: bytes) -> str:
    """base64(HMAC-SHA256(secret, timestamp + body)), as Zendesk signs its webhooks."""
    mac = hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def sobot_sign(appid: str, create_time: str, app_key: str) -> str:
    """md5(appid + create_time + app_key), 32 lower-case hex digits, as Sobot signs."""
    return hashlib.md5((appid + create_time + app_key).encode()).hexdigest()  # noqa: S324


def _verify_zendesk(channel, request, body: bytes) -> str | None:
    signature = request.headers.get("X-Zendesk-Webhook-Signature", "")
    timestamp = request.headers.get("X-Zendesk-Webhook-Signature-Timestamp", "")
    if not signature or not timestamp:
        return (
            "X-CRM-Timestamp and X-CRM-Signature are required, or Zendesk's "
            "X-Zendesk-Webhook-Signature and X-Zendesk-Webhook-Signature-Timestamp"
        )
    try:
        moment = datetime.fromisoformat(timestamp.strip())
    except ValueError:
        return "X-Zendesk-Webhook-Signature-Timestamp must be an ISO 8601 time"
    if not timezone.is_aware(moment):
        moment = moment.replace(tzinfo=UTC)
    problem = _skew_problem(moment.timestamp(), "X-Zendesk-Webhook-Signature-Timestamp")
    if problem:
        return problem
    expected = zendesk_signature(channel.secret, timestamp, body)
    if not signature.isascii() or not hmac.compare_digest(expected, signature.strip()):
        return "signature does not match"
    return None


def _sobot_fields(request, body: bytes) -> dict[str, str]:
    """appid, create_time and sign: from the query string, else the JSON body's top."""
    import json

    fields = {k: request.GET.get(k, "") for k in ("appid", "create_time", "sign")}
    if not all(fields.values()):
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            for key in fields:
                if not fields[key] and isinstance(parsed.get(key), str | int):
                    fields[key] = str(parsed[key])
    return fields


def _verify_sobot(channel, request, body: bytes) -> str | None:
    fields = _sobot_fields(request, body)
    if not all(fields.values()):
        return (
            "X-CRM-Timestamp and X-CRM-Signature are required, or Sobot's appid, "
            "create_time and sign"
        )
    if not channel.native_app_id:
        return "the channel has no helpdesk app ID: Sobot's sign cannot be checked"
    if not hmac.compare_digest(fields["appid"].encode(), channel.native_app_id.encode()):
        return "appid is not the channel's"
    if not fields["create_time"].isdigit() or len(fields["create_time"]) > 13:
        return "create_time must be unix seconds"
    problem = _skew_problem(int(fields["create_time"]), "create_time")
    if problem:
        return problem
    expected = sobot_sign(fields["appid"], fields["create_time"], channel.secret)
    if not fields["sign"].isascii() or not hmac.compare_digest(expected, fields["sign"].lower()):
        return "signature does not match"
    return None


def verify_native(channel, request, body: bytes) -> str | None:
    """The helpdesk's own signing, by the channel's preset (crm.inbox's contract)."""
    if channel.preset == ZENDESK:
        return _verify_zendesk(channel, request, body)
    if channel.preset == SOBOT:
        return _verify_sobot(channel, request, body)
    return "X-CRM-Timestamp and X-CRM-Signature are required"


def register() -> None:
    """Called from ServiceFeedbackConfig.ready(): helpdesk channels' events → tickets."""
    inbox.register_handler(
        inbox.InboxHandler(
            channel_type=CHANNEL_TYPE,
            label=_("Helpdesk tickets"),
            presets=PRESETS,
            process=process_events,
            verify_native=verify_native,
            app_id_presets=frozenset({SOBOT}),
        )
    )
