"""Shared base of the benchmark scripts in bench/ (see bench/README.md).

A bench script does, in this order::

    from common import emit, measure, prepare_database, setup_django

    setup_django()         # before any import of models
    prepare_database()     # setup_roles + migrate on the bench database
    ...                    # generate its data (idempotently)
    emit({"pages": [measure("/team/", membership=m)]})

Scripts run against a dedicated database, `crm_bench`, never `crm` or `test_crm`: the
environment defaults below apply only to variables that are not already set, so export
DATABASE_URL / DATABASE_OWNER_URL yourself only to point the bench somewhere else on purpose.
Figures go to stdout as JSON; progress messages go to stderr.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent

# Used only when the variable is unset. The secret key is for this local bench only.
BENCH_ENV_DEFAULTS = {
    "DATABASE_URL": "postgres://crm_app:crm_app@127.0.0.1:5432/crm_bench",
    "DATABASE_OWNER_URL": "postgres://postgres@127.0.0.1:5432/crm_bench",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "SECRET_KEY": "bench-only-secret-key-never-deploy-0123456789abcde",
    # The bench's client speaks plain HTTP (settings.py redirects to https when DEBUG is off).
    "SECURE_SSL_REDIRECT": "False",
    "SECURE_COOKIES": "False",
}

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"
SESSION_TENANT_KEY = "crm_tenant_id"  # crm.middleware.SESSION_TENANT_KEY


def log(message: str) -> None:
    """Progress for the human: stderr, so stdout stays pure JSON."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def setup_django() -> None:
    """Configure Django like production (DEBUG off) against the bench database."""
    for key, value in BENCH_ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)
    # Production behaviour: DEBUG off (DEBUG=True would change static storage, templates'
    # debug info and query logging, and so the figures).
    os.environ.pop("DEBUG", None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "crm.settings"
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))

    import django
    from django.conf import settings
    from django.test.utils import override_settings

    django.setup()
    # DEBUG=False selects the manifest storage, which needs `collectstatic`; the plain
    # storage renders {% static %} URLs without it (as tests/conftest.py does).
    # override_settings (never disabled) also resets any storage already built.
    override_settings(
        STORAGES={
            **settings.STORAGES,
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        }
    ).enable()
    name = settings.DATABASES["default"].get("NAME")
    log(f"database {name!r} as {settings.DATABASES['default'].get('USER')!r}")


def prepare_database() -> None:
    """Create the bench database and app role if needed, then migrate (as the owner)."""
    from django.core.management import call_command

    # Their messages go to stderr: stdout carries only the JSON figures.
    call_command("setup_roles", verbosity=0, stdout=sys.stderr)
    call_command("migrate", interactive=False, verbosity=0, stdout=sys.stderr)


def vacuum_analyze(*tables: str) -> None:
    """Steady state after a bulk load: planner statistics and the visibility map (which
    index-only scans, e.g. the tenant's COUNT(*), need) as autovacuum would leave them
    some minutes later. Runs as the owner, outside a transaction (autocommit)."""
    from django.db import connections

    with connections["owner"].cursor() as cursor:
        for table in tables:
            cursor.execute(f"VACUUM (ANALYZE) {table}")


def _percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def measure(
    path: str,
    *,
    membership,
    n: int = 50,
    warmup: int = 5,
    params: dict[str, Any] | None = None,
    keep_sql: bool = False,
) -> dict[str, Any]:
    """Time `n` GET requests to `path` in-process, signed in as `membership`.

    Server time only: the Django test client runs the whole middleware stack, the view
    and template rendering, with no network or browser. SQL queries are counted on every
    request (CaptureQueriesContext forces the debug cursor even with DEBUG off; its cost
    is in the figures, the same for every page). `sql_median_ms` is the median of each
    request's summed SQL time, so `median_ms - sql_median_ms` is roughly the Python time
    (middleware, view, template). With keep_sql, the last request's SQL is returned too.
    """
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.force_login(membership.user, backend=MODEL_BACKEND)
    session = client.session
    session[SESSION_TENANT_KEY] = membership.tenant_id
    session.save()

    def get():
        response = client.get(path, params)
        if response.status_code != 200:
            raise RuntimeError(f"GET {path} {params or ''} -> {response.status_code}, not 200")
        if response.streaming:
            # A streamed answer (the lists' CSV) is timed until its last byte.
            b"".join(response.streaming_content)
        return response

    for _ in range(warmup):
        get()

    timings: list[float] = []
    sql_times: list[float] = []
    counts: list[int] = []
    executed: list[tuple[str, float]] = []

    def timed_execute(execute, sql, params, many, context):
        # CaptureQueriesContext rounds each query's time to the millisecond; this does not.
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            executed.append((sql, (time.perf_counter() - start) * 1000))

    captured: list[dict] = []
    for _ in range(n):
        executed.clear()
        with connection.execute_wrapper(timed_execute), CaptureQueriesContext(connection) as ctx:
            start = time.perf_counter()
            get()
            elapsed = time.perf_counter() - start
        timings.append(elapsed * 1000)
        counts.append(len(ctx.captured_queries))
        sql_times.append(sum(ms for _, ms in executed))
        captured = ctx.captured_queries

    result: dict[str, Any] = {
        "path": path + (f"?{_query_string(params)}" if params else ""),
        "n": n,
        "median_ms": round(statistics.median(timings), 2),
        "p95_ms": round(_percentile(timings, 95), 2),
        "min_ms": round(min(timings), 2),
        "sql_median_ms": round(statistics.median(sql_times), 2),
        "queries": counts[-1],
        "queries_constant": len(set(counts)) == 1,
    }
    if keep_sql:
        result["sql"] = _pair_sql(captured, executed)
    return result


def _pair_sql(captured: list[dict], executed: list[tuple[str, float]]) -> list[dict]:
    """The SQL as sent (parameters inlined by the debug cursor) with its precise time.

    The debug cursor also logs BEGIN / COMMIT / ROLLBACK, which are not cursor executes
    (so not timed by the wrapper); they count as queries and keep their rounded time.
    """
    timed = iter(executed)
    pairs = []
    for q in captured:
        if q["sql"].strip().upper() in {"BEGIN", "COMMIT", "ROLLBACK"}:
            pairs.append({"sql": q["sql"], "ms": float(q["time"]) * 1000})
        else:
            pairs.append({"sql": q["sql"], "ms": round(next(timed)[1], 3)})
    return pairs


def _query_string(params: dict[str, Any]) -> str:
    from urllib.parse import urlencode

    return urlencode(params, doseq=True)


def explain(sql: str, *, tenant=None) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) one captured SELECT as the app role, inside `tenant`'s
    context so row-level security applies as it does in a request. Returns the plan lines.
    Never pass anything but a SELECT: ANALYZE executes the statement."""
    from django.db import connection, transaction

    from crm.tenancy import tenant_context

    if not sql.lstrip().upper().startswith("SELECT"):
        raise ValueError("explain() runs SELECT statements only")
    scope = tenant_context(tenant) if tenant is not None else transaction.atomic()
    with scope, connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
        return [row[0] for row in cursor.fetchall()]


def emit(results: dict) -> None:
    """Print the figures as JSON on stdout."""
    print(json.dumps(results, indent=2, ensure_ascii=False, default=str))
