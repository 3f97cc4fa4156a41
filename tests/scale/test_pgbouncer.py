"""Behind PgBouncer in transaction pooling mode (`make scale`, scripts/through_pgbouncer.py):
two tenants' requests interleaved over a pool of two server connections never see each
other's rows, and a request that names no tenant sees none; the app's settings for a
transaction pooler; the pooler's own view of the pool.

The probe runs only behind the pooler (DATABASE_TRANSACTION_POOLING set by the script);
the settings test runs everywhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.db import connection

from crm.tenancy import tenant_context
from customers.models import Customer

ROOT = Path(__file__).resolve().parents[2]
REQUESTS = 10_000
CLIENTS = 8
ROWS = 40  # customers per tenant
behind_pooler = pytest.mark.skipif(
    not getattr(settings, "DATABASE_TRANSACTION_POOLING", False),
    reason="behind PgBouncer only: `make scale` (scripts/through_pgbouncer.py)",
)


def test_the_settings_for_a_transaction_pooler():
    """DATABASE_TRANSACTION_POOLING turns off what would outlive a transaction on a
    server connection: server-side cursors and psycopg's automatic prepared statements,
    on every alias; without it both stay on."""
    script = (
        "import json, django; from django.conf import settings; django.setup();"
        "print(json.dumps({a: [d.get('DISABLE_SERVER_SIDE_CURSORS', False),"
        " 'prepare_threshold' in d.get('OPTIONS', {}) and d['OPTIONS']['prepare_threshold']"
        " is None] for a, d in settings.DATABASES.items()}))"
    )
    seen = {}
    for value in ("True", "False"):
        env = {**os.environ, "DATABASE_TRANSACTION_POOLING": value}
        out = subprocess.run(
            [sys.executable, "-c", script],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        seen[value] = json.loads(out.strip().splitlines()[-1])
    assert seen["True"] and all(v == [True, True] for v in seen["True"].values())
    assert all(v == [False, False] for v in seen["False"].values())


def _customers(tenant, n):
    with tenant_context(tenant):
        Customer.objects.bulk_create(
            Customer(tenant=tenant, name=f"{tenant.slug} 客户 {i}") for i in range(n)
        )


@behind_pooler
@pytest.mark.django_db(transaction=True)
def test_ten_thousand_interleaved_requests_of_two_tenants_see_no_foreign_row(world):
    """CLIENTS connections through the pooler take turns on its two server connections;
    each request (a transaction) names its tenant with the app's transaction-local setting
    and reads the tenant's customers; every tenth names none, as a request that forgot
    would, and must read nothing: no setting survives on a server connection into the
    next client's transaction."""
    a, b = world.a.tenant, world.b.tenant
    _customers(a, ROWS)
    _customers(b, ROWS + 1)  # the counts tell the tenants apart too
    params = connection.get_connection_params()
    params.pop("prepare_threshold", None)
    expected = {a.pk: ROWS, b.pk: ROWS + 1, None: 0}
    foreign, wrong_counts, errors = [], [], []
    backends: set[int] = set()
    lock = threading.Lock()
    turn = iter(range(REQUESTS))

    def client():
        try:
            with psycopg.connect(**params, prepare_threshold=None, autocommit=False) as conn:
                while True:
                    with lock:
                        i = next(turn, None)
                    if i is None:
                        return
                    tenant = None if i % 10 == 9 else (a.pk if i % 2 else b.pk)
                    with conn.cursor() as cur:
                        if tenant is not None:
                            cur.execute(
                                "SELECT set_config('app.tenant_id', %s, true)", [str(tenant)]
                            )
                        cur.execute("SELECT tenant_id FROM customers_customer")
                        rows = [r[0] for r in cur.fetchall()]
                        cur.execute("SELECT pg_backend_pid()")
                        pid = cur.fetchone()[0]
                    conn.commit()
                    with lock:
                        backends.add(pid)
                        foreign.extend(r for r in rows if r != tenant)
                        if len(rows) != expected[tenant]:
                            wrong_counts.append((i, tenant, len(rows)))
        except Exception as exc:  # reported below, not lost in the thread
            errors.append(repr(exc))

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert foreign == [] and wrong_counts == []
    # The clients shared the pool's server connections: PgBouncer, not one each.
    pool = int(os.environ["PGBOUNCER_POOL_SIZE"])
    assert 1 <= len(backends) <= pool < CLIENTS, backends


@behind_pooler
def test_the_pool_is_the_pooler_s_in_transaction_mode():
    """PgBouncer's admin console says what the probe relies on."""
    with psycopg.connect(os.environ["PGBOUNCER_ADMIN_URL"], autocommit=True) as admin:
        config = dict(_config(admin))
        assert config["pool_mode"] == "transaction"
        assert config["default_pool_size"] == os.environ["PGBOUNCER_POOL_SIZE"]


def _config(admin) -> list[tuple[str, str]]:
    cur = admin.execute("SHOW CONFIG")
    names = [c.name for c in cur.description]
    return [(row[names.index("key")], str(row[names.index("value")])) for row in cur.fetchall()]
