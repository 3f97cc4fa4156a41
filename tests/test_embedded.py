"""`make run`, for real: from an empty var/, the project's own PostgreSQL and Redis, then
web + worker + beat, driven over HTTP as a new user would.

Runs the same command the Makefile runs (`manage.py run_embedded`) in a scratch var/ with
no DATABASE_URL, REDIS_URL or SECRET_KEY in the environment, and checks:
- the banner, /healthz with the heartbeat that beat schedules and the worker runs;
- a hand-run `manage.py channel_create` and `createsuperuser` while it runs (settings
  from var/local.env; the printed URLs follow PORT);
- a signed webhook becomes a lead that the worker assigns to a rep;
- log-in, the board, the lead page, a customer page, the lead-quality report;
- a crashed child (the web server, killed) is restarted;
- Ctrl-C stops every process, both servers included; a second start keeps the data.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pytest
from django.conf import settings

ROOT = Path(settings.BASE_DIR)
PASSWORD = settings.DEMO_PASSWORD
STRIP = (
    "DATABASE_URL",
    "DATABASE_OWNER_URL",
    "DATABASE_PLATFORM_URL",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "SECRET_KEY",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _processes_using(marker: str) -> dict[int, str]:
    """{pid: command line} of the processes whose environment or command line names
    `marker` (the scratch var/: web, worker, beat and both servers all do)."""
    found = {}
    for proc in Path("/proc").glob("[0-9]*"):
        if proc.name == str(os.getpid()):
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            if marker.encode() in cmdline or marker.encode() in (proc / "environ").read_bytes():
                found[int(proc.name)] = cmdline.replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
    return found


class Stack:
    """`manage.py run_embedded` in the background, its output collected."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.base = f"http://127.0.0.1:{env['PORT']}"
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "run_embedded"],
            cwd=ROOT,
            env=env,
            start_new_session=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            assert self.proc.poll() is None, f"run_embedded exited:\n{self.output[-4000:]}"
            assert time.monotonic() < deadline, f"no {text!r} in:\n{self.output[-4000:]}"
            time.sleep(0.2)

    def manage(self, *args: str, **extra_env: str) -> subprocess.CompletedProcess:
        """A second terminal: manage.py by hand, with nothing but CRM_VAR_DIR set."""
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env={**self.env, **extra_env},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def stop(self) -> int:
        """Ctrl-C."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            raise


def _login(base: str, username: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=30, follow_redirects=False)
    page = client.get("/accounts/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    response = client.post(
        "/accounts/login/",
        data={"username": username, "password": PASSWORD, "csrfmiddlewaretoken": token},
    )
    assert response.status_code == 302, response.text[:500]
    return client


def _sign(secret: str, body: bytes) -> dict[str, str]:
    stamp = str(int(time.time()))
    digest = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256)
    return {
        "Content-Type": "application/json",
        "X-CRM-Timestamp": stamp,
        "X-CRM-Signature": "sha256=" + digest.hexdigest(),
    }


def _poll(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def embedded_env():
    # Not under pytest's tmp_path: as root, PostgreSQL runs as its own system user, which
    # must be able to reach the data folder.
    var = Path(tempfile.mkdtemp(prefix="crm-embedded-"))
    var.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in STRIP}
    env.update(DEBUG="True", CRM_VAR_DIR=str(var), PORT=str(_free_port()), HEARTBEAT_INTERVAL="1")
    yield env
    for pid in _processes_using(str(var)):  # never leave a server behind, even on failure
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    shutil.rmtree(var, ignore_errors=True)


def test_make_run_from_an_empty_var_serves_the_product(embedded_env):
    env = embedded_env
    stack = Stack(env)
    try:
        stack.wait_for("CRM is running on", timeout=600)
        out = stack.output
        assert f"http://127.0.0.1:{env['PORT']}/" in out
        assert "rep1" in out and PASSWORD in out
        assert "embedded PostgreSQL + Redis" in out
        local_env = (Path(env["CRM_VAR_DIR"]) / "local.env").read_text()
        assert f"PUBLIC_BASE_URL=http://127.0.0.1:{env['PORT']}" in local_env
        assert "postgres://crm_app:" in local_env  # the app role, as in production
        assert "postgres://crm_platform:" in local_env  # the BYPASSRLS platform role

        health = _poll(
            lambda: (
                (r := httpx.get(f"{stack.base}/healthz", timeout=5)).status_code == 200
                and r.json()["beat"]["status"] == "ok"
                and r.json()
            ),
            120,
            "the heartbeat",
        )
        assert health["db"] == "ok" and health["broker"] == "ok"

        # A second terminal: the README's commands work with nothing set but CRM_VAR_DIR.
        made = stack.manage(
            "channel_create", "--tenant", "demo", "--type", "web_form", "--name", "官网表单 E2E"
        )
        assert made.returncode == 0, made.stderr
        channel = json.loads(made.stdout)
        assert channel["url"].startswith(f"http://127.0.0.1:{env['PORT']}/hooks/")
        su = stack.manage(
            "createsuperuser",
            "--noinput",
            "--username",
            "root-e2e",
            "--email",
            "root@example.com",
            DJANGO_SUPERUSER_PASSWORD="e2e-Pass-2026-long",
        )
        assert su.returncode == 0, su.stderr

        # A webhook becomes a lead, assigned by the worker.
        body = json.dumps(
            {
                "company": "苏州端到端精密机械有限公司",
                "contact_name": "端木工",
                "phone": "13957123481",
                "message": "需要报价：五轴加工中心两台",
                "company_size": "51-200人",  # the briefs' own example value
            },
            ensure_ascii=False,
        ).encode()
        hook = httpx.post(channel["url"], content=body, headers=_sign(channel["secret"], body))
        assert hook.status_code == 202, hook.text

        manager = _login(stack.base, "manager")
        lead_path = _poll(
            lambda: re.search(
                r'href="(/leads/[0-9a-f-]{36}/)"',
                manager.get("/leads/", params={"q": "端到端精密"}).text,
            ),
            60,
            "the lead from the webhook",
        ).group(1)
        lead_page = _poll(
            lambda: (
                (r := manager.get(lead_path)).status_code == 200
                and "Unassigned" not in r.text
                and "未分配" not in r.text
                and r.text
            ),
            60,
            "the worker to assign the lead",
        )
        assert "苏州端到端精密机械有限公司" in lead_page

        # The pages a new user opens first.
        report = manager.get("/reports/lead-quality/")
        assert report.status_code == 200 and "官网表单 E2E" in report.text
        rep = _login(stack.base, "rep1")
        board = rep.get("/board/")
        assert board.status_code == 200 and 'data-testid="board-header"' in board.text
        # A customer page, opened from a lead of the rep's board (the way a rep gets there).
        customer = None
        for lead in dict.fromkeys(re.findall(r'href="(/leads/[0-9a-f-]{36}/)"', board.text)):
            customer = re.search(r'href="(/customers/[0-9a-f-]{36}/)"', rep.get(lead).text)
            if customer:
                break
        assert customer, "no lead on rep1's board has a customer"
        page = rep.get(customer.group(1))
        assert page.status_code == 200, page.text[:2000]
        assert 'id="panel-timeline"' in page.text  # the customer 360's lazy timeline
        timeline = rep.get(customer.group(1) + "panels/timeline/", headers={"HX-Request": "true"})
        assert timeline.status_code == 200 and 'id="customer-timeline"' in timeline.text

        # A crashed child comes back.
        web = [p for p, cmd in _processes_using(env["CRM_VAR_DIR"]).items() if "runserver" in cmd]
        assert len(web) == 1, web
        os.kill(web[0], signal.SIGKILL)
        stack.wait_for("[web   ] restarting", timeout=30)
        _poll(lambda: _ok(f"{stack.base}/accounts/login/"), 60, "the web server to come back")
    finally:
        code = stack.stop()
    assert code == 0, stack.output[-4000:]
    assert "stopped." in stack.output
    time.sleep(0.5)
    assert not _processes_using(env["CRM_VAR_DIR"]), "a process outlived Ctrl-C"

    # A second start keeps the data and is quick: no new demo, the channel still there.
    again = Stack(env)
    try:
        again.wait_for("CRM is running on", timeout=180)
        assert "demo leads already there" in again.output
        admin = _login(again.base, "manager")
        assert "苏州端到端精密机械有限公司" in admin.get(lead_path).text
    finally:
        assert again.stop() == 0, again.output[-4000:]
    time.sleep(0.5)
    assert not _processes_using(env["CRM_VAR_DIR"]), "a process outlived Ctrl-C"


def _ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_second_make_run_on_a_taken_port_says_so(embedded_env):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", int(embedded_env["PORT"])))
        taken.listen()
        result = subprocess.run(
            [sys.executable, "manage.py", "run_embedded"],
            cwd=ROOT,
            env=embedded_env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert result.returncode != 0
    assert f"127.0.0.1:{embedded_env['PORT']} is taken" in result.stderr
    assert "PORT=8001 make run" in result.stderr
    time.sleep(0.5)
    assert not _processes_using(embedded_env["CRM_VAR_DIR"]), "the servers outlived the refusal"
