"""Outages of PostgreSQL and Redis, against a real gunicorn process (issue 11, items 4-5).

The server runs the product's settings with DATABASE_URL pointing at a TCP gate in front
of the test database: closing the gate is PostgreSQL going away (open connections cut,
new ones refused), opening it again is PostgreSQL coming back on the same address. Redis
down is a REDIS_URL where nothing listens, for the cache and the broker alike.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from django.db import connections
from django.test import Client

from crm.tenancy import tenant_context
from leads.intake.hooks import sign
from leads.models import EventStatus, InboundEvent
from tests.conftest import MODEL_BACKEND
from tests.leads.factories import make_channel

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db(transaction=True)

FORM = {
    "company": "宁波恒力液压科技有限公司",
    "contact_name": "王工",
    "phone": "139 5741 2286",
    "industry": "manufacturing",
    "message": "需要液压站报价，年底前交货",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gate:
    """A TCP forwarder to 127.0.0.1:`target`. close(): the server is gone (connections
    cut, new ones refused); open(): it is back on the same port; cut(): a restart that
    the client did not see, connections cut while the port keeps answering."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.port = free_port()
        self._open = threading.Event()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: threading.Thread | None = None
        self.open()

    def open(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.05)
        self._open.set()
        self._listener = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._listener.start()

    def close(self) -> None:
        self._open.clear()
        if self._listener is not None:
            self._listener.join()
        self.cut()

    def cut(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        with listener:
            while self._open.is_set():
                try:
                    client, _ = listener.accept()
                except TimeoutError:
                    continue
                client.settimeout(None)
                try:
                    upstream = socket.create_connection(("127.0.0.1", self.target))
                except OSError:
                    client.close()
                    continue
                with self._lock:
                    self._sockets |= {client, upstream}
                for src, dst in ((client, upstream), (upstream, client)):
                    threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for sock in (src, dst):
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


@contextmanager
def gunicorn(*, database_port: int, redis_url: str, **env):
    """The web server as production runs it (one sync worker, so one kept connection)."""
    db = connections["default"].settings_dict
    port = free_port()
    environ = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.server_settings",
        "DATABASE_URL": (
            f"postgres://{db['USER']}:{db['PASSWORD']}@127.0.0.1:{database_port}/{db['NAME']}"
        ),
        "REDIS_URL": redis_url,
        "SECRET_KEY": "test-only-secret-key-0123456789abcdef0123456789",
        "DEBUG": "False",
        **env,
    }
    environ.pop("DATABASE_OWNER_URL", None)
    environ.pop("CELERY_BROKER_URL", None)
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "gunicorn", "crm.wsgi:application"),
                *("--bind", f"127.0.0.1:{port}", "--workers", "1", "--timeout", "60"),
            ],
            cwd=ROOT,
            env=environ,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

        def output() -> str:
            log.flush()
            log.seek(0)
            return log.read()[-6000:]

        try:
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, f"gunicorn exited:\n{output()}"
                assert time.monotonic() < deadline, f"gunicorn did not listen:\n{output()}"
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.2)
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
                client.server_output = output
                yield client
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def database_gate():
    db = connections["default"].settings_dict
    gate = Gate(int(db["PORT"] or 5432))
    yield gate
    gate.close()


def csrf_token(client: httpx.Client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, client.server_output()
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', response.text).group(1)


def signed_webhook(client: httpx.Client, channel, payload: bytes) -> httpx.Response:
    ts = str(int(time.time()))
    return client.post(
        f"/hooks/{channel.key}/",
        content=payload,
        headers={
            "Content-Type": "application/json",
            "X-CRM-Timestamp": ts,
            "X-CRM-Signature": sign(channel.secret, ts, payload),
        },
    )


def body(n: int) -> bytes:
    return json.dumps({"company": "杭州恒远机电有限公司", "n": n}, ensure_ascii=False).encode()


def session_cookie(membership) -> str:
    client = Client()
    client.force_login(membership.user, backend=MODEL_BACKEND)
    session = client.session
    session["crm_tenant_id"] = membership.tenant_id
    session.save()
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def events(tenant) -> list[InboundEvent]:
    with tenant_context(tenant):
        return list(InboundEvent.objects.order_by("id"))


def assert_unavailable_page(response: httpx.Response, output) -> None:
    assert response.status_code == 503, (response.status_code, response.text[:500], output())
    assert 5 <= int(response.headers["Retry-After"]) <= 30
    assert response.headers["Content-Type"].startswith("text/html")
    assert "no-store" in response.headers["Cache-Control"]
    html = response.text
    assert 'data-testid="service-unavailable"' in html
    assert "服务暂时不可用" in html  # Chinese by default
    assert "Traceback" not in html and "OperationalError" not in html


def assert_unavailable_json(response: httpx.Response, output) -> None:
    assert response.status_code == 503, (response.status_code, response.text[:500], output())
    assert 5 <= int(response.headers["Retry-After"]) <= 30
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert body["retry"] is True and body["error"]


@pytest.mark.parametrize("debug", ["False", "True"], ids=["debug-off", "debug-on"])
def test_postgresql_down_answers_503_and_the_next_request_after_it_is_back_succeeds(
    world, database_gate, debug
):
    channel = make_channel(world.a.tenant)
    signed = {"Cookie": f"{settings.SESSION_COOKIE_NAME}={session_cookie(world.a.rep)}"}
    redis = settings.CACHES["default"]["LOCATION"]
    with gunicorn(database_port=database_gate.port, redis_url=redis, DEBUG=debug) as web:
        form = f"/f/{channel.key}/"
        assert web.get("/leads/", headers=signed).status_code == 200
        token = csrf_token(web, form)  # while up: the visitor has the page open

        database_gate.close()
        assert_unavailable_page(web.get(form), web.server_output)
        posted = web.post(form, data={**FORM, "csrfmiddlewaretoken": token})
        assert_unavailable_page(posted, web.server_output)
        signed_in = web.get("/leads/", headers=signed)
        assert_unavailable_page(signed_in, web.server_output)
        english = web.get(form, headers={"Cookie": f"{settings.LANGUAGE_COOKIE_NAME}=en"})
        assert english.status_code == 503
        assert "Service temporarily unavailable" in english.text
        hook = signed_webhook(web, channel, body(1))
        assert_unavailable_json(hook, web.server_output)
        health = web.get("/healthz")
        assert health.status_code == 503
        assert health.json()["db"].startswith("error")
        # A signed-in session makes the middleware query first: still JSON.
        assert_unavailable_json(web.get("/healthz", headers=signed), web.server_output)

        database_gate.open()
        assert web.get(form).status_code == 200, web.server_output()
        hook = signed_webhook(web, channel, body(2))
        assert hook.status_code == 202, web.server_output()
        assert web.get("/leads/", headers=signed).status_code == 200
        assert web.get("/healthz").json()["db"] == "ok"

        # A restart between two requests: the kept connection is dead, and the health
        # check (CONN_HEALTH_CHECKS) replaces it before the request uses it.
        database_gate.cut()
        assert web.get(form).status_code == 200, web.server_output()
        database_gate.cut()
        hook = signed_webhook(web, channel, body(3))
        assert hook.status_code == 202, web.server_output()

    # Only what was acknowledged is stored: the two webhooks answered 202.
    stored = events(world.a.tenant)
    assert [e.payload["n"] for e in stored] == [2, 3]


def test_redis_down_the_form_stores_the_submission_and_thanks_the_visitor(world):
    channel = make_channel(world.a.tenant)
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    database_port = int(connections["default"].settings_dict["PORT"] or 5432)
    with gunicorn(
        database_port=database_port, redis_url=dead_redis, LEAD_FORM_RATE_LIMIT="2"
    ) as web:
        form = f"/f/{channel.key}/"
        token = csrf_token(web, form)
        sent = web.post(form, data={**FORM, "csrfmiddlewaretoken": token})
        assert sent.status_code == 303, (sent.status_code, web.server_output())
        thanks = web.get(sent.headers["Location"])
        assert thanks.status_code == 200
        assert 'data-testid="form-thanks"' in thanks.text

        stored = events(world.a.tenant)
        assert len(stored) == 1
        assert stored[0].status == EventStatus.RECEIVED  # for the re-drive once Redis is back
        assert stored[0].payload["company"] == FORM["company"]

        # The limit holds without Redis: counted from the stored submissions.
        second = {**FORM, "message": "第二次询价：液压缸"}
        assert web.post(form, data={**second, "csrfmiddlewaretoken": token}).status_code == 303
        third = {**FORM, "message": "第三次询价：油泵"}
        refused = web.post(form, data={**third, "csrfmiddlewaretoken": token})
        assert refused.status_code == 429
        assert len(events(world.a.tenant)) == 2

        # Log-in and the signed-in pages need no Redis either (sessions are in PostgreSQL).
        login_token = csrf_token(web, "/accounts/login/")
        signed_in = web.post(
            "/accounts/login/",
            data={
                "username": world.a.rep.user.username,
                "password": settings.DEMO_PASSWORD,
                "csrfmiddlewaretoken": login_token,
            },
        )
        assert signed_in.status_code == 302, web.server_output()
        assert web.get("/leads/").status_code == 200
