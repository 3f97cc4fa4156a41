"""The nightly metric check (crm.metric_checks): every registered figure of a tenant with
rows built by hand adds up; a figure whose drill-down lists other rows, and one that
cannot be computed, are mismatches that alert the platform admins (log, mail, admin,
/healthz); the run's time of day, the task, the beat entry, the command; tenant isolation."""

from __future__ import annotations

import io
import json
import logging
import zoneinfo
from datetime import datetime, timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from crm import metric_checks, metrics
from crm.metrics import SUM, Column, Metric
from crm.models import MetricCheck, Tenant
from crm.tenancy import tenant_context
from leads.models import Lead
from tests.crm.test_metrics_kernel import lead, summary
from tests.opportunities.test_forecast import opportunity
from tests.service_feedback.helpers import upsert

pytestmark = pytest.mark.django_db

ADMINS = [("Ops", "ops@example.com")]


def at(tenant, day, hour=10, minute=0) -> datetime:
    return timezone.make_aware(datetime(day.year, day.month, day.day, hour, minute), tenant.tzinfo)


def yesterday(tenant):
    return timezone.localdate(timezone=tenant.tzinfo) - timedelta(days=1)


def build(side, *, scale=1):
    """Rows of four families around the side's yesterday: in the day, in the 30 days to
    it, and outside both. Returns the hand counts of a few figures."""
    t, day = side.tenant, yesterday(side.tenant)
    for i in range(2 * scale):
        lead(side, at(t, day, 9, i), province="江苏", owner=side.rep, suspect=i == 0)
    lead(side, at(t, day - timedelta(days=10)), owner=side.manager)
    lead(side, at(t, day - timedelta(days=30)))  # the day before the 30 days
    lead(side, at(t, day + timedelta(days=1), 0, 0))  # today, after the day
    summary(side, side.rep, day, 4 * scale)
    summary(side, side.manager, day - timedelta(days=5), 6)
    opportunity(
        side, side.rep, amount="120000.50", probability=100, status="won", won_at=at(t, day)
    )
    opportunity(side, side.manager, amount="8000", created_at=at(t, day - timedelta(days=3)))
    opportunity(
        side,
        side.rep,
        amount="5000",
        probability=0,
        status="lost",
        lost_at=at(t, day - timedelta(days=20)),
    )
    upsert(side, f"{t.slug}-1", opened_at=at(t, day, 11))
    upsert(side, f"{t.slug}-2", opened_at=at(t, day - timedelta(days=15), 11))
    return {
        ("leads.delivered", "day"): 2 * scale,
        ("leads.delivered", "30d"): 2 * scale + 1,
        ("leads.suspect", "day"): 1,
        ("leads.contacts_made", "day"): 4 * scale,
        ("leads.contacts_made", "30d"): 4 * scale + 6,
        ("opportunities.won_amount", "day"): 120000.5,
        ("opportunities.lost", "30d"): 1,
        ("service.tickets", "day"): 1,
        ("service.tickets", "30d"): 2,
    }


def figures(outcomes):
    return {(o.metric, o.period): o.figure for o in outcomes}


def check(side, day=None, found=None):
    with tenant_context(side.tenant):
        return metric_checks.run_check(side.tenant, day or yesterday(side.tenant), found)


# -- metrics that do not add up --------------------------------------------------------------


def distinct_leads(tenant, start, end):
    """A family that removes duplicate rows (as one joining a to-many relation would)."""
    since, until = metrics.period_bounds(tenant, start, end)
    return Lead.objects.filter(tenant=tenant, created_at__gte=since, created_at__lt=until)


# Its rows are DISTINCT (unordered) and its drill-down shows only the company: DISTINCT
# over that one column merges two leads of one company, which the figure (DISTINCT over
# whole rows) counts twice.
COMPANIES = Metric(
    "zz.companies",
    "Companies",
    "Leads, listed by company.",
    lambda tenant, start, end: distinct_leads(tenant, start, end).order_by().distinct(),
    where=Q(province="江苏"),
    columns=(Column("company", "company"),),
)
# A sum of a field the rows do not have.
WRONG_PATH = Metric(
    "zz.wrong_path", "Wrong", "A sum of nothing.", distinct_leads, aggregate=SUM, of="no_such"
)


@pytest.fixture
def broken(monkeypatch):
    for metric in (COMPANIES, WRONG_PATH):
        monkeypatch.setitem(metrics._registry, metric.key, metric)
    return {COMPANIES.key, WRONG_PATH.key}


# -- the check ---------------------------------------------------------------------------------


def test_a_clean_tenant_adds_up_for_every_registered_metric(world):
    expected = build(world.a)
    build(world.b, scale=3)  # never counted in a's
    outcomes = check(world.a)
    registered = metrics.metrics()
    day = yesterday(world.a.tenant)
    assert {(o.metric, o.period) for o in outcomes} == {
        (m.key, p) for m in registered for p in ("day", "30d")
    }
    assert [o for o in outcomes if not o.ok] == []
    found = figures(outcomes)
    for key, value in expected.items():
        assert found[key] == pytest.approx(value), key
    for o in outcomes:
        assert o.end == day
        assert o.start == (day if o.period == "day" else day - timedelta(days=29))
        assert o.figure == o.recount
    with tenant_context(world.a.tenant):
        kept = MetricCheck.objects.filter(day=day)
        assert kept.count() == len(outcomes) and not kept.filter(ok=False).exists()
    assert mail.outbox == []


def test_a_figure_its_rows_do_not_make_is_a_mismatch_that_alerts_the_admins(
    world, broken, settings, caplog, django_capture_on_commit_callbacks, client
):
    settings.ADMINS = ADMINS
    a = world.a
    build(a)
    assert client.get(reverse("healthz")).json()["metrics"]["status"] == "never"
    with (
        caplog.at_level(logging.ERROR, logger="crm.metrics"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        outcomes = check(a)
    failed = {(o.metric, o.period): o for o in outcomes if not o.ok}
    assert set(failed) == {(key, p) for key in broken for p in ("day", "30d")}
    # Two leads of one company yesterday: counted twice, listed once.
    assert (failed[(COMPANIES.key, "day")].figure, failed[(COMPANIES.key, "day")].recount) == (
        2,
        1,
    )
    wrong = failed[(WRONG_PATH.key, "30d")]
    assert wrong.figure is None and wrong.recount is None and "no_such" in wrong.error
    # The broken ones fail alone: the leads' own figures still add up.
    assert figures(outcomes)[("leads.delivered", "day")] == 2
    # The log, the mail, the admin and /healthz.
    (record,) = [r for r in caplog.records if r.name == "crm.metrics"]
    assert record.levelno == logging.ERROR and "alpha" in record.getMessage()
    (message,) = mail.outbox
    assert message.to == ["ops@example.com"]
    assert "alpha" in message.subject and "4 figure(s)" in message.subject
    assert COMPANIES.key in message.body and "figure 2, rows 1" in message.body
    assert "no_such" in message.body
    admin = client
    admin.force_login(a.admin.user, backend="django.contrib.auth.backends.ModelBackend")
    page = admin.get("/admin/crm/metriccheck/?ok__exact=0").content.decode()
    assert COMPANIES.key in page and WRONG_PATH.key in page and "leads.delivered" not in page
    health = client.get(reverse("healthz"))
    assert health.status_code == 200  # reported, the site keeps serving
    assert health.json()["metrics"] == {
        "status": "mismatch",
        "tenants": 1,
        "failing_tenants": 1,
        "mismatches": 4,
    }


def test_healthz_reports_the_latest_check_of_each_tenant(world, broken, client):
    a, b = world.a, world.b
    assert client.get(reverse("healthz")).json()["metrics"]["status"] == "never"
    check(a, found=[metrics.get_metric("leads.delivered")])
    check(b, found=[metrics.get_metric("leads.delivered")])
    assert client.get(reverse("healthz")).json()["metrics"] == {
        "status": "ok",
        "tenants": 2,
        "failing_tenants": 0,
        "mismatches": 0,
    }
    # A mismatch on an older day is not last night's: the latest day is what counts.
    lead(a, at(a.tenant, yesterday(a.tenant) - timedelta(days=1)), province="江苏")
    lead(a, at(a.tenant, yesterday(a.tenant) - timedelta(days=1)), province="江苏")
    check(a, day=yesterday(a.tenant) - timedelta(days=1), found=[COMPANIES])
    assert client.get(reverse("healthz")).json()["metrics"]["status"] == "ok"
    # A tenant whose latest check is older than the day before yesterday: not counted.
    with tenant_context(b.tenant):
        MetricCheck.objects.update(day=yesterday(b.tenant) - timedelta(days=3))
    assert client.get(reverse("healthz")).json()["metrics"]["tenants"] == 1


def test_the_admins_home_shows_the_check(world, broken, login, django_capture_on_commit_callbacks):
    a = world.a
    lead(a, at(a.tenant, yesterday(a.tenant)), province="江苏")
    lead(a, at(a.tenant, yesterday(a.tenant)), province="江苏")
    check(a, found=[COMPANIES])

    def line(member):
        home = login(member).get(reverse("home"), follow=True).content.decode()
        return home.split('data-testid="status-metrics"')[1].split("</li>")[0]

    assert "bg-danger" in line(a.admin)
    # The other tenant's admin reads their own tenant's check: none yet.
    assert "bg-warning" in line(world.b.admin)
    check(world.b, found=[metrics.get_metric("leads.delivered")])
    assert "bg-success" in line(world.b.admin)


def test_a_sum_within_a_millionth_adds_up_and_a_count_must_be_exact():
    total = Metric("t.sum", "S", "S", distinct_leads, aggregate=SUM, of="score")
    count = Metric("t.count", "C", "C", distinct_leads)
    assert metric_checks.agrees(total, 1_000_000.0, 1_000_000.5)
    assert not metric_checks.agrees(total, 1_000_000.0, 1_000_002.0)
    assert metric_checks.agrees(total, 0, 0.1 + 0.2 - 0.3)
    assert metric_checks.agrees(total, None, None)
    assert not metric_checks.agrees(total, 0, None)
    assert metric_checks.agrees(count, 3, 3) and not metric_checks.agrees(count, 3, 2)


# -- isolation ---------------------------------------------------------------------------------


def test_each_tenants_check_reads_and_keeps_only_its_own_rows(world):
    expected_a = build(world.a)
    expected_b = build(world.b, scale=3)
    found_a = figures(check(world.a))
    found_b = figures(check(world.b))
    for key, value in expected_a.items():
        assert found_a[key] == pytest.approx(value), key
    for key, value in expected_b.items():
        assert found_b[key] == pytest.approx(value), key
    for side in (world.a, world.b):
        with tenant_context(side.tenant):
            assert set(MetricCheck.objects.values_list("tenant_id", flat=True)) == {side.tenant.pk}
            # Row-level security itself, not the scoped manager.
            with connection.cursor() as cursor:
                cursor.execute("SELECT DISTINCT tenant_id FROM crm_metriccheck")
                assert [row[0] for row in cursor.fetchall()] == [side.tenant.pk]


def test_a_tenant_admin_sees_only_their_tenants_checks(world, login):
    check(world.a, found=[metrics.get_metric("leads.delivered")])
    with tenant_context(world.a.tenant):
        mine = MetricCheck.objects.first()
    assert login(world.a.admin).get(f"/admin/crm/metriccheck/{mine.pk}/change/").status_code == 200
    assert login(world.b.admin).get(f"/admin/crm/metriccheck/{mine.pk}/change/").status_code in (
        302,
        404,
    )
    assert (
        login(world.b.admin)
        .get("/admin/crm/metriccheck/")
        .content.decode()
        .count("leads.delivered")
        == 0
    )


# -- when it runs ------------------------------------------------------------------------------


def test_the_run_waits_for_three_oclock_checks_yesterday_once_and_prunes(world):
    a, tenant = world.a, world.a.tenant
    build(a)
    today = timezone.localdate(timezone=tenant.tzinfo)
    old = today - timedelta(days=metric_checks.KEEP_DAYS + 2)
    with tenant_context(tenant):
        MetricCheck.objects.create(
            tenant=tenant, day=old, metric="x", period="day", start=old, ok=True
        )

    def run(day, hour):
        with tenant_context(tenant):
            return metric_checks.nightly(tenant, now=at(tenant, day, hour, 37))

    assert run(today, 2) is None
    done = run(today, 3)
    assert done["day"] == (today - timedelta(days=1)).isoformat()
    assert done["checked"] == 2 * len(metrics.metrics()) and done["mismatches"] == []
    assert run(today, 4) is None and run(today, 23) is None
    with tenant_context(tenant):
        assert not MetricCheck.objects.filter(day=old).exists()
        assert set(MetricCheck.objects.values_list("day", flat=True)) == {yesterday(tenant)}
    later = run(today + timedelta(days=1), 5)
    assert later["day"] == today.isoformat()


def _zone_where_it_is_noon() -> str:
    offset = (12 - timezone.now().hour) % 24
    offset = offset - 24 if offset > 12 else offset
    name = f"Etc/GMT{-offset:+d}" if offset else "Etc/GMT"
    assert timezone.localtime(timezone=zoneinfo.ZoneInfo(name)).hour in (12, 13)
    return name


def test_the_task_checks_its_tenant(world):
    Tenant.objects.filter(pk=world.a.tenant.pk).update(timezone=_zone_where_it_is_noon())
    world.a.tenant.refresh_from_db()
    build(world.a)
    done = metric_checks.check_metrics.apply(args=(world.a.tenant.pk,)).get()
    assert done["tenant"] == "alpha" and done["mismatches"] == []
    assert metric_checks.check_metrics.apply(args=(world.a.tenant.pk,)).get() is None


def test_beat_runs_it_every_hour_fanned_out_per_tenant():
    job = settings.CRM_PERIODIC_TASKS["crm.check_metrics"]
    assert job["task"] == "crm.check_metrics_all"
    assert job["schedule"]._orig_minute == 37 and job["schedule"]._orig_hour == "*"
    installed = PeriodicTask.objects.get(name="crm.check_metrics")
    assert installed.task == "crm.check_metrics_all" and installed.enabled


# -- the command -------------------------------------------------------------------------------


def test_the_command_checks_a_tenants_day_and_prints_json(world):
    build(world.a)
    day = yesterday(world.a.tenant)
    out = io.StringIO()
    call_command(
        "check_metrics", "--tenant", "alpha", "--day", day.isoformat(), "--json", stdout=out
    )
    result = json.loads(out.getvalue())
    assert list(result) == ["alpha"]
    assert result["alpha"]["day"] == day.isoformat() and result["alpha"]["mismatches"] == 0
    by_key = {(f["metric"], f["period"]): f for f in result["alpha"]["figures"]}
    assert by_key[("service.tickets", "30d")]["figure"] == 2
    assert by_key[("service.tickets", "30d")]["start"] == (day - timedelta(days=29)).isoformat()
    # Again: the day's check is replaced, not added to.
    call_command("check_metrics", "--tenant", "alpha", "--day", day.isoformat(), stdout=out)
    with tenant_context(world.a.tenant):
        assert MetricCheck.objects.filter(day=day).count() == 2 * len(metrics.metrics())


def test_the_command_fails_on_a_mismatch_after_saying_which(world, broken):
    build(world.a)
    out = io.StringIO()
    with pytest.raises(CommandError, match="4 figure"):
        call_command("check_metrics", "--tenant", "alpha", stdout=out)
    assert "zz.companies" in out.getvalue() and "zz.wrong_path" in out.getvalue()


def test_the_command_refuses_a_bad_day_or_tenant(world):
    with pytest.raises(CommandError, match="not a date"):
        call_command("check_metrics", "--day", "2026-13-01")
    with pytest.raises(CommandError, match="no active tenant"):
        call_command("check_metrics", "--tenant", "nobody")
