"""The service metrics in the kernel's registry (service_feedback/metrics.py): each figure
is the count of its drill-down rows, equals the service report's total for the same
period, and is recounted from the rows by hand."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from crm import metrics
from crm.metrics import COUNT
from crm.tenancy import tenant_context
from service_feedback.models import ServiceSettings
from service_feedback.services import settings_for
from tests.service_feedback.helpers import upsert
from tests.service_feedback.test_report import END, RANGE, START, URL, build_mix, local, recount

pytestmark = pytest.mark.django_db

# metric key → the report's total cell
KEYS = {
    "service.tickets": "tickets",
    "service.first_responded": "responded",
    "service.first_response_in_target": "in_target",
    "service.resolved": "resolved",
    "service.repeat_complaints": "repeats",
    "service.duration_issues": "duration_issues",
}


@pytest.mark.parametrize("working_hours", [False, True], ids=["calendar", "working-hours"])
def test_each_figure_is_its_rows_the_reports_total_and_the_recount(world, en, working_hours):
    with tenant_context(world.a.tenant):
        settings = settings_for(world.a.tenant)
        ServiceSettings.objects.filter(pk=settings.pk).update(working_hours_only=working_hours)
    build_mix(world.a)
    build_mix(world.b, seed=3, count=10)  # the other tenant's are never counted
    tenant = world.a.tenant
    report = en(world.a.manager).get(URL, RANGE).context["report"]
    expected = recount(world.a)[("total", None)]
    for key, cell in KEYS.items():
        metric = metrics.get_metric(key)
        assert metric is not None, key
        assert metric.aggregate == COUNT
        assert str(metric.label) and str(metric.definition) and metric.columns
        with tenant_context(tenant):
            shown = metrics.value(metric, tenant=tenant, start=START, end=END)
            rows = list(metrics.rows_of(metric, tenant=tenant, start=START, end=END))
            table = metrics.drill_down(metric, tenant=tenant, start=START, end=END)
        assert all(row.tenant_id == tenant.pk for row in rows), key
        assert shown == len(rows) == len(table), key
        assert shown == report.total.cell(cell).value, key
        assert shown == expected[cell], key
    assert expected["repeats"] and expected["duration_issues"]


def test_the_in_target_figure_follows_the_tenants_target(world):
    tenant = world.a.tenant
    day = date(2026, 3, 10)
    for i, minutes in enumerate((10, 20, 40)):
        upsert(
            world.a,
            f"M-{i}",
            opened_at=local(day, 10),
            first_response_at=local(day, 10) + timedelta(minutes=minutes),
        )
    metric = metrics.get_metric("service.first_response_in_target")
    with tenant_context(tenant):
        assert metrics.value(metric, tenant=tenant, start=START, end=END) == 1
        ServiceSettings.objects.filter(tenant=tenant).update(first_response_minutes=30)
        assert metrics.value(metric, tenant=tenant, start=START, end=END) == 2


def test_an_empty_range_counts_zero(world):
    build_mix(world.a, count=10)
    tenant = world.a.tenant
    with tenant_context(tenant):
        for key in KEYS:
            metric = metrics.get_metric(key)
            assert (
                metrics.value(metric, tenant=tenant, start=date(2025, 1, 1), end=date(2025, 1, 31))
                == 0
            )
