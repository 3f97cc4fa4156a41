"""The nightly computation of the lead activity index (F41): every open lead of a tenant
scored for a day in one set-based INSERT … SELECT, then each rep's day from those rows.

A day's values are as of the start of that day in the tenant's time zone (`as_of`). An
**open lead** has an owner, the status assigned or valid (not in the pool, not verified
invalid), was created before `as_of`, and has no outcome elsewhere: an app above leads
registers what closes a lead (`register_outcome`; opportunities: an opportunity opened
from it was won or lost). The components (docs/activity.md):

- **freshness**, 40 points or none: the lead was updated in the FRESH_DAYS (7) days
  before `as_of`. Its last update is the latest of its creation, its last touch, an
  entry of its timeline (touches, follow-ups, verification, assignment …; SLA alerts
  are not updates) and a follow-up logged on it. `idle_days` = whole days from it.
- **action density**, 35 × min(follow-ups, 3) / 3 points: follow-ups (customers'
  Interaction of kind follow_up) logged on the lead in the DENSITY_DAYS (30) days
  before `as_of`; 3 or more earn all 35, 2 earn 23.3, 1 earns 11.7.
- **role coverage**, 25 × min(roles, 2) / 2 points: the distinct decision-chain roles
  reached. A role is reached when the lead's owner logged a follow-up on the lead's
  customer with a contact of that customer who holds the role, or recorded the role as
  reached on such a follow-up; the lead's own contact's role counts too. A lead without
  a customer has no follow-up on a customer: only its contact's role can count.

The score is their sum, 0–100, with one decimal (rounded half away from zero). Below
RESCUE_BELOW (75) the lead is on its rep's rescue list (leads.activity.rescue).

Idempotent: a run replaces the day's rows of the tenant (lead rows, rep rows, the run).
Lead rows are kept KEEP_DAYS days, rep rows and runs KEEP_REP_DAYS.
"""

from __future__ import annotations

import time as clock
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db import connection, transaction
from django.utils import timezone

from crm.models import Tenant
from customers.models import DecisionRole, InteractionKind
from leads.models import ActivityRun, LeadEventKind, LeadStatus

FRESH_DAYS = 7
DENSITY_DAYS = 30
FOLLOW_UPS_WANTED = 3
ROLES_WANTED = 2
FRESHNESS_POINTS = 40
DENSITY_POINTS = 35
COVERAGE_POINTS = 25
RESCUE_BELOW = 75
KEEP_DAYS = 35
KEEP_REP_DAYS = 400
# The statement aggregates every open lead's rows at once: hash aggregates and hash joins
# over the whole tenant, no nested loop over rows the statistics do not know yet; no JIT
# (compiling the statement took seconds, its run needs none). Set for its own statements
# only, then put back.
PLANNER_SETTINGS = {"work_mem": "128MB", "enable_nestloop": "off", "jit": "off"}

_outcomes: dict[str, str] = {}


def register_outcome(name: str, condition: str) -> None:
    """Make a lead with an outcome recorded by another app not open: `condition` is a SQL
    boolean on the lead row `l` (leads_lead), true when the lead is closed, e.g. EXISTS
    (an opportunity from it won or lost). Registered from the app's AppConfig.ready()."""
    _outcomes[name] = condition


def outcome_sql() -> str:
    """The registered outcomes as `AND NOT (…)` conditions on `l`."""
    return "".join(f" AND NOT ({condition})" for _name, condition in sorted(_outcomes.items()))


def as_of(tenant: Tenant, day: date) -> datetime:
    """The start of `day` in the tenant's time zone: the moment its values are as of."""
    return datetime.combine(day, time(0), tzinfo=tenant.tzinfo)


def local_today(tenant: Tenant, now: datetime | None = None) -> date:
    return timezone.localdate(now or timezone.now(), timezone=tenant.tzinfo)


# `OFFSET 0` keeps `vals` from being folded into the SELECT that scores it (each input
# computed once per lead); `open_leads` is read three times and materialised. The roles
# are reached per customer and rep (`reached`), then given to each of that rep's leads of
# that customer: a customer's follow-ups are read once, not once per lead.
_SQL = """
WITH open_leads AS MATERIALIZED (
    SELECT l.id, l.owner_id, l.customer_id, l.contact_id, l.created_at,
           CASE WHEN l.last_touch_at < %(as_of)s THEN l.last_touch_at END AS touched_at
    FROM leads_lead l
    WHERE l.tenant_id = %(tenant)s AND l.owner_id IS NOT NULL
      AND l.status = ANY(%(open_statuses)s) AND l.created_at < %(as_of)s{outcomes}
), ev AS (
    SELECT e.lead_id, max(e.at) AS at
    FROM leads_leadevent e
    WHERE e.tenant_id = %(tenant)s AND e.at < %(as_of)s AND e.kind <> %(alert_kind)s
    GROUP BY e.lead_id
), fu AS (
    SELECT i.lead_id, max(i.at) AS at,
           count(*) FILTER (WHERE i.kind = %(follow_up)s AND i.at >= %(density_since)s) AS n
    FROM customers_interaction i
    WHERE i.tenant_id = %(tenant)s AND i.lead_id IS NOT NULL AND i.at < %(as_of)s
    GROUP BY i.lead_id
), reached AS (
    SELECT i.customer_id, i.by_id, c.role
    FROM customers_interaction i
    JOIN customers_contact c ON c.id = i.contact_id AND c.customer_id = i.customer_id
    WHERE i.tenant_id = %(tenant)s AND i.at < %(as_of)s AND i.customer_id IS NOT NULL
      AND c.role = ANY(%(roles)s)
    UNION
    SELECT i.customer_id, i.by_id, x.role
    FROM customers_interaction i CROSS JOIN LATERAL jsonb_array_elements_text(i.roles) AS x(role)
    WHERE i.tenant_id = %(tenant)s AND i.at < %(as_of)s AND i.customer_id IS NOT NULL
      AND i.roles <> '[]'::jsonb AND x.role = ANY(%(roles)s)
), touched AS (
    SELECT o.id AS lead_id, r.role
    FROM open_leads o
    JOIN reached r ON r.customer_id = o.customer_id AND r.by_id = o.owner_id
    UNION
    SELECT o.id, c.role
    FROM open_leads o
    JOIN customers_contact c ON c.id = o.contact_id
    WHERE c.role = ANY(%(roles)s)
), covered AS (
    SELECT lead_id, count(*) AS n FROM touched GROUP BY lead_id
), vals AS (
    SELECT o.id AS lead_id, o.owner_id,
           greatest(o.created_at, o.touched_at, ev.at, fu.at) AS updated_at,
           coalesce(fu.n, 0) AS follow_ups,
           coalesce(cv.n, 0) AS roles
    FROM open_leads o
    LEFT JOIN ev ON ev.lead_id = o.id
    LEFT JOIN fu ON fu.lead_id = o.id
    LEFT JOIN covered cv ON cv.lead_id = o.id
    OFFSET 0
), parts AS (
    SELECT lead_id, owner_id, follow_ups, roles,
           floor(extract(epoch FROM (%(as_of)s - updated_at)) / 86400)::int AS idle_days,
           CASE WHEN updated_at >= %(fresh_since)s THEN %(fresh_points)s ELSE 0 END::numeric
               AS fresh,
           %(density_points)s::numeric * least(follow_ups, %(follow_ups)s) / %(follow_ups)s
               AS dense,
           %(coverage_points)s::numeric * least(roles, %(roles_wanted)s) / %(roles_wanted)s
               AS cover
    FROM vals
)
INSERT INTO leads_leadactivity (
    tenant_id, public_id, lead_id, day, owner_id, idle_days, follow_ups, roles,
    freshness, density, coverage, score
)
SELECT %(tenant)s, {public_id}, lead_id, %(day)s, owner_id, idle_days,
       least(follow_ups, 32767), roles,
       round(fresh, 1), round(dense, 1), round(cover, 1), round(fresh + dense + cover, 1)
FROM parts
"""

# The rows' public ids, time-ordered (the layout of a version 7 UUID: milliseconds, then
# random bits): a night's million rows go to the end of the (tenant, public_id) index
# instead of into random pages of a month of rows.
_TIME_ORDERED_UUID = (
    "(lpad(to_hex((extract(epoch FROM clock_timestamp()) * 1000)::bigint), 12, '0')"
    " || '7' || substr(md5(random()::text), 1, 3)"
    " || '8' || substr(md5(random()::text), 1, 15))::uuid"
)

_REPS_SQL = """
INSERT INTO leads_repactivity (tenant_id, public_id, owner_id, day, leads, below, average)
SELECT %(tenant)s, gen_random_uuid(), owner_id, %(day)s, count(*),
       count(*) FILTER (WHERE score < %(rescue_below)s), round(avg(score), 1)
FROM leads_leadactivity
WHERE tenant_id = %(tenant)s AND day = %(day)s
GROUP BY owner_id
"""


def statement(tenant: Tenant, day: date) -> tuple[str, dict]:
    """The scoring statement for the tenant's `day` and its parameters."""
    moment = as_of(tenant, day)
    params = {
        "tenant": tenant.pk,
        "day": day,
        "as_of": moment,
        "fresh_since": moment - timedelta(days=FRESH_DAYS),
        "density_since": moment - timedelta(days=DENSITY_DAYS),
        "open_statuses": [LeadStatus.ASSIGNED.value, LeadStatus.VALID.value],
        "alert_kind": LeadEventKind.SLA.value,
        "follow_up": InteractionKind.FOLLOW_UP.value,
        "roles": list(DecisionRole.values),
        "fresh_points": FRESHNESS_POINTS,
        "density_points": DENSITY_POINTS,
        "coverage_points": COVERAGE_POINTS,
        "follow_ups": FOLLOW_UPS_WANTED,
        "roles_wanted": ROLES_WANTED,
    }
    return _SQL.format(outcomes=outcome_sql(), public_id=_TIME_ORDERED_UUID), params


@dataclass
class Result:
    tenant: str
    day: date
    leads: int  # open leads scored
    below: int  # of them, below RESCUE_BELOW
    reps: int
    seconds: float
    pruned: int

    def as_dict(self) -> dict:
        return {
            "tenant": self.tenant,
            "day": self.day.isoformat(),
            "leads": self.leads,
            "below": self.below,
            "reps": self.reps,
            "seconds": round(self.seconds, 3),
            "pruned": self.pruned,
        }


def compute(tenant: Tenant, *, day: date | None = None, now: datetime | None = None) -> Result:
    """Score every open lead of `tenant` for `day` (default: the tenant's today), write
    the reps' day and the run. Inside `tenant_context(tenant)`. Run again for the same
    day, it replaces that day's rows."""
    now = now or timezone.now()
    day = day or local_today(tenant, now)
    sql, params = statement(tenant, day)
    started = clock.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor, _planner(cursor):
        for table in ("leads_leadactivity", "leads_repactivity", "leads_activityrun"):
            cursor.execute(
                f"DELETE FROM {table} WHERE tenant_id = %s AND day = %s",  # noqa: S608
                [tenant.pk, day],
            )
        cursor.execute(sql, params)
        cursor.execute(_REPS_SQL, {**params, "rescue_below": RESCUE_BELOW})
        reps = cursor.rowcount
        cursor.execute(
            "SELECT coalesce(sum(leads), 0), coalesce(sum(below), 0) FROM leads_repactivity"
            " WHERE tenant_id = %s AND day = %s",
            [tenant.pk, day],
        )
        leads, below = cursor.fetchone()
        pruned = _prune(cursor, tenant, day)
        seconds = clock.perf_counter() - started
        ActivityRun.objects.create(
            tenant=tenant, day=day, leads=leads, below=below, seconds=seconds, computed_at=now
        )
    return Result(tenant.slug, day, leads, below, reps, seconds, pruned)


def _prune(cursor, tenant: Tenant, day: date) -> int:
    """Delete the lead rows older than KEEP_DAYS, the rep rows and runs older than
    KEEP_REP_DAYS. How many lead rows were deleted."""
    cursor.execute(
        "DELETE FROM leads_leadactivity WHERE tenant_id = %s AND day < %s",
        [tenant.pk, day - timedelta(days=KEEP_DAYS)],
    )
    pruned = cursor.rowcount
    for table in ("leads_repactivity", "leads_activityrun"):
        cursor.execute(
            f"DELETE FROM {table} WHERE tenant_id = %s AND day < %s",  # noqa: S608
            [tenant.pk, day - timedelta(days=KEEP_REP_DAYS)],
        )
    return pruned


@contextmanager
def _planner(cursor):
    """PLANNER_SETTINGS for the statements of the block (transaction-local), then the
    previous values again."""
    names = list(PLANNER_SETTINGS)
    apply = "SELECT " + ", ".join("set_config(%s, %s, true)" for _ in names)
    cursor.execute("SELECT " + ", ".join("current_setting(%s)" for _ in names), names)
    previous = cursor.fetchone()
    cursor.execute(apply, [x for name in names for x in (name, PLANNER_SETTINGS[name])])
    yield
    cursor.execute(apply, [x for pair in zip(names, previous, strict=True) for x in pair])


# -- the night ----------------------------------------------------------------------------

# The tenant's local hour from which the day's run does its work: after midnight, once
# the day's last writes are in.
NIGHTLY_HOUR = 1
NIGHTLY_EXPIRES = 3600  # seconds: a fan-out still queued when the next is due expires


def nightly(tenant: Tenant, *, now: datetime | None = None) -> dict | None:
    """The hourly run for one tenant: today's index if it is NIGHTLY_HOUR or later in the
    tenant's time zone and today has no run yet; else None. A night the job missed is
    made up at the next run."""
    now = now or timezone.now()
    local = timezone.localtime(now, timezone=tenant.tzinfo)
    if local.hour < NIGHTLY_HOUR:
        return None
    if ActivityRun.objects.filter(tenant=tenant, day=local.date()).exists():
        return None
    return compute(tenant, day=local.date(), now=now).as_dict()
