"""WeCom (企业微信) callback protocol for `wecom` channels, after WeCom's published
"加解密方案说明" (the WXBizMsgCrypt reference library).

The app's "receive messages" (接收消息) page holds three settings, copied onto the channel:
the corp ID (receiveid), a Token and a 43-character EncodingAESKey. WeCom then calls the
channel's hook URL in two ways, both with `msg_signature`, `timestamp` and `nonce` in the
query string:

- GET, URL verification: `echostr` is an encrypted random string; we check
  msg_signature = sha1(sorted(token, timestamp, nonce, echostr) joined) and answer its
  decrypted plaintext, verbatim, as text/plain.
- POST, events: the body is `<xml><ToUserName/><AgentID/><Encrypt/></xml>`; the signature
  covers the Encrypt value, which decrypts to the event's own XML. We answer `success`.

Encryption: AES-256-CBC, key = base64(EncodingAESKey + "="), IV = the key's first 16
bytes, PKCS#7 padding to 32-byte blocks; the plaintext is 16 random bytes, the message
length (4 bytes, big-endian), the message (UTF-8) and the receiveid.

Only "external contact added" events (change_external_contact / add_external_contact or
add_half_external_contact) become inbound events, and so leads; the rest are acknowledged
and dropped. A correctly signed body that does not decrypt or parse is kept as a failed
inbound event for an admin to inspect.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import struct
import time
import xml.etree.ElementTree as ET

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from django.http import HttpRequest, HttpResponse

from crm.tenancy import tenant_context
from leads.intake.bodies import (
    MAX_BODY,
    MAX_IDEMPOTENCY_KEY,
    MAX_SKEW,
    TIMESTAMP,
    BodyTooLarge,
    LengthRequired,
    header_text,
    kept_headers,
    read_body,
)
from leads.intake.services import inbound_event_receive
from leads.messages import intake_message
from leads.models import Channel, EventSource

BLOCK_SIZE = 32  # WeCom's PKCS#7 block size (not AES's 16)
RANDOM_SIZE = 16
ADD_CHANGE_TYPES = frozenset({"add_external_contact", "add_half_external_contact"})
_XML_DECLARATIONS = (b"<!doctype", b"<!entity")
_MAX_DEPTH = 4  # WeCom event XML is flat; anything deeper is not a WeCom event


class WeComError(ValueError):
    """A callback that fails WeCom's crypto or format rules; the message says which."""


def wecom_signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    """msg_signature per "加解密方案说明" §消息体签名: the hex SHA-1 of token, timestamp, nonce
    and the encrypted message (echostr or Encrypt), sorted as strings and concatenated."""
    parts = sorted([token, str(timestamp), nonce, encrypt])
    return hashlib.sha1("".join(parts).encode()).hexdigest()  # noqa: S324 - WeCom's spec


def _aes_key(aes_key: str) -> bytes:
    """EncodingAESKey (43 characters) → the 32-byte AES key: Base64_Decode(key + "=")."""
    if len(aes_key) != 43:
        raise WeComError("EncodingAESKey must be 43 characters")
    try:
        key = base64.b64decode(aes_key + "=", validate=True)
    except ValueError:
        raise WeComError("EncodingAESKey is not valid Base64") from None
    if len(key) != 32:
        raise WeComError("EncodingAESKey does not decode to 32 bytes")
    return key


def _cipher(key: bytes) -> Cipher:
    # The spec's IV is the key's first 16 bytes: fixed per key, as WeCom defines it.
    return Cipher(algorithms.AES(key), modes.CBC(key[:16]))


def encrypt_message(aes_key: str, corp_id: str, msg: str, random16: bytes | None = None) -> str:
    """Encrypt `msg` for `corp_id` per "加解密方案说明" §消息体加密; Base64 of the ciphertext.

    AES-256-CBC of random(16 bytes) + len(msg) (4 bytes, network order) + msg + receiveid,
    PKCS#7-padded to 32-byte blocks, key = Base64_Decode(EncodingAESKey + "="), IV = key[:16].
    """
    random16 = os.urandom(RANDOM_SIZE) if random16 is None else random16
    if len(random16) != RANDOM_SIZE:
        raise WeComError("the random prefix must be 16 bytes")
    body = msg.encode()
    plain = random16 + struct.pack(">I", len(body)) + body + corp_id.encode()
    pad = BLOCK_SIZE - len(plain) % BLOCK_SIZE
    plain += bytes([pad]) * pad
    encryptor = _cipher(_aes_key(aes_key)).encryptor()
    return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()


def decrypt_message(aes_key: str, corp_id: str, encrypted: str) -> str:
    """The message inside `encrypted` per "加解密方案说明" §消息体加密 (the inverse of
    `encrypt_message`). Raises WeComError for bad Base64, bad padding, a length that does
    not fit, non-UTF-8 text, or a receiveid other than `corp_id`."""
    key = _aes_key(aes_key)
    try:
        data = base64.b64decode(encrypted, validate=True)
    except ValueError:
        raise WeComError("the encrypted message is not valid Base64") from None
    if not data or len(data) % 16:
        raise WeComError("the ciphertext is not a whole number of AES blocks")
    decryptor = _cipher(key).decryptor()
    plain = decryptor.update(data) + decryptor.finalize()
    pad = plain[-1]
    if not 1 <= pad <= BLOCK_SIZE or pad > len(plain) or plain[-pad:] != bytes([pad]) * pad:
        raise WeComError("bad PKCS#7 padding")
    content = plain[RANDOM_SIZE:-pad]
    if len(content) < 4:
        raise WeComError("the plaintext is too short")
    (length,) = struct.unpack(">I", content[:4])
    if length > len(content) - 4:
        raise WeComError("the message length does not fit the plaintext")
    msg, receive_id = content[4 : 4 + length], content[4 + length :]
    if not hmac.compare_digest(receive_id, corp_id.encode()):
        raise WeComError("the message is for another corp ID")
    try:
        return msg.decode()
    except UnicodeDecodeError:
        raise WeComError("the message is not UTF-8") from None


def parse_xml(data: bytes | str) -> dict:
    """A WeCom XML document → {tag: text} of the root's children (nested ones as dicts).

    ElementTree resolves no external entities, but internal ones can still blow up
    (billion laughs), and WeCom never sends a DTD: any DOCTYPE or ENTITY is refused
    before parsing.
    """
    raw = data.encode() if isinstance(data, str) else data
    lowered = raw.lower()
    if any(marker in lowered for marker in _XML_DECLARATIONS):
        raise WeComError("XML with a DOCTYPE or ENTITY declaration is refused")
    try:
        root = ET.fromstring(raw)  # noqa: S314 - declarations refused above
    except ET.ParseError as exc:
        raise WeComError(f"not well-formed XML: {exc}") from None
    return _element_dict(root, 1)


def _element_dict(element: ET.Element, depth: int) -> dict:
    if depth > _MAX_DEPTH:
        raise WeComError("XML nested too deeply")
    result: dict = {}
    for child in element:
        # The first occurrence wins: WeCom's event fields are never repeated.
        if child.tag not in result:
            result[child.tag] = _element_dict(child, depth + 1) if len(child) else child.text or ""
    return result


def _text(status: int, message: str) -> HttpResponse:
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


def _configured(channel: Channel) -> bool:
    # An empty token would let anyone compute a valid signature: refuse to answer at all.
    return bool(channel.wecom_corp_id and channel.wecom_token and channel.wecom_aes_key)


def _signature_ok(channel: Channel, params: dict[str, str], encrypt: str) -> bool:
    signature = params["msg_signature"]
    if not signature.isascii():  # compare_digest refuses non-ASCII text; it matches nothing
        return False
    parts = (params["timestamp"], params["nonce"], encrypt)
    try:
        expected = wecom_signature(channel.wecom_token, *parts)
    except UnicodeEncodeError:  # a lone surrogate: not what WeCom signs
        return False
    return hmac.compare_digest(expected, signature)


def _event_key(payload: dict) -> str:
    """A stable id of one event, so WeCom's retries (same event, new nonce and signature)
    make no second lead. The staff member is part of it: two colleagues adding the same
    customer are two events."""
    parts = [str(payload.get(k, "")) for k in ("ChangeType", "UserID", "ExternalUserID")]
    key = f"wecom:{':'.join(parts)}:{payload.get('CreateTime', '')}"
    if len(key) > MAX_IDEMPOTENCY_KEY:
        key = "wecom:sha256:" + hashlib.sha256(key.encode()).hexdigest()
    return key


def _is_contact_added(payload: dict) -> bool:
    return (
        payload.get("MsgType") == "event"
        and payload.get("Event") == "change_external_contact"
        and payload.get("ChangeType") in ADD_CHANGE_TYPES
    )


def _query(request: HttpRequest, names: tuple[str, ...]) -> dict[str, str] | None:
    params = {name: request.GET.get(name, "") for name in names}
    return params if all(params.values()) else None


def _verify_url(request: HttpRequest, channel: Channel) -> HttpResponse:
    params = _query(request, ("msg_signature", "timestamp", "nonce", "echostr"))
    if params is None:
        return _text(400, "msg_signature, timestamp, nonce and echostr are required")
    if not _signature_ok(channel, params, params["echostr"]):
        return _text(401, "msg_signature does not match")
    try:
        echo = decrypt_message(channel.wecom_aes_key, channel.wecom_corp_id, params["echostr"])
    except WeComError as exc:
        return _text(400, f"echostr: {exc}")
    # WeCom compares the reply byte for byte: the plaintext only, no newline or quotes.
    return _text(200, echo)


def _receive_event(request: HttpRequest, channel: Channel) -> HttpResponse:
    params = _query(request, ("msg_signature", "timestamp", "nonce"))
    if params is None:
        return _text(400, "msg_signature, timestamp and nonce are required")
    try:
        body = read_body(request, MAX_BODY)
    except LengthRequired:
        return _text(411, "a chunked body is not accepted here: send a Content-Length")
    except BodyTooLarge:
        return _text(413, f"body over {MAX_BODY} bytes")
    except ValueError:
        return _text(400, "Content-Length is not a number")
    if not TIMESTAMP.fullmatch(params["timestamp"]):
        return _text(401, "timestamp must be unix seconds")
    skew = abs(time.time() - int(params["timestamp"]))
    if skew > MAX_SKEW:
        # A captured callback replayed later: its signature is still valid, its time not.
        return _text(401, f"timestamp is {int(skew)} s away from now (at most {MAX_SKEW} s)")
    try:
        envelope = parse_xml(body)
    except WeComError as exc:
        # Not stored: nothing proves this body came from WeCom.
        return _text(400, str(exc))
    encrypt = envelope.get("Encrypt")
    if not isinstance(encrypt, str) or not encrypt:
        return _text(400, "the body has no Encrypt element")
    if not _signature_ok(channel, params, encrypt):
        return _text(401, "msg_signature does not match")

    try:
        payload, error = (
            parse_xml(decrypt_message(channel.wecom_aes_key, channel.wecom_corp_id, encrypt)),
            "",
        )
    except WeComError as exc:
        payload, error = None, f"WeCom callback could not be read: {exc}"
    if payload is not None and not _is_contact_added(payload):
        return _text(200, "success")  # other events and changes: not leads

    headers = kept_headers(request)
    # The signature parameters, so the stored body can be checked again later.
    headers["QUERY_STRING"] = header_text(request.META.get("QUERY_STRING", ""))
    with tenant_context(channel.tenant):
        inbound_event_receive(
            channel=channel,
            raw_body=body,
            source=EventSource.WECOM,
            payload=payload,
            headers=headers,
            idempotency_key=_event_key(payload) if payload is not None else "",
            error=error,
            error_detail=intake_message("wecom_unreadable") if error else None,
        )
    if error:
        return _text(400, error)
    return _text(200, "success")  # duplicates too: WeCom must stop retrying


def callback(request: HttpRequest, channel: Channel) -> HttpResponse:
    """The hook URL of a `wecom` channel (called by leads.intake.hooks.receive, outside any
    tenant)."""
    if request.method not in ("GET", "POST"):
        return _text(405, "GET or POST only")
    if not _configured(channel):
        return _text(503, "WeCom callback settings are missing on this channel")
    if request.method == "GET":
        return _verify_url(request, channel)
    return _receive_event(request, channel)
