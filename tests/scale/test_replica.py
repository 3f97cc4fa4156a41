"""The reports alias on a real streaming replica (`make scale`, scripts/with_replica.py:
a primary and a hot standby made from it with `pg_basebackup -R`, set up by the run).

Every test commits its rows on the primary and waits until the standby has replayed them
(`caught_up`: the primary's WAL position, then the standby's replay position past it).
To show where a page read, the standby's replay is paused (`replay_paused`) while the
primary gets one more lead: what reads the replica still counts the old rows, the
primary the new ones; once replay resumes and catches up, both agree.

These need the two servers and skip elsewhere; the router and the alias's read-only
sessions are also checked in `make test` (tests/crm/test_metrics_reports_alias.py), and
/healthz's "no replica" state in tests/crm/test_healthz.py."""

from __future__ import annotations

import csv
import io
import os
import time
from contextlib import contextmanager
from datetime import date
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
from django.conf import settings
from django.db import InternalError, OperationalError, connection, connections, router
from django.urls import reverse
from django.utils import timezone

from crm import metrics
from crm.exports import run_export
from crm.models import Export, ExportStatus
from crm.tenancy import tenant_context
from leads.models import Lead
from tests.crm.test_metrics_kernel import lead, local

REPORTS = "reports"
CATCH_UP = 60  # seconds the standby gets to replay what the primary wrote (it takes ms)
on_replica = pytest.mark.skipif(
    REPORTS not in settings.DATABASES or not os.environ.get("REPLICA_OWNER_URL"),
    reason="on a streaming replica only: `make scale` (scripts/with_replica.py)",
)
pytestmark = [on_replica, pytest.mark.django_db(transaction=True, databases=["default", REPORTS])]


def primary_lsn() -> str:
    with connection.cursor() as cursor:
        # The insert position: every commit made so far is before it.
        cursor.execute("SELECT pg_current_wal_insert_lsn()::text")
        return cursor.fetchone()[0]


def caught_up() -> str:
    """Wait until the standby has replayed all the primary had written when called."""
    lsn = primary_lsn()
    deadline = time.monotonic() + CATCH_UP
    while True:
        try:
            with connections[REPORTS].cursor() as cursor:
                cursor.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [lsn])
                if cursor.fetchone()[0]:
                    return lsn
        except OperationalError:
            # The test database is not on the standby yet (its creation not replayed).
            connections[REPORTS].close()
        assert time.monotonic() < deadline, f"the standby did not replay up to {lsn}"
        time.sleep(0.05)


def _standby_admin() -> psycopg.Connection:
    return psycopg.connect(os.environ["REPLICA_OWNER_URL"], dbname="postgres", autocommit=True)


@contextmanager
def replay_paused():
    """The standby keeps what it has replayed and serves it; the primary goes on."""
    with _standby_admin() as admin:
        admin.execute("SELECT pg_wal_replay_pause()")
        deadline = time.monotonic() + CATCH_UP
        while admin.execute("SELECT pg_get_wal_replay_pause_state()").fetchone()[0] != "paused":
            assert time.monotonic() < deadline, "the standby's replay did not pause"
            time.sleep(0.05)
        try:
            yield
        finally:
            admin.execute("SELECT pg_wal_replay_resume()")


def today(tenant) -> date:
    return timezone.localdate(timezone=tenant.tzinfo)


def seed(side, n: int) -> None:
    day = today(side.tenant)
    for i in range(n):
        lead(side, local(side.tenant, day.year, day.month, day.day, 0, i + 1), province="浙江")


def primary_count(tenant) -> int:
    with tenant_context(tenant):
        return Lead.objects.count()


# -- the servers ---------------------------------------------------------------------------


def test_the_reports_alias_is_a_hot_standby_streaming_from_the_primary(world):
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_is_in_recovery(), inet_server_port()")
        primary_recovering, primary_port = cursor.fetchone()
    caught_up()
    with connections[REPORTS].cursor() as cursor:
        cursor.execute("SELECT pg_is_in_recovery(), inet_server_port(), current_user")
        standby_recovering, standby_port, user = cursor.fetchone()
    assert (primary_recovering, standby_recovering) == (False, True)
    assert primary_port != standby_port
    assert user == connection.settings_dict["USER"]  # the app role: RLS binds it there too
    owner = connections["owner"].settings_dict
    with psycopg.connect(
        host=owner["HOST"],
        port=owner["PORT"],
        user=owner["USER"],
        password=owner["PASSWORD"],
        dbname="postgres",
    ) as admin:
        senders = admin.execute(
            "SELECT state, sync_state FROM pg_stat_replication WHERE usename = 'crm_replicator'"
        ).fetchall()
        slots = admin.execute(
            "SELECT slot_name, slot_type, active FROM pg_replication_slots"
        ).fetchall()
    assert senders == [("streaming", "async")]
    assert slots == [("crm_reports", "physical", True)]


def test_row_level_security_binds_the_replica_as_the_primary(world):
    seed(world.a, 2)
    seed(world.b, 1)
    caught_up()
    a = world.a.tenant
    with tenant_context(a), metrics.reading(a) as alias:
        assert alias == REPORTS
        with connections[REPORTS].cursor() as cursor:
            cursor.execute("SELECT tenant_id, count(*) FROM leads_lead GROUP BY tenant_id")
            assert cursor.fetchall() == [(a.pk, 2)]
    with connections[REPORTS].cursor() as cursor:  # no tenant named: nothing
        cursor.execute("SELECT count(*) FROM leads_lead")
        assert cursor.fetchone()[0] == 0


# -- reads: the dashboard, its drill-down, the lead-quality report, exports --------------


def _dashboard_delivered(client, tenant) -> tuple[int, str]:
    day = today(tenant).isoformat()
    response = client.get(reverse("dashboard"), {"start": day, "end": day})
    assert response.status_code == 200
    [tile] = [f for f in response.context["figures"] if f.tile.key == "leads.delivered"]
    return tile.current.value, tile.current.url


def _rows_page(client, url) -> tuple[int, int]:
    response = client.get(url)
    assert response.status_code == 200
    return response.context["figure"], response.context["count"]


def test_the_dashboard_and_its_drill_down_read_the_replica(world, login):
    a = world.a.tenant
    seed(world.a, 2)
    caught_up()
    client = login(world.a.manager)
    assert _dashboard_delivered(client, a)[0] == 2
    with replay_paused():
        seed(world.a, 1)
        assert primary_count(a) == 3
        figure, drill = _dashboard_delivered(client, a)
        # The figure and the rows behind it were read on the replica: both still say 2.
        assert figure == 2
        assert _rows_page(client, drill) == (2, 2)
        health = client.get(reverse("healthz")).json()["replica"]
        assert health["status"] == "ok"
        assert health["lag_bytes"] > 0  # the new lead's WAL, not replayed
    caught_up()
    figure, drill = _dashboard_delivered(client, a)
    assert figure == 3
    assert _rows_page(client, drill) == (3, 3)


def _quality(client, tenant) -> tuple[int, str]:
    day = today(tenant).isoformat()
    url = reverse("lead_reports:lead_quality")
    response = client.get(url, {"created_from": day, "created_to": day})
    assert response.status_code == 200
    report = response.context["report"]
    delivered = report.total.cell("delivered")
    return delivered.value, delivered.url


def _quality_csv_total(client, tenant) -> int:
    day = today(tenant).isoformat()
    url = reverse("lead_reports:lead_quality")
    response = client.get(
        url, {"created_from": day, "created_to": day, "_export": "csv", "table": "channel"}
    )
    rows = list(csv.reader(io.StringIO(response.getvalue().decode("utf-8-sig"))))
    return int(rows[-1][1])  # the total row's "delivered"


def test_the_lead_quality_report_its_csv_and_its_list_of_leads_read_the_replica(world, login):
    a = world.a.tenant
    seed(world.a, 2)
    caught_up()
    client = login(world.a.admin)
    with replay_paused():
        seed(world.a, 1)
        assert primary_count(a) == 3
        delivered, link = _quality(client, a)
        assert delivered == 2
        assert _quality_csv_total(client, a) == 2
        # The figure's list of leads is read where the figure was.
        assert parse_qs(urlsplit(link).query)["read"] == ["reports"]
        assert client.get(link).context["count"] == 2
        # The same list, not opened from the report, reads the primary.
        plain = link.replace("&read=reports", "").replace("read=reports&", "")
        assert "read=" not in plain
        assert client.get(plain).context["count"] == 3
    caught_up()
    delivered, link = _quality(client, a)
    assert delivered == 3 and _quality_csv_total(client, a) == 3
    assert client.get(link).context["count"] == 3


def test_a_background_export_reads_the_replica(world, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    a = world.a.tenant
    seed(world.a, 2)
    caught_up()
    with replay_paused():
        seed(world.a, 1)
        with tenant_context(a):
            job = Export.objects.create(tenant=a, kind="leads", requested_by=world.a.admin)
        # The job is claimed and finished on the primary; its rows come from the replica.
        assert run_export(a.pk, job.pk) == ExportStatus.DONE
        with tenant_context(a):
            job.refresh_from_db()
        assert job.rows_written == 2
    caught_up()
    with tenant_context(a):
        again = Export.objects.create(tenant=a, kind="leads", requested_by=world.a.admin)
    run_export(a.pk, again.pk)
    with tenant_context(a):
        again.refresh_from_db()
    assert again.rows_written == 3


# -- writes never go there -----------------------------------------------------------------


def test_writes_go_to_the_primary_and_the_replica_refuses_any(world):
    a = world.a.tenant
    seed(world.a, 1)
    caught_up()
    with tenant_context(a), metrics.reading_all(a) as alias:
        assert alias == REPORTS
        assert router.db_for_read(Lead) == REPORTS
        assert router.db_for_write(Lead) == "default"
        found = Lead.objects.get()
        assert found._state.db == REPORTS
        found.company = "改名于报表之中"
        found.save()  # routed to the primary
        assert found._state.db == "default"
        Lead.objects.filter(pk=found.pk).update(city="杭州")  # a query's write: the primary
    with tenant_context(a):
        assert Lead.objects.using("default").values_list("company", "city").get() == (
            "改名于报表之中",
            "杭州",
        )
    # An object read on the replica, saved later: the primary again.
    with tenant_context(a), metrics.reading(a):
        read_there = Lead.objects.using(REPORTS).get()
    with tenant_context(a):
        read_there.city = "宁波"
        read_there.save()
        assert Lead.objects.values_list("city", flat=True).get() == "宁波"
    # Naming the alias passes no router: the standby itself refuses.
    refused = pytest.raises(InternalError, match="read-only transaction")
    with refused, tenant_context(a), metrics.reading(a):
        Lead.objects.using(REPORTS).filter(pk=found.pk).update(city="上海")
    refused = pytest.raises(InternalError, match="read-only transaction")
    with refused, connections[REPORTS].cursor() as cursor:
        cursor.execute("CREATE TABLE written_on_the_replica (id int)")
    assert router.allow_migrate(REPORTS, "leads") is False


# -- /healthz ------------------------------------------------------------------------------


def test_healthz_shows_the_replicas_lag(world, client, settings):
    caught_up()
    body = client.get(reverse("healthz")).json()
    replica = body["replica"]
    assert replica["status"] == "ok"
    assert set(replica) == {"status", "lag_bytes", "lag_seconds", "replay_lsn", "primary_lsn"}
    assert replica["lag_bytes"] >= 0 and replica["lag_seconds"] is not None
    with replay_paused():
        lsn_before = replica["replay_lsn"]
        seed(world.a, 3)
        paused = client.get(reverse("healthz")).json()["replica"]
        assert paused["lag_bytes"] > 0
        assert paused["lag_seconds"] is not None and paused["lag_seconds"] > 0
    waited_for = caught_up()
    after = client.get(reverse("healthz")).json()["replica"]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT %s::pg_lsn >= %s::pg_lsn, %s::pg_lsn > %s::pg_lsn",
            [after["replay_lsn"], waited_for, after["replay_lsn"], lsn_before],
        )
        assert cursor.fetchone() == (True, True)
    # Past REPORTS_REPLICA_MAX_LAG the replica is `lagging`; /healthz stays 200 (only
    # reports wait on it).
    settings.REPORTS_REPLICA_MAX_LAG = -1
    response = client.get(reverse("healthz"))
    assert response.status_code == 200
    assert response.json()["replica"]["status"] == "lagging"
