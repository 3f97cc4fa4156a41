"""The web server as production runs it (crm/gunicorn.conf.py, crm/wsgi_worker.py): clients
that announce a body and stop sending it do not stall the site.

A real gunicorn with the repository's configuration, on a free port, against the test
database: eight raw connections send a webhook's headers with `Content-Length: 1000` and
10 bytes of body, then go quiet. While they hang, /healthz answers; each of them is
answered 408 (or closed) once the read timeout has passed, never 500. A view that reads a
body which stops arriving answers 408 (crm.security.UnreadableBodyMiddleware).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from tests.factories import TenantFactory
from tests.leads.factories import make_channel

ROOT = Path(settings.BASE_DIR)
STALLED = 8
# Generous bounds, as failures, not measurements: a stalled request is released after
# WEB_IO_TIMEOUT (2 s here) plus at most gunicorn's 5 s drain and a 1 s close.
PATIENCE = 10.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _database_url() -> str:
    db = settings.DATABASES["default"]
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "127.0.0.1"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{db['USER']}{password}@{host}{port}/{db['NAME']}"


def _http(port: int, raw: bytes, timeout: float = PATIENCE) -> bytes:
    """Send `raw`, return everything the server answers until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(raw)
        return _read_all(conn)


def _read_all(conn: socket.socket) -> bytes:
    data = b""
    while True:
        try:
            chunk = conn.recv(65536)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def _get(port: int, path: str) -> bytes:
    return _http(
        port, f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
    )


@pytest.fixture
def gunicorn(transactional_db):
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "DEBUG": "False",
        "SECURE_SSL_REDIRECT": "False",
        "PORT": str(port),
        "WEB_IO_TIMEOUT": "2",
    }
    env.pop("DATABASE_OWNER_URL", None)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "crm/gunicorn.conf.py", "crm.wsgi:application"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError):
                if _get(port, "/healthz").startswith(b"HTTP/1.1 200"):
                    break
            assert process.poll() is None, process.stdout.read().decode()
            assert time.monotonic() < deadline, "gunicorn did not answer /healthz"
            time.sleep(0.5)
        yield port
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_stalled_bodies_hold_no_worker_and_are_answered_408(gunicorn):
    port = gunicorn
    channel = make_channel(TenantFactory(slug="slowbody"))
    url = f"/hooks/{channel.key}/"
    complete = (
        f"POST {url} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: 2\r\nConnection: close\r\n\r\n{{}}".encode()
    )
    # Warm the processes' imports and connections with complete (unsigned) requests.
    for _ in range(4):
        assert _http(port, complete).startswith(b"HTTP/1.1 401")

    stalled = []
    for _ in range(STALLED):
        conn = socket.create_connection(("127.0.0.1", port), timeout=PATIENCE * 2)
        conn.sendall(
            f"POST {url} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"X-CRM-Timestamp: {int(time.time())}\r\nX-CRM-Signature: sha256=00\r\n"
            f"Content-Length: 1000\r\n\r\n".encode()
            + b'{"phone":"'
        )
        stalled.append(conn)
    try:
        # While they hang, the site answers (a timeout here fails the test).
        health = _get(port, "/healthz")
        assert health.startswith(b"HTTP/1.1 200"), health[:200]
        webhook = _http(port, complete)  # and a webhook that arrives whole is read
        assert webhook.startswith(b"HTTP/1.1 401"), webhook[:200]

        # Each stalled request is answered 408 with the webhook API's JSON error, and
        # closed: never a 500, never held open (a recv timeout here fails the test).
        for conn in stalled:
            answer = _read_all(conn)
            assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), answer[:300]
            assert answer.endswith(b'{"error": "the request body did not arrive in time"}')
    finally:
        for conn in stalled:
            conn.close()
