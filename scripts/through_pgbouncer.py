"""`make scale`'s first part: tests run with the app's connections through PgBouncer in
transaction pooling mode, two server connections per pool (docs/scaling.md).

    .venv/bin/python scripts/through_pgbouncer.py [pytest arguments]

Starts Debian's `pgbouncer` (PGBOUNCER, default /usr/sbin/pgbouncer) on a free port of
127.0.0.1 in front of the PostgreSQL that DATABASE_URL names (else the embedded one, as
`make test`), with pool_mode = transaction and default_pool_size = 2, then runs pytest
with DATABASE_URL and the platform role's URL pointing at it and
DATABASE_TRANSACTION_POOLING=True (crm/settings.py). The owner's connection (it creates
and migrates the test database) goes to PostgreSQL directly, as migrations do in
production. Without test paths among the arguments: the tenant isolation suite, the
webhook → worker → assignment flow and the pooling probe (tests/scale/test_pgbouncer.py).
The test
database is its own (CRM_TEST_DB_SUFFIX gets "_pgbouncer"), so a `make test` may run
beside it. PgBouncer's log is left in var/pgbouncer/.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TESTS = [
    "tests/isolation",
    "tests/leads/test_hooks.py",
    "tests/leads/test_services.py",
    "tests/leads/test_dispatch.py",
    "tests/leads/test_engine.py",
    "tests/crm/test_worker.py",
    "tests/scale",
]
POOL_SIZE = 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _through(url: str, port: int) -> str:
    """`url` with PgBouncer's address in place of the server's."""
    parts = urlsplit(url)
    auth = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return urlunsplit(parts._replace(netloc=f"{auth}127.0.0.1:{port}"))


def _user(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return unquote(parts.username or ""), unquote(parts.password or "")


def write_config(directory: Path, server: str, port: int, users: dict[str, str]) -> Path:
    parts = urlsplit(server)
    (directory / "userlist.txt").write_text(
        "".join(f'"{name}" "{password}"\n' for name, password in sorted(users.items()))
    )
    ini = directory / "pgbouncer.ini"
    ini.write_text(
        "\n".join(
            [
                "[databases]",
                # Any database name, as the client asks: the test database too.
                f"* = host={parts.hostname} port={parts.port or 5432}",
                "[pgbouncer]",
                "listen_addr = 127.0.0.1",
                f"listen_port = {port}",
                "unix_socket_dir =",
                # The clients are this machine's tests; the server login takes each user's
                # password from the auth file.
                "auth_type = trust",
                f"auth_file = {directory / 'userlist.txt'}",
                "pool_mode = transaction",
                f"default_pool_size = {POOL_SIZE}",
                "min_pool_size = 0",
                "reserve_pool_size = 0",
                "max_client_conn = 400",
                f"admin_users = {','.join(sorted(users))}",
                "ignore_startup_parameters = extra_float_digits,options",
                f"logfile = {directory / 'pgbouncer.log'}",
                f"pidfile = {directory / 'pgbouncer.pid'}",
                "",
            ]
        )
    )
    return ini


def wait_for(port: int, proc: subprocess.Popen, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"pgbouncer exited at start (code {proc.returncode})")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("pgbouncer did not listen in time")


def main(argv: list[str]) -> int:
    # A TERM (a CI's timeout, kill) stops PgBouncer too: `finally` runs on SystemExit.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))
    binary = os.environ.get("PGBOUNCER", shutil.which("pgbouncer") or "/usr/sbin/pgbouncer")
    if not Path(binary).exists():
        raise SystemExit(f"{binary} not found: `make scale` installs Debian's pgbouncer")
    from crm.dbroles import platform_url
    from crm.embedded import activate

    # The servers `make test` would use: the environment's, else the embedded ones.
    activate(skip=("DEBUG", "PUBLIC_BASE_URL"), redis_db=3)
    app_url = os.environ["DATABASE_URL"]
    owner_url = os.environ.get("DATABASE_OWNER_URL", "")
    platform = platform_url(app_url, os.environ.get("DATABASE_PLATFORM_URL", ""))
    users = dict(_user(u) for u in (app_url, platform, owner_url) if u)

    directory = ROOT / "var" / "pgbouncer"
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    ini = write_config(directory, app_url, port, users)
    as_user = {}
    if os.geteuid() == 0:
        # PgBouncer refuses to run as root: as the embedded PostgreSQL's system user.
        from crm.embedded import PG_SYSTEM_USER, _ensure_system_user

        _ensure_system_user(PG_SYSTEM_USER)
        for path in (directory, *directory.iterdir()):
            shutil.chown(path, PG_SYSTEM_USER, PG_SYSTEM_USER)
        as_user = {"user": PG_SYSTEM_USER, "group": PG_SYSTEM_USER, "extra_groups": []}
    proc = subprocess.Popen(  # noqa: S603 (our own fixed argv)
        [binary, str(ini)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, **as_user
    )
    try:
        wait_for(port, proc)
        env = {
            **os.environ,
            "DATABASE_URL": _through(app_url, port),
            "DATABASE_PLATFORM_URL": _through(platform, port),
            "DATABASE_TRANSACTION_POOLING": "True",
            "PGBOUNCER_ADMIN_URL": _through(
                urlunsplit(urlsplit(owner_url or app_url)._replace(path="/pgbouncer")), port
            ),
            "PGBOUNCER_POOL_SIZE": str(POOL_SIZE),
            "CRM_TEST_DB_SUFFIX": os.environ.get("CRM_TEST_DB_SUFFIX", "") + "_pgbouncer",
        }
        print(
            f"pgbouncer {port}: pool_mode=transaction, {POOL_SIZE} server connections a pool,"
            f" in front of {urlsplit(app_url).hostname}:{urlsplit(app_url).port};"
            f" users {', '.join(quote(u) for u in sorted(users))}",
            flush=True,
        )
        # Options alone (-q, -x, -p no:randomly …) run the default tests with them.
        paths = [a for a in argv if (ROOT / a.split("::", 1)[0]).exists()]
        args = argv if paths else [*argv, *DEFAULT_TESTS]
        return subprocess.call(  # noqa: S603
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], env=env
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
