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
    from django.utils import timezone
    from django_celery_beat.models import (
        CrontabSchedule,
        IntervalSchedule,
        PeriodicTask,
        PeriodicTasks,
    )

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
            fields["crontab"] = _get_or_add(
                CrontabSchedule,
                using,
                minute=str(schedule._orig_minute),
                hour=str(schedule._orig_hour),
                day_of_week=str(schedule._orig_day_of_week),
                day_of_month=str(schedule._orig_day_of_month),
                month_of_year=str(schedule._orig_month_of_year),
                timezone=settings.CELERY_TIMEZONE,
            )
        else:
            fields["interval"] = _get_or_add(
                IntervalSchedule,
                using,
                every=max(1, round(float(schedule))),
                period=IntervalSchedule.SECONDS,
            )
        tasks.bulk_create(
            [
                PeriodicTask(
                    name=name,
                    task=job["task"],
                    kwargs=json.dumps(job.get("kwargs", {})),
                    description=job.get("description", ""),
                    **fields,
                )
            ]
        )
        created.append(name)
    if created:
        # What save() would have done: a running beat reloads its schedule.
        PeriodicTasks.objects.using(using).update_or_create(
            ident=1, defaults={"last_update": timezone.now()}
        )
    return created


def _get_or_add(model, using: str, **fields):
    """get_or_create without save(): django-celery-beat's save signals write through the
    default connection, and post_migrate runs on the owner's (which, while the test
    database is created, is another database)."""
    found = model.objects.using(using).filter(**fields).first()
    return found or model.objects.using(using).bulk_create([model(**fields)])[0]


def on_post_migrate(sender, using="default", **kwargs) -> None:
    install_defaults(using)
