"""Notification screens (F44): the bell, the list, opening one, preferences, the admin."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from crm import notify_events as notify_module
from crm.models import (
    AuditEvent,
    CircuitState,
    Delivery,
    DeliveryStatus,
    Notification,
    NotificationPreference,
    Outlet,
)
from crm.notify import EventType, notify, register_event
from crm.tasks import deliver
from crm.tenancy import tenant_context
from tests.conftest import platform_db

pytestmark = pytest.mark.django_db

PING = "test.ping"


@pytest.fixture(autouse=True)
def _setup(settings):
    settings.NOTIFY_ALLOW_PRIVATE_URLS = True
    register_event(EventType(key=PING, label="Ping", title="Ping %(n)s", body="Body %(n)s"))
    yield
    notify_module._registry.pop(PING, None)


def ping(side, recipients, n=1, link=""):
    with tenant_context(side.tenant):
        return notify(event=PING, recipients=recipients, params={"n": n}, link=link)


def make_channel(tenant, kind, url="", **fields):
    with tenant_context(tenant):
        return Outlet.objects.create(
            tenant=tenant, kind=kind, name=f"{kind} channel", url=url, **fields
        )


def stored(tenant, model, **filters):
    with tenant_context(tenant):
        return list(model.objects.filter(**filters).order_by("pk"))


# --- Bell and list --------------------------------------------------------------------------


def test_the_bell_shows_the_unread_count_and_is_refreshed_by_htmx(world, en):
    for n in range(3):
        ping(world.a, [world.a.rep], n=n)
    ping(world.a, [world.a.manager])
    ping(world.b, [world.b.rep])
    with tenant_context(world.a.tenant):
        Notification.objects.filter(params={"n": 0}).update(read_at=timezone.now())

    client = en(world.a.rep)
    fragment = client.get(reverse("notifications_bell"), headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert "<html" not in fragment.text
    assert 'data-testid="unread-count"' in fragment.text
    assert ">2</span>" in fragment.text
    assert "no-cache" in fragment.headers["Cache-Control"]

    page = client.get(reverse("home"), follow=True).text
    assert f'hx-get="{reverse("notifications_bell")}"' in page
    assert 'hx-trigger="load, every 30s"' in page
    assert "vendor/htmx/htmx.min.js" in page


def test_the_bell_has_no_badge_with_nothing_unread(world, en):
    fragment = en(world.a.rep).get(reverse("notifications_bell")).text
    assert 'data-testid="notifications-bell"' in fragment
    assert "unread-count" not in fragment


def test_the_list_shows_only_the_members_own_notifications(world, en):
    ping(world.a, [world.a.rep], n=1)
    ping(world.a, [world.a.rep], n=2)
    ping(world.a, [world.a.manager], n=3)
    ping(world.b, [world.b.rep], n=4)
    with tenant_context(world.a.tenant):
        Notification.objects.filter(params={"n": 1}).update(read_at=timezone.now())

    text = en(world.a.rep).get(reverse("notifications")).text
    assert "Ping 2" in text and "Ping 1" in text
    assert "Ping 3" not in text and "Ping 4" not in text
    assert text.index("Ping 2") < text.index("Ping 1")  # newest first
    assert text.count('data-unread="true"') == 1
    assert text.count('data-unread="false"') == 1
    assert "Mark all read" in text


def test_the_list_is_paginated_by_50(world, en):
    with tenant_context(world.a.tenant):
        for n in range(51):
            notify(event=PING, recipients=[world.a.rep], params={"n": n})
    client = en(world.a.rep)
    first = client.get(reverse("notifications")).text
    assert first.count('data-testid="notification"') == 50
    assert "Page 1 of 2" in first
    second = client.get(reverse("notifications"), {"page": 2}).text
    assert second.count('data-testid="notification"') == 1
    assert "Ping 0<" in second  # the oldest


def test_opening_one_marks_it_read_and_follows_its_link(world, en):
    [mine] = ping(world.a, [world.a.rep], link="/leads/")
    client = en(world.a.rep)
    response = client.get(reverse("notification_open", args=[mine.public_id]))
    assert response.status_code == 302 and response["Location"] == "/leads/"
    [mine] = stored(world.a.tenant, Notification, pk=mine.pk)
    assert mine.read_at is not None


def test_an_outside_link_is_not_followed(world, en):
    [mine] = ping(world.a, [world.a.rep], link="https://evil.example/")
    response = en(world.a.rep).get(reverse("notification_open", args=[mine.public_id]))
    assert response["Location"] == reverse("notifications")


def test_someone_elses_or_another_tenants_notification_is_not_found(world, en):
    [colleagues] = ping(world.a, [world.a.manager])
    [foreign] = ping(world.b, [world.b.rep])
    client = en(world.a.rep)
    for other in (colleagues, foreign):
        assert client.get(reverse("notification_open", args=[other.public_id])).status_code == 404
    assert stored(world.a.tenant, Notification, pk=colleagues.pk)[0].read_at is None


def test_mark_all_read(world, en):
    ping(world.a, [world.a.rep], n=1)
    ping(world.a, [world.a.rep], n=2)
    ping(world.a, [world.a.manager], n=3)
    client = en(world.a.rep)
    assert client.get(reverse("notifications_read_all")).status_code == 405
    response = client.post(reverse("notifications_read_all"))
    assert response.status_code == 302
    assert all(n.read_at for n in stored(world.a.tenant, Notification, recipient=world.a.rep))
    assert stored(world.a.tenant, Notification, recipient=world.a.manager)[0].read_at is None
    assert "unread-count" not in client.get(reverse("notifications_bell")).text


def test_notification_texts_follow_the_readers_language(world, login):
    with tenant_context(world.a.tenant):
        notify(
            event="notify.channel_paused",
            recipients=[world.a.admin],
            params={"channel": "短信", "failures": 3, "error": "HTTP 500", "cooldown": 300},
        )
    client = login(world.a.admin)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    assert "Notification channel 短信 paused" in client.get(reverse("notifications")).text


# --- Preferences ------------------------------------------------------------------------------


def test_preferences_list_the_events_of_the_members_role(world, en):
    make_channel(world.a.tenant, "sms", "http://127.0.0.1:9/sms")
    rep_page = en(world.a.rep).get(reverse("notification_preferences")).text
    assert 'data-event="test.ping"' in rep_page
    assert 'data-event="notify.channel_paused"' not in rep_page  # admins only
    admin_page = en(world.a.admin).get(reverse("notification_preferences")).text
    assert 'data-event="notify.channel_paused"' in admin_page

    # In-app always on and not changeable; SMS set up; the robots are not.
    assert 'value="in_app" aria-label="Ping · In-app" checked disabled' in rep_page
    assert 'value="sms" aria-label="Ping · SMS">' in rep_page
    assert 'value="wecom" aria-label="Ping · WeCom robot" disabled' in rep_page
    hint = '<small class="fw-normal text-body-tertiary">not set up by your admin</small>'
    assert rep_page.count(hint) == 2  # the WeCom and DingTalk columns


def test_preferences_are_saved_and_honoured(world, en):
    make_channel(world.a.tenant, "sms", "http://127.0.0.1:9/sms")
    client = en(world.a.rep)
    response = client.post(
        reverse("notification_preferences"),
        {f"event:{PING}": ["sms", "wecom"], "phone": "138 0000-0001"},
    )
    assert response.status_code == 302, response.text
    [pref] = stored(world.a.tenant, NotificationPreference, membership=world.a.rep)
    assert (pref.event, pref.channels) == (PING, ["in_app", "sms"])  # wecom is not set up
    with tenant_context(world.a.tenant):
        world.a.rep.refresh_from_db()
    assert world.a.rep.phone == "13800000001"

    ping(world.a, [world.a.rep, world.a.manager])
    [delivery] = stored(world.a.tenant, Delivery)
    assert delivery.to == "13800000001"
    page = client.get(reverse("notification_preferences")).text
    assert 'value="sms" aria-label="Ping · SMS" checked>' in page
    assert 'value="13800000001"' in page

    # Back to the event's default: the row goes.
    client.post(reverse("notification_preferences"), {"phone": ""})
    assert stored(world.a.tenant, NotificationPreference) == []
    ping(world.a, [world.a.rep])
    assert len(stored(world.a.tenant, Delivery)) == 1


def test_a_choice_for_a_channel_not_set_up_now_is_kept(world, en):
    with tenant_context(world.a.tenant):
        NotificationPreference.objects.create(
            tenant=world.a.tenant, membership=world.a.rep, event=PING, channels=["in_app", "sms"]
        )
    # No SMS channel now: its box is disabled, not posted, and the choice survives.
    en(world.a.rep).post(reverse("notification_preferences"), {"phone": ""})
    [pref] = stored(world.a.tenant, NotificationPreference)
    assert pref.channels == ["in_app", "sms"]


def test_a_bad_phone_number_is_refused(world, en):
    response = en(world.a.rep).post(reverse("notification_preferences"), {"phone": "call me"})
    assert response.status_code == 200
    assert "Enter digits only" in response.text
    with tenant_context(world.a.tenant):
        world.a.rep.refresh_from_db()
    assert world.a.rep.phone == ""


# --- Admin --------------------------------------------------------------------------------------


def test_the_admin_shows_a_failing_channel_without_its_secrets(world, en, httpserver):
    channel = make_channel(
        world.a.tenant,
        "sms",
        httpserver.url_for("/sms"),
        token="tok-very-secret",
        secret="sec-very-secret",
    )
    httpserver.expect_request("/sms").respond_with_data("nope", status=500)
    world.a.rep.phone = "13800000001"
    with tenant_context(world.a.tenant):
        world.a.rep.save()
    with tenant_context(world.a.tenant):
        NotificationPreference.objects.create(
            tenant=world.a.tenant, membership=world.a.rep, event=PING, channels=["sms"]
        )
    ping(world.a, [world.a.rep])
    [delivery] = stored(world.a.tenant, Delivery)
    deliver(world.a.tenant.pk, delivery.pk)

    client = en(world.a.admin)
    listing = client.get(reverse("admin:crm_outlet_changelist")).text
    assert "HTTP 500: nope" in listing and ">500<" in listing
    assert "very-secret" not in listing
    change = client.get(reverse("admin:crm_outlet_change", args=[channel.pk])).text
    assert "very-secret" not in change

    page = client.get(reverse("admin:crm_delivery_change", args=[delivery.pk])).text
    assert "HTTP 500: nope" in page
    assert "Delivery attempts" in page  # the inline log of attempts
    listing = client.get(reverse("admin:crm_delivery_changelist"), {"status": "failed"}).text
    assert "HTTP 500: nope" in listing
    assert client.get(reverse("admin:crm_notification_changelist")).status_code == 200


def test_saving_a_channel_keeps_a_blank_secret_and_audits_no_value(world, en):
    channel = make_channel(
        world.a.tenant, "dingtalk", "https://oapi.dingtalk.com/robot/send", secret="SECold"
    )
    client = en(world.a.admin)
    url = reverse("admin:crm_outlet_change", args=[channel.pk])
    form = {
        "kind": "dingtalk",
        "name": "钉钉群",
        "url": "https://oapi.dingtalk.com/robot/send?access_token=x",
        "secret": "",
        "token": "",
        "is_active": "on",
        "cooldown_seconds": "300",
    }
    assert client.post(url, form).status_code == 302
    [channel] = stored(world.a.tenant, Outlet)
    assert (channel.name, channel.secret) == ("钉钉群", "SECold")

    assert client.post(url, {**form, "secret": "SECnew"}).status_code == 302
    [channel] = stored(world.a.tenant, Outlet)
    assert channel.secret == "SECnew"
    for event in stored(world.a.tenant, AuditEvent, action="admin.change"):
        assert "SEC" not in str(event.changes)


def test_one_channel_per_kind(world, en):
    make_channel(world.a.tenant, "sms", "http://127.0.0.1:9/sms")
    response = en(world.a.admin).post(
        reverse("admin:crm_outlet_add"),
        {"kind": "sms", "name": "again", "url": "https://sms.example/", "cooldown_seconds": 300},
    )
    assert response.status_code == 200
    assert "already has a channel of this kind" in response.text
    response = en(world.a.admin).post(
        reverse("admin:crm_outlet_add"),
        {"kind": "wecom", "name": "no url", "url": "", "cooldown_seconds": 300},
    )
    assert "need a URL" in response.text


def test_a_private_address_is_refused_when_saving_a_channel(world, en, settings):
    settings.NOTIFY_ALLOW_PRIVATE_URLS = False
    response = en(world.a.admin).post(
        reverse("admin:crm_outlet_add"),
        {"kind": "sms", "name": "SMS", "url": "http://192.168.1.5/sms", "cooldown_seconds": 300},
    )
    assert response.status_code == 200
    assert "on a private network" in response.text
    assert stored(world.a.tenant, Outlet) == []


def test_the_admin_sends_a_test_message(world, en, httpserver):
    channel = make_channel(world.a.tenant, "wecom", httpserver.url_for("/wecom"))
    httpserver.expect_oneshot_request("/wecom").respond_with_json({"errcode": 0})
    httpserver.expect_oneshot_request("/wecom").respond_with_data("bad gateway", status=502)
    client = en(world.a.admin)
    url = reverse("admin:crm_outlet_changelist")
    action = {"action": "send_test_message", "_selected_action": [channel.pk]}

    page = client.post(url, action, follow=True).text
    assert "test message sent" in page
    request, _response = httpserver.log[0]
    assert "CRM" in request.json["text"]["content"]

    page = client.post(url, action, follow=True).text
    assert "the test failed: HTTP 502: bad gateway" in page
    [channel] = stored(world.a.tenant, Outlet)
    assert (channel.last_status, channel.last_error) == (502, "HTTP 502: bad gateway")


def test_the_admin_closes_a_circuit_and_held_deliveries_go(world, en):
    channel = make_channel(
        world.a.tenant,
        "sms",
        "http://127.0.0.1:9/sms",
        state=CircuitState.OPEN,
        opened_at=timezone.now(),
        consecutive_failures=3,
    )
    world.a.rep.phone = "13800000001"
    with tenant_context(world.a.tenant):
        world.a.rep.save()
    with tenant_context(world.a.tenant):
        NotificationPreference.objects.create(
            tenant=world.a.tenant, membership=world.a.rep, event=PING, channels=["sms"]
        )
    ping(world.a, [world.a.rep])
    [delivery] = stored(world.a.tenant, Delivery)
    assert deliver(world.a.tenant.pk, delivery.pk) == DeliveryStatus.HELD

    client = en(world.a.admin)
    page = client.post(
        reverse("admin:crm_outlet_changelist"),
        {"action": "close_circuit", "_selected_action": [channel.pk]},
        follow=True,
    ).text
    assert "1 held delivery queued" in page
    [channel] = stored(world.a.tenant, Outlet)
    assert (channel.state, channel.consecutive_failures) == (CircuitState.CLOSED, 0)
    assert stored(world.a.tenant, Delivery)[0].status == DeliveryStatus.PENDING
    assert stored(world.a.tenant, AuditEvent, action="notify.close_circuit")


def test_reps_cannot_reach_the_notification_admin(world, login):
    client = login(world.a.rep)
    assert client.get(reverse("admin:crm_outlet_changelist")).status_code == 403


@platform_db
def test_the_platform_superuser_sets_up_a_channel_for_a_tenant(world, login, django_user_model):
    root = django_user_model.objects.create_superuser("root", "root@example.invalid", "pw")
    client = login(root)
    response = client.post(
        reverse("admin:crm_outlet_add"),
        {
            "tenant": world.b.tenant.pk,
            "kind": "sms",
            "name": "SMS",
            "url": "https://sms.example/send",
            "token": "t0ken",
            "is_active": "on",
            "cooldown_seconds": "120",
        },
    )
    assert response.status_code == 302, response.text
    [channel] = stored(world.b.tenant, Outlet)
    assert (channel.token, channel.cooldown_seconds) == ("t0ken", 120)
    assert stored(world.a.tenant, Outlet) == []
