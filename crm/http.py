"""Small request helpers shared by the apps."""

import ipaddress

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


def _address(value: str):
    try:
        return ipaddress.ip_address(value.strip().strip("[]"))
    except ValueError:
        return None


def _is_trusted_proxy(address, proxies) -> bool:
    return any(address in network for network in proxies)


def client_ip(request: HttpRequest) -> str:
    """The visitor's address: the one source for the product (the hosted form's rate limit,
    django-axes' log-in locks).

    Without a trusted proxy (BEHIND_HTTPS_PROXY off, the default) it is REMOTE_ADDR, and
    X-Forwarded-For is ignored: any client can write it. Behind the proxy, X-Forwarded-For
    is read from the right, where our proxy appended the address it saw: with TRUSTED_PROXIES
    unset, REMOTE_ADDR is the proxy and the last entry is the visitor; with TRUSTED_PROXIES
    (addresses or networks of the proxies), a request whose REMOTE_ADDR is not one of them
    is taken at its REMOTE_ADDR, and the entries are walked from the right past the trusted
    proxies to the first address that is not one. The left-most entries can be forged.
    """
    remote = _address(request.META.get("REMOTE_ADDR", "") or "")
    if remote is None:
        return "unknown"
    if not settings.TRUST_X_FORWARDED_FOR:
        return str(remote)
    proxies = settings.TRUSTED_PROXIES
    if proxies and not _is_trusted_proxy(remote, proxies):
        return str(remote)
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    hops = [hop for hop in (part.strip() for part in forwarded.split(",")) if hop]
    client = remote
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            break  # not an address our proxy writes: keep the last one we could trust
        client = address
        if not proxies or not _is_trusted_proxy(address, proxies):
            break
    return str(client)


def axes_client_ip(request: HttpRequest) -> str | None:
    """client_ip for django-axes (AXES_CLIENT_IP_CALLABLE), which stores an address or NULL."""
    ip = client_ip(request)
    return None if ip == "unknown" else ip
