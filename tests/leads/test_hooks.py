"""The signed webhook contract (docs/webhooks.md): every status code, replay, idempotency."""

import json
import time

import pytest

from crm.tenancy import tenant_context
from leads.models import EventStatus, InboundEvent
from tests.leads.factories import make_channel, post_signed

pytestmark = pytest.mark.django_db

PAYLOAD = {
    "company": "宁波恒力液压科技有限公司",
    "contact_name": "王工",
    "phone": "13812345678",
    "message": "急需报价，替换老型号",
}


@pytest.fixture
def channel(world):
    return make_channel(world.a.tenant)


def _events(tenant):
    with tenant_context(tenant):
        return list(InboundEvent.objects.all())


def test_it_accepts_a_signed_json_body_with_202(
    client, channel, world, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = post_signed(client, channel, PAYLOAD)
    assert response.status_code == 202
    body = response.json()
    [event] = _events(world.a.tenant)
    assert body == {"event": str(event.public_id), "duplicate": False}
    assert event.status == EventStatus.RECEIVED
    assert event.payload == PAYLOAD
    assert json.loads(event.raw_body) == PAYLOAD
    assert event.headers["HTTP_X_CRM_TIMESTAMP"]
    assert len(callbacks) == 1  # processing is queued only after the commit


def test_an_unknown_key_is_404(client, world):
    response = client.post(
        "/hooks/no-such-key-0000000000000/", data=b"{}", content_type="application/json"
    )
    assert response.status_code == 404
    assert response.json() == {"error": "unknown channel"}


def test_an_inactive_channel_is_404(client, world):
    channel = make_channel(world.a.tenant, is_active=False)
    assert post_signed(client, channel, PAYLOAD).status_code == 404


def test_a_missing_signature_is_401(client, channel, world):
    response = client.post(
        f"/hooks/{channel.key}/", data=json.dumps(PAYLOAD), content_type="application/json"
    )
    assert response.status_code == 401
    assert _events(world.a.tenant) == []


def test_a_wrong_secret_is_401(client, channel, world):
    response = post_signed(client, channel, PAYLOAD, secret="not-the-secret")
    assert response.status_code == 401
    assert response.json()["error"] == "signature does not match"


def test_another_channels_secret_is_401(client, channel, world):
    other = make_channel(world.b.tenant)
    assert post_signed(client, channel, PAYLOAD, secret=other.secret).status_code == 401


def test_a_tampered_body_is_401(client, channel, world):
    body = json.dumps(PAYLOAD).encode()
    ts = str(int(time.time()))
    from leads.intake.hooks import sign

    response = client.post(
        f"/hooks/{channel.key}/",
        data=body.replace(b"13812345678", b"13900000000"),
        content_type="application/json",
        headers={"X-CRM-Timestamp": ts, "X-CRM-Signature": sign(channel.secret, ts, body)},
    )
    assert response.status_code == 401


@pytest.mark.parametrize("offset", [-301, 301])
def test_a_timestamp_more_than_300_seconds_away_is_401(client, channel, offset):
    response = post_signed(client, channel, PAYLOAD, timestamp=int(time.time()) + offset)
    assert response.status_code == 401
    assert "300" in response.json()["error"]


def test_a_timestamp_within_300_seconds_is_fine(client, channel):
    assert (
        post_signed(client, channel, PAYLOAD, timestamp=int(time.time()) - 290).status_code == 202
    )


def test_a_non_numeric_timestamp_is_401(client, channel):
    assert post_signed(client, channel, PAYLOAD, timestamp="yesterday").status_code == 401


def test_a_body_over_256_kib_is_413(client, channel, world):
    big = {"message": "x" * (256 * 1024)}
    response = post_signed(client, channel, big)
    assert response.status_code == 413
    assert _events(world.a.tenant) == []


def test_a_body_that_is_not_json_is_400_and_kept_as_a_failed_event(client, channel, world):
    response = post_signed(client, channel, None, raw="name=王工&phone=138".encode())
    assert response.status_code == 400
    assert "not JSON" in response.json()["error"]
    [event] = _events(world.a.tenant)
    assert event.status == EventStatus.FAILED
    assert event.raw_body == "name=王工&phone=138"
    assert "not JSON" in event.error
    assert response.json()["event"] == str(event.public_id)


def test_get_is_405(client, channel):
    assert client.get(f"/hooks/{channel.key}/").status_code == 405


def test_the_same_idempotency_key_returns_the_first_event(
    client, channel, world, django_capture_on_commit_callbacks
):
    first = post_signed(client, channel, PAYLOAD, idempotency_key="order-1")
    with django_capture_on_commit_callbacks() as callbacks:
        again = post_signed(
            client, channel, {**PAYLOAD, "message": "changed"}, idempotency_key="order-1"
        )
    assert again.status_code == 200
    assert again.json() == {"event": first.json()["event"], "duplicate": True}
    assert len(_events(world.a.tenant)) == 1
    assert callbacks == []  # nothing queued again


def test_the_same_body_without_a_key_within_24h_is_a_replay(client, channel, world):
    first = post_signed(client, channel, PAYLOAD)
    again = post_signed(client, channel, PAYLOAD)  # a fresh timestamp and signature
    assert again.status_code == 200
    assert again.json()["event"] == first.json()["event"]
    assert len(_events(world.a.tenant)) == 1


def test_the_same_body_after_24h_is_a_new_event(client, channel, world):
    post_signed(client, channel, PAYLOAD)
    with tenant_context(world.a.tenant):
        from django.utils import timezone

        InboundEvent.objects.update(received_at=timezone.now() - timezone.timedelta(hours=25))
    assert post_signed(client, channel, PAYLOAD).status_code == 202
    assert len(_events(world.a.tenant)) == 2


def test_different_keys_with_the_same_body_are_two_events(client, channel, world):
    assert post_signed(client, channel, PAYLOAD, idempotency_key="a").status_code == 202
    assert post_signed(client, channel, PAYLOAD, idempotency_key="b").status_code == 202
    assert len(_events(world.a.tenant)) == 2


def test_an_overlong_idempotency_key_is_400(client, channel):
    assert post_signed(client, channel, PAYLOAD, idempotency_key="k" * 201).status_code == 400


def test_events_land_in_the_channels_tenant_only(client, channel, world):
    post_signed(client, channel, PAYLOAD)
    assert len(_events(world.a.tenant)) == 1
    assert _events(world.b.tenant) == []


def test_a_garbled_content_length_is_400_not_500(client, channel):
    response = client.post(
        f"/hooks/{channel.key}/",
        data=b"{}",
        content_type="application/json",
        CONTENT_LENGTH="12abc",
    )
    assert response.status_code == 400


def test_a_body_that_is_not_json_reads_in_the_inbox_in_the_readers_language(client, channel, world):
    from django.utils import translation

    post_signed(client, channel, None, raw=b'{"phone": "13812345678",}')
    post_signed(client, channel, None, raw="手机 13812345678".encode("gbk"))
    first, second = sorted(_events(world.a.tenant), key=lambda e: e.pk)
    assert first.error_detail == {"code": "body_not_json", "line": 1, "column": 25}
    assert second.error_detail == {"code": "body_not_utf8"}
    with translation.override("zh-hans"):
        assert first.error_text.startswith("请求体不是有效的 JSON（第 1 行第 25 列）")
        assert second.error_text.startswith("请求体不是 UTF-8 文本")
