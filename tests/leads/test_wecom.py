"""WeCom's callback protocol ("加解密方案说明" / WXBizMsgCrypt): crypto vectors built here
from the spec, the URL-verification handshake, and external-contact events → leads."""

import base64
import hashlib
import os
import struct
import time

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from crm.tenancy import tenant_context
from leads.intake.services import inbound_event_process
from leads.intake.wecom import WeComError, decrypt_message, encrypt_message, wecom_signature
from leads.models import EventSource, EventStatus, InboundEvent, Lead
from tests.leads.factories import make_channel

pytestmark = pytest.mark.django_db

CORP_ID = "ww1a2b3c4d5e6f7a8b"
TOKEN = "QDG6eK"
AES_KEY = base64.b64encode(bytes(range(32))).decode().rstrip("=")  # 43 characters


def _spec_encrypt(msg: str, corp_id: str = CORP_ID, *, pad_fn=None) -> str:
    """Encrypt exactly as the spec describes, independently of leads.intake.wecom."""
    key = base64.b64decode(AES_KEY + "=")
    plain = os.urandom(16) + struct.pack(">I", len(msg.encode())) + msg.encode() + corp_id.encode()
    if pad_fn is None:
        n = 32 - len(plain) % 32
        plain += bytes([n]) * n
    else:
        plain = pad_fn(plain)
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()


def _spec_signature(timestamp: str, nonce: str, encrypt: str, token: str = TOKEN) -> str:
    joined = "".join(sorted([token, timestamp, nonce, encrypt]))
    return hashlib.sha1(joined.encode()).hexdigest()  # noqa: S324 - WeCom's spec


def _event_xml(change_type="add_external_contact", external="wmEXTERNAL001", create_time=None):
    create_time = create_time or int(time.time())
    return (
        "<xml><ToUserName><![CDATA[" + CORP_ID + "]]></ToUserName>"
        "<FromUserName><![CDATA[sys]]></FromUserName>"
        f"<CreateTime>{create_time}</CreateTime>"
        "<MsgType><![CDATA[event]]></MsgType>"
        "<Event><![CDATA[change_external_contact]]></Event>"
        f"<ChangeType><![CDATA[{change_type}]]></ChangeType>"
        "<UserID><![CDATA[zhangsan]]></UserID>"
        f"<ExternalUserID><![CDATA[{external}]]></ExternalUserID>"
        "<State><![CDATA[expo-2025-shanghai]]></State>"
        "<WelcomeCode><![CDATA[WELCOMECODE]]></WelcomeCode></xml>"
    )


@pytest.fixture
def channel(world):
    return make_channel(
        world.a.tenant,
        name="企业微信",
        type="wecom",
        wecom_corp_id=CORP_ID,
        wecom_token=TOKEN,
        wecom_aes_key=AES_KEY,
        preset="wecom",
    )


def _post(client, channel, encrypt: str | None = None, *, inner=None, timestamp=None, body=None):
    """POST a WeCom event as WeCom does: signed query string, encrypted XML envelope."""
    if encrypt is None:
        encrypt = _spec_encrypt(inner if inner is not None else _event_xml())
    ts = str(int(time.time()) if timestamp is None else timestamp)
    nonce = "1372623149"
    if body is None:
        body = (
            f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName>"
            "<AgentID><![CDATA[1000002]]></AgentID>"
            f"<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
        )
    query = f"msg_signature={_spec_signature(ts, nonce, encrypt)}&timestamp={ts}&nonce={nonce}"
    return client.post(f"/hooks/{channel.key}/?{query}", data=body, content_type="text/xml")


def _events(tenant):
    with tenant_context(tenant):
        return list(InboundEvent.objects.all())


def _leads(tenant):
    with tenant_context(tenant):
        return list(Lead.objects.select_related("channel"))


# --- crypto, against vectors built from the spec -------------------------------------------


def test_it_signs_per_the_spec():
    assert wecom_signature(TOKEN, "1409659589", "263014780", "abc") == _spec_signature(
        "1409659589", "263014780", "abc"
    )
    # Sorted as strings, not in argument order.
    expected = hashlib.sha1(b"1409659589263014780QDG6eKzzz").hexdigest()  # noqa: S324
    assert wecom_signature(TOKEN, "1409659589", "263014780", "zzz") == expected


def test_it_decrypts_a_spec_vector():
    msg = "<xml><Content>你好 WeCom</Content></xml>"
    assert decrypt_message(AES_KEY, CORP_ID, _spec_encrypt(msg)) == msg


def test_it_decrypts_a_vector_whose_plaintext_fills_whole_blocks():
    # 16 + 4 + len(msg) + len(corp id) a multiple of 32: a full block of padding (32 × 0x20).
    msg = "x" * (64 - 16 - 4 - len(CORP_ID))
    encrypted = _spec_encrypt(msg)
    assert len(base64.b64decode(encrypted)) == 96
    assert decrypt_message(AES_KEY, CORP_ID, encrypted) == msg


def test_it_round_trips_encrypt_and_decrypt():
    for msg in ["", "a", "消息" * 100, "<xml><A>1</A></xml>"]:
        encrypted = encrypt_message(AES_KEY, CORP_ID, msg)
        assert len(base64.b64decode(encrypted)) % 32 == 0  # WeCom's 32-byte padding
        assert decrypt_message(AES_KEY, CORP_ID, encrypted) == msg


def test_it_encrypts_what_the_spec_decrypts():
    random16 = b"0123456789abcdef"
    encrypted = encrypt_message(AES_KEY, CORP_ID, "hello", random16=random16)
    key = base64.b64decode(AES_KEY + "=")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    plain = decryptor.update(base64.b64decode(encrypted)) + decryptor.finalize()
    pad = 32 - (16 + 4 + 5 + len(CORP_ID)) % 32
    assert plain == random16 + b"\x00\x00\x00\x05hello" + CORP_ID.encode() + bytes([pad]) * pad


def test_it_rejects_another_corp_id():
    with pytest.raises(WeComError, match="another corp ID"):
        decrypt_message(AES_KEY, CORP_ID, _spec_encrypt("hi", corp_id="wwSOMEONEELSE"))


def test_it_rejects_bad_padding():
    def zero_pad(plain):  # pad byte 0 is never valid PKCS#7
        n = 32 - len(plain) % 32
        return plain + b"\x00" * n

    def oversize_pad(plain):  # 33 > WeCom's block size
        n = 32 - len(plain) % 32 + 32
        return plain + bytes([33]) * n

    def mixed_pad(plain):  # the pad bytes disagree
        n = 32 - len(plain) % 32
        assert n > 1
        return plain + b"\x01" * (n - 1) + bytes([n])

    for pad_fn in (zero_pad, oversize_pad, mixed_pad):
        with pytest.raises(WeComError, match="padding"):
            decrypt_message(AES_KEY, CORP_ID, _spec_encrypt("hello", pad_fn=pad_fn))


def test_it_rejects_garbage():
    with pytest.raises(WeComError):
        decrypt_message(AES_KEY, CORP_ID, "not base64 at all!")
    with pytest.raises(WeComError):
        decrypt_message(AES_KEY, CORP_ID, base64.b64encode(b"x" * 20).decode())
    with pytest.raises(WeComError):
        decrypt_message("short", CORP_ID, _spec_encrypt("hello"))


# --- GET: URL verification -------------------------------------------------------------------


def _verify(client, channel, echostr, *, signature=None):
    ts, nonce = str(int(time.time())), "5894221"
    params = {
        "msg_signature": signature or _spec_signature(ts, nonce, echostr),
        "timestamp": ts,
        "nonce": nonce,
        "echostr": echostr,
    }
    return client.get(f"/hooks/{channel.key}/", params)


def test_it_answers_the_url_verification_with_the_plaintext(client, channel):
    echostr = _spec_encrypt("4592169298417863186")  # Base64 with + / = : urlencoded by the client
    response = _verify(client, channel, echostr)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert response.content == b"4592169298417863186"


def test_it_refuses_a_wrong_verification_signature_with_401(client, channel):
    response = _verify(client, channel, _spec_encrypt("123"), signature="0" * 40)
    assert response.status_code == 401
    assert response["Content-Type"].startswith("text/plain")


def test_it_refuses_a_verification_signed_with_another_token_with_401(client, channel):
    ts, nonce, echostr = str(int(time.time())), "1", _spec_encrypt("123")
    signature = _spec_signature(ts, nonce, echostr, token="another-token")
    response = _verify(client, channel, echostr, signature=signature)
    assert response.status_code == 401


def test_it_wants_all_verification_params_with_400(client, channel):
    response = client.get(f"/hooks/{channel.key}/", {"timestamp": "1", "nonce": "2"})
    assert response.status_code == 400
    assert client.get(f"/hooks/{channel.key}/").status_code == 400


def test_it_answers_404_for_an_unknown_key(client, world):
    response = client.get("/hooks/no-such-key-0000000000000/", {"echostr": "x"})
    assert response.status_code == 404


def test_it_answers_503_without_wecom_settings(client, world):
    channel = make_channel(world.a.tenant, type="wecom", wecom_corp_id=CORP_ID)
    assert _verify(client, channel, _spec_encrypt("1")).status_code == 503


# --- POST: events ----------------------------------------------------------------------------


def test_it_turns_an_added_external_contact_into_a_lead(client, channel, world):
    response = _post(client, channel)
    assert response.status_code == 200
    assert response.content == b"success"
    assert response["Content-Type"].startswith("text/plain")

    [event] = _events(world.a.tenant)
    assert event.source == EventSource.WECOM
    assert event.status == EventStatus.RECEIVED
    assert event.payload["ExternalUserID"] == "wmEXTERNAL001"
    assert event.payload["ChangeType"] == "add_external_contact"
    assert "<Encrypt>" in event.raw_body  # the body exactly as received
    assert "msg_signature=" in event.headers["QUERY_STRING"]

    with tenant_context(world.a.tenant):
        processed = inbound_event_process(event_id=event.pk)
    assert processed.status == EventStatus.PROCESSED, processed.error
    [lead] = _leads(world.a.tenant)
    assert lead.external_id == "wmEXTERNAL001"
    assert lead.utm["utm_campaign"] == "expo-2025-shanghai"
    assert lead.channel == channel
    assert lead.tenant == world.a.tenant

    # Nothing of it is visible from the other tenant.
    assert _events(world.b.tenant) == []
    assert _leads(world.b.tenant) == []


def test_it_takes_a_half_added_contact_too(client, channel, world):
    response = _post(client, channel, inner=_event_xml(change_type="add_half_external_contact"))
    assert response.status_code == 200
    assert len(_events(world.a.tenant)) == 1


def test_it_stores_a_retried_event_once(client, channel, world):
    inner = _event_xml(create_time=1700000000)
    assert _post(client, channel, inner=inner).content == b"success"
    # WeCom's retry: the same event, freshly encrypted (another random prefix) and signed.
    again = _post(client, channel, inner=inner)
    assert again.status_code == 200
    assert again.content == b"success"
    [event] = _events(world.a.tenant)
    with tenant_context(world.a.tenant):
        inbound_event_process(event_id=event.pk)
    assert len(_leads(world.a.tenant)) == 1


def test_it_refuses_a_stale_timestamp_with_401(client, channel, world):
    response = _post(client, channel, timestamp=int(time.time()) - 301)
    assert response.status_code == 401
    assert b"away from now" in response.content  # the signature itself is valid
    assert _events(world.a.tenant) == []


def test_it_refuses_a_wrong_post_signature_with_401(client, channel, world):
    encrypt = _spec_encrypt(_event_xml())
    ts, nonce = str(int(time.time())), "1"
    body = f"<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
    signature = _spec_signature(ts, nonce, encrypt, token="another-token")
    response = client.post(
        f"/hooks/{channel.key}/?msg_signature={signature}&timestamp={ts}&nonce={nonce}",
        data=body,
        content_type="text/xml",
    )
    assert response.status_code == 401
    assert _events(world.a.tenant) == []


def test_it_wants_the_query_params_with_400(client, channel):
    response = client.post(f"/hooks/{channel.key}/", data="<xml/>", content_type="text/xml")
    assert response.status_code == 400


def test_it_answers_405_to_other_methods(client, channel):
    assert client.put(f"/hooks/{channel.key}/").status_code == 405


def test_it_refuses_a_doctype_with_400(client, channel, world):
    encrypt = _spec_encrypt(_event_xml())
    body = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]>'
        f"<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt><X>&lol;</X></xml>"
    )
    response = _post(client, channel, encrypt, body=body)
    assert response.status_code == 400
    assert b"DOCTYPE" in response.content
    assert _events(world.a.tenant) == []


def test_it_keeps_a_signed_event_with_a_doctype_inside_as_failed(client, channel, world):
    inner = '<!DOCTYPE x [<!ENTITY e "e">]><xml><MsgType>&e;</MsgType></xml>'
    response = _post(client, channel, inner=inner)
    assert response.status_code == 400
    [event] = _events(world.a.tenant)
    assert event.status == EventStatus.FAILED
    assert "DOCTYPE" in event.error


def test_it_refuses_a_body_over_256_kib_with_413(client, channel, world):
    encrypt = _spec_encrypt(_event_xml())
    body = f"<xml><Encrypt>{encrypt}</Encrypt><Pad>{'x' * 256 * 1024}</Pad></xml>"
    assert _post(client, channel, encrypt, body=body).status_code == 413


def test_it_acknowledges_other_events_without_storing(client, channel, world):
    response = _post(client, channel, inner=_event_xml(change_type="del_external_contact"))
    assert response.status_code == 200
    assert response.content == b"success"
    text_message = "<xml><MsgType><![CDATA[text]]></MsgType><Content>hi</Content></xml>"
    assert _post(client, channel, inner=text_message).content == b"success"
    assert _events(world.a.tenant) == []


def test_it_keeps_signed_garbage_as_a_failed_event(client, channel, world):
    garbage = base64.b64encode(os.urandom(64)).decode()
    response = _post(client, channel, garbage)
    assert response.status_code == 400
    [event] = _events(world.a.tenant)
    assert event.status == EventStatus.FAILED
    assert event.source == EventSource.WECOM
    assert event.error.startswith("WeCom callback could not be read")
    assert event.payload is None
    assert garbage in event.raw_body
    assert _events(world.b.tenant) == []


def test_it_refuses_an_event_for_another_corp_as_failed(client, channel, world):
    response = _post(client, channel, _spec_encrypt(_event_xml(), corp_id="wwOTHERCORP"))
    assert response.status_code == 400
    [event] = _events(world.a.tenant)
    assert "another corp ID" in event.error
    assert _leads(world.a.tenant) == []


def test_it_never_uses_another_tenants_channel_settings(client, channel, world):
    # Tenant b has a WeCom channel with its own token: a's signature does not open it.
    other = make_channel(
        world.b.tenant,
        type="wecom",
        wecom_corp_id=CORP_ID,
        wecom_token="b-token",
        wecom_aes_key=AES_KEY,
        preset="wecom",
    )
    assert _post(client, other).status_code == 401
    assert _post(client, channel).status_code == 200
    assert len(_events(world.a.tenant)) == 1
    assert _events(world.b.tenant) == []
