"""`make run`'s stack, for real: SQLite + filesystem broker, web + worker + beat together.

Starts the same commands the Makefile runs in a scratch var/ directory, waits until the
heartbeat that beat schedules has been executed by the worker, then stops it with SIGINT
as Ctrl-C would and checks that no process is left behind.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(settings.BASE_DIR)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return None, ""


def _processes_using(marker: str) -> list[int]:
    pids = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if marker.encode() in environ.read_bytes():
                pids.append(int(environ.parent.name))
        except OSError:
            continue
    return [p for p in pids if p != os.getpid()]


@pytest.fixture
def embedded_env(tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "DATABASE_OWNER_URL", "REDIS_URL", "CELERY_BROKER_URL")
    }
    env.update(
        DEBUG="True",
        CRM_VAR_DIR=str(tmp_path / "var"),
        PORT=str(_free_port()),
        HEARTBEAT_INTERVAL="1",
    )
    return env


def test_make_run_stack_serves_and_runs_worker_and_beat(embedded_env):
    env = embedded_env
    python = sys.executable
    for cmd in (["manage.py", "migrate", "--noinput"], ["manage.py", "seed_demo"]):
        subprocess.run(
            [python, *cmd],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            timeout=300,
        )
    proc = subprocess.Popen(
        [python, "manage.py", "run_embedded"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{env['PORT']}"
    try:
        deadline = time.monotonic() + 90
        report = {}
        while time.monotonic() < deadline:
            status, body = _get(f"{base}/healthz")
            if status == 200:
                report = json.loads(body)
                if report["beat"]["status"] == "ok":
                    break
            time.sleep(0.5)
        assert report.get("db") == "ok" and report.get("broker") == "ok", report
        assert report["beat"]["status"] == "ok", f"no heartbeat from beat + worker: {report}"
        status, body = _get(f"{base}/accounts/login/")
        assert status == 200 and "登录" in body
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, output[-3000:]
    assert f"http://127.0.0.1:{env['PORT']}/" in output
    assert "rep1" in output and "demo-pass-2026" in output
    time.sleep(0.5)
    assert _get(f"{base}/healthz")[0] is None  # web is gone
    assert not _processes_using(env["CRM_VAR_DIR"]), "a process outlived Ctrl-C"
