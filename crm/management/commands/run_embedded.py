"""Web, Celery worker and beat in one foreground command (the `make run` default).

Ctrl-C (or SIGTERM) stops all three; if one of them dies, the others are stopped too, so
nothing is left running half-alive.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from crm.demo import DEMO_USERS


class Command(BaseCommand):
    help = "Run web + worker + beat together in the foreground."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", default=os.environ.get("PORT", "8000"))

    def handle(self, *args, host: str, port: str, **options):
        python = sys.executable
        manage = str(settings.BASE_DIR / "manage.py")
        commands = {
            "web": [python, manage, "runserver", f"{host}:{port}", "--noreload"],
            "worker": [
                python,
                "-m",
                "celery",
                "-A",
                "crm",
                "worker",
                "-l",
                "INFO",
                "--concurrency",
                "2",
                "-n",
                "embedded@%h",
            ],
            "beat": [python, "-m", "celery", "-A", "crm", "beat", "-l", "INFO", "--pidfile="],
        }
        self._banner(host, port)
        procs: dict[str, subprocess.Popen] = {}
        for name, cmd in commands.items():
            procs[name] = subprocess.Popen(  # noqa: S603 (our own fixed argv)
                cmd,
                cwd=settings.BASE_DIR,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                text=True,
                bufsize=1,
            )
            threading.Thread(target=self._pump, args=(name, procs[name]), daemon=True).start()

        stopping = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stopping.set())
        exit_code = 0
        while not stopping.is_set():
            for name, proc in procs.items():
                if proc.poll() is not None:
                    self.stderr.write(f"[{name}] exited with {proc.returncode}; stopping all")
                    exit_code = proc.returncode or 1
                    stopping.set()
            time.sleep(0.3)
        self._stop(procs)
        if exit_code:
            sys.exit(exit_code)

    def _pump(self, name: str, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            self.stdout.write(f"[{name:6}] {line.rstrip()}")

    def _stop(self, procs: dict[str, subprocess.Popen]) -> None:
        self.stdout.write("stopping web, worker and beat …")
        for proc in procs.values():
            if proc.poll() is None:
                # The main process only: Celery stops its own pool children (warm shutdown).
                proc.terminate()
        deadline = time.monotonic() + 15
        for proc in procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def _banner(self, host: str, port: str) -> None:
        width = max(len(u) for u, _, _ in DEMO_USERS)
        lines = [
            "",
            f"  CRM is starting on  http://{host}:{port}/",
            f"  (admin: http://{host}:{port}/admin/ · health: http://{host}:{port}/healthz)",
            f"  demo logins (password: {settings.DEMO_PASSWORD}):",
            *[f"    {u:<{width}}  {role.label}" for u, _, role in DEMO_USERS],
            "  Ctrl-C stops web, worker and beat.",
            "",
        ]
        self.stdout.write("\n".join(str(line) for line in lines))
