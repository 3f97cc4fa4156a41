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

The machine is shared and its speed changes from minute to minute, so every figure comes
with what is needed to judge it: `emit()` adds a `machine` block (load average, CPU
shares including steal over the run, versions, commit, date; taken by `setup_django()` at
the start and by `emit()` at the end), and `measure()` times a fixed reference workload
(`reference_sample()`, which depends on nothing in the database) alternately with the
page, so each page reports the reference's median and spread next to its own.
"""

from __future__ import annotations

import gc
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
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


# --- The machine: what it is and how busy it was -----------------------------------------

# /proc/stat's first line, in this order (clock ticks summed over all CPUs); guest time is
# already counted in user.
_CPU_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
_START: dict[str, Any] = {}


def cpu_times() -> list[int] | None:
    """The machine's CPU time so far in _CPU_FIELDS order; None without /proc (not Linux)."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
    except OSError:
        return None
    values = [int(v) for v in fields[1 : 1 + len(_CPU_FIELDS)]]
    return values + [0] * (len(_CPU_FIELDS) - len(values))


def cpu_shares(before: list[int] | None, after: list[int] | None) -> dict[str, float] | None:
    """How the machine's CPU time was spent between two `cpu_times()`, in percent of all
    CPUs: `busy` (user + system, all processes, not only the bench's), `user` (with nice),
    `system` (with irq and softirq), `idle`, `iowait`, and `steal`, time the hypervisor
    gave to another guest while this one had work: a figure measured with steal above a
    few percent ran on part of a CPU. `seconds` is the wall time covered. The bench's own
    process is in `busy`: on 2 CPUs a bench alone on the machine shows about 50 %."""
    if before is None or after is None:
        return None
    delta = dict(zip(_CPU_FIELDS, (a - b for a, b in zip(after, before, strict=True)), strict=True))
    total = sum(delta.values())
    if total <= 0:
        return None

    def pct(ticks: int) -> float:
        return round(100 * ticks / total, 1)

    user = delta["user"] + delta["nice"]
    system = delta["system"] + delta["irq"] + delta["softirq"]
    return {
        "seconds": round(total / os.sysconf("SC_CLK_TCK") / (os.cpu_count() or 1), 1),
        "busy_pct": pct(user + system),
        "user_pct": pct(user),
        "system_pct": pct(system),
        "idle_pct": pct(delta["idle"]),
        "iowait_pct": pct(delta["iowait"]),
        "steal_pct": pct(delta["steal"]),
    }


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages (runnable + uninterruptible processes)."""
    return [round(x, 2) for x in os.getloadavg()]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _git() -> dict[str, Any]:
    """The commit of the code that runs, and whether tracked files differ from it."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(  # noqa: S603 — our own fixed argv
                [shutil.which("git") or "git", "-C", str(REPO_ROOT), *args],
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip()

    status = git("status", "--porcelain", "--untracked-files=no")
    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "dirty": None if status is None else bool(status),
    }


def _host() -> dict[str, Any]:
    """The machine's fixed facts: CPUs, memory, kernel, versions."""
    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "cpu_model": None,
        "memory_gb": None,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "django": None,
        "postgresql": None,
    }
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu_model"] = next(
                (line.split(":", 1)[1].strip() for line in f if line.startswith("model name")),
                None,
            )
        with open("/proc/meminfo") as f:
            kb = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
            info["memory_gb"] = round(kb / 1024 / 1024, 1)
    except (OSError, StopIteration, ValueError):
        pass
    try:
        import django
        from django.db import connection

        info["django"] = django.get_version()
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            info["postgresql"] = cursor.fetchone()[0]
    except Exception as exc:  # a snapshot must not end the bench
        log(f"machine: no PostgreSQL version ({exc.__class__.__name__})")
    return info


def snapshot() -> dict[str, Any]:
    """The machine now: date and load average."""
    return {"date": _now(), "load_average": load_average()}


def machine_start() -> None:
    """Remember the machine at the start of the run (once; `setup_django()` calls it)."""
    if not _START:
        _START.update(snapshot=snapshot(), cpu=cpu_times(), git=_git())


def machine() -> dict[str, Any]:
    """The machine block every bench prints: the host, the commit that ran, the snapshot
    of the start and of now (the end), and the CPU shares between them (`cpu`, with
    steal and iowait): enough to tell a run on a busy or stolen-from machine."""
    machine_start()
    return {
        **_START["git"],
        "host": _host(),
        "start": _START["snapshot"],
        "end": snapshot(),
        "cpu": cpu_shares(_START["cpu"], cpu_times()),
    }


def setup_django() -> None:
    """Configure Django like production (DEBUG off) against the bench database.
    Also takes the machine's snapshot of the start (see `machine()`)."""
    machine_start()
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


def spread(values_ms: list[float], digits: int = 2) -> dict[str, Any]:
    """A sample's median with its spread: `median_ms`, `p25_ms` and `p75_ms` (so
    `iqr_ms`, the interquartile range), `p95_ms`, `min_ms`, `max_ms` (percentiles by
    nearest rank). Quote the median; the IQR says how much of it to trust."""
    if not values_ms:
        return {"n": 0}
    p25, p75 = _percentile(values_ms, 25), _percentile(values_ms, 75)
    return {
        "n": len(values_ms),
        "median_ms": round(statistics.median(values_ms), digits),
        "p25_ms": round(p25, digits),
        "p75_ms": round(p75, digits),
        "iqr_ms": round(p75 - p25, digits),
        "p95_ms": round(_percentile(values_ms, 95), digits),
        "min_ms": round(min(values_ms), digits),
        "max_ms": round(max(values_ms), digits),
    }


# The reference workload: the same work on every run, on no table, so its time depends on
# the machine alone. In PostgreSQL, 200,000 rows counted from a set-returning function in
# the select list (a ProjectSet: no tuplestore, so no temporary file at work_mem 4 MB, as
# `FROM generate_series(...)` would write); in Python, a loop of 100,000 steps. About
# 10 + 6 ms on a quiet 2-core machine.
REFERENCE_SQL = "SELECT count(*) FROM (SELECT generate_series(1, 200000)) AS s"
REFERENCE_LOOP = 100_000


def reference_sample() -> tuple[float, float]:
    """(SQL ms, Python ms) of one run of the reference workload, on the default
    connection (outside any tenant transaction; it reads no table)."""
    from django.db import connection

    start = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(REFERENCE_SQL)
        cursor.fetchone()
    middle = time.perf_counter()
    total = 0
    for i in range(REFERENCE_LOOP):
        total += i * i % 7
    end = time.perf_counter()
    return (middle - start) * 1000, (end - middle) * 1000


class Reference:
    """Samples of the reference workload taken between the product's samples."""

    def __init__(self) -> None:
        self.sql: list[float] = []
        self.python: list[float] = []
        self.cpu_before = cpu_times()
        self.load_before = load_average()

    def sample(self, times: int = 1) -> None:
        for _ in range(times):
            sql_ms, python_ms = reference_sample()
            self.sql.append(sql_ms)
            self.python.append(python_ms)

    def report(self) -> dict[str, Any]:
        """The reference's median and spread (SQL + Python), its two parts' medians, and
        the machine during the samples: load average before and after, CPU shares."""
        totals = [a + b for a, b in zip(self.sql, self.python, strict=True)]
        return {
            **spread(totals),
            "sql_median_ms": round(statistics.median(self.sql), 2) if self.sql else None,
            "python_median_ms": round(statistics.median(self.python), 2) if self.python else None,
            "load_average": [self.load_before[0], load_average()[0]],
            "cpu": cpu_shares(self.cpu_before, cpu_times()),
        }


def relative(median_ms: float, reference: dict[str, Any]) -> float | None:
    """A median in units of the reference's median: comparable across machines and moments
    better than milliseconds are (a loaded machine slows both), though not exactly."""
    ref = reference.get("median_ms")
    return round(median_ms / ref, 3) if ref else None


def measure(
    path: str,
    *,
    membership,
    n: int = 50,
    warmup: int = 5,
    params: dict[str, Any] | None = None,
    keep_sql: bool = False,
    reference: int = 1,
) -> dict[str, Any]:
    """Time `n` GET requests to `path` in-process, signed in as `membership`, each
    followed by one sample of the reference workload (`reference_sample()`).

    Server time only: the Django test client runs the whole middleware stack, the view
    and template rendering, with no network or browser. SQL queries are counted on every
    request (CaptureQueriesContext forces the debug cursor even with DEBUG off; its cost
    is in the figures, the same for every page). `sql_median_ms` is the median of each
    request's summed SQL time, so `median_ms - sql_median_ms` is roughly the Python time
    (middleware, view, template). With keep_sql, the last request's SQL is returned too.

    The page's times come as `spread()` (median, quartiles, p95, min, max); `reference`
    holds the reference workload's, sampled alternately with the page (so both saw the
    same machine), and `relative` is the page's median in units of the reference's.
    `reference` is the number of reference samples after each request (0: none; more for
    a request of seconds, such as a whole CSV export, so that the reference has a spread).
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
    if reference:
        reference_sample()  # warm: its first run plans the statement
    # As a web worker does once loaded (crm/wsgi.py): what is alive now (here also the
    # generated data's leftovers) goes to the collector's permanent generation, so a full
    # collection does not walk it during a request.
    gc.collect()
    gc.freeze()

    timings: list[float] = []
    sql_times: list[float] = []
    counts: list[int] = []
    executed: list[tuple[str, float]] = []
    ref = Reference()

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
        ref.sample(reference)

    result: dict[str, Any] = {
        "path": path + (f"?{_query_string(params)}" if params else ""),
        **spread(timings),
        "sql_median_ms": round(statistics.median(sql_times), 2),
        "queries": counts[-1],
        "queries_constant": len(set(counts)) == 1,
    }
    if reference:
        result["reference"] = ref.report()
        result["relative"] = relative(result["median_ms"], result["reference"])
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
    """Print the figures as JSON on stdout, with the machine block (`machine()`: start,
    end, CPU shares over the run, host, commit) last."""
    print(json.dumps({**results, "machine": machine()}, indent=2, ensure_ascii=False, default=str))
