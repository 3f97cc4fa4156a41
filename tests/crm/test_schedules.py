"""The periodic jobs: installed when missing, never overwritten (the admin is the source)."""

import json

import pytest
from django.conf import settings
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from crm.celery import app
from crm.schedules import install_defaults

pytestmark = pytest.mark.django_db


def test_migrate_installed_every_default_job():
    jobs = {t.name: t for t in PeriodicTask.objects.filter(name__in=settings.CRM_PERIODIC_TASKS)}
    assert set(jobs) == set(settings.CRM_PERIODIC_TASKS)
    assert jobs["leads.report_rollup"].interval.every == 300
    assert jobs["leads.report_cover"].crontab.hour == "3"
    assert jobs["leads.report_cover"].crontab.minute == "17"
    assert json.loads(jobs["leads.report_cover"].kwargs) == {"cover": True}
    retention = jobs["crm.log_retention"]
    assert (retention.task, retention.crontab.hour, retention.crontab.minute) == (
        "crm.log_retention_all",
        "4",
        "41",
    )


def test_an_admin_change_survives_the_next_migrate_and_beat_start():
    job = PeriodicTask.objects.get(name="leads.sla")
    job.interval, _ = IntervalSchedule.objects.get_or_create(every=120, period="seconds")
    job.enabled = False
    job.save()

    assert install_defaults() == []  # what every migrate runs after it
    job.refresh_from_db()
    assert (job.interval.every, job.enabled) == (120, False)
    # beat's DatabaseScheduler writes the rows of CELERY_BEAT_SCHEDULE over the database's
    # at every start: there must be none.
    assert app.conf.beat_schedule == {}


def test_a_job_a_new_version_adds_is_created_and_the_others_kept():
    PeriodicTask.objects.filter(name="crm.deliver_due").delete()
    assert install_defaults() == ["crm.deliver_due"]
    assert PeriodicTask.objects.get(name="crm.deliver_due").interval.every == 30
