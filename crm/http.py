"""Small request helpers shared by the apps."""

from django.conf import settings
from django.http import HttpRequest


def query_with(request: HttpRequest, **changes) -> str:
    """The request's query string with `changes` applied (None removes a parameter), e.g.
    the lists' export link: `query_with(request, _export="csv", page=None)`."""
    params = request.GET.copy()
    for key, value in changes.items():
        params.pop(key, None)
        if value is not None:
            params[key] = value
    return params.urlencode()


def client_ip(request: HttpRequest) -> str:
    """The visitor's address: REMOTE_ADDR, or behind a trusted proxy (BEHIND_HTTPS_PROXY)
    the last address that proxy appended to X-Forwarded-For (the first can be forged)."""
    if settings.TRUST_X_FORWARDED_FOR:
        forwarded = [p.strip() for p in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        if forwarded and forwarded[-1]:
            return forwarded[-1]
    return request.META.get("REMOTE_ADDR", "") or "unknown"
