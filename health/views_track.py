"""The public tracking endpoints (F32), found by an unguessable key or token (no log-in);
docs/tracking.md is their contract.

- POST `/track/<key>/` (`track`): signed events from the tenant's website or document
  portal, signed as the webhooks are (X-CRM-Timestamp, X-CRM-Signature over
  "<timestamp>." + body with the tenant's tracking secret). 200 every event stored, 207
  some stored and some refused (no customer matches them), 404 none stored or an unknown
  key, 400 a malformed body or event (nothing stored), 401 a bad signature.
- GET `/t/<token>` (`tracked_link`): 302 to the link's address, the open recorded.
- GET `/t/<token>.gif` (`tracked_pixel`): a 1×1 transparent GIF, the open recorded.
  HEAD requests (link checkers, prefetchers) get the same answer and record nothing; an
  unknown token is 404 (an HTML page for the link, an empty body for the pixel), logged.
"""

from __future__ import annotations

import logging

from django.contrib.auth.decorators import login_not_required
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseNotFound,
    HttpResponseRedirect,
    JsonResponse,
)
from django.urls import path
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.views.decorators.csrf import csrf_exempt

from crm.tenancy import tenant_context
from health import signals
from leads.intake.bodies import (
    MAX_BODY,
    BodyError,
    BodyTooLarge,
    LengthRequired,
    parse_json_body,
    read_body,
)
from leads.intake.hooks import json_errors_answering, signature_problem

logger = logging.getLogger(__name__)

# The smallest transparent GIF: 1×1, one transparent colour.
PIXEL = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff"
    b"!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)


def _error(status: int, message: str, **extra) -> JsonResponse:
    return JsonResponse({"error": message, **extra}, status=status)


@csrf_exempt
@login_not_required
@json_errors_answering("internal error; retry later", what="tracking")
def track(request: HttpRequest, key: str) -> HttpResponse:
    settings = signals.settings_by_key(key)
    if settings is None:
        return _error(404, "unknown key")
    if request.method != "POST":
        return _error(405, "POST only")
    try:
        body = read_body(request, MAX_BODY)
    except LengthRequired:
        return _error(411, "a chunked body is not accepted here: send a Content-Length")
    except BodyTooLarge:
        return _error(413, f"body over {MAX_BODY} bytes")
    except ValueError:
        return _error(400, "Content-Length is not a number")
    problem = signature_problem(request, settings.track_secret, body)
    if problem:
        return _error(401, problem)
    try:
        payload = parse_json_body(body)
    except BodyError as exc:
        return _error(exc.status, exc.message)
    tenant = settings.tenant
    now = timezone.now()
    events, problems = signals.parse_events(payload, now=now, tz=tenant.tzinfo)
    if problems:
        return _error(400, "malformed events", errors=[p.as_json() for p in problems])
    with tenant_context(tenant):
        stored, refused = signals.signals_record(
            tenant=tenant, settings=settings, events=events, now=now
        )
    answer = {"stored": len(stored), "refused": [r.as_json() for r in refused]}
    if not stored:
        return _error(404, "no event matched a customer: nothing stored", **answer)
    return JsonResponse(answer, status=207 if refused else 200)


def _open(request: HttpRequest, token: str):
    """The link `token` names, its open recorded unless the request is a HEAD; None for
    an unknown token (logged)."""
    link = signals.link_by_token(token)
    if link is None:
        logger.warning("tracked link: unknown token %r", token[:40])
        return None
    if request.method == "GET":
        with tenant_context(link.tenant):
            signals.link_open(tenant=link.tenant, link=link)
    return link


@login_not_required
def tracked_link(request: HttpRequest, token: str) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    link = _open(request, token)
    if link is None or not link.target_url.lower().startswith(("https://", "http://")):
        raise Http404("No such link.")
    response = HttpResponseRedirect(link.target_url)
    add_never_cache_headers(response)
    response["Referrer-Policy"] = "no-referrer"
    return response


@login_not_required
def tracked_pixel(request: HttpRequest, token: str) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    link = _open(request, token)
    response = (
        HttpResponseNotFound(b"", content_type="image/gif")
        if link is None
        else HttpResponse(PIXEL, content_type="image/gif")
    )
    add_never_cache_headers(response)
    response["Pragma"] = "no-cache"
    response["Expires"] = "0"
    return response


urlpatterns = [
    path("track/<str:key>/", track, name="track"),
    path("t/<str:token>.gif", tracked_pixel, name="tracked_pixel"),
    path("t/<str:token>", tracked_link, name="tracked_link"),
]
