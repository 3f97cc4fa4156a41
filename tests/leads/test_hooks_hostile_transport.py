"""Hostile transport at /hooks/<key>/ never answers 500 (issue 11): chunked bodies are
read or answered 411, a broker that is down still gets the stored payload acknowledged (and
re-driven later), and gunicorn delivers a signed chunked body whole."""

from __future__ import annotations

import io
import json
import socket
import time

import pytest
from django.urls import reverse

from crm.tenancy import tenant_context
from leads.intake.hooks import MAX_BODY, sign
from leads.models import EventStatus, InboundEvent
from tests.conftest import platform_db
from tests.leads.factories import make_channel, post_signed
from tests.leads.hooks_hostile_helpers import (
    LEAD,
    _events,
    channel_fixture,  # noqa: F401 (the channel fixture)
)

pytestmark = pytest.mark.django_db


# --- chunked bodies ---------------------------------------------------------------------------


def _post_chunked(client, channel, body: bytes, *, terminated: bool, sign_body=None):
    ts = str(int(time.time()))
    environ = {
        "CONTENT_LENGTH": "",
        "HTTP_TRANSFER_ENCODING": "chunked",
        "wsgi.input": io.BytesIO(body),
        "HTTP_X_CRM_TIMESTAMP": ts,
        "HTTP_X_CRM_SIGNATURE": sign(channel.secret, ts, sign_body or body),
    }
    if terminated:
        environ["wsgi.input_terminated"] = True
    return client.generic(
        "POST", f"/hooks/{channel.key}/", b"", content_type="application/json", **environ
    )


def test_a_signed_chunked_body_is_read_when_the_server_ends_the_stream(client, channel, world):
    body = (LEAD % "1").encode()
    response = _post_chunked(client, channel, body, terminated=True)
    assert response.status_code == 202
    [event] = _events(world.a.tenant)
    assert event.payload["phone"] == "13957123481"


def test_a_chunked_body_is_411_where_the_server_does_not_end_the_stream(client, channel, world):
    response = _post_chunked(client, channel, b"{}", terminated=False)
    assert response.status_code == 411
    assert response.json() == {
        "error": "a chunked body is not accepted here: send a Content-Length"
    }
    assert _events(world.a.tenant) == []


def test_a_chunked_body_over_the_limit_is_413(client, channel, world):
    response = _post_chunked(client, channel, b" " * (MAX_BODY + 1), terminated=True)
    assert response.status_code == 413
    assert _events(world.a.tenant) == []


# --- the broker is down ------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _use_broker(url: str) -> None:
    from crm.celery import app

    app.conf.broker_url = url
    app.conf.broker_write_url = url  # publishing uses this one when it is set
    # Forget the app's pools (kombu keeps them per URL, open, for when the URL is back).
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def broker_down(settings):
    """Celery's broker is a Redis port where nothing listens (connection refused)."""
    from crm.celery import app

    working, write = app.conf.broker_url, app.conf.get("broker_write_url")
    dead = f"redis://127.0.0.1:{_free_port()}/0"
    settings.CELERY_BROKER_URL = dead
    _use_broker(dead)
    yield working
    _use_broker(working)
    app.conf.broker_write_url = write


@platform_db  # the re-drive sweep finds stale events across tenants
def test_with_the_broker_down_a_stored_webhook_is_acknowledged_and_re_driven_later(
    client, world, broker_down, caplog
):
    from celery.contrib.testing.worker import start_worker
    from django.utils import timezone

    from crm.celery import app
    from leads.tasks import redrive_inbound_events
    from tests.conftest import wait_for

    channel = make_channel(world.a.tenant)
    response = post_signed(client, channel, {"phone": "13957123481", "company": "杭州蓝海科技"})

    assert response.status_code == 202
    assert response.json()["duplicate"] is False
    [event] = _events(world.a.tenant)
    assert event.status == EventStatus.RECEIVED
    # (The records, not caplog.text: after a test worker has set up Celery's logging, the
    # text of a record with a traceback may come out empty.)
    logged = [r.getMessage() for r in caplog.records if r.name == "leads.intake.services"]
    assert any(f"could not queue inbound event {event.pk} " in m for m in logged), logged

    # The broker is back; two minutes later the beat's re-drive sweep finds the event.
    _use_broker(broker_down)
    with tenant_context(world.a.tenant):
        InboundEvent.objects.filter(pk=event.pk).update(
            received_at=timezone.now() - timezone.timedelta(minutes=3)
        )
    app.control.purge()
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        assert redrive_inbound_events() == 1

        def processed():
            return _events(world.a.tenant)[0].status == EventStatus.PROCESSED

        assert wait_for(processed)
    with tenant_context(world.a.tenant):
        assert InboundEvent.objects.get().lead.phone == "+8613957123481"


@pytest.mark.django_db(transaction=True)
def test_with_the_broker_down_re_processing_in_the_inbox_answers(world, login, broker_down):
    from tests.leads.factories import make_event

    event = make_event(world.a.tenant, status=EventStatus.FAILED, error="x")
    response = login(world.a.admin).post(
        reverse("admin:leads_inboundevent_changelist"),
        {"action": "reprocess", "_selected_action": [event.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert _events(world.a.tenant)[0].status == EventStatus.RECEIVED  # the sweep takes it


# --- a real server --------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_gunicorn_delivers_a_signed_chunked_body(world, tmp_path):
    """gunicorn de-chunks the body and ends the stream: the webhook reads it whole. Its
    broker is a dead port, so this also shows a stored payload acknowledged without one."""
    import http.client
    import os
    import subprocess
    import sys
    from pathlib import Path

    from django.db import connection

    from tests.conftest import wait_for

    channel = make_channel(world.a.tenant)
    db = connection.settings_dict
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": (
            f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
        ),
        "CELERY_BROKER_URL": f"redis://127.0.0.1:{_free_port()}/0",
        "DEBUG": "false",
    }
    gunicorn = Path(sys.executable).with_name("gunicorn")
    log = (tmp_path / "gunicorn.log").open("w")
    server = subprocess.Popen(
        [gunicorn, "crm.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def listening():
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    try:
        assert wait_for(listening, timeout=30), (tmp_path / "gunicorn.log").read_text()
        body = (LEAD % '"分块"').encode()
        ts = str(int(time.time()))
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request(
            "POST",
            f"/hooks/{channel.key}/",
            body=iter([body[:10], body[10:]]),  # no Content-Length: sent chunked
            headers={
                "Content-Type": "application/json",
                "X-CRM-Timestamp": ts,
                "X-CRM-Signature": sign(channel.secret, ts, body),
            },
            encode_chunked=True,
        )
        response = conn.getresponse()
        answer = json.loads(response.read())
        conn.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()

    assert response.status == 202, answer
    [event] = _events(world.a.tenant)
    assert answer == {"event": str(event.public_id), "duplicate": False}
    assert event.payload["x"] == "分块"
    assert event.status == EventStatus.RECEIVED
