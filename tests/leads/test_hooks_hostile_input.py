"""Hostile input at /hooks/<key>/ never answers 500 (issue 11): signed bodies PostgreSQL
cannot store are a 400 or 422 and a failed event; malformed headers are a 401 or 400 and
store nothing; every error is JSON; and, as properties, any signed or unsigned body and any
WeCom callback is answered below 500.

Chunked bodies, a broker that is down and a real server: test_hooks_hostile_transport.py."""

from __future__ import annotations

import hashlib
import time

import pytest
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm.tenancy import tenant_context
from leads.intake.bodies import MAX_DEPTH, MAX_INT_DIGITS
from leads.intake.hooks import MAX_BODY, sign
from leads.models import EventStatus, InboundEvent
from tests.leads.factories import make_channel, post_signed
from tests.leads.hooks_hostile_helpers import (
    LEAD,
    _events,
    channel_fixture,  # noqa: F401 (the channel fixture)
)

pytestmark = pytest.mark.django_db


def _deep(levels: int) -> bytes:
    return ("[" * levels + "]" * levels).encode()


# (body, status, code): every class of body the outside probe found answering 500.
HOSTILE_BODIES = {
    "nan": ((LEAD % "NaN").encode(), 422, "body_bad_number"),
    "infinity": ((LEAD % "Infinity").encode(), 422, "body_bad_number"),
    "minus-infinity": ((LEAD % "-Infinity").encode(), 422, "body_bad_number"),
    "float-overflow": ((LEAD % "1e999").encode(), 422, "body_bad_number"),
    "nul-escape-in-value": ((LEAD % '"王\\u0000工"').encode(), 422, "body_nul_character"),
    "nul-escape-in-key": (b'{"ph\\u0000one": "13957123481"}', 422, "body_nul_character"),
    "lone-surrogate-value": ((LEAD % '"\\ud800"').encode(), 422, "body_lone_surrogate"),
    "lone-surrogate-key": (b'{"\\udfff": 1}', 422, "body_lone_surrogate"),
    "raw-nul-byte": (b'{"phone": "13957123481\x00"}', 400, "body_not_json"),
    "gbk": ('{"contact_name": "王工"}'.encode("gbk"), 400, "body_not_utf8"),
    "utf-16": ('{"phone": "13957123481"}'.encode("utf-16"), 400, "body_not_utf8"),
    # ASCII in UTF-16-LE is valid UTF-8, with a NUL byte after each character
    "utf-16-le": ('{"phone": "13957123481"}'.encode("utf-16-le"), 400, "body_not_json"),
    "nesting-over-limit": (_deep(MAX_DEPTH + 1), 422, "body_too_deep"),
    "nesting-past-recursion": (_deep(100_000), 422, "body_too_deep"),
    "integer-over-limit": ((LEAD % ("9" * (MAX_INT_DIGITS + 1))).encode(), 422, "body_big_integer"),
    "integer-past-python": ((LEAD % ("9" * 5000)).encode(), 422, "body_big_integer"),
}


@pytest.mark.parametrize("name", HOSTILE_BODIES)
def test_a_signed_hostile_body_is_refused_and_kept_as_a_failed_event(client, channel, world, name):
    from django.utils import translation

    body, status, code = HOSTILE_BODIES[name]
    response = post_signed(client, channel, None, raw=body)

    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    answer = response.json()
    [event] = _events(world.a.tenant)
    assert answer["event"] == str(event.public_id)
    assert answer["error"] == event.error
    assert event.status == EventStatus.FAILED
    assert event.payload is None
    assert event.error_detail["code"] == code
    assert event.body_sha256 == hashlib.sha256(body).hexdigest()
    assert "\x00" not in event.raw_body
    if code not in ("body_not_utf8", "body_not_json"):
        assert event.raw_body == body.decode()  # JSON escapes are text: kept as sent
    with translation.override("zh-hans"):
        assert event.error_text.startswith("请求体")
    # Sent again (the sender retries): the same answer, nothing new stored.
    again = post_signed(client, channel, None, raw=body)
    assert (again.status_code, again.json()) == (status, answer)
    assert len(_events(world.a.tenant)) == 1


def test_depth_and_integers_within_the_limits_are_accepted(client, channel, world):
    # The object (level 1), "x" (2), then arrays down to level MAX_DEPTH.
    nested = "[" * (MAX_DEPTH - 2) + "1" + "]" * (MAX_DEPTH - 2)
    body = (LEAD % f'{{"n": {"9" * MAX_INT_DIGITS}, "deep": {nested}}}').encode()
    response = post_signed(client, channel, None, raw=body)
    assert response.status_code == 202
    [event] = _events(world.a.tenant)
    assert event.payload["x"]["n"] == int("9" * MAX_INT_DIGITS)


def test_a_utf8_byte_order_mark_is_accepted(client, channel, world):
    body = b"\xef\xbb\xbf" + (LEAD % "1").encode()
    assert post_signed(client, channel, None, raw=body).status_code == 202
    assert _events(world.a.tenant)[0].payload["phone"] == "13957123481"


def test_re_processing_a_refused_body_in_the_inbox_keeps_it_failed(
    client, channel, world, login, django_capture_on_commit_callbacks
):
    from django.contrib.messages import get_messages

    for name in ("nan", "gbk", "raw-nul-byte", "nesting-past-recursion"):
        post_signed(client, channel, None, raw=HOSTILE_BODIES[name][0])
    events = _events(world.a.tenant)
    admin = login(world.a.admin)
    with django_capture_on_commit_callbacks() as callbacks:
        response = admin.post(
            reverse("admin:leads_inboundevent_changelist"),
            {"action": "reprocess", "_selected_action": [e.pk for e in events]},
            follow=True,
        )
    assert response.status_code == 200
    assert callbacks == []
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "所选事件中有 4 个在接收时被拒收，请求体仍无法读取："
        "保持失败（见其错误）；需由发送方重新发送。"
    ]
    after = _events(world.a.tenant)
    assert [e.status for e in after] == [EventStatus.FAILED] * 4
    assert [e.error_detail for e in after] == [e.error_detail for e in events]


def test_re_processing_an_event_refused_before_the_strict_parse_reads_its_body_again(
    channel, world
):
    """An event stored as not JSON whose raw body reads as JSON today is queued again."""
    from leads.intake.services import inbound_event_reprocess
    from tests.leads.factories import make_event

    event = make_event(
        world.a.tenant,
        channel,
        payload=None,
        status=EventStatus.FAILED,
        error="body is not JSON",
        error_detail={"code": "body_not_json", "line": 1, "column": 1},
    )
    body = '{"phone": "13957123481"}'
    with tenant_context(world.a.tenant):
        InboundEvent.objects.filter(pk=event.pk).update(
            raw_body=body, payload=None, body_sha256=hashlib.sha256(body.encode()).hexdigest()
        )
        assert inbound_event_reprocess(event=event) is True
        event.refresh_from_db()
    assert (event.status, event.payload) == (EventStatus.RECEIVED, {"phone": "13957123481"})


# --- malformed headers: 401 or 400, nothing stored ----------------------------------------


def _post(client, channel, body=b"{}", **headers):
    return client.post(
        f"/hooks/{channel.key}/", data=body, content_type="application/json", headers=headers
    )


@pytest.mark.parametrize(
    "timestamp",
    [
        "9" * 5000,  # int() refuses it (over Python's digit limit)
        "9" * 400,  # int() takes it; the float subtraction overflows
        "+1700000000",
        " 1700000000",
        "1_700_000_000",
        "١٧٠٠٠٠٠٠٠٠",  # Arabic-Indic digits, which int() reads
        "-1",
    ],
)
def test_a_malformed_timestamp_is_401_and_stores_nothing(client, channel, world, timestamp):
    body = (LEAD % "1").encode()
    signature = sign(channel.secret, timestamp, body)
    response = _post(
        client, channel, body, **{"X-CRM-Timestamp": timestamp, "X-CRM-Signature": signature}
    )
    assert response.status_code == 401
    assert response.json() == {"error": "X-CRM-Timestamp must be unix seconds"}
    assert _events(world.a.tenant) == []


@pytest.mark.parametrize("signature", ["sha256=签名", "sha256=é" * 3, "x" * 100_000, "\x00"])
def test_a_malformed_signature_is_401_and_stores_nothing(client, channel, world, signature):
    ts = str(int(time.time()))
    response = _post(client, channel, **{"X-CRM-Timestamp": ts, "X-CRM-Signature": signature})
    assert response.status_code == 401
    assert response.json() == {"error": "signature does not match"}
    assert _events(world.a.tenant) == []


@pytest.mark.parametrize(
    ("key", "error"),
    [
        ("订单-1", "Idempotency-Key must be printable ASCII"),
        ("è®¢å\x8d\x95", "Idempotency-Key must be printable ASCII"),  # UTF-8 as WSGI gives it
        ("order\x001", "Idempotency-Key must be printable ASCII"),
        ("k" * 201, "Idempotency-Key over 200 characters"),
        ("订" * 5000, "Idempotency-Key over 200 characters"),
    ],
)
def test_a_malformed_idempotency_key_is_400_and_stores_nothing(client, channel, world, key, error):
    response = post_signed(client, channel, {"phone": "13957123481"}, idempotency_key=key)
    assert response.status_code == 400
    assert response.json() == {"error": error}
    assert _events(world.a.tenant) == []


def test_headers_kept_on_the_event_are_stored_whatever_they_hold(client, channel, world):
    body = (LEAD % "1").encode()
    ts = str(int(time.time()))
    response = client.post(
        f"/hooks/{channel.key}/",
        data=body,
        content_type="application/json\x00\ud800",
        headers={
            "X-CRM-Timestamp": ts,
            "X-CRM-Signature": sign(channel.secret, ts, body),
            # UTF-8 bytes, as a WSGI server hands them over (decoded as Latin-1)
            "User-Agent": "爬虫/1.0".encode().decode("latin-1") + "\x00",
        },
    )
    assert response.status_code == 202
    [event] = _events(world.a.tenant)
    assert event.headers["HTTP_USER_AGENT"] == "爬虫/1.0\ufffd"
    assert event.headers["CONTENT_TYPE"] == "application/json\ufffd\ufffd"


@pytest.mark.parametrize("key", ["%00", "abc%00def", "%F0%9F%90%8D", "a" * 65])
def test_a_malformed_channel_key_is_a_json_404(client, key):
    response = client.post(f"/hooks/{key}/", data=b"{}", content_type="application/json")
    assert response.status_code == 404
    assert response.json() == {"error": "unknown channel"}


# --- every error is JSON ---------------------------------------------------------------------


def test_405_and_413_are_json(client, channel):
    assert client.get(f"/hooks/{channel.key}/").json() == {"error": "POST only"}
    response = _post(client, channel, b"x" * (MAX_BODY + 1))
    assert (response.status_code, response.json()) == (413, {"error": "body over 262144 bytes"})


def test_an_unexpected_error_is_a_json_500(client, channel, monkeypatch, caplog):
    """Anything we did not foresee (here the HMAC comparison failing) is still JSON."""
    import hmac
    from types import SimpleNamespace

    def broken(a, b):
        raise RuntimeError("broken")

    monkeypatch.setattr(
        "leads.intake.hooks.hmac", SimpleNamespace(new=hmac.new, compare_digest=broken)
    )
    client.raise_request_exception = False  # the client re-raises what a view reports
    response = post_signed(client, channel, {"phone": "13957123481"})
    assert response.status_code == 500
    assert response.json() == {"error": "internal error; retry later with the same Idempotency-Key"}
    assert "webhook /hooks/" in caplog.text


# --- properties ---------------------------------------------------------------------------------

# Pieces hostile JSON is made of, mixed with arbitrary text (surrogates included).
_TOKENS = st.sampled_from(
    [
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        '"',
        "NaN",
        "-Infinity",
        "1e999",
        "-0",
        "9" * 5000,
        '"\\u0000"',
        '"\\ud800"',
        '"\\udc00\\ud800"',
        "\x00",
        '{"phone": "13957123481"}',
        "[" * 200,
        "]" * 200,
        "true",
        "null",
    ]
)
_ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=40)
_JSONISH = st.lists(_TOKENS | _ANY_TEXT, max_size=12).map("".join)
_BODIES = st.one_of(
    st.binary(max_size=600),
    _JSONISH.map(lambda text: text.encode("utf-8", "surrogatepass")),
    _JSONISH.map(lambda text: text.encode("utf-16", "surrogatepass")),
)
_PROPERTY = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@_PROPERTY
@given(body=_BODIES)
def test_any_signed_body_is_answered_below_500_and_stored_once(client, channel, world, body):
    response = post_signed(client, channel, None, raw=body)

    assert response.status_code in (200, 202, 400, 422)
    answer = response.json()
    with tenant_context(world.a.tenant):
        stored = list(InboundEvent.objects.filter(body_sha256=hashlib.sha256(body).hexdigest()))
    assert len(stored) == 1
    assert answer["event"] == str(stored[0].public_id)
    assert (stored[0].status == EventStatus.FAILED) == (response.status_code in (400, 422))


_HEADER_TEXT = st.one_of(
    st.text(st.characters(exclude_categories=()), max_size=30),
    st.text("0123456789", min_size=1, max_size=5000),
    st.just(""),
)


@_PROPERTY
@given(body=_BODIES, timestamp=_HEADER_TEXT, signature=_HEADER_TEXT, key=_HEADER_TEXT)
def test_any_unsigned_request_is_answered_below_500_and_stores_nothing(
    client, channel, world, body, timestamp, signature, key
):
    response = _post(
        client,
        channel,
        body,
        **{"X-CRM-Timestamp": timestamp, "X-CRM-Signature": signature, "Idempotency-Key": key},
    )
    assert response.status_code == 401
    assert set(response.json()) == {"error"}
    assert _events(world.a.tenant) == []


# --- WeCom callbacks on the same URL ----------------------------------------------------------


@pytest.fixture
def wecom_channel(world):
    from tests.leads.test_wecom import AES_KEY, CORP_ID, TOKEN

    return make_channel(
        world.a.tenant,
        name="企业微信",
        type="wecom",
        wecom_corp_id=CORP_ID,
        wecom_token=TOKEN,
        wecom_aes_key=AES_KEY,
        preset="wecom",
    )


_QUERY_VALUE = st.one_of(
    st.text(st.characters(exclude_categories=()), max_size=30),
    st.text("0123456789", min_size=1, max_size=5000),
    st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=", max_size=90),
)
_QUERY = st.dictionaries(
    st.sampled_from(["msg_signature", "timestamp", "nonce", "echostr", "x"]), _QUERY_VALUE
)


def _query_string(params: dict[str, str]) -> str:
    from urllib.parse import quote

    return "&".join(f"{quote(k)}={quote(v, errors='surrogatepass')}" for k, v in params.items())


@_PROPERTY
@given(method=st.sampled_from(["GET", "POST", "PUT"]), params=_QUERY, body=_BODIES)
def test_any_wecom_callback_is_answered_below_500(client, wecom_channel, method, params, body):
    response = client.generic(
        method,
        f"/hooks/{wecom_channel.key}/?{_query_string(params)}",
        body,
        content_type="text/xml",
    )
    assert response.status_code < 500


_INNER = st.one_of(
    _JSONISH,
    st.builds(
        "<xml><MsgType>event</MsgType><Event>change_external_contact</Event>"
        "<ChangeType>add_external_contact</ChangeType><ExternalUserID>{}</ExternalUserID>"
        "<CreateTime>{}</CreateTime></xml>".format,
        _JSONISH,
        _JSONISH,
    ),
)


@_PROPERTY
@given(inner=_INNER, encrypt=st.none() | _QUERY_VALUE)
def test_any_signed_wecom_event_is_answered_below_500_and_kept(
    client, wecom_channel, world, inner, encrypt
):
    """Signed with the channel's Token: garbage ciphertexts and garbage decrypted XML."""
    from xml.sax.saxutils import escape

    from tests.leads.test_wecom import _spec_encrypt, _spec_signature

    if encrypt is None:
        encrypt = _spec_encrypt(inner.encode("utf-8", "surrogatepass").decode("utf-8", "replace"))
    ts, nonce = str(int(time.time())), "1372623149"
    try:
        signature = _spec_signature(ts, nonce, encrypt)
    except UnicodeEncodeError:
        return  # a lone surrogate cannot be signed, so cannot be sent signed
    # A character reference for a carriage return: a literal one is read as a line feed
    # (XML's end-of-line handling), which would be another ciphertext than the one signed.
    text = escape(encrypt, {"\r": "&#13;"})
    body = f"<xml><Encrypt>{text}</Encrypt></xml>".encode("utf-8", "surrogatepass")
    response = client.post(
        f"/hooks/{wecom_channel.key}/?msg_signature={signature}&timestamp={ts}&nonce={nonce}",
        data=body,
        content_type="text/xml",
    )
    assert response.status_code in (200, 400)
    with tenant_context(world.a.tenant):
        stored = InboundEvent.objects.filter(body_sha256=hashlib.sha256(body).hexdigest())
        # Signed and readable as an envelope, but not decryptable or not XML inside: kept.
        kept = response.content.startswith(b"WeCom callback could not be read")
        assert stored.count() == (1 if kept else 0) or response.status_code == 200
