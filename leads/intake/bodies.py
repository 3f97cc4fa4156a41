"""Inbound bodies: reading them off the request, parsing them strictly, storing them.

One parse for every path that turns a received body into a payload (the webhook, the
inbox's re-process): `parse_json_body` accepts exactly the JSON that PostgreSQL's jsonb
can keep as data and refuses the rest with a coded error (leads.messages), so a hostile
body is answered 400 or 422 and kept as a failed event, never a 500 on every retry.

`storable_text` / `storable_json` make what is kept *about* a request (its raw body, its
headers) fit a PostgreSQL text or jsonb column: NUL and lone surrogates become U+FFFD.
"""

from __future__ import annotations

import contextlib
import json
import math
import re

from django.http import HttpRequest

from leads.messages import CodedError, intake_text_en

# The signed webhook's limits (leads/intake/hooks.py; WeCom's callback shares them).
MAX_BODY = 256 * 1024
MAX_SKEW = 300  # seconds
MAX_IDEMPOTENCY_KEY = 200
# Unix seconds: ASCII digits only (int() would take "+1_7", Arabic-Indic digits, and 5,000
# digits that overflow the float subtraction).
TIMESTAMP = re.compile(r"[0-9]{1,12}")
_KEPT_HEADERS = (
    "CONTENT_TYPE",
    "HTTP_USER_AGENT",
    "HTTP_X_CRM_TIMESTAMP",
    "HTTP_IDEMPOTENCY_KEY",
    "HTTP_X_FORWARDED_FOR",
    "REMOTE_ADDR",
)

MAX_DEPTH = 64  # nesting levels of arrays and objects
MAX_INT_DIGITS = 1000  # digits of one integer (Python itself stops at 4300)
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_SHOWN = 40  # characters of an offending value quoted in an error


class BodyError(CodedError):
    """A body we refuse: `status` 400 (not UTF-8 JSON) or 422 (JSON we cannot store);
    `message` is the English text of the HTTP answer and the event's `error`."""

    def __init__(self, status: int, code: str, message: str = "", **params):
        super().__init__(code, **params)
        self.status = status
        self.message = message or intake_text_en(self.detail)


class _Refused(Exception):
    """Raised from inside json.loads' hooks; becomes a BodyError."""

    def __init__(self, code: str, **params):
        self.code, self.params = code, params


def _shown(text: str) -> str:
    text = text.encode("ascii", "backslashreplace").decode()
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "…"


def _refuse_constant(name: str):
    raise _Refused("body_bad_number", value=name)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 overflows to inf
        raise _Refused("body_bad_number", value=_shown(text))
    return value


def _bounded_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise _Refused("body_big_integer", digits=digits, limit=MAX_INT_DIGITS)
    return int(text)


def _check_values(payload: object) -> None:
    """Depth, NUL and lone surrogates, walked without recursion."""
    stack = [(payload, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            if depth > MAX_DEPTH:
                raise _Refused("body_too_deep", limit=MAX_DEPTH)
            for key, item in value.items():
                _check_text(key)
                stack.append((item, depth + 1))
        elif isinstance(value, list):
            if depth > MAX_DEPTH:
                raise _Refused("body_too_deep", limit=MAX_DEPTH)
            stack.extend((item, depth + 1) for item in value)
        elif isinstance(value, str):
            _check_text(value)


def _check_text(text: str) -> None:
    found = _UNSTORABLE.search(text)
    if found is None:
        return
    if found.group() == "\x00":
        raise _Refused("body_nul_character")
    raise _Refused("body_lone_surrogate", value=_shown(found.group()))


def parse_json_body(body: bytes) -> object:
    """The payload of a UTF-8 JSON body, or BodyError.

    400: not UTF-8 (a UTF-8 byte order mark is allowed), not JSON. 422: NaN, Infinity or
    a number beyond the float range; an integer over MAX_INT_DIGITS digits; a NUL
    character or a lone surrogate in a key or a string; nesting deeper than MAX_DEPTH.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyError(400, "body_not_utf8", f"body is not JSON: {exc}") from None
    text = text.removeprefix("\ufeff")
    try:
        payload = json.loads(
            text,
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
            parse_int=_bounded_int,
        )
        _check_values(payload)
    except _Refused as refused:
        raise BodyError(422, refused.code, **refused.params) from None
    except json.JSONDecodeError as exc:
        raise BodyError(
            400, "body_not_json", f"body is not JSON: {exc}", line=exc.lineno, column=exc.colno
        ) from None
    except RecursionError:
        raise BodyError(422, "body_too_deep", limit=MAX_DEPTH) from None
    return payload


def storable_text(value: str) -> str:
    """`value` as a PostgreSQL text column takes it: NUL and lone surrogates → U+FFFD."""
    return _UNSTORABLE.sub("\ufffd", value)


def storable_json(value: object) -> object:
    """`value` with every key and string made storable (storable_text), for jsonb.
    Only for JSON-shaped data we keep about a request (headers), never deep."""
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, dict):
        return {storable_text(str(k)): storable_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable_json(v) for v in value]
    return value


def header_text(value: str) -> str:
    """A WSGI header value (bytes decoded as Latin-1, PEP 3333) as the text it was sent
    as: UTF-8 when it is that, else as received; storable either way."""
    with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
        value = value.encode("latin-1").decode("utf-8")
    return storable_text(value)


class LengthRequired(Exception):
    """A chunked body the server cannot tell the end of (answer 411)."""


class BodyTooLarge(Exception):
    """Over the limit (answer 413)."""


def read_body(request: HttpRequest, limit: int) -> bytes:
    """The request body, at most `limit` bytes; BodyTooLarge above it.

    A chunked request has no Content-Length, and Django then reads it as empty. Servers
    that de-chunk and end the stream (gunicorn sets wsgi.input_terminated) let us read it
    to its end; on any other server such a request raises LengthRequired.
    A Content-Length that is not a number is a ValueError.
    """
    declared = request.META.get("CONTENT_LENGTH") or ""
    chunked = "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
    if chunked and not declared:
        if not request.META.get("wsgi.input_terminated"):
            raise LengthRequired
        body = request.META["wsgi.input"].read(limit + 1)
        if len(body) > limit:
            raise BodyTooLarge
        return body
    declared = declared or "0"
    if not (declared.isascii() and declared.isdigit()):
        raise ValueError("Content-Length is not a number")
    if len(declared) > 12 or int(declared) > limit:
        raise BodyTooLarge
    body = request.body
    if len(body) > limit:
        raise BodyTooLarge
    return body


def kept_headers(request: HttpRequest) -> dict[str, str]:
    """The request headers kept on an inbound event, as text a jsonb column stores."""
    return {k: header_text(str(request.META[k])) for k in _KEPT_HEADERS if k in request.META}
