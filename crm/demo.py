"""The demo tenant's kernel part: tenants, users and their seats.

`python manage.py seed_demo` runs this, then each app's own `<app>/demo.py` (when it has
one) inside the demo tenant, so every stage adds its part of the story. Idempotent.
"""

from __future__ import annotations

import random
import statistics
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model

from crm.models import Membership, Role, Tenant
from crm.tenancy import tenant_context

# username, display name, role in demo, e-mail
DEMO_USERS = [
    ("admin", "赵敏", Role.ADMIN),
    ("manager", "王建国", Role.MANAGER),
    ("marketing", "李娜", Role.MARKETING),
    ("service", "陈静", Role.SERVICE),
    ("rep1", "张伟", Role.REP),
    ("rep2", "刘洋", Role.REP),
    ("rep3", "杨帆", Role.REP),
    ("rep4", "黄磊", Role.REP),
    ("rep5", "周婷", Role.REP),
    ("rep6", "吴昊", Role.REP),
]
# The second tenant, to show switching: the admin and the manager also work there.
ACME_SEATS = [("admin", Role.ADMIN), ("manager", Role.MANAGER)]


@dataclass
class DemoWorld:
    demo: Tenant
    acme: Tenant
    users: dict  # username -> User
    memberships: dict  # username -> Membership in demo


def seed(*, reset_passwords: bool = False) -> DemoWorld:
    User = get_user_model()
    demo, _ = Tenant.objects.get_or_create(
        slug="demo", defaults={"name": "华东医疗设备有限公司（演示）", "timezone": "Asia/Shanghai"}
    )
    acme, _ = Tenant.objects.get_or_create(
        slug="acme", defaults={"name": "艾克米工业软件（演示）", "timezone": "Asia/Shanghai"}
    )

    users, memberships = {}, {}
    for username, name, role in DEMO_USERS:
        user, created = User.objects.get_or_create(
            username=username, defaults={"first_name": name, "email": f"{username}@demo.invalid"}
        )
        if created or reset_passwords:
            user.set_password(settings.DEMO_PASSWORD)
            user.save(update_fields=["password"])
        users[username] = user
        with tenant_context(demo):  # memberships are row-level secured like tenant rows
            memberships[username], _ = Membership.objects.get_or_create(
                tenant=demo, user=user, defaults={"role": role}
            )
    with tenant_context(acme):
        for username, role in ACME_SEATS:
            Membership.objects.get_or_create(
                tenant=acme, user=users[username], defaults={"role": role}
            )
    return DemoWorld(demo=demo, acme=acme, users=users, memberships=memberships)


# --- The water levels (crm.levels), after every app's part ---------------------------------

LEVELS_SEED = 20260302


def _earlier_nights(level, readings: dict, days: list, rnd: random.Random) -> date | None:
    """Fill the days before the level's first day with rows (the nights before the demo's
    stories begin) with values spread as each owner's later ones are: around their median,
    normally with its scaled MAD as deviation (kept within 2.5 of them, so no story's
    anomaly is repeated), on a sample of their usual size. Returns that first day (None:
    the level has no rows at all)."""
    from crm.levels import MAD_SCALE, SHARE, Reading

    with_rows = [d for d in days if readings[d].get(None, Reading(None, 0)).value is not None]
    if not with_rows:
        return None
    first = with_rows[0]
    later = [d for d in days if d >= first]
    owners = {o for d in later for o, r in readings[d].items() if r.value is not None}
    for owner in sorted(owners, key=lambda o: -1 if o is None else o):
        seen = [readings[d][owner] for d in later if owner in readings[d]]
        seen = [r for r in seen if r.value is not None]
        values = [r.value for r in seen]
        centre = statistics.median(values)
        deviation = MAD_SCALE * statistics.median(abs(v - centre) for v in values)
        deviation = deviation or level.floor / 3
        sample = max(1, round(statistics.median(r.sample for r in seen)))
        for day in days[: days.index(first)]:
            step = max(-2.5, min(2.5, rnd.gauss(0, 1))) * deviation
            value = max(0.0, centre + step)
            readings[day][owner] = Reading(
                min(1.0, value) if level.unit == SHARE else value, sample
            )
    return first


def seed_levels(*, world: DemoWorld, stdout) -> None:
    """The demo tenant's water levels (F42): the last 28 days recorded per rep and for the
    team, day after day in order as the nightly job would have, so the rule judges each
    day against the ones before it and marks the days that left their band (rep5, who
    answers a day late lately, among them), each told to its owner as of the night after
    it. The stories reach back two weeks: the nights before a level's first day with rows
    are drawn from its own later days (`_earlier_nights`). Runs inside the demo tenant
    after every app's part; idempotent: when the tenant has levels, only the days not
    recorded yet are recorded."""
    from django.utils import timezone

    from crm import levels
    from crm.models import LevelDay, Notification

    tenant = world.demo
    now = timezone.now()
    today = timezone.localdate(timezone=tenant.tzinfo)
    if LevelDay.objects.exists():
        for day in levels.days_to_record(tenant, today):
            levels.record_day(tenant, day, now=now)
        return
    start, end = levels.window_of(today)
    days = [start + timedelta(days=n) for n in range((end - start).days + 1)]
    rnd = random.Random(LEVELS_SEED)  # noqa: S311 — demo data, not secrets
    told = 0
    for level in levels.levels():
        readings = {day: dict(level.compute(tenant, day)) for day in days}
        first = _earlier_nights(level, readings, days, rnd)
        for day in days:
            levels.record_level(level, tenant, day, now, readings[day])
        # The earlier nights are the history, not the story: only its days are judged.
        LevelDay.objects.filter(key=level.key, day__lt=first or start).update(anomaly=False)
    anomalies = LevelDay.objects.filter(anomaly=True).count()
    for day in days:
        # The night after the day, when the job would have told them; not yet come when
        # the demo is loaded between midnight and then: now.
        night = min(
            datetime.combine(day + timedelta(days=1), time(1, 23), tzinfo=tenant.tzinfo), now
        )
        since = timezone.now()
        told += levels.tell_anomalies(tenant, day, now=night)
        Notification.objects.filter(event=levels.ANOMALY_EVENT, created_at__gte=since).update(
            created_at=night
        )
    stdout.write(
        f"water levels: {len(days)} days of {len(levels.levels())} levels, "
        f"{anomalies} anomalies told to their owners ({told})"
    )
