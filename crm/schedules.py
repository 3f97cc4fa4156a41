"""The periodic jobs beat runs: defaults from settings, installed once, then the admin's.

`settings.CRM_PERIODIC_TASKS` lists the jobs the product needs. After every `migrate`
each one that does not exist yet (by name) is created as a django-celery-beat
`PeriodicTask`; one that exists is left exactly as it is. So the platform superuser's
changes in the admin (“Periodic tasks”: interval, crontab, enabled) survive restarts and
upgrades, and a new version's new jobs still arrive. beat itself reads only the database
(CELERY_BEAT_SCHEDULE stays empty: django-celery-beat would overwrite the rows from it at
every start).
"""

from __future__ import annotations

import json

from celery.schedules import crontab
from django.conf import settings


def install_defaults(using: str = "default") -> list[str]:
    """Create the default jobs that are missing. Returns their names."""
    from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

    tasks = PeriodicTask.objects.using(using)
    existing = set(
        tasks.filter(name__in=settings.CRM_PERIODIC_TASKS).values_list("name", flat=True)
    )
    created = []
    for name, job in settings.CRM_PERIODIC_TASKS.items():
        if name in existing:
            continue
        schedule = job["schedule"]
        fields = {}
        if isinstance(schedule, crontab):
            fields["crontab"], _ = CrontabSchedule.objects.using(using).get_or_create(
                minute=schedule._orig_minute,
                hour=schedule._orig_hour,
                day_of_week=schedule._orig_day_of_week,
                day_of_month=schedule._orig_day_of_month,
                month_of_year=schedule._orig_month_of_year,
                timezone=settings.CELERY_TIMEZONE,
            )
        else:
            fields["interval"], _ = IntervalSchedule.objects.using(using).get_or_create(
                every=max(1, round(float(schedule))), period=IntervalSchedule.SECONDS
            )
        tasks.create(
            name=name,
            task=job["task"],
            kwargs=json.dumps(job.get("kwargs", {})),
            description=job.get("description", ""),
            **fields,
        )
        created.append(name)
    return created


def on_post_migrate(sender, using="default", **kwargs) -> None:
    install_defaults(using)
