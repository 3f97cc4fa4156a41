"""Notifications (F44) when sending fails: errors stored, the SSRF guard, retries with
backoff, the circuit breaker, the due sweep and one end-to-end run on a real worker."""

from __future__ import annotations

import json
import socket
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone, translation
from werkzeug import Response

from crm.models import CircuitState, Delivery, DeliveryAttempt, DeliveryStatus, Notification, Outlet
from crm.notify import backoff, claim_due_deliveries
from crm.notify_adapters import DeliveryError, resolve_destination
from crm.tasks import deliver, deliver_due
from crm.tenancy import tenant_context
from tests.conftest import platform_db, wait_for
from tests.crm.notify_helpers import (
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- Failures ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_http_error_is_stored_on_the_delivery_and_the_channel(world, httpserver):
    channel = make_channel(world.a.tenant, "sms", httpserver.url_for("/sms"))
    httpserver.expect_request("/sms").respond_with_data("gateway down", status=500)
    with_phone(world.a.rep, "13800000001")
    ping(world.a, [world.a.rep])
    delivery = one(world.a.tenant, Delivery)
    before = timezone.now()
    assert run(delivery) == DeliveryStatus.FAILED

    delivery = refreshed(delivery)
    assert delivery.http_status == 500
    assert delivery.last_error == "HTTP 500: gateway down"
    assert delivery.attempts == 1
    assert before + timedelta(seconds=29) < delivery.next_attempt_at
    assert delivery.next_attempt_at < timezone.now() + timedelta(seconds=31)
    channel = refreshed(channel)
    assert (channel.last_status, channel.consecutive_failures) == (500, 1)
    assert channel.last_error == "HTTP 500: gateway down"
    assert channel.state == CircuitState.CLOSED
    attempt = one(world.a.tenant, DeliveryAttempt)
    assert (attempt.ok, attempt.http_status, attempt.error) == (
        False,
        500,
        "HTTP 500: gateway down",
    )


@pytest.mark.django_db
def test_a_robot_errcode_is_a_failure_even_with_http_200(world, httpserver):
    make_channel(world.a.tenant, "wecom", httpserver.url_for("/wecom"))
    httpserver.expect_request("/wecom").respond_with_json(
        {"errcode": 93000, "errmsg": "invalid webhook url"}
    )
    ping(world.a, [world.a.rep])
    delivery = one(world.a.tenant, Delivery, channel__kind="wecom")
    assert run(delivery) == DeliveryStatus.FAILED
    delivery = refreshed(delivery)
    assert delivery.http_status == 200
    assert delivery.last_error == "errcode 93000: invalid webhook url"
    assert refreshed(delivery.channel).last_error == "errcode 93000: invalid webhook url"


@pytest.mark.django_db
def test_a_private_address_is_refused_when_the_guard_is_on(world, httpserver, settings):
    settings.NOTIFY_ALLOW_PRIVATE_URLS = False
    make_channel(world.a.tenant, "wecom", httpserver.url_for("/wecom"))
    httpserver.expect_request("/wecom").respond_with_json({"errcode": 0})
    ping(world.a, [world.a.rep])
    delivery = one(world.a.tenant, Delivery, channel__kind="wecom")
    assert run(delivery) == DeliveryStatus.FAILED  # stored, not raised
    assert received(httpserver) == []
    delivery = refreshed(delivery)
    assert delivery.last_error.startswith("Refused: localhost is a loopback")
    assert delivery.http_status is None
    assert refreshed(delivery.channel).last_error == delivery.last_error


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x",
        "http://localhost:8080/x",
        "http://10.1.2.3/x",
        "http://172.16.0.1/x",
        "http://192.168.1.10/x",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/x",
        "http://0.0.0.0/x",
        "http://[::1]/x",
        "http://[fe80::1]/x",
        "http://[fd00::1]/x",
        "http://[::ffff:127.0.0.1]/x",
    ],
)
def test_the_guard_refuses_non_public_destinations(url, settings):
    settings.NOTIFY_ALLOW_PRIVATE_URLS = False
    with pytest.raises(DeliveryError, match="Refused"):
        resolve_destination(url)


@pytest.mark.parametrize("url", ["", "ftp://example.com/x", "not a url", "http:///x"])
def test_the_guard_refuses_what_is_not_an_http_url(url, settings):
    settings.NOTIFY_ALLOW_PRIVATE_URLS = False
    with pytest.raises(DeliveryError):
        resolve_destination(url)


def test_the_guard_pins_a_public_destination_to_the_checked_address(settings):
    settings.NOTIFY_ALLOW_PRIVATE_URLS = False
    destination = resolve_destination("https://8.8.8.8:8443/robot/send?key=k")
    assert str(destination.url) == "https://8.8.8.8:8443/robot/send?key=k"
    assert destination.headers == {"Host": "8.8.8.8:8443"}
    assert destination.extensions == {"sni_hostname": "8.8.8.8"}


@pytest.mark.django_db
def test_an_unreachable_port_and_a_bad_url_are_stored_not_raised(world):
    make_channel(world.a.tenant, "sms", f"http://127.0.0.1:{free_port()}/sms")
    make_channel(world.a.tenant, "wecom", "wecom-robot-without-a-scheme")
    with_phone(world.a.rep, "13800000001")
    ping(world.a, [world.a.rep])
    sms = one(world.a.tenant, Delivery, channel__kind="sms")
    wecom = one(world.a.tenant, Delivery, channel__kind="wecom")
    assert run(sms) == run(wecom) == DeliveryStatus.FAILED
    assert refreshed(sms).last_error.startswith("ConnectError")
    assert "http://" in refreshed(wecom).last_error
    assert refreshed(sms.channel).last_error.startswith("ConnectError")


def test_the_backoff_is_30_s_times_4_to_the_attempt():
    assert [backoff(n) for n in (1, 2, 3)] == [
        timedelta(seconds=30),
        timedelta(minutes=2),
        timedelta(minutes=8),
    ]


def _make_due(delivery):
    with tenant_context(delivery.tenant):
        Delivery.objects.filter(pk=delivery.pk).update(
            next_attempt_at=timezone.now() - timedelta(seconds=1)
        )


def _cool_down(channel):
    with tenant_context(channel.tenant):
        Outlet.objects.filter(pk=channel.pk).update(
            opened_at=timezone.now() - timedelta(seconds=channel.cooldown_seconds + 1)
        )


def _sweep_and_run():
    """One beat: claim what is due, run each (as the worker would)."""
    claimed = claim_due_deliveries()
    return [deliver(tenant_id, pk) for tenant_id, pk in claimed]


@platform_db
def test_retries_back_off_and_the_delivery_dies_after_four_attempts(world, httpserver):
    channel = make_channel(world.a.tenant, "sms", httpserver.url_for("/sms"))
    httpserver.expect_request("/sms").respond_with_data("busy", status=503)
    with_phone(world.a.rep, "13800000001")
    ping(world.a, [world.a.rep])
    delivery = one(world.a.tenant, Delivery)

    assert run(delivery) == "failed"
    waits = []
    for _attempt in (2, 3):
        delivery = refreshed(delivery)
        waits.append(delivery.next_attempt_at - timezone.now())
        assert _sweep_and_run() == []  # not due yet
        _make_due(delivery)
        assert _sweep_and_run() == ["failed"]
    delivery = refreshed(delivery)
    waits.append(delivery.next_attempt_at - timezone.now())
    assert [round(w.total_seconds() / 30) for w in waits] == [1, 4, 16]

    # The third failure in a row paused the channel: the retry is held, not attempted.
    assert refreshed(channel).state == CircuitState.OPEN
    _make_due(delivery)
    assert _sweep_and_run() == ["held"]
    assert len(received(httpserver)) == 3
    # After the cool-down it is the half-open probe: the fourth attempt fails, it is dead.
    _cool_down(channel)
    assert _sweep_and_run() == ["dead"]
    delivery = refreshed(delivery)
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("dead", 4, None)
    assert len(rows(world.a.tenant, DeliveryAttempt, delivery=delivery)) == 4
    assert len(received(httpserver)) == 4
    assert _sweep_and_run() == []


def _three_failures(world, httpserver):
    channel = make_channel(world.a.tenant, "sms", httpserver.url_for("/sms"))
    httpserver.expect_request("/sms").respond_with_data("down", status=500)
    with_phone(world.a.rep, "13800000001")
    for n in range(3):
        ping(world.a, [world.a.rep], n=n)
    for delivery in rows(world.a.tenant, Delivery):
        assert run(delivery) == "failed"
    return refreshed(channel)


@platform_db
def test_three_failures_in_a_row_pause_the_channel_and_tell_the_admins(world, httpserver):
    channel = _three_failures(world, httpserver)
    assert channel.state == CircuitState.OPEN and channel.opened_at is not None
    assert channel.consecutive_failures == 3

    told = one(world.a.tenant, Notification, event="notify.channel_paused")
    with tenant_context(world.a.tenant):
        assert told.recipient == world.a.admin
    assert told.params["channel"] == "sms channel"
    assert told.params["error"] == "HTTP 500: down"
    assert told.link == f"/admin/crm/outlet/{channel.pk}/change/"
    with translation.override("en"):
        assert told.title == "Notification channel sms channel paused"

    # Further deliveries are held, not attempted; every attempt made is logged.
    ping(world.a, [world.a.rep], n=99)
    held = rows(world.a.tenant, Delivery, status="pending")
    assert [run(d) for d in held] == ["held"]
    assert len(received(httpserver)) == 3
    assert len(rows(world.a.tenant, DeliveryAttempt)) == 3
    assert all(not a.ok for a in rows(world.a.tenant, DeliveryAttempt))
    # Before the cool-down the sweep has no probe to offer.
    assert claim_due_deliveries() == []


@platform_db
def test_a_successful_probe_after_the_cool_down_closes_the_circuit(world, httpserver):
    channel = _three_failures(world, httpserver)
    for n in (10, 11):
        ping(world.a, [world.a.rep], n=n)
    for delivery in rows(world.a.tenant, Delivery, status="pending"):
        assert run(delivery) == "held"

    httpserver.clear_all_handlers()
    httpserver.expect_request("/sms").respond_with_json({"ok": True})
    _cool_down(channel)
    [probe] = claim_due_deliveries()  # one probe only: the oldest held delivery
    assert deliver(*probe) == "sent"

    channel = refreshed(channel)
    assert channel.state == CircuitState.CLOSED and channel.consecutive_failures == 0
    assert channel.opened_at is None and channel.last_error == ""
    # The other held delivery is released and goes out.
    [released] = rows(world.a.tenant, Delivery, status="pending")
    assert run(released) == "sent"
    assert [r.json["text"] for r in received(httpserver)[3:]] == [
        "Ping 10\nBody 10",
        "Ping 11\nBody 11",
    ]


@platform_db
def test_a_failed_probe_opens_the_circuit_again(world, httpserver):
    channel = _three_failures(world, httpserver)
    ping(world.a, [world.a.rep], n=10)
    [held] = rows(world.a.tenant, Delivery, status="pending")
    assert run(held) == "held"

    _cool_down(channel)
    assert _sweep_and_run() == ["failed"]
    channel = refreshed(channel)
    assert channel.state == CircuitState.OPEN
    assert channel.opened_at > timezone.now() - timedelta(seconds=5)
    assert channel.consecutive_failures == 4
    assert claim_due_deliveries() == []  # a new cool-down has begun
    # The admins were told once, when it first opened.
    assert len(rows(world.a.tenant, Notification, event="notify.channel_paused")) == 1


@pytest.mark.django_db
def test_a_switched_off_channel_is_not_used(world):
    make_channel(world.a.tenant, "sms", "http://127.0.0.1:9/sms", is_active=False)
    with_phone(world.a.rep, "13800000001")
    ping(world.a, [world.a.rep])
    assert rows(world.a.tenant, Delivery) == []


# --- The due sweep ------------------------------------------------------------------------


@platform_db
def test_the_sweep_claims_each_due_delivery_once(world, httpserver):
    make_channel(world.a.tenant, "sms", httpserver.url_for("/sms"))
    httpserver.expect_request("/sms").respond_with_json({})
    with_phone(world.a.rep, "13800000001")
    ping(world.a, [world.a.rep])
    delivery = one(world.a.tenant, Delivery)
    # A pending delivery whose broker message was lost is due once the grace has passed.
    assert claim_due_deliveries() == []
    _make_due(delivery)

    first, second = claim_due_deliveries(), claim_due_deliveries()
    assert first == [(world.a.tenant.pk, delivery.pk)] and second == []
    assert [deliver(*c) for c in first * 2] == ["sent", None]  # a duplicate message too
    assert len(received(httpserver)) == 1


@platform_db
def test_two_sweeps_and_two_workers_at_once_send_once(world, httpserver, settings):
    settings.NOTIFY_ALLOW_PRIVATE_URLS = True
    make_channel(world.a.tenant, "sms", httpserver.url_for("/sms"))
    httpserver.expect_request("/sms").respond_with_handler(
        lambda request: (time.sleep(0.3), Response("{}", content_type="application/json"))[1]
    )
    with_phone(world.a.rep, "13800000001")
    ping(world.a, [world.a.rep])
    delivery = one(world.a.tenant, Delivery)
    _make_due(delivery)

    barrier = threading.Barrier(2)
    claims, results, errors = [], [], []

    def beat_and_worker():
        try:
            barrier.wait()
            claimed = claim_due_deliveries()
            claims.append(claimed)
            barrier.wait()
            # Both workers also get the same message (a re-drive racing the first one).
            results.append(deliver(world.a.tenant.pk, delivery.pk))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=beat_and_worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert sorted(len(c) for c in claims) == [0, 1]
    assert sorted(results, key=str) == [None, "sent"]
    assert len(received(httpserver)) == 1
    assert refreshed(delivery).status == "sent"


# --- On a real worker -----------------------------------------------------------------------


@platform_db
def test_a_real_worker_delivers_and_the_sweep_retries(
    world, httpserver, settings, celery_worker_thread
):
    settings.NOTIFY_ALLOW_PRIVATE_URLS = True
    make_channel(world.a.tenant, "wecom", httpserver.url_for("/wecom"))
    httpserver.expect_oneshot_request("/wecom").respond_with_data("oops", status=502)
    httpserver.expect_request("/wecom").respond_with_json({"errcode": 0, "errmsg": "ok"})
    with_phone(world.a.rep, "13800000001")

    ping(world.a, [world.a.rep], n=1, link="/leads/")  # commits: the worker gets it
    delivery = one(world.a.tenant, Delivery, channel__kind="wecom")
    assert wait_for(lambda: refreshed(delivery).status == "failed")
    assert refreshed(delivery).http_status == 502

    _make_due(delivery)
    assert deliver_due() == 1  # the beat task queues the retry; the worker sends it
    assert wait_for(lambda: refreshed(delivery).status == "sent")
    bodies = [json.loads(r.get_data()) for r in received(httpserver)]
    assert len(bodies) == 2
    assert bodies[-1]["text"]["mentioned_mobile_list"] == ["13800000001"]
    assert len(rows(world.a.tenant, DeliveryAttempt, delivery=delivery)) == 2
