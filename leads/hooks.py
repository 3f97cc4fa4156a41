"""The signed webhook every integrator codes against (docs/webhooks.md).

POST /hooks/<channel_key>/ with a JSON body and
    X-CRM-Timestamp: <unix seconds>
    X-CRM-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + raw body)>
    Idempotency-Key: <optional, ≤ 200 characters>
WeCom channels answer WeCom's own callback protocol on the same URL (leads/wecom.py).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from crm.tenancy import tenant_context
from leads.access import channel_by_key
from leads.messages import intake_message
from leads.models import Channel, ChannelType, EventSource
from leads.services import inbound_event_receive

MAX_BODY = 256 * 1024
MAX_SKEW = 300  # seconds
MAX_IDEMPOTENCY_KEY = 200
_KEPT_HEADERS = (
    "CONTENT_TYPE",
    "HTTP_USER_AGENT",
    "HTTP_X_CRM_TIMESTAMP",
    "HTTP_IDEMPOTENCY_KEY",
    "HTTP_X_FORWARDED_FOR",
    "REMOTE_ADDR",
)


def sign(secret: str, timestamp: str | int, body: bytes) -> str:
    """The X-CRM-Signature value for `body` sent at `timestamp`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def kept_headers(request: HttpRequest) -> dict[str, str]:
    return {k: request.META[k] for k in _KEPT_HEADERS if k in request.META}


def _signature_error(request: HttpRequest, channel: Channel, body: bytes) -> str | None:
    timestamp = request.headers.get("X-CRM-Timestamp", "")
    signature = request.headers.get("X-CRM-Signature", "")
    if not timestamp or not signature:
        return "X-CRM-Timestamp and X-CRM-Signature are required"
    try:
        skew = abs(time.time() - int(timestamp))
    except ValueError:
        return "X-CRM-Timestamp must be unix seconds"
    if skew > MAX_SKEW:
        return f"X-CRM-Timestamp is {int(skew)} s away from now (at most {MAX_SKEW} s)"
    if not hmac.compare_digest(sign(channel.secret, timestamp, body), signature):
        return "signature does not match"
    return None


@csrf_exempt
@login_not_required
def receive(request: HttpRequest, key: str) -> HttpResponse:
    channel = channel_by_key(key)
    if channel is None:
        return _error(404, "unknown channel")
    if channel.type == ChannelType.WECOM:
        from leads.wecom import callback

        return callback(request, channel)
    if request.method != "POST":
        return _error(405, "POST only")
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if not declared.isdigit():
        return _error(400, "Content-Length is not a number")
    if int(declared) > MAX_BODY:
        return _error(413, f"body over {MAX_BODY} bytes")
    body = request.body
    if len(body) > MAX_BODY:
        return _error(413, f"body over {MAX_BODY} bytes")
    problem = _signature_error(request, channel, body)
    if problem:
        return _error(401, problem)
    idempotency_key = request.headers.get("Idempotency-Key", "").strip()
    if len(idempotency_key) > MAX_IDEMPOTENCY_KEY:
        return _error(400, f"Idempotency-Key over {MAX_IDEMPOTENCY_KEY} characters")

    with tenant_context(channel.tenant):
        detail = None
        try:
            payload, error = json.loads(body), ""
        except json.JSONDecodeError as exc:
            payload, error = None, f"body is not JSON: {exc}"
            detail = intake_message("body_not_json", line=exc.lineno, column=exc.colno)
        except UnicodeDecodeError as exc:
            payload, error = None, f"body is not JSON: {exc}"
            detail = intake_message("body_not_utf8")
        event, created = inbound_event_receive(
            channel=channel,
            raw_body=body,
            source=EventSource.WEBHOOK,
            payload=payload,
            headers=kept_headers(request),
            idempotency_key=idempotency_key,
            error=error,
            error_detail=detail,
        )
    if error:
        return JsonResponse({"error": error, "event": str(event.public_id)}, status=400)
    return JsonResponse(
        {"event": str(event.public_id), "duplicate": not created}, status=202 if created else 200
    )
