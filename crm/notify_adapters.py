"""Outbound notification adapters (F44): one class per channel kind.

Each adapter has `send(channel, delivery, title, body) -> http_status | None` and raises
`DeliveryError` with a readable message (and the HTTP status when there was one) on any
failure, so the caller stores it instead of crashing. HTTP goes through httpx with
per-phase timeouts and never follows redirects. Destinations are checked before every
call (`resolve_destination`): unless `NOTIFY_ALLOW_PRIVATE_URLS` is on, a host that
resolves to a loopback, link-local, private or otherwise non-public address is refused,
and the request is pinned to the address that was checked (no DNS rebinding between the
check and the connection).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import re
import smtplib
import socket
import time
import urllib.parse
from dataclasses import dataclass, field

import httpx
from django.conf import settings
from django.core.mail import EmailMessage, get_connection

# connect, then write the request, then read the answer; pool: waiting for a connection.
TIMEOUT = httpx.Timeout(connect=3.0, write=5.0, read=10.0, pool=3.0)
ROBOT_TEXT_LIMIT = 2000  # bytes; WeCom allows 2048 in a text message
SMS_TEXT_LIMIT = 500  # characters
EMAIL_TIMEOUT = 10.0  # seconds, when settings.EMAIL_TIMEOUT is not set


class DeliveryError(Exception):
    """A delivery failed; `str(exc)` says why, `http_status` is the answer's status if any."""

    def __init__(self, message: str, *, http_status: int | None = None):
        super().__init__(message)
        self.http_status = http_status


class RefusedDestination(DeliveryError):
    """The URL's host is not a public address (the SSRF guard)."""


# --- Destination guard ------------------------------------------------------------------


@dataclass(frozen=True)
class Destination:
    """Where to send: the URL to connect to, and what the server must see."""

    url: httpx.URL
    headers: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, str] = field(default_factory=dict)


def _is_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    # is_global is False for private, loopback, link-local, shared (100.64/10), reserved
    # and unspecified addresses.
    return ip.is_global and not ip.is_multicast


def _parse(url: str) -> httpx.URL:
    """The URL, if it is an http(s) one with a host; DeliveryError otherwise."""
    if not url:
        raise DeliveryError("No URL is configured for this channel.")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise DeliveryError(f"Invalid URL: {exc}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise DeliveryError("Only http:// and https:// URLs with a host can be used.")
    return parsed


def precheck_destination(url: str) -> None:
    """The guard's checks that need no DNS lookup (for code inside a transaction, which
    must not wait on the network): a bad URL, a scheme, a literal loopback, link-local or
    private address or `localhost`. The full check is `resolve_destination`'s, at send."""
    parsed = _parse(url)
    if settings.NOTIFY_ALLOW_PRIVATE_URLS:
        return
    host = parsed.host
    if host.lower().rstrip(".") == "localhost" or host.lower().endswith(".localhost"):
        raise RefusedDestination(f"Refused: {host} is a loopback address.")
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return  # a name: resolved and checked when sent
    if not _is_public(ip):
        raise RefusedDestination(
            f"Refused: {host} is a loopback, link-local or private address ({ip})."
        )


def resolve_destination(url: str) -> Destination:
    """Check `url` and return where to connect; raises DeliveryError for a bad or
    refused address."""
    parsed = _parse(url)
    if settings.NOTIFY_ALLOW_PRIVATE_URLS:
        return Destination(parsed)

    host = parsed.host
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise DeliveryError(f"Cannot resolve {host}: {exc}") from None
    addresses = []
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if not _is_public(ip):
            raise RefusedDestination(
                f"Refused: {host} is a loopback, link-local or private address ({ip})."
            )
        addresses.append(ip)
    if not addresses:
        raise DeliveryError(f"Cannot resolve {host}.")
    # Connect to the address just checked; the server still sees its own name.
    pinned = parsed.copy_with(host=str(addresses[0]))
    headers = {"Host": parsed.netloc.decode("ascii")}
    extensions = {"sni_hostname": host} if parsed.scheme == "https" else {}
    return Destination(pinned, headers, extensions)


def post_json(url: str, payload: dict, *, headers: dict[str, str] | None = None) -> httpx.Response:
    """POST `payload` as JSON; a 2xx answer or DeliveryError."""
    return _post(url, {"json": payload}, headers)


def post_body(url: str, body: bytes, *, headers: dict[str, str] | None = None) -> httpx.Response:
    """POST these exact bytes (a body a signature was computed over); a 2xx answer or
    DeliveryError. The same guard, timeouts and pinning as `post_json`."""
    return _post(url, {"content": body}, headers)


def _post(url: str, body: dict, headers: dict[str, str] | None) -> httpx.Response:
    destination = resolve_destination(url)
    try:
        # trust_env=False: no proxy from the environment may bypass the pinned address.
        with httpx.Client(timeout=TIMEOUT, follow_redirects=False, trust_env=False) as client:
            response = client.post(
                destination.url,
                **body,
                headers={**destination.headers, **(headers or {})},
                extensions=destination.extensions,
            )
    except httpx.TimeoutException as exc:
        raise DeliveryError(f"Timed out ({exc.__class__.__name__}).") from None
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{exc.__class__.__name__}: {exc}"[:400]) from None
    if not response.is_success:
        text = response.text.strip()[:200]
        raise DeliveryError(
            f"HTTP {response.status_code}" + (f": {text}" if text else ""),
            http_status=response.status_code,
        )
    return response


def _check_errcode(response: httpx.Response) -> None:
    """The robots answer 200 with {"errcode": 0, "errmsg": "ok"}; anything else failed."""
    try:
        answer = response.json()
    except ValueError:
        raise DeliveryError(
            "The robot's answer is not JSON.", http_status=response.status_code
        ) from None
    errcode = answer.get("errcode") if isinstance(answer, dict) else None
    if errcode != 0:
        errmsg = answer.get("errmsg", "") if isinstance(answer, dict) else ""
        raise DeliveryError(f"errcode {errcode}: {errmsg}"[:400], http_status=response.status_code)


# --- Texts ----------------------------------------------------------------------------


def _truncate_bytes(text: str, limit: int) -> str:
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[: limit - 3].decode("utf-8", errors="ignore") + "…"


def message_text(title: str, body: str) -> str:
    return "\n".join(part for part in (title, body) if part)


def mobile_number(phone: str) -> str:
    """A member's phone as the robots expect it: mainland digits without +86."""
    digits = re.sub(r"[^\d+]", "", phone or "")
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    return digits.lstrip("+")


# --- Adapters -------------------------------------------------------------------------


class WeComRobot:
    """WeCom (企业微信) group robot: POST JSON to the robot's webhook URL."""

    kind = "wecom"

    def send(self, channel, delivery, title: str, body: str) -> int | None:
        mentions = [m for m in (mobile_number(p) for p in delivery.mentions or []) if m]
        payload = {
            "msgtype": "text",
            "text": {
                "content": _truncate_bytes(message_text(title, body), ROBOT_TEXT_LIMIT),
                "mentioned_mobile_list": mentions,
            },
        }
        response = post_json(channel.url, payload)
        _check_errcode(response)
        return response.status_code


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's robot signature: HMAC-SHA256 over "timestamp\\nsecret", base64, then
    URL-encoded."""
    string_to_sign = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode(), string_to_sign, hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest))


def dingtalk_signed_url(url: str, secret: str, timestamp_ms: int | None = None) -> str:
    if not secret:
        return url
    timestamp_ms = timestamp_ms if timestamp_ms is not None else round(time.time() * 1000)
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}timestamp={timestamp_ms}&sign={dingtalk_sign(secret, timestamp_ms)}"


class DingTalkRobot:
    """DingTalk (钉钉) group robot, signed with the robot's secret when it has one."""

    kind = "dingtalk"

    def send(self, channel, delivery, title: str, body: str) -> int | None:
        mentions = [m for m in (mobile_number(p) for p in delivery.mentions or []) if m]
        text = message_text(title, body)
        if mentions:  # DingTalk highlights an @-mention only when the text carries it
            text = f"{text}\n" + " ".join(f"@{m}" for m in mentions)
        payload = {
            "msgtype": "text",
            "text": {"content": _truncate_bytes(text, ROBOT_TEXT_LIMIT)},
            "at": {"atMobiles": mentions},
        }
        response = post_json(dingtalk_signed_url(channel.url, channel.secret), payload)
        _check_errcode(response)
        return response.status_code


class SmsGateway:
    """A generic SMS HTTP gateway: POST {"phone", "text"}, optionally with a bearer token;
    any 2xx answer is success."""

    kind = "sms"

    def send(self, channel, delivery, title: str, body: str) -> int | None:
        if not delivery.to:
            raise DeliveryError("No mobile number to send to.")
        text = message_text(title, body)
        if len(text) > SMS_TEXT_LIMIT:
            text = text[: SMS_TEXT_LIMIT - 1] + "…"
        headers = {"Authorization": f"Bearer {channel.token}"} if channel.token else {}
        response = post_json(channel.url, {"phone": delivery.to, "text": text}, headers=headers)
        return response.status_code


class EmailSender:
    """E-mail through Django's mail backend (EMAIL_* settings); no URL."""

    kind = "email"

    def send(self, channel, delivery, title: str, body: str) -> int | None:
        if not delivery.to:
            raise DeliveryError("No e-mail address to send to.")
        subject = " ".join(title.split())[:200]
        try:
            timeout = getattr(settings, "EMAIL_TIMEOUT", None) or EMAIL_TIMEOUT
            connection = get_connection(fail_silently=False, timeout=timeout)
            sent = EmailMessage(
                subject, body or title, to=[delivery.to], connection=connection
            ).send()
        except (smtplib.SMTPException, OSError, ValueError) as exc:
            raise DeliveryError(f"{exc.__class__.__name__}: {exc}"[:400]) from None
        if sent != 1:
            raise DeliveryError("The mail server accepted no message.")
        return None


ADAPTERS = {a.kind: a for a in (WeComRobot(), DingTalkRobot(), SmsGateway(), EmailSender())}


def adapter_for(kind: str):
    try:
        return ADAPTERS[kind]
    except KeyError:
        raise DeliveryError(f"No adapter for channel kind {kind!r}.") from None
