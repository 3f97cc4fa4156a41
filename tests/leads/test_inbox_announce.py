"""The webhook's cost and the inbox's announcements (issue 15's burst).

An accepted webhook is the key's one cross-tenant read and one tenant transaction of a
few statements, without savepoints. Its event is not a task of its own: the tenant's
inbox is announced (`leads.process_inbound_events`) once while a task is waiting, and
that task works the received events off in batches, each in its own transaction. The
guarantees stay: the event is stored before the answer, a lost announcement is queued
again by the re-drive sweep, a broker or a cache that is down costs no event.
"""

from __future__ import annotations

import base64
import json
import logging
import socket
import threading

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from crm.celery import app
from crm.tenancy import tenant_context
from leads.intake import services
from leads.models import ChannelType, EventStatus, InboundEvent, Lead
from leads.tasks import process_inbound_events, redrive_inbound_events
from tests.conftest import platform_db
from tests.leads.factories import make_channel, make_event, post_signed

pytestmark = pytest.mark.django_db

INBOX_TASK = "leads.process_inbound_events"


def queued() -> list[tuple[str, list]]:
    """The messages waiting in the broker's intake queue (the inbox's, crm/settings.py's
    CELERY_TASK_ROUTES), oldest first: (task name, arguments)."""
    with app.connection_for_write() as conn:
        raw = conn.default_channel.client.lrange("intake", 0, -1)
    messages = [json.loads(m) for m in reversed(raw)]  # LPUSH: the newest is first
    return [(m["headers"]["task"], json.loads(base64.b64decode(m["body"]))[0]) for m in messages]


@pytest.fixture
def inbox(world):
    """An empty queue and no announcement mark left for the world's tenants."""
    app.control.purge()
    for tenant in (world.a.tenant, world.b.tenant):
        services.announcement_taken(tenant.pk)
    yield
    app.control.purge()


def events(tenant) -> list[InboundEvent]:
    with tenant_context(tenant):
        return list(InboundEvent.objects.order_by("pk"))


# --- the accept path ------------------------------------------------------------------------


@pytest.mark.parametrize("channel_type", [ChannelType.WEB_FORM, ChannelType.HELPDESK])
@pytest.mark.django_db(transaction=True)
def test_an_accepted_webhook_is_one_transaction_of_eight_statements(
    world, client, inbox, channel_type
):
    channel = make_channel(world.a.tenant, type=channel_type)
    post_signed(client, channel, {"external_id": "warm-up", "phone": "13957123480"})
    body = {"external_id": "T-1", "phone": "13957123481"}

    with CaptureQueriesContext(connection) as ctx:
        response = post_signed(client, channel, body)
    assert response.status_code == 202, response.content
    statements = [q["sql"] for q in ctx.captured_queries]
    # The key's cross-tenant read, then BEGIN, the tenant setting, the channel, the
    # replay lock and look-up (an id), the insert, COMMIT.
    assert "leads_channel_by_key" in statements[0]
    assert statements[1] == "BEGIN" and statements[-1] == "COMMIT"
    assert statements.count("BEGIN") == 1
    assert not [s for s in statements if "SAVEPOINT" in s]
    assert len(statements) == 8, statements

    # A replay: the first event read instead of the insert.
    with CaptureQueriesContext(connection) as ctx:
        again = post_signed(client, channel, body)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    replay = [q["sql"] for q in ctx.captured_queries]
    assert len(replay) == 8 and not [s for s in replay if s.startswith("INSERT")]

    # A forged signature: the channel read, nothing stored.
    with CaptureQueriesContext(connection) as ctx:
        forged = post_signed(client, channel, {"phone": "13957123482"}, secret="x" * 43)
    assert forged.status_code == 401
    assert [q["sql"] for q in ctx.captured_queries][1:] == [*statements[1:4], "COMMIT"]
    assert [e.status for e in events(world.a.tenant)] == [EventStatus.RECEIVED] * 2


def test_an_idempotency_key_used_again_is_found_under_the_keys_lock(world, client, inbox):
    channel = make_channel(world.a.tenant)
    first = post_signed(client, channel, {"phone": "13957123481"}, idempotency_key="order-1")
    with CaptureQueriesContext(connection) as ctx:
        again = post_signed(client, channel, {"phone": "13957123482"}, idempotency_key="order-1")
    assert first.status_code == 202 and again.status_code == 200
    assert again.json() == {"event": first.json()["event"], "duplicate": True}
    assert any("inbound-key:" in q["sql"] for q in ctx.captured_queries)
    assert len(events(world.a.tenant)) == 1


# --- announcements --------------------------------------------------------------------------


def post_committed(client, channel, payload, capture):
    """post_signed, with what the request left for after its commit run."""
    with capture(execute=True):
        response = post_signed(client, channel, payload)
    assert response.status_code == 202, response.content
    return response


def test_a_burst_of_webhooks_announces_each_tenants_inbox_once(
    world, client, inbox, django_capture_on_commit_callbacks
):
    a, b = world.a.tenant, world.b.tenant
    channel, other = make_channel(a), make_channel(b)
    for i in range(5):
        post_committed(
            client, channel, {"phone": f"1395712{i:04d}"}, django_capture_on_commit_callbacks
        )
    post_committed(client, other, {"phone": "13957129990"}, django_capture_on_commit_callbacks)
    assert queued() == [(INBOX_TASK, [a.pk]), (INBOX_TASK, [b.pk])]

    # The task as a worker runs it: every event of the burst, in one batch.
    assert process_inbound_events(a.pk) == 5
    rows = events(a)
    assert [(r.status, r.attempts) for r in rows] == [(EventStatus.PROCESSED, 1)] * 5
    assert len({r.lead_id for r in rows}) == 5
    assert all(r.processed_at is not None for r in rows)
    assert [e.status for e in events(b)] == [EventStatus.RECEIVED]  # its own task's
    # It took the mark down when it started: the next event announces again.
    post_committed(client, channel, {"phone": "13957129999"}, django_capture_on_commit_callbacks)
    assert queued()[2:] == [(INBOX_TASK, [a.pk])]
    assert process_inbound_events(a.pk) == 1
    assert process_inbound_events(a.pk) == 0  # a redundant task: one claim, nothing left


@pytest.mark.django_db(transaction=True)
def test_the_inbox_task_works_in_batches_and_hands_a_longer_backlog_on(world, inbox):
    t = world.a.tenant
    channel = make_channel(t)
    for i in range(7):
        make_event(t, channel, payload={"phone": f"1395712{i:04d}"})

    with CaptureQueriesContext(connection) as ctx:
        assert services.inbound_events_drain(t, limit=3, batches=2) == 6
    statements = [q["sql"] for q in ctx.captured_queries]
    assert statements.count("BEGIN") == statements.count("COMMIT") == 2  # a transaction each
    # The oldest six; the seventh goes to the task it announced.
    assert [e.status for e in events(t)] == [EventStatus.PROCESSED] * 6 + [EventStatus.RECEIVED]
    assert queued() == [(INBOX_TASK, [t.pk])]
    assert services.inbound_events_drain(t, limit=3, batches=2) == 1
    assert queued() == [(INBOX_TASK, [t.pk])]  # a batch not full: nothing more to announce
    with tenant_context(t):
        assert Lead.objects.count() == 7


@pytest.mark.django_db(transaction=True)
def test_two_workers_draining_one_inbox_make_one_lead_per_event(world, inbox):
    """Two workers, each with its own connection, run the tenant's inbox task at once
    (an announcement and a re-drive, say) over 120 events, each phone three times."""
    t = world.a.tenant
    channel = make_channel(t)
    for i in range(120):
        make_event(t, channel, payload={"phone": f"1395712{i % 40:04d}", "message": f"#{i}"})
    start = threading.Barrier(2)
    errors, done = [], []

    def worker():
        try:
            start.wait(timeout=10)
            done.append(process_inbound_events(t.pk))
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert sum(done) == 120  # every event claimed exactly once
    rows = events(t)
    assert {(r.status, r.attempts) for r in rows} == {(EventStatus.PROCESSED, 1)}
    with tenant_context(t):
        assert len({r.lead_id for r in rows}) == Lead.objects.count() == 120
        originals = list(Lead.objects.originals())
        assert len(originals) == 40  # the batches ran one after another: revisits found
        assert Lead.objects.filter(revisit_of__isnull=False).count() == 80


def test_the_inbox_task_of_an_inactive_tenant_ends_quietly(world, inbox):
    t = world.a.tenant
    make_event(t, make_channel(t))
    t.is_active = False
    t.save(update_fields=["is_active"])
    assert process_inbound_events(t.pk) == 0
    assert [e.status for e in events(t)] == [EventStatus.RECEIVED]


def _dead_redis_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


def test_without_the_cache_every_event_is_announced(
    world, client, inbox, settings, django_capture_on_commit_callbacks
):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": _dead_redis_url(),
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    t = world.a.tenant
    channel = make_channel(t)
    for i in range(2):
        post_committed(
            client, channel, {"phone": f"1395712{i:04d}"}, django_capture_on_commit_callbacks
        )
    assert queued() == [(INBOX_TASK, [t.pk])] * 2
    assert process_inbound_events(t.pk) == 2
    assert process_inbound_events(t.pk) == 0


def test_a_failed_announcement_drops_its_mark_so_the_next_event_tries_again(
    world, client, inbox, caplog, django_capture_on_commit_callbacks
):
    from tests.leads.test_hooks_hostile_transport import _use_broker

    working = app.conf.broker_url
    t = world.a.tenant
    channel = make_channel(t)
    _use_broker(_dead_redis_url())
    try:
        with caplog.at_level(logging.ERROR, logger="leads.intake.services"):
            for i in range(2):
                # Stored and answered 202: the sweep queues it later.
                post_committed(
                    client,
                    channel,
                    {"phone": f"1395712{i:04d}"},
                    django_capture_on_commit_callbacks,
                )
    finally:
        _use_broker(working)
    failed = [r for r in caplog.records if r.getMessage().startswith("could not queue inbound")]
    assert len(failed) == 2  # each event tried: no mark was left behind
    post_committed(client, channel, {"phone": "13957129999"}, django_capture_on_commit_callbacks)
    assert queued() == [(INBOX_TASK, [t.pk])]


# --- the re-drive sweep ---------------------------------------------------------------------


@platform_db
def test_the_sweep_queues_one_inbox_task_per_tenant_with_stale_events(world, inbox):
    old = timezone.now() - timezone.timedelta(minutes=3)
    a, b = world.a.tenant, world.b.tenant
    for tenant, count in ((a, 3), (b, 1)):
        channel = make_channel(tenant)
        for i in range(count):
            make_event(tenant, channel, payload={"phone": f"1395712{i:04d}"}, received_at=old)
    make_event(a, payload={"phone": "13957129999"})  # fresh: its announcement may be in flight

    assert redrive_inbound_events() == 4
    assert sorted(queued()) == sorted([(INBOX_TASK, [a.pk]), (INBOX_TASK, [b.pk])])
    assert process_inbound_events(a.pk) == 4  # the stale ones and the fresh one
    assert process_inbound_events(b.pk) == 1
