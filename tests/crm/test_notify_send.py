"""Notifications (F44): notify() and each adapter against a real HTTP server (WeCom and
DingTalk robots, the SMS gateway, e-mail), in the reader's and the tenant's language.

Failures, retries, the circuit breaker and the due sweep: test_notify_failures.py."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import urllib.parse

import pytest
from django.utils import translation

from crm.models import (
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    Notification,
    NotificationPreference,
    Outlet,
)
from crm.notify import admins_of, event_types, managers_of, notify
from crm.notify_adapters import dingtalk_sign
from crm.tenancy import NoTenantError, tenant_context
from tests.crm.notify_helpers import (
    PING,
    _private_urls_allowed,  # noqa: F401 (autouse)
    _test_events,  # noqa: F401 (autouse)
    make_channel,
    one,
    ping,
    received,
    refreshed,
    rows,
    run,
    with_phone,
)
from tests.factories import MembershipFactory

# --- notify() ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_notify_writes_one_in_app_row_per_active_recipient(world):
    gone = MembershipFactory(tenant=world.a.tenant, is_active=False)
    written = ping(world.a, [world.a.rep, world.a.rep, world.a.manager, gone], n=7)
    assert [n.recipient_id for n in written] == [world.a.rep.pk, world.a.manager.pk]
    stored = one(world.a.tenant, Notification, recipient=world.a.rep)
    assert (stored.event, stored.params, stored.read_at) == (PING, {"n": 7}, None)
    assert stored.title == "Ping 7" and stored.body == "Body 7"
    # No channel is set up: nothing goes out (e-mail is not among this event's defaults).
    assert rows(world.a.tenant, Delivery) == []
    assert rows(world.b.tenant, Notification) == []


@pytest.mark.django_db
def test_notify_needs_a_tenant_and_a_registered_event(world):
    with pytest.raises(NoTenantError):
        notify(event=PING, recipients=[world.a.rep], params={"n": 1})
    with tenant_context(world.a.tenant), pytest.raises(ValueError, match="unknown"):
        notify(event="no.such.event", recipients=[world.a.rep])


@pytest.mark.django_db
def test_a_member_of_another_tenant_is_never_notified(world):
    assert ping(world.a, [world.b.rep]) == []
    assert rows(world.b.tenant, Notification) == []


@pytest.mark.django_db
def test_the_event_roles_limit_who_receives_it(world):
    with tenant_context(world.a.tenant):
        written = notify(
            event="test.managers_only",
            recipients=[world.a.rep, world.a.manager, world.a.admin],
            params={"n": 1},
        )
    assert [n.recipient_id for n in written] == [world.a.manager.pk]


@pytest.mark.django_db
def test_managers_of_and_admins_of(world):
    with tenant_context(world.a.tenant):
        assert list(managers_of()) == [world.a.manager]
        assert list(admins_of()) == [world.a.admin]
    with tenant_context(world.b.tenant):
        assert list(admins_of(world.b.tenant)) == [world.b.admin]
    assert "notify.channel_paused" in [e.key for e in event_types()]


@pytest.mark.django_db
def test_deliveries_follow_the_preference_else_the_event_default(world):
    make_channel(world.a.tenant, "sms", "http://127.0.0.1:9/sms")
    make_channel(world.a.tenant, "wecom", "http://127.0.0.1:9/wecom", is_active=False)
    rep, manager, admin = (
        with_phone(world.a.rep, "13800000001"),
        with_phone(world.a.manager, "13800000002"),
        with_phone(world.a.admin, "13800000003"),
    )
    with tenant_context(world.a.tenant):
        # The manager wants this event in-app only; the admin by e-mail and WeCom (off).
        NotificationPreference.objects.create(
            tenant=world.a.tenant, membership=manager, event=PING, channels=["in_app"]
        )
        NotificationPreference.objects.create(
            tenant=world.a.tenant, membership=admin, event=PING, channels=["email", "wecom"]
        )
    ping(world.a, [rep, manager, admin])

    deliveries = rows(world.a.tenant, Delivery)
    got = sorted((d.channel.kind, d.to) for d in deliveries)
    assert got == [("email", admin.user.email), ("sms", rep.phone)]
    assert all(d.status == DeliveryStatus.PENDING for d in deliveries)
    # E-mail's channel row is created on first use, so its circuit works like the others'.
    assert one(world.a.tenant, Outlet, kind="email").is_active
    assert len(rows(world.a.tenant, Notification)) == 3


@pytest.mark.django_db
def test_a_robot_posts_once_per_event_mentioning_the_recipients(world, httpserver):
    make_channel(world.a.tenant, "wecom", httpserver.url_for("/wecom"))
    httpserver.expect_request("/wecom", method="POST").respond_with_json(
        {"errcode": 0, "errmsg": "ok"}
    )
    rep = with_phone(world.a.rep, "+86 138-0000-0001")
    ping(world.a, [rep, world.a.manager], n=3, link="/leads/")

    delivery = one(world.a.tenant, Delivery, channel__kind="wecom")
    assert delivery.to == "" and delivery.mentions == ["+86 138-0000-0001"]
    assert run(delivery) == DeliveryStatus.SENT

    [request] = received(httpserver)
    assert request.json == {
        "msgtype": "text",
        "text": {
            "content": "Ping 3\nBody 3\nhttp://127.0.0.1:8000/leads/",
            "mentioned_mobile_list": ["13800000001"],
        },
    }
    delivery = refreshed(delivery)
    assert (delivery.status, delivery.attempts, delivery.http_status) == ("sent", 1, 200)
    assert delivery.sent_at is not None
    attempt = one(world.a.tenant, DeliveryAttempt, delivery=delivery)
    assert attempt.ok and attempt.http_status == 200 and attempt.error == ""
    channel = refreshed(delivery.channel)
    assert channel.last_success_at is not None and channel.last_status == 200


@pytest.mark.django_db
def test_the_dingtalk_robot_signs_its_requests(world, httpserver):
    secret = "SECabc123"
    make_channel(
        world.a.tenant,
        "dingtalk",
        httpserver.url_for("/robot/send") + "?access_token=tok",
        secret=secret,
    )
    httpserver.expect_request("/robot/send", method="POST").respond_with_json(
        {"errcode": 0, "errmsg": "ok"}
    )
    with_phone(world.a.rep, "13800000001")
    before = int(time.time() * 1000)
    ping(world.a, [world.a.rep], n=5)
    assert run(one(world.a.tenant, Delivery, channel__kind="dingtalk")) == "sent"

    [request] = received(httpserver)
    query = urllib.parse.parse_qs(request.query_string.decode())
    assert query["access_token"] == ["tok"]
    timestamp = query["timestamp"][0]
    assert before <= int(timestamp) <= int(time.time() * 1000)
    expected = base64.b64encode(
        hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    ).decode()
    assert query["sign"] == [expected]
    # On the wire the base64 is URL-encoded (+ / = escaped), as DingTalk requires.
    raw = dict(p.split("=", 1) for p in request.query_string.decode().split("&"))
    assert raw["sign"] == urllib.parse.quote_plus(expected)
    assert dingtalk_sign(secret, int(timestamp)) == raw["sign"]
    assert request.json == {
        "msgtype": "text",
        "text": {"content": "Ping 5\nBody 5\n@13800000001"},
        "at": {"atMobiles": ["13800000001"]},
    }


@pytest.mark.django_db
def test_the_sms_gateway_gets_phone_and_text_with_the_bearer_token(world, httpserver):
    make_channel(world.a.tenant, "sms", httpserver.url_for("/sms"), token="s3cret")
    httpserver.expect_request(
        "/sms", method="POST", headers={"Authorization": "Bearer s3cret"}
    ).respond_with_json({"accepted": True})
    with_phone(world.a.rep, "13800000001")
    ping(world.a, [world.a.rep], n=9)
    assert run(one(world.a.tenant, Delivery, channel__kind="sms")) == "sent"
    [request] = received(httpserver)
    assert request.json == {"phone": "13800000001", "text": "Ping 9\nBody 9"}


@pytest.mark.django_db
def test_e_mail_goes_through_djangos_mail_backend(world, mailoutbox):
    with tenant_context(world.a.tenant):
        NotificationPreference.objects.create(
            tenant=world.a.tenant, membership=world.a.rep, event=PING, channels=["email"]
        )
    ping(world.a, [world.a.rep], n=4, link="/leads/")
    delivery = one(world.a.tenant, Delivery, channel__kind="email")
    assert run(delivery) == "sent"
    [mail] = mailoutbox
    assert mail.to == [world.a.rep.user.email]
    assert mail.subject == "Ping 4"
    assert mail.body == "Body 4\nhttp://127.0.0.1:8000/leads/"
    assert refreshed(delivery).http_status is None


@pytest.mark.django_db
def test_texts_are_rendered_in_the_readers_language_and_sent_in_the_tenants(world, httpserver):
    make_channel(world.a.tenant, "sms", httpserver.url_for("/sms"))
    httpserver.expect_request("/sms").respond_with_json({})
    with_phone(world.a.rep, "13800000001")
    with translation.override("en"), tenant_context(world.a.tenant):
        notify(event="test.translated", recipients=[world.a.rep])
    stored = one(world.a.tenant, Notification)
    with translation.override("en"):
        assert stored.title == "Sales manager"
    with translation.override("zh-hans"):
        assert stored.title == "销售经理"
    with translation.override("en"):  # the worker's language does not matter
        run(one(world.a.tenant, Delivery))
    assert received(httpserver)[0].json["text"] == "销售经理"
