"""The beat jobs' fan-out to tenants (crm.jobs): one message per tenant and round, the
tenants of a round in id order starting after the last tenant whose task a worker
started, so a round cut short (its messages expired behind a long job) is continued by
the next round where it stopped, and no tenant is always at the tail."""

from __future__ import annotations

import pytest
from celery.signals import before_task_publish
from django.core.cache import cache

from crm import jobs
from crm.models import Tenant
from tests.factories import TenantFactory

pytestmark = pytest.mark.django_db

NAME = "health.recompute"


@pytest.fixture(autouse=True)
def _no_cursor():
    for name in (NAME, "leads.activity_nightly"):
        cache.delete(jobs._cursor_key(name))
    yield
    for name in (NAME, "leads.activity_nightly"):
        cache.delete(jobs._cursor_key(name))


@pytest.fixture
def published():
    """(task name, tenant id) of every message published, in order."""
    seen = []

    def record(sender=None, body=None, **kwargs):
        seen.append((sender, body[0][0]))

    before_task_publish.connect(record, weak=False)
    yield seen
    before_task_publish.disconnect(record)


def _tenants(n: int) -> list[int]:
    for _ in range(n):
        TenantFactory()
    return list(Tenant.objects.filter(is_active=True).order_by("pk").values_list("pk", flat=True))


def test_without_a_cursor_the_round_is_in_id_order():
    assert jobs.round_robin(NAME, [5, 3, 9, 3]) == [3, 5, 9]


def test_a_round_starts_after_the_tenant_started_last_and_wraps_around():
    jobs.task_started(NAME, 5)
    assert jobs.round_robin(NAME, [3, 5, 9, 12]) == [9, 12, 3, 5]
    jobs.task_started(NAME, 12)
    assert jobs.round_robin(NAME, [3, 5, 9, 12]) == [3, 5, 9, 12]
    # The tenant of the cursor is gone: the next one by id comes first.
    jobs.task_started(NAME, 6)
    assert jobs.round_robin(NAME, [3, 5, 9, 12]) == [9, 12, 3, 5]


def test_a_cut_short_round_is_continued_where_it_stopped(published):
    """A worker got through the first two tenants of a round before the other messages
    expired (a long recompute ahead of them): the next round starts with the third."""
    from health.tasks import recompute_all, recompute_tenant

    ids = _tenants(4)
    assert recompute_all() == len(ids)
    first = [tenant for _name, tenant in published]
    assert first == ids
    for tenant_id in first[:2]:
        recompute_tenant.apply(args=(tenant_id,))  # what the worker started
    published.clear()
    recompute_all()
    assert [tenant for _name, tenant in published] == ids[2:] + ids[:2]


def test_two_nightly_kinds_queue_one_job_a_tenant_each_round(published):
    """Each tenant's second job comes after every tenant's first: round-robin across
    tenants in the reports queue, whatever their size."""
    from health.tasks import recompute_all
    from leads.tasks import activity_nightly_all

    ids = _tenants(3)
    recompute_all()
    activity_nightly_all()
    names = [name for name, _tenant in published]
    tenants = [tenant for _name, tenant in published]
    assert names == ["health.recompute"] * len(ids) + ["leads.activity_nightly"] * len(ids)
    assert tenants == ids + ids


def test_the_fan_out_still_runs_with_the_cache_down(published):
    from django.test import override_settings

    from health.tasks import recompute_all, recompute_tenant

    ids = _tenants(2)
    down = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
    with override_settings(CACHES=down):
        recompute_tenant.apply(args=(ids[0],))  # the cursor not recorded: no error either
        assert recompute_all() == len(ids)
    assert [tenant for _name, tenant in published] == ids


FANNED_OUT = {
    "crm.exports_cleanup",
    "crm.weekly_diagnosis",
    "crm.check_metrics",
    "crm.levels_record",
    "opportunities.pipeline_nightly",
    "automation.due_sweep",
    "leads.sla_sweep",
    "leads.report_rollup",
    "leads.activity_nightly",
    "service_feedback.alerts_sweep",
    "health.recompute",
}


def test_only_the_tasks_beat_fans_out_record_their_cursor():
    """Every other tenant task (a lead's inbox, a delivery …) leaves the cache alone."""
    from crm.celery import TenantTask, app

    app.loader.import_default_modules()
    tenant_tasks = {n for n, t in app.tasks.items() if isinstance(t, TenantTask)}
    assert tenant_tasks >= FANNED_OUT
    assert {n for n in tenant_tasks if app.tasks[n].round_robin} == FANNED_OUT
