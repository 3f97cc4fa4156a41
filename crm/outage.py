"""PostgreSQL unreachable: every page and endpoint answers 503 with Retry-After, never a 500.

A database outage (a restart, a failover, the connection limit) shows up as Django's
OperationalError or InterfaceError, from a view, a middleware (the session, the user, the
tenant's memberships), opening the connection, or the commit. Django turns an exception
into a 500 inside the middleware it was raised in (each one is wrapped in
`convert_exception_to_response`), so no outer middleware ever sees the exception itself.
Instead a `got_request_exception` receiver marks the request, and `OutageMiddleware`, near
the top of MIDDLEWARE, answers a marked request's 500 with a 503:

- /hooks/ and /healthz: JSON `{"error": "…", "retry": true}`, the shape the webhook docs
  promise, so a sender retries;
- every other page: templates/503.html, a standalone page (no database, no session, no
  context processors) in the visitor's language, Chinese by default.

Both carry `Retry-After` and `Cache-Control: no-store`. A 503 acknowledges nothing: when
the commit itself fails the answer is a 503 too, never the view's 2xx.
With DEBUG on, the technical 500 page is replaced the same way; the traceback is in the log.
"""

from __future__ import annotations

import logging
import sys

from django.conf import settings
from django.core.signals import got_request_exception
from django.db import InterfaceError, OperationalError, connections
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.cache import add_never_cache_headers, patch_vary_headers

logger = logging.getLogger(__name__)

DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)
RETRY_AFTER = 10  # seconds: a PostgreSQL restart or failover takes about this long
JSON_PREFIXES = ("/hooks/", "/healthz")
JSON_ERROR = "database unavailable, try again later"
# Headers set by inner middleware on the 500 that the 503 keeps (framing, CSP).
KEPT_HEADERS = ("X-Frame-Options", "Content-Security-Policy", "Content-Security-Policy-Report-Only")
# If even the template cannot be rendered (a broken deploy), this is the page.
FALLBACK_HTML = """<!doctype html>
<html lang="zh-hans"><head><meta charset="utf-8"><title>503</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><h1>服务暂时不可用 · Service temporarily unavailable</h1>
<p>请稍后刷新本页。如果您刚才提交了内容，可能没有保存，请稍后重新提交。<br>
Please reload this page in a moment. If you just sent something, it may not have been
saved: please send it again shortly.</p>
</body></html>
"""
_MARK = "_crm_database_unavailable"
_DEPTHS = "_crm_atomic_depths"


def is_database_unavailable(exc: BaseException | None) -> bool:
    """True if `exc`, or an exception it was raised from or during, is a connection-level
    database error (OperationalError / InterfaceError)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, DATABASE_UNAVAILABLE):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def mark_request(sender, request=None, **kwargs) -> None:
    """got_request_exception receiver: Django sends it from inside its `except` block."""
    exc = sys.exc_info()[1]
    if request is not None and is_database_unavailable(exc):
        setattr(request, _MARK, True)
        logger.warning(
            "database unavailable during %s %s (%s: %s): answering 503",
            request.method,
            request.path,
            exc.__class__.__name__,
            str(exc).strip().splitlines()[0] if str(exc).strip() else "",
        )


got_request_exception.connect(mark_request, dispatch_uid="crm.outage.mark_request")


def roll_back_failed_request(sender, request=None, **kwargs) -> None:
    """got_request_exception receiver: an uncaught exception rolls back the transaction
    the request opened (TenantMiddleware's), as ATOMIC_REQUESTS would. Django turns the
    exception into a 500 inside that transaction, which would otherwise commit the writes
    the view made before it failed: stored, yet answered 500, so a retry duplicates them.
    Only blocks opened during the request are touched (OutageMiddleware notes the depth)."""
    depths = getattr(request, _DEPTHS, None)
    for alias, depth in (depths or {}).items():
        connection = connections[alias]
        if len(connection.atomic_blocks) > depth:
            connection.set_rollback(True)
            # As Django's own marking does: a query before the rollback then names this
            # exception as the cause, not an older one.
            connection.rollback_exc = sys.exception()


got_request_exception.connect(
    roll_back_failed_request, dispatch_uid="crm.outage.roll_back_failed_request"
)


def _language(request: HttpRequest) -> str:
    # As crm.middleware.LanguageMiddleware chooses it: the cookie, else Chinese.
    language = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME)
    return language if language in dict(settings.LANGUAGES) else settings.LANGUAGE_CODE


def unavailable_response(request: HttpRequest) -> HttpResponse:
    """The 503 for a request the database could not serve."""
    if request.path_info.startswith(JSON_PREFIXES):
        response = JsonResponse({"error": JSON_ERROR, "retry": True}, status=503)
    else:
        language = _language(request)
        try:
            with translation.override(language):
                html = render_to_string("503.html", {"retry_after": RETRY_AFTER})
        except Exception:
            logger.exception("templates/503.html could not be rendered")
            html, language = FALLBACK_HTML, settings.LANGUAGE_CODE
        response = HttpResponse(html, status=503, content_type="text/html; charset=utf-8")
        response["Content-Language"] = language
        patch_vary_headers(response, ("Cookie",))
    response["Retry-After"] = str(RETRY_AFTER)
    add_never_cache_headers(response)
    return response


class OutageMiddleware:
    """Turns the 500 of a request that failed on an unreachable database into a 503, and
    notes the transactions open when the request came in (see roll_back_failed_request).

    Place it above every middleware that may query the database (sessions, auth, tenant),
    and below SecurityMiddleware, which then adds its headers to the 503 as well.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        setattr(request, _DEPTHS, {a: len(connections[a].atomic_blocks) for a in connections})
        response = self.get_response(request)
        if response.status_code >= 500 and getattr(request, _MARK, False):
            unavailable = unavailable_response(request)
            for header in KEPT_HEADERS:
                if header in response and header not in unavailable:
                    unavailable[header] = response[header]
            response.close()
            return unavailable
        return response
