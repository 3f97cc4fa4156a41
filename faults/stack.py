"""The private stack of the suite: PostgreSQL and Redis under var/faults/ and the
product's processes (gunicorn, Celery worker, beat) started, killed and restarted at will.

The runner itself never imports Django: it talks HTTP to gunicorn, SQL to PostgreSQL
(psycopg) and runs Django-side set-up in subprocesses (faults/dj.py) with the same
environment as the servers.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psycopg

from crm import embedded

ROOT = Path(__file__).resolve().parent.parent
VAR = Path(os.environ.get("FAULTS_VAR_DIR") or ROOT / "var" / "faults").resolve()
LOGS = VAR / "logs"
PY = sys.executable
QUICK = os.environ.get("FAULTS_QUICK", "") not in ("", "0", "false", "False")
SECRET_KEY = "faults-only-secret-key-never-deploy-0123456789abcdefgh"


def log(message: str) -> None:
    print(f"[faults {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """One product process (its own process group, so a kill takes its children too)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str]):
        self.name, self.argv, self.env = name, argv, env
        self.popen: subprocess.Popen | None = None
        self.starts = 0
        # Supervision (the compose file's `restart: unless-stopped`): a process that exits
        # by itself is started again; one the suite kills or stops on purpose is not.
        self.held_down = False
        self.exits: list[int] = []  # exit codes of the unplanned exits

    def start(self) -> Proc:
        LOGS.mkdir(parents=True, exist_ok=True)
        out = open(LOGS / f"{self.name}.log", "ab")  # noqa: SIM115 — owned by the child
        out.write(f"\n=== start {time.strftime('%H:%M:%S')} {' '.join(self.argv)}\n".encode())
        out.flush()
        self.popen = subprocess.Popen(
            self.argv,
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()
        self.starts += 1
        self.held_down = False
        return self

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def signal_group(self, sig: int) -> None:
        if self.popen is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)

    def kill(self) -> None:
        """SIGKILL to the whole group (the master and its forked children)."""
        self.held_down = True
        self.signal_group(signal.SIGKILL)
        if self.popen is not None:
            self.popen.wait()

    def stop(self, timeout: float = 15) -> None:
        self.held_down = True
        if not self.alive:
            self.signal_group(signal.SIGKILL)  # orphans of a dead master
            return
        self.signal_group(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal_group(signal.SIGKILL)
            self.popen.wait()
        self.signal_group(signal.SIGKILL)


class FaultStack:
    """Private PostgreSQL + Redis (crm.embedded.Stack in var/faults/) and the processes."""

    def __init__(self):
        self.stack = embedded.Stack(VAR)
        self.values: dict[str, str] = {}
        self.procs: list[Proc] = []
        self.port = free_port()
        self.restarts: list[dict] = []  # every unplanned exit, in order
        self._supervisor = threading.Thread(target=self._supervise, daemon=True)
        self._supervisor.start()

    def _supervise(self) -> None:
        """Start again, after 2 s, a product process that exited on its own (as the
        compose file's restart policy and `make run`'s supervisor do): a Celery worker
        exits when it loses the broker at the wrong moment, and is meant to be restarted."""
        while True:
            time.sleep(2)
            for proc in list(self.procs):
                if proc.popen is None or proc.held_down or proc.alive:
                    continue
                code = proc.popen.returncode
                proc.exits.append(code)
                self.restarts.append({"process": proc.name, "exit_code": code})
                log(f"{proc.name} exited by itself (code {code}): restarting it")
                proc.signal_group(signal.SIGKILL)  # orphans of the dead master
                proc.start()

    def unplanned_exits(self) -> dict[str, list[int]]:
        """The processes that exited by themselves and were restarted, with exit codes."""
        return {p.name: list(p.exits) for p in self.procs if p.exits}

    # --- servers -------------------------------------------------------------------
    def start_servers(self) -> None:
        VAR.mkdir(parents=True, exist_ok=True)
        fresh = not (self.stack.pgdata / "PG_VERSION").exists()
        self.values = self.stack.hold()
        conf = self.stack.pgdata / "postgresql.conf"
        text = conf.read_text()
        if "# faults:" not in text:
            # An acknowledged webhook must survive a server restart: commits wait for the
            # disk here (the embedded default trades that for speed on a laptop).
            conf.write_text(
                text + "\n# faults: commits are durable, as in production\n"
                "synchronous_commit = on\nmax_connections = 200\n"
            )
            self.restart_postgres()
        elif fresh:
            self.restart_postgres()

    def stop_servers(self) -> None:
        self.stack.stop()

    @property
    def owner_url(self) -> str:
        return self.values["DATABASE_OWNER_URL"]

    @property
    def app_url(self) -> str:
        return self.values["DATABASE_URL"]

    def restart_postgres(self) -> float:
        """pg_ctl restart -m fast; returns how long the server was away (seconds)."""
        started = time.monotonic()
        self.stack._pg(
            [
                "pg_ctl",
                "-D",
                str(self.stack.pgdata),
                "-l",
                str(self.stack.pgdata / "postgresql.log"),
                "-m",
                "fast",
                "-w",
                "-t",
                "60",
                "restart",
            ]
        )
        return time.monotonic() - started

    def stop_redis(self) -> None:
        self.stack._stop_redis()

    def start_redis(self) -> None:
        """Start Redis again on the same port (the processes keep their REDIS_URL). The
        embedded stack would move to another port if it found this one taken, as it may
        be for a moment by connections of the stopped server in TIME_WAIT."""
        taken, embedded._port_taken = embedded._port_taken, lambda port: False
        try:
            self.values = self.stack._start_redis(self.values)
        finally:
            embedded._port_taken = taken

    def flush_redis(self) -> None:
        import redis

        redis.Redis.from_url(self.values["REDIS_URL"]).flushall()

    def fresh_database(self) -> None:
        """An empty `crm` database, the roles, the schema and the static files."""
        conninfo = embedded_conninfo(self.owner_url, "postgres")
        with psycopg.connect(**conninfo, autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS crm WITH (FORCE)")
        self.manage("setup_roles")
        self.manage("migrate", "--no-input")
        self.manage("collectstatic", "--no-input")

    # --- environment and processes --------------------------------------------------
    def env(self, **extra: str) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DATABASE_", "REDIS_", "CELERY_", "DJANGO_"))
            and k not in ("DEBUG", "SECRET_KEY", "CRM_TEST_DB_SUFFIX", "BEHIND_HTTPS_PROXY")
        }
        env.update(
            DATABASE_URL=self.app_url,
            DATABASE_OWNER_URL=self.owner_url,
            REDIS_URL=self.values["REDIS_URL"],
            SECRET_KEY=SECRET_KEY,
            DEBUG="False",
            CRM_VAR_DIR=str(VAR),
            PUBLIC_BASE_URL=f"http://127.0.0.1:{self.port}",
            ALLOWED_HOSTS="127.0.0.1,localhost",
            LOG_LEVEL="WARNING",
            # Plain HTTP on 127.0.0.1: no redirect to HTTPS, cookies over HTTP.
            SECURE_SSL_REDIRECT="False",
            SECURE_COOKIES="False",
            PYTHONUNBUFFERED="1",
            DJANGO_SETTINGS_MODULE="crm.settings",
        )
        env.update(extra)
        return env

    def manage(self, *args: str, **extra: str) -> str:
        result = subprocess.run(
            [PY, "manage.py", *args],
            cwd=ROOT,
            env=self.env(**extra),
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode:
            raise RuntimeError(f"manage.py {' '.join(args)}: {result.stderr[-3000:]}")
        return result.stdout

    def dj(self, command: str, timeout: float | None = None, **kwargs) -> dict:
        """Run a Django-side helper (faults/dj.py) and return its JSON answer."""
        extra = kwargs.pop("_env", {})
        result = subprocess.run(
            [PY, "-m", "faults.dj", command, json.dumps(kwargs)],
            cwd=ROOT,
            env=self.env(**extra),
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )
        if result.returncode:
            raise RuntimeError(f"faults.dj {command}: {result.stderr[-3000:]}")
        return json.loads(result.stdout.strip().splitlines()[-1])

    def dj_background(self, command: str, **kwargs) -> subprocess.Popen:
        extra = kwargs.pop("_env", {})
        LOGS.mkdir(parents=True, exist_ok=True)
        return subprocess.Popen(
            [PY, "-m", "faults.dj", command, json.dumps(kwargs)],
            cwd=ROOT,
            env=self.env(**extra),
            stdout=subprocess.PIPE,
            stderr=open(LOGS / f"dj-{command}.log", "ab"),
            text=True,
        )

    def web(self, *, workers: int = 2, threads: int | None = None, **extra: str) -> Proc:
        argv = [
            str(Path(PY).with_name("gunicorn")),
            "--config",
            "crm/gunicorn.conf.py",  # the production configuration (threads, read timeouts)
            "crm.wsgi:application",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(workers),
        ]
        if threads is not None:
            argv += ["--threads", str(threads)]
        proc = Proc("gunicorn", argv, self.env(**extra)).start()
        self.procs.append(proc)
        self.wait_http()
        return proc

    def worker(self, name: str = "worker", concurrency: int = 2, **extra: str) -> Proc:
        argv = [
            str(Path(PY).with_name("celery")),
            "-A",
            "crm",
            "worker",
            "--concurrency",
            str(concurrency),
            "--loglevel",
            "WARNING",
            "-n",
            f"{name}@%h",
        ]
        proc = Proc(name, argv, self.env(**extra)).start()
        self.procs.append(proc)
        return proc

    def beat(self, name: str = "beat", **extra: str) -> Proc:
        schedule = VAR / f"{name}-schedule"
        argv = [
            str(Path(PY).with_name("celery")),
            "-A",
            "crm",
            "beat",
            "--loglevel",
            "WARNING",
            "--pidfile",
            "",
            "-s",
            str(schedule),
        ]
        proc = Proc(name, argv, self.env(**extra)).start()
        self.procs.append(proc)
        return proc

    def stop_procs(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        self.procs.clear()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_http(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                httpx.get(self.base_url + "/healthz", timeout=5)
                return
            except httpx.HTTPError:
                time.sleep(0.3)
        raise RuntimeError(f"gunicorn did not answer on {self.base_url} in {timeout} s")

    # --- SQL as the owner (superuser: sees every tenant) ----------------------------
    def sql(self, query: str, params=None) -> list[tuple]:
        with psycopg.connect(**embedded_conninfo(self.owner_url), autocommit=True) as conn:
            return conn.execute(query, params).fetchall()


def embedded_conninfo(url: str, dbname: str | None = None) -> dict:
    from crm.dbroles import DbUrl

    return DbUrl.parse(url).conninfo(dbname)
