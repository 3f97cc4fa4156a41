"""The signed webhook every integrator codes against (docs/webhooks.md).

POST /hooks/<channel_key>/ with a JSON body and
    X-CRM-Timestamp: <unix seconds>
    X-CRM-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + raw body)>
    Idempotency-Key: <optional, ≤ 200 printable ASCII characters>
WeCom channels answer WeCom's own callback protocol on the same URL (leads/intake/wecom.py).
A channel type whose events another app handles (crm.inbox) may also be proven by its
sender's native signing (Zendesk's, Sobot's), which that handler verifies.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import re
import time

from django.contrib.auth.decorators import login_not_required
from django.core import signals
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse, UnreadablePostError
from django.views.decorators.csrf import csrf_exempt

from crm import inbox
from crm.models import Tenant
from crm.tenancy import tenant_context
from leads.access import channel_ids_by_key
from leads.intake import wecom
from leads.intake.bodies import (
    MAX_BODY,
    MAX_IDEMPOTENCY_KEY,
    MAX_SKEW,
    TIMESTAMP,
    BodyError,
    BodyTooLarge,
    LengthRequired,
    kept_headers,
    parse_json_body,
    read_body,
)
from leads.intake.services import inbound_event_receive
from leads.models import Channel, ChannelType, EventSource

logger = logging.getLogger(__name__)

_IDEMPOTENCY_KEY = re.compile(r"[\x20-\x7e]*")


def sign(secret: str, timestamp: str | int, body: bytes) -> str:
    """The X-CRM-Signature value for `body` sent at `timestamp`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def _error(status: int, message: str, **extra) -> JsonResponse:
    return JsonResponse({"error": message, **extra}, status=status)


def _signature_error(request: HttpRequest, channel: Channel, body: bytes) -> str | None:
    """Our own contract; for a channel type with a native verifier (crm.inbox), a request
    without X-CRM-Signature is proven the sender's way instead."""
    handler = inbox.handler_for(channel.type)
    if (
        handler is not None
        and handler.verify_native is not None
        and "X-CRM-Signature" not in request.headers
    ):
        return handler.verify_native(channel, request, body)
    return signature_problem(request, channel.secret, body)


def signature_problem(request: HttpRequest, secret: str, body: bytes) -> str | None:
    """What is wrong with the request's X-CRM-Timestamp / X-CRM-Signature for `secret`
    (our own signing contract, docs/webhooks.md), or None when they prove the sender. The
    tracking endpoint (health) is signed the same way."""
    timestamp = request.headers.get("X-CRM-Timestamp", "")
    signature = request.headers.get("X-CRM-Signature", "")
    if not timestamp or not signature:
        return "X-CRM-Timestamp and X-CRM-Signature are required"
    if not TIMESTAMP.fullmatch(timestamp):
        return "X-CRM-Timestamp must be unix seconds"
    skew = abs(time.time() - int(timestamp))
    if skew > MAX_SKEW:
        return f"X-CRM-Timestamp is {int(skew)} s away from now (at most {MAX_SKEW} s)"
    # compare_digest takes ASCII text only; a non-ASCII signature matches nothing anyway.
    if not signature.isascii() or not hmac.compare_digest(sign(secret, timestamp, body), signature):
        return "signature does not match"
    return None


def json_errors_answering(message: str, *, what: str):
    """A view decorator: an unexpected exception answers `{"error": message}` with status
    500, the JSON the docs promise, not Django's HTML page (logged, and reported as any
    failed request is). A lost database connection and a body that stopped arriving are
    left to propagate: the middlewares that answer outages (503, Retry-After) and stalled
    bodies (408) handle them. `what` names the endpoint in the log. The webhooks and the
    tracking endpoint (health) use it."""

    def decorate(view):
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            try:
                return view(request, *args, **kwargs)
            except (OperationalError, InterfaceError, UnreadablePostError):
                raise
            except Exception:
                logger.exception("%s %s failed", what, request.path)
                signals.got_request_exception.send(sender=None, request=request)
                return _error(500, message)

        return wrapper

    return decorate


# Under /hooks/: a retry with the same Idempotency-Key cannot make a second event.
json_errors = json_errors_answering(
    "internal error; retry later with the same Idempotency-Key", what="webhook"
)


@csrf_exempt
@login_not_required
@json_errors
def receive(request: HttpRequest, key: str) -> HttpResponse:
    """One tenant transaction per request, after the one cross-tenant read of the key:
    the channel, then (signature checked) the replay look-up and the event's insert."""
    found = channel_ids_by_key(key)
    if found is None:
        return _error(404, "unknown channel")
    channel_id, tenant_id = found
    # Read before the tenant's transaction opens, so that no transaction waits on a
    # client's socket; a problem with it is answered in its place among the checks.
    body, refusal = _read(request) if request.method == "POST" else (b"", None)
    with tenant_context(Tenant(pk=tenant_id)):
        channel = _channel(channel_id, tenant_id)
        if channel is not None and channel.type != ChannelType.WECOM:
            return _accept(request, channel, body, refusal)
    if channel is None:  # deactivated since the key was read
        return _error(404, "unknown channel")
    return wecom.callback(request, channel)  # its own protocol, in its own transaction


def _channel(channel_id: int, tenant_id: int) -> Channel | None:
    """The channel the key named, read in its tenant's transaction by a plain statement
    (the ORM's query would cost the request more to build than PostgreSQL to run); its
    tenant is read if asked for (WeCom's callback)."""
    sql = f"SELECT * FROM {Channel._meta.db_table} WHERE id = %s AND tenant_id = %s"  # noqa: S608
    return next(iter(Channel.objects.raw(sql, [channel_id, tenant_id])), None)


def _read(request: HttpRequest) -> tuple[bytes, JsonResponse | None]:
    """The body, or the answer refusing it (411, 413, 400)."""
    try:
        return read_body(request, MAX_BODY), None
    except LengthRequired:
        return b"", _error(411, "a chunked body is not accepted here: send a Content-Length")
    except BodyTooLarge:
        return b"", _error(413, f"body over {MAX_BODY} bytes")
    except ValueError:
        return b"", _error(400, "Content-Length is not a number")


def _accept(
    request: HttpRequest, channel: Channel, body: bytes, refusal: JsonResponse | None
) -> JsonResponse:
    """The checks in their documented order (docs/webhooks.md §4), then the store, in the
    tenant transaction `receive` opened: the event is committed with it, and announced to
    the workers after the commit."""
    if request.method != "POST":
        return _error(405, "POST only")
    if refusal is not None:
        return refusal
    problem = _signature_error(request, channel, body)
    if problem:
        return _error(401, problem)
    idempotency_key = request.headers.get("Idempotency-Key", "").strip()
    if len(idempotency_key) > MAX_IDEMPOTENCY_KEY:
        return _error(400, f"Idempotency-Key over {MAX_IDEMPOTENCY_KEY} characters")
    if not _IDEMPOTENCY_KEY.fullmatch(idempotency_key):
        return _error(400, "Idempotency-Key must be printable ASCII")

    try:
        payload, refused = parse_json_body(body), None
    except BodyError as exc:
        payload, refused = None, exc
    event, created = inbound_event_receive(
        channel=channel,
        raw_body=body,
        source=EventSource.WEBHOOK,
        payload=payload,
        headers=kept_headers(request),
        idempotency_key=idempotency_key,
        error=refused.message if refused else "",
        error_detail=refused.detail if refused else None,
    )
    # A replay of the refused body is refused again; a key used before answers as §5 says.
    if refused and (created or event.error_detail == refused.detail):
        return _error(refused.status, refused.message, event=str(event.public_id))
    return JsonResponse(
        {"event": str(event.public_id), "duplicate": not created}, status=202 if created else 200
    )
