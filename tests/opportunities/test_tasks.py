"""The pipeline's nightly jobs (opportunities.tasks): when a tenant's run does its work
(from 02:00 local, once a day), what it does on a month's first day, the beat entry, the
fan-out through a real worker, and `manage.py recompute_pipeline`."""

from __future__ import annotations

import io
import json
import zoneinfo
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.utils import timezone

from crm.models import Tenant
from crm.tenancy import tenant_context
from opportunities import forecast, tasks
from opportunities.models import ForecastMonth, StageCalibration
from opportunities.setup import ensure_defaults
from tests.conftest import wait_for
from tests.opportunities.test_calibration import build_history
from tests.opportunities.test_forecast import opportunity


def at(tenant, *args) -> datetime:
    return timezone.make_aware(datetime(*args), tenant.tzinfo)


def computed(tenant):
    with tenant_context(tenant):
        return set(StageCalibration.objects.values_list("computed_at", flat=True))


@pytest.mark.django_db
def test_the_run_waits_for_two_oclock_and_works_once_a_day(world):
    tenant = world.a.tenant
    build_history(world.a)
    today = forecast.local_today(tenant)
    tomorrow = today + timedelta(days=1)

    def run(day, hour):
        with tenant_context(tenant):
            return tasks.nightly(tenant, now=at(tenant, day.year, day.month, day.day, hour, 7))

    assert run(today, 1) is None
    assert computed(tenant) == set()
    done = run(today, 2)
    assert done["calibrated_stages"] == 2 and done["stages"] == 5
    first = computed(tenant)
    assert len(first) == 1
    assert run(today, 3) is None
    assert run(today, 23) is None
    assert computed(tenant) == first
    # The next day, from 02:00 on (a missed 02:00 is made up at the next run).
    assert run(tomorrow, 1) is None
    assert run(tomorrow, 5) is not None
    assert computed(tenant) != first


@pytest.mark.django_db
def test_the_first_of_a_month_freezes_it_and_closes_the_last_one(world):
    a = world.a
    tenant = a.tenant
    june, july = date(2026, 6, 1), date(2026, 7, 1)
    opportunity(a, a.rep, amount="100000", probability=40, month=june)
    opportunity(a, a.rep, amount="60000", probability=50, month=july)
    opportunity(
        a,
        a.rep,
        amount="30000",
        probability=100,
        month=june,
        status="won",
        won_at=at(tenant, 2026, 6, 20, 10, 0),
    )
    with tenant_context(tenant):
        forecast.freeze(tenant, june, now=at(tenant, 2026, 6, 1, 2, 7))
        done = tasks.nightly(tenant, now=at(tenant, 2026, 7, 1, 2, 7))
    assert done["frozen_rows"] == 2  # the team and the rep
    assert done["months_closed"] == ["2026-06-01"]
    with tenant_context(tenant):
        rows = {(r.month, r.owner_id): r for r in ForecastMonth.objects.all()}
    # Frozen after the night's calibration, which brought the July one to its stage's
    # probability (the first stage's default, 10 %): 60,000 × 10 %.
    assert rows[(july, None)].forecast == Decimal("6000.00")
    assert rows[(june, None)].signed == 30000
    assert rows[(june, None)].accuracy == Decimal("0.6667")  # 1 - 10,000 / 30,000
    # The next day's run freezes nothing again and closes nothing.
    with tenant_context(tenant):
        later = tasks.nightly(tenant, now=at(tenant, 2026, 7, 2, 2, 7))
    assert (later["frozen_rows"], later["months_closed"]) == (0, [])


@pytest.mark.django_db
def test_a_tenant_without_a_pipeline_is_left_alone(world):
    tenant = world.a.tenant
    with tenant_context(tenant):
        done = tasks.nightly(tenant, now=at(tenant, 2026, 6, 1, 2, 7))
        assert done == {"tenant": tenant.slug, "skipped": "no pipeline"}
        assert not ForecastMonth.objects.exists()


def test_beat_runs_it_every_hour():
    job = settings.CRM_PERIODIC_TASKS["opportunities.pipeline_nightly"]
    assert job["task"] == "opportunities.pipeline_nightly_all"
    assert job["schedule"]._orig_minute == 7 and job["schedule"]._orig_hour == "*"


def _zone_where_it_is_noon() -> str:
    """A fixed-offset zone whose local hour is now 12 (so the run is due whatever the
    time the suite runs at)."""
    offset = (12 - timezone.now().hour) % 24
    offset = offset - 24 if offset > 12 else offset
    name = f"Etc/GMT{-offset:+d}" if offset else "Etc/GMT"
    assert timezone.localtime(timezone=zoneinfo.ZoneInfo(name)).hour in (12, 13)
    return name


@pytest.mark.django_db(transaction=True)
def test_the_fan_out_runs_each_tenant_on_a_real_worker(world, celery_worker_thread):
    zone = _zone_where_it_is_noon()
    Tenant.objects.filter(pk__in=[world.a.tenant.pk, world.b.tenant.pk]).update(timezone=zone)
    for side in (world.a, world.b):
        side.tenant.refresh_from_db()
        with tenant_context(side.tenant):
            ensure_defaults()
    tasks.pipeline_nightly_all.delay()

    def calibrated(side):
        def check():
            with tenant_context(side.tenant):
                return StageCalibration.objects.count() == 5

        return check

    assert wait_for(calibrated(world.a), timeout=30)
    assert wait_for(calibrated(world.b), timeout=30)
    with tenant_context(world.a.tenant):
        today = forecast.local_today(world.a.tenant)
        frozen = ForecastMonth.objects.filter(month=today.replace(day=1)).exists()
    assert frozen == (today.day == 1)


@pytest.mark.django_db
def test_the_command_recomputes_on_demand(world):
    build_history(world.a)
    out = io.StringIO()
    call_command("recompute_pipeline", "--tenant", world.a.tenant.slug, stdout=out)
    result = json.loads(out.getvalue())[world.a.tenant.slug]
    assert result["calibrated_stages"] == 2
    assert result["frozen_rows"] >= 1  # this month's, whatever the day
    tenant = world.a.tenant
    with tenant_context(tenant):
        month = forecast.first_of_month(forecast.local_today(tenant))
        assert ForecastMonth.objects.filter(month=month, owner__isnull=True).exists()
    # Again: the calibration is recomputed, the frozen month is not.
    out = io.StringIO()
    call_command("recompute_pipeline", "--tenant", tenant.slug, stdout=out)
    assert json.loads(out.getvalue())[tenant.slug]["frozen_rows"] == 0


@pytest.mark.django_db
def test_the_command_refuses_an_unknown_tenant(world):
    with pytest.raises(CommandError):
        call_command("recompute_pipeline", "--tenant", "nobody")
