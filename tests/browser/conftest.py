"""Browser tests: pytest-playwright driving Debian's Chromium against the live server."""

import os
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parent / "artifacts"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium package")
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        # No network here but the loopback: keep Chromium from calling home.
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    }


def is_csp_violation(message) -> bool:
    """Chromium reports every refusal of the Content-Security-Policy on the console."""
    return "Content Security Policy" in message.text or "Content-Security-Policy" in message.text


@pytest.fixture
def context(context):
    """Every page of every browser test runs under the site's Content-Security-Policy
    without a single refusal (crm/security.py): a refused script, style or handler is a
    feature that silently stopped working."""
    refused: list[str] = []
    context.on(
        "console",
        lambda message: refused.append(message.text) if is_csp_violation(message) else None,
    )
    yield context
    assert refused == [], "refused by the Content-Security-Policy:\n" + "\n".join(refused)


def log_in(page, base_url: str, username: str) -> None:
    """Sign in through the log-in page, in Chinese (the default), as a demo user."""
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(settings.DEMO_PASSWORD)
    page.get_by_role("button", name="登录").click()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


# The demo as the first test that needs it seeded it: every table's rows, copied out once.
_demo_rows: dict[str, bytes] | None = None


@pytest.fixture
def demo(live_server):
    """The live server with the demo tenant loaded (needs a transactional test).

    `seed_demo` runs the real intake, assignment and verification for 300 leads (half a
    minute); the tests after the first get the same rows copied back in a second instead.
    """
    global _demo_rows
    if _demo_rows is None or not _restore(_demo_rows):
        with open(os.devnull, "w") as devnull:
            call_command("seed_demo", stdout=devnull)
        _demo_rows = _copy_out()
    return live_server


def _owner_connection(alias: str = "owner"):
    """A psycopg connection of the tables' owner (or of another alias's role) to the test
    database, outside Django's connection handling (which refuses a second alias in these
    tests)."""
    import psycopg
    from django.db import connections

    alias = alias if alias in connections.settings else "default"
    config = connections[alias].settings_dict
    info = {
        "dbname": config["NAME"],
        "user": config["USER"],
        "password": config["PASSWORD"] or None,
        "host": config["HOST"] or None,
        "port": config["PORT"] or None,
    }
    return psycopg.connect(**{k: v for k, v in info.items() if v}, autocommit=True)


def _tables(cursor) -> list[str]:
    cursor.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        " AND tablename <> 'django_migrations' ORDER BY tablename"
    )
    return [row[0] for row in cursor.fetchall()]


def _copy_out() -> dict[str, bytes]:
    """Every table's rows, all tenants': read as the platform role (BYPASSRLS)."""
    rows = {}
    with _owner_connection("platform") as conn, conn.cursor() as cursor:
        for table in _tables(cursor):
            with cursor.copy(f'COPY "{table}" TO STDOUT (FORMAT binary)') as copy:
                rows[table] = b"".join(bytes(block) for block in copy)
    return rows


def _restore(rows: dict[str, bytes]) -> bool:
    """Put the copied rows back as they were, triggers and foreign-key checks off (the
    rows were consistent when copied). False when the owner may not do that (not a
    superuser): then the demo is seeded again."""
    import psycopg
    from django.apps import apps
    from django.contrib.contenttypes.models import ContentType
    from django.core.management.color import no_style
    from django.db import connection

    models = [m for m in apps.get_models(include_auto_created=True) if m._meta.db_table in rows]
    try:
        with _owner_connection() as conn, conn.transaction(), conn.cursor() as cursor:
            # A superuser (the only owner allowed this) is not bound by row-level security.
            cursor.execute("SET LOCAL session_replication_role = replica")
            cursor.execute("TRUNCATE " + ", ".join(f'"{t}"' for t in rows))
            for table, data in rows.items():
                with cursor.copy(f'COPY "{table}" FROM STDIN (FORMAT binary)') as copy:
                    copy.write(data)
            for statement in connection.ops.sequence_reset_sql(no_style(), models):
                cursor.execute(statement)
    except psycopg.errors.InsufficientPrivilege:
        return False
    ContentType.objects.clear_cache()
    return True
