"""`make run`: migrate, load the demo once, then web + Celery worker + beat in the foreground.

On the embedded stack (no DATABASE_URL / REDIS_URL, crm/embedded.py) manage.py has
already started PostgreSQL and Redis; this command keeps them running while it runs and
they stop after it, when no other manage.py holds them. Ctrl-C (or SIGTERM) stops web,
worker and beat, then the servers. A child that dies is restarted (after 1 s, doubling up
to 30 s while it keeps dying), and so is a server: one crash never takes the stack down.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from crm import embedded
from crm.demo import DEMO_USERS

RESTART_MAX_DELAY = 30.0  # seconds
STABLE_AFTER = 60.0  # seconds a child must live for its restart delay to start over
SERVER_CHECK_EVERY = 5.0  # seconds


def _port_free(host: str, port: int) -> bool:
    """Whether a server could listen there, as the web server would (SO_REUSEADDR: the
    connections a previous run left in TIME_WAIT do not count)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


class Child:
    def __init__(self, name: str, argv: list[str], out) -> None:
        self.name, self.argv, self.out = name, argv, out
        self.proc: subprocess.Popen | None = None
        self.started = 0.0
        self.delay = 1.0
        self.restart_at: float | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(  # noqa: S603 — our own fixed argv
            self.argv,
            cwd=settings.BASE_DIR,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            # Its own session: Ctrl-C in the terminal reaches only the supervisor, which
            # stops the children in order.
            start_new_session=True,
            text=True,
            bufsize=1,
        )
        self.started = time.monotonic()
        self.restart_at = None
        threading.Thread(target=self._pump, args=(self.proc,), daemon=True).start()

    def _pump(self, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            self.out(f"[{self.name:6}] {line.rstrip()}")

    def check(self) -> None:
        """Restart a child that exited, after its delay."""
        now = time.monotonic()
        if self.restart_at is not None:
            if now >= self.restart_at:
                self.out(f"[{self.name:6}] restarting")
                self.start()
            return
        if self.proc.poll() is None:
            return
        if now - self.started > STABLE_AFTER:
            self.delay = 1.0
        self.out(
            f"[{self.name:6}] exited with code {self.proc.returncode}; "
            f"restarting in {self.delay:.0f} s"
        )
        self.restart_at = now + self.delay
        self.delay = min(self.delay * 2, RESTART_MAX_DELAY)

    def terminate(self) -> None:
        if self.proc and self.proc.poll() is None:
            # The main process only: Celery stops its own pool children (warm shutdown).
            self.proc.terminate()

    def wait(self, deadline: float) -> None:
        if not self.proc:
            return
        try:
            self.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


class Command(BaseCommand):
    help = "Migrate, load the demo tenant once, and run web + worker + beat together."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", default=os.environ.get("PORT", "8000"))
        parser.add_argument("--no-demo", action="store_true", help="Do not load the demo.")

    def handle(self, *args, host: str, port: str, no_demo: bool, **options):
        started = time.monotonic()
        if not _port_free(host, int(port)):
            raise CommandError(
                f"{host}:{port} is taken (another `make run`?): stop it, or choose another "
                "port, e.g. PORT=8001 make run"
            )
        stack = embedded.ACTIVE
        base_url = f"http://{host}:{port}"
        if stack and "PUBLIC_BASE_URL" in stack.applied:
            # The URLs that channel_create and the QR codes print follow PORT, for the
            # children and for a hand-run manage.py alike.
            stack.update(PUBLIC_BASE_URL=base_url)
            os.environ["PUBLIC_BASE_URL"] = settings.PUBLIC_BASE_URL = base_url
        call_command("migrate", interactive=False, verbosity=0)
        if not no_demo:
            call_command("seed_demo")
        python = sys.executable
        manage = str(settings.BASE_DIR / "manage.py")
        celery = [python, "-m", "celery", "-A", "crm"]
        children = [
            Child(name, argv, self.stdout.write)
            for name, argv in (
                ("web", [python, manage, "runserver", f"{host}:{port}", "--noreload"]),
                (
                    "worker",
                    [*celery, "worker", "-l", "INFO", "--concurrency", "2", "-n", "embedded@%h"],
                ),
                ("beat", [*celery, "beat", "-l", "INFO", "--pidfile="]),
            )
        ]
        stopping = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stopping.set())
        for child in children:
            child.start()
        if self._wait_for_web(host, port, stopping):
            self._banner(host, port, stack, time.monotonic() - started)
        next_server_check = time.monotonic() + SERVER_CHECK_EVERY
        while not stopping.wait(0.3):
            for child in children:
                child.check()
            if stack and time.monotonic() >= next_server_check:
                next_server_check = time.monotonic() + SERVER_CHECK_EVERY
                try:
                    restarted = stack.ensure_running()
                except embedded.EmbeddedError as exc:
                    self.stderr.write(f"[stack ] cannot restart a server: {exc}")
                else:
                    for name in restarted:
                        self.stderr.write(f"[stack ] {name} had stopped; started it again")
        self.stdout.write("stopping web, worker and beat …")
        for child in children:
            child.terminate()
        deadline = time.monotonic() + 20
        for child in children:
            child.wait(deadline)
        if stack:
            self.stdout.write("stopping PostgreSQL and Redis …")
            if not stack.release():
                self.stdout.write("(another manage.py still uses them: they stop after it)")
        self.stdout.write("stopped.")

    @staticmethod
    def _wait_for_web(host: str, port: str, stopping: threading.Event) -> bool:
        """Until the web server accepts connections (the banner's URL then works)."""
        deadline = time.monotonic() + 120
        while not stopping.is_set() and time.monotonic() < deadline:
            try:
                socket.create_connection((host, int(port)), timeout=1).close()
                return True
            except OSError:
                stopping.wait(0.1)
        return not stopping.is_set()

    def _banner(self, host: str, port: str, stack, seconds: float) -> None:
        width = max(len(u) for u, _, _ in DEMO_USERS)
        where = (
            f"embedded PostgreSQL + Redis, data in {stack.var}"
            if stack
            else "PostgreSQL and Redis from DATABASE_URL / REDIS_URL"
        )
        lines = [
            "",
            f"  CRM is running on  http://{host}:{port}/   (ready in {seconds:.1f} s)",
            f"  (admin: http://{host}:{port}/admin/ · health: http://{host}:{port}/healthz)",
            f"  {where}",
            f"  demo logins (password: {settings.DEMO_PASSWORD}):",
            *[f"    {u:<{width}}  {role.label}" for u, _, role in DEMO_USERS],
            "  Ctrl-C stops web, worker, beat and the servers.",
            "",
        ]
        self.stdout.write("\n".join(str(line) for line in lines))
