"""The `reports` alias (crm.metrics.reading): with a replica configured, reports read on a
connection of their own, with the tenant's row-level-security context opened on it, and a
figure and its drill-down both read there.

The alias is configured here for this module only (settings decide it at import from
REPORTS_DATABASE_URL): a second connection to the test database as the app role, as a
streaming replica would be, marked as a mirror of the primary (never migrated or
flushed), and closed and removed after the module."""

from __future__ import annotations

import copy
from datetime import date

import pytest
from django.conf import settings
from django.db import connection, connections

from crm import metrics
from crm.tenancy import tenant_context
from tests.crm.test_metrics_kernel import DELIVERED, MARCH, SUSPECT, lead, local

REPORTS = "reports"


@pytest.fixture(scope="module", autouse=True)
def reports_alias(django_db_setup):
    """`reports` in DATABASES before the tests' database access is set up (it checks
    the aliases a test names), pointing at the test database."""
    mirror = copy.deepcopy(connections["default"].settings_dict)
    mirror["TEST"] = {**mirror.get("TEST", {}), "MIRROR": "default"}
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
