"""Response headers that protect the signed-in pages: a Content-Security-Policy with a
per-request nonce, and `Cache-Control: private, no-store` for everything a signed-in user
is sent (docs/operations.md, "HTTPS and security headers"); and a 408 for a request body
that stopped arriving (docs/operations.md, "The web server").

They run after WhiteNoise in settings.MIDDLEWARE, so static files keep their own
(long-lived, public) cache headers and carry no policy.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.http import HttpResponse, JsonResponse, UnreadablePostError
from django.utils.cache import add_never_cache_headers


def content_security_policy(nonce: str, *, frame_ancestors: str | None = None) -> str:
    """The policy for one response: settings.CSP_DIRECTIVES with the request's nonce in
    script-src and style-src, and frame-ancestors replaced when given."""
    parts = []
    for name, sources in settings.CSP_DIRECTIVES.items():
        if name == "frame-ancestors" and frame_ancestors is not None:
            sources = frame_ancestors.split()
        sources = [s.replace("{nonce}", f"'nonce-{nonce}'") for s in sources]
        parts.append(" ".join([name, *sources]))
    return "; ".join(parts)


class ContentSecurityPolicyMiddleware:
    """Gives every request a fresh nonce (request.csp_nonce, for the templates'
    `<script nonce="{{ request.csp_nonce }}">`) and every response the policy.

    A response a view allows to be framed (Django's @xframe_options_exempt, the hosted
    lead form) gets settings.CSP_EMBED_FRAME_ANCESTORS instead of frame-ancestors 'none'.
    A response that already has a policy keeps it.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.csp_nonce = secrets.token_urlsafe(18)
        response = self.get_response(request)
        if "Content-Security-Policy" in response.headers:
            return response
        frame_ancestors = None
        if getattr(response, "xframe_options_exempt", False):
            frame_ancestors = settings.CSP_EMBED_FRAME_ANCESTORS
        header = "Content-Security-Policy"
        if settings.CSP_REPORT_ONLY:
            header = "Content-Security-Policy-Report-Only"
        response.headers[header] = content_security_policy(
            request.csp_nonce, frame_ancestors=frame_ancestors
        )
        return response


class PrivateCacheMiddleware:
    """Every response to a signed-in user: Django's never_cache headers
    (`Cache-Control: max-age=0, no-cache, no-store, must-revalidate, private`), so neither a
    shared proxy nor the browser's back button shows one user's page to the next person
    at the machine. Anonymous responses (the login page, webhooks, the hosted form) are
    left as their views made them."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            add_never_cache_headers(response)
        return response


class UnreadableBodyMiddleware:
    """A request body that stopped arriving (the client went quiet past the web server's
    read timeout, crm/wsgi_worker.py, or hung up): 408 Request Timeout, in JSON for the
    webhook API (`{"error": …}` as its other errors), instead of a 500. Nothing was
    stored: the view failed reading its input."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, UnreadablePostError):
            return None
        message = "the request body did not arrive in time"
        if request.path_info.startswith("/hooks/"):
            response = JsonResponse({"error": message}, status=408)
        else:
            response = HttpResponse(message, status=408, content_type="text/plain")
        # The server closes the connection after it: the rest of the body is unaccounted.
        return response
