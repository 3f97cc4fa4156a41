"""The `reports` alias (crm.metrics.reading): with a replica configured, reports read on a
connection of their own, with the tenant's row-level-security context opened on it, and a
figure and its drill-down both read there.

The alias is configured here for this module only (settings decide it at import from
REPORTS_DATABASE_URL): a second connection to the test database as the app role, as a
streaming replica would be, marked as a mirror of the primary (never migrated or
flushed), with the read-only sessions settings give it, and closed and removed after the
module. The same on a real streaming replica: tests/scale/test_replica.py (`make scale`)."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from django.conf import settings
from django.db import InternalError, connection, connections, router
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from crm import metrics
from crm.tenancy import tenant_context
from tests.crm.test_metrics_kernel import DELIVERED, MARCH, SUSPECT, lead, local

REPORTS = "reports"
# The reports alias's session options (crm/settings.py; test_the_reports_alias_settings).
READ_ONLY = "-c jit=off -c default_transaction_read_only=on"


@pytest.fixture(scope="module", autouse=True)
def reports_alias(django_db_setup):
    """`reports` in DATABASES before the tests' database access is set up (it checks
    the aliases a test names), pointing at the test database."""
    mirror = copy.deepcopy(connections["default"].settings_dict)
    mirror["TEST"] = {**mirror.get("TEST", {}), "MIRROR": "default"}
    mirror["OPTIONS"] = {**mirror.get("OPTIONS", {}), "options": READ_ONLY}
    connections.settings[REPORTS] = mirror
    if settings.DATABASES is not connections.settings:
        settings.DATABASES[REPORTS] = mirror
    yield REPORTS
    if hasattr(connections._connections, REPORTS):
        connections[REPORTS].close()
        del connections[REPORTS]
    connections.settings.pop(REPORTS, None)
    settings.DATABASES.pop(REPORTS, None)


def _seed(world):
    a, b = world.a, world.b
    lead(a, local(a.tenant, 2026, 3, 2, 9), province="江苏", owner=a.rep)
    lead(a, local(a.tenant, 2026, 3, 3, 9), province="浙江", suspect=True)
    lead(b, local(b.tenant, 2026, 3, 2, 9), province="江苏", owner=b.rep)


@pytest.mark.django_db(transaction=True, databases=["default", REPORTS])
def test_reading_opens_the_tenants_context_on_the_reports_connection(world):
    _seed(world)
    a = world.a.tenant
    assert metrics.reports_alias() == REPORTS
    with tenant_context(a), metrics.reading(a) as alias:
        assert alias == REPORTS
        reports = connections[REPORTS]
        assert reports.in_atomic_block  # the RLS setting lives in a transaction
        with reports.cursor() as cursor:
            cursor.execute("SELECT current_setting('app.tenant_id', true)")
            assert cursor.fetchone()[0] == str(a.pk)
            # Row-level security itself, not the scoped manager: b's lead is invisible.
            cursor.execute("SELECT DISTINCT tenant_id FROM leads_lead")
            assert [row[0] for row in cursor.fetchall()] == [a.pk]
        from leads.models import Lead

        assert Lead.unscoped.using(alias).count() == 2
    # Outside reading(), the reports connection has no tenant: it sees no lead at all.
    with connections[REPORTS].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM leads_lead")
        assert cursor.fetchone()[0] == 0


@pytest.mark.django_db(transaction=True, databases=["default", REPORTS])
def test_a_figure_and_its_rows_are_read_on_the_reports_connection(world):
    from django.test.utils import CaptureQueriesContext

    _seed(world)
    a = world.a.tenant
    with (
        tenant_context(a),
        metrics.reading(a) as alias,
        CaptureQueriesContext(connections[REPORTS]) as on_reports,
        CaptureQueriesContext(connection) as on_primary,
    ):
        figures = metrics.values_of([DELIVERED, SUSPECT], tenant=a, using=alias, **MARCH)
        rows = metrics.drill_down(DELIVERED, tenant=a, using=alias, **MARCH)
        suspects = metrics.drill_down(SUSPECT, tenant=a, using=alias, **MARCH)
        series = metrics.series(
            DELIVERED, tenant=a, start=date(2026, 3, 2), end=date(2026, 3, 3), using=alias
        )
    assert figures == {"t.delivered": 2, "t.suspect": 1}
    assert len(rows) == 2 and len(suspects) == 1
    assert series == [(date(2026, 3, 2), 1), (date(2026, 3, 3), 1)]
    # One query for the family's figures, one per drill-down, one for the series: all
    # on the reports connection, none on the primary.
    assert len(on_reports) == 4
    assert len(on_primary) == 0
    assert all("leads_lead" in q["sql"] for q in on_reports.captured_queries)


def test_the_app_connections_compile_no_jit(world):
    """Reports' statements cross PostgreSQL's JIT cost threshold, and compiling them costs
    more than running them: the app's connections turn it off (crm/settings.py)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('jit')")
        assert cursor.fetchone()[0] == "off"
    assert settings.DATABASES["platform"]["OPTIONS"]["options"] == "-c jit=off"


def test_the_reports_alias_settings():
    """REPORTS_DATABASE_URL makes the alias: the app role's read-only sessions without
    JIT, a mirror of the primary for the tests, never migrated; without it, no alias."""
    script = (
        "import json, django; from django.conf import settings; django.setup();"
        "from django.db import router;"
        "r = settings.DATABASES.get('reports');"
        "print(json.dumps(r and {'options': r['OPTIONS']['options'],"
        " 'timeout': r['OPTIONS']['connect_timeout'], 'mirror': r['TEST']['MIRROR'],"
        " 'port': r['PORT'], 'migrate': router.allow_migrate('reports', 'leads')}))"
    )
    seen = {}
    for url in ("postgres://crm_app:pw@replica.example:5433/crm", ""):
        env = {**os.environ, "REPORTS_DATABASE_URL": url}
        out = subprocess.run(
            [sys.executable, "-c", script],
            env=env,
            cwd=Path(__file__).resolve().parents[2],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        seen[url] = json.loads(out.strip().splitlines()[-1])
    assert seen[""] is None
    assert seen["postgres://crm_app:pw@replica.example:5433/crm"] == {
        "options": READ_ONLY,
        "timeout": 5,
        "mirror": "default",
        "port": 5433,
        "migrate": False,
    }


@pytest.mark.django_db(transaction=True, databases=["default", REPORTS])
def test_reading_all_routes_reads_there_and_every_write_to_the_primary(world):
    from leads.models import Lead

    _seed(world)
    a = world.a.tenant
    with (
        tenant_context(a),
        metrics.reading_all(a) as alias,
        CaptureQueriesContext(connections[REPORTS]) as on_reports,
        CaptureQueriesContext(connection) as on_primary,
    ):
        assert router.db_for_read(Lead) == alias == REPORTS
        assert router.db_for_write(Lead) == "default"
        found = Lead.objects.order_by("pk").first()  # no `using`: routed
        assert found._state.db == REPORTS
        found.city = "杭州"
        found.save(update_fields=["city"])
    assert any("leads_lead" in q["sql"] for q in on_reports.captured_queries)
    assert not any("UPDATE" in q["sql"] for q in on_reports.captured_queries)
    assert any(q["sql"].startswith("UPDATE") for q in on_primary.captured_queries)
    # Outside, nothing is routed; an object read on the alias is still saved on the primary.
    assert router.db_for_read(Lead) == "default"
    with tenant_context(a), metrics.reading(a):
        there = Lead.objects.using(REPORTS).get(pk=found.pk)
    assert router.db_for_write(Lead, instance=there) == "default"
    with tenant_context(a):
        assert Lead.objects.get(pk=found.pk).city == "杭州"


@pytest.mark.django_db(transaction=True, databases=["default", REPORTS])
def test_a_write_that_names_the_alias_is_refused_even_by_a_primary(world):
    """The alias's sessions are read-only: pointed at a server that is not in recovery
    (here the test database itself), a write that passes by the router still fails."""
    from leads.models import Lead

    _seed(world)
    a = world.a.tenant
    refused = pytest.raises(InternalError, match="read-only transaction")
    with refused, tenant_context(a), metrics.reading(a):
        Lead.objects.using(REPORTS).update(city="上海")
    with tenant_context(a):
        assert not Lead.objects.filter(city="上海").exists()


@pytest.mark.django_db(transaction=True, databases=["default", REPORTS])
def test_the_lead_quality_report_and_the_list_it_opens_read_the_alias(world, login):
    _seed(world)
    client = login(world.a.admin)
    with CaptureQueriesContext(connections[REPORTS]) as on_reports:
        response = client.get(
            reverse("lead_reports:lead_quality"),
            {"created_from": "2026-03-01", "created_to": "2026-03-31"},
        )
    assert response.status_code == 200
    total = response.context["report"].total.cell("delivered")
    assert total.value == 2
    assert any("leads_lead" in q["sql"] for q in on_reports.captured_queries)
    assert "read=reports" in total.url
    with CaptureQueriesContext(connections[REPORTS]) as on_reports:
        listed = client.get(total.url)
    assert listed.context["count"] == 2
    assert any("leads_lead" in q["sql"] for q in on_reports.captured_queries)
    with CaptureQueriesContext(connections[REPORTS]) as on_reports:
        csv = client.get(total.url + "&_export=csv")
        body = b"".join(csv.streaming_content).decode("utf-8-sig")
    assert len(body.strip().splitlines()) == 3  # the header and the two leads
    assert any("leads_lead" in q["sql"] for q in on_reports.captured_queries)
