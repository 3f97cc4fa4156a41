"""The nightly recompute (F31, F33): every customer of a tenant scored for a day in one
set-based statement, then the risk list settled in two more.

A day's values are as of the start of that day in the tenant's time zone (`as_of`), so a
recompute later the same day writes exactly the same rows (idempotent: ON CONFLICT on
(tenant, customer, day) updates the row in place, and leaves it alone when nothing in it
changed). The six dimensions:

=============  ==============================================  ==============================
dimension      value                                           has data when
=============  ==============================================  ==============================
recency        whole days from the last interaction to as_of   an interaction before as_of
frequency      interactions in the 90 days before as_of        an interaction before as_of
service        % of tickets resolved in the last 180 days      a ticket resolved in them
               within the tenant's resolution target
downloads      document downloads in the last 90 days          a document link was sent or a
                                                               download recorded before
quotes         % of quote links sent in the last 180 days      a quote link sent in them
               opened before as_of
competitor     competitor searches in the last 90 days         any signal recorded before
=============  ==============================================  ==============================

Each value becomes a 0–100 score by the tenant's bands (`band_score`, and its SQL twin
`_band_sql`). The overall score is the weighted mean of the scores of the dimensions that
have data and a weight, rounded half up; NULL when none has (coverage 0): never a 0
presented as real. `health.reference` computes the same per customer in Python (the
property test's oracle, and the bench's naive loop).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from fractions import Fraction

from django.db import connection, transaction
from django.utils import timezone

from crm import customer_facts
from crm.models import Tenant
from health.models import (
    DEFAULT_PLAYBOOK,
    LOWER_IS_BETTER,
    Dimension,
    HealthSettings,
    PlaybookStep,
    RiskEntry,
)

DIMENSIONS: tuple[str, ...] = tuple(Dimension.values)
FREQUENCY_DAYS = 90
SERVICE_DAYS = 180
DOWNLOAD_DAYS = 90
QUOTE_DAYS = 180
COMPETITOR_DAYS = 90
# The planner settings of a recompute, for its own statements only (set before them, put
# back after, `_planner`):
# - work_mem: the scoring statement aggregates every customer's rows at once (hash
#   aggregates and hash joins over all the tenant's customers); at the server's default
#   (4 MB) a large tenant's spill to disk;
# - enable_nestloop off: the risk list's statements join the day's snapshot rows, just
#   written, to the open entries; until autovacuum analyses the table again its statistics
#   do not know them, and the planner, taking both sides for a row or two, would nest
#   loops over them (hours on a million customers). Hash joins suit every size here.
PLANNER_SETTINGS = {"work_mem": "128MB", "enable_nestloop": "off"}


def as_of(tenant: Tenant, day: date) -> datetime:
    """The start of `day` in the tenant's time zone: the moment the day's values are as of."""
    return datetime.combine(day, time(0), tzinfo=tenant.tzinfo)


def local_today(tenant: Tenant, now: datetime | None = None) -> date:
    return timezone.localdate(now or timezone.now(), timezone=tenant.tzinfo)


# -- bands ------------------------------------------------------------------------------------


def band_score(dimension: str, value, table: dict) -> int | None:
    """The 0–100 score of `value` by the dimension's bands (None for no data)."""
    if value is None:
        return None
    spec = table[dimension]
    lower_better = dimension in LOWER_IS_BETTER
    for threshold, score in spec["bands"]:
        if (value <= threshold) if lower_better else (value >= threshold):
            return int(score)
    return int(spec["else"])


def _band_sql(dimension: str, column: str, table: dict, params: dict) -> str:
    """`band_score` as a SQL CASE over `column` (thresholds and scores as parameters)."""
    spec = table[dimension]
    op = "<=" if dimension in LOWER_IS_BETTER else ">="
    parts = []
    for i, (threshold, score) in enumerate(spec["bands"]):
        t, s = f"{dimension}_t{i}", f"{dimension}_s{i}"
        params[t], params[s] = threshold, int(score)
        parts.append(f"WHEN {column} {op} %({t})s THEN %({s})s")
    params[f"{dimension}_else"] = int(spec["else"])
    return (
        f"CASE WHEN {column} IS NULL THEN NULL {' '.join(parts)}"
        f" ELSE %({dimension}_else)s END::smallint"
    )


def overall(scores: dict[str, int | None], weights: dict[str, int]) -> tuple[int | None, int]:
    """(overall score, coverage): the weighted mean of the dimensions that have data and
    a weight, rounded half up (None when none has), and how many they are."""
    num = den = coverage = 0
    for dimension in DIMENSIONS:
        score, weight = scores.get(dimension), weights.get(dimension, 0)
        if score is None or weight <= 0:
            continue
        num += weight * score
        den += weight
        coverage += 1
    if den == 0:
        return None, 0
    mean = Fraction(num, den)
    return int(mean + Fraction(1, 2)), coverage  # half up (the values are ≥ 0)


def weighted_dimensions(weights: dict[str, int]) -> int:
    """How many dimensions count (a weight above 0): coverage's denominator."""
    return sum(1 for d in DIMENSIONS if weights.get(d, 0) > 0)


def weakest(scores: dict[str, int | None], weights: dict[str, int]) -> str:
    """The dimension with data and a weight whose score is lowest (ties: the heavier, then
    the first in order); "" when none."""
    candidates = [
        (scores[d], -weights[d], DIMENSIONS.index(d), d)
        for d in DIMENSIONS
        if scores.get(d) is not None and weights.get(d, 0) > 0
    ]
    return min(candidates)[3] if candidates else ""


# -- the statement ----------------------------------------------------------------------------

# `OFFSET 0` keeps `vals` and `scored` from being folded into the statements that use
# them: folded, each value's expression would be evaluated again inside every band of its
# CASE, and each score's CASE again in the numerator, denominator and coverage (a third of
# the statement's time on a large tenant); computed once per customer this way.
_VALUES_SQL = """
WITH inter AS (
    SELECT customer_id, max(at) AS last_at,
           count(*) FILTER (WHERE at >= %(freq_since)s) AS n_recent
    FROM customers_interaction
    WHERE tenant_id = %(tenant)s AND customer_id IS NOT NULL AND at < %(as_of)s
    GROUP BY customer_id
), tick AS (
    SELECT customer_id, count(*) AS n, sum(value) AS on_time
    FROM ({ticket_sql}) f
    WHERE customer_id IS NOT NULL AND at >= %(service_since)s AND at < %(as_of)s
    GROUP BY customer_id
), sig AS (
    SELECT customer_id,
           count(*) FILTER (WHERE kind = 'download' AND at >= %(download_since)s) AS downloads,
           count(*) FILTER (
               WHERE kind = 'competitor_search' AND at >= %(competitor_since)s
           ) AS competitor,
           bool_or(kind = 'download') AS any_download
    FROM health_signal
    WHERE tenant_id = %(tenant)s AND at < %(as_of)s
    GROUP BY customer_id
), links AS (
    SELECT customer_id,
           bool_or(kind = 'document') AS any_document,
           count(*) FILTER (WHERE kind = 'quote' AND sent_at >= %(quote_since)s) AS quotes_sent,
           count(*) FILTER (
               WHERE kind = 'quote' AND sent_at >= %(quote_since)s
                 AND first_opened_at < %(as_of)s
           ) AS quotes_opened
    FROM health_trackedlink
    WHERE tenant_id = %(tenant)s AND sent_at < %(as_of)s
    GROUP BY customer_id
), vals AS (
    SELECT c.id AS customer_id,
           CASE WHEN i.last_at IS NOT NULL
                THEN floor(extract(epoch FROM (%(as_of)s - i.last_at)) / 86400)::float8 END
               AS recency,
           CASE WHEN i.last_at IS NOT NULL THEN i.n_recent::float8 END AS frequency,
           CASE WHEN t.n > 0 THEN (100.0 * t.on_time / t.n)::float8 END AS service,
           CASE WHEN coalesce(s.any_download, false) OR coalesce(l.any_document, false)
                THEN coalesce(s.downloads, 0)::float8 END AS downloads,
           CASE WHEN l.quotes_sent > 0
                THEN (100.0 * l.quotes_opened / l.quotes_sent)::float8 END AS quotes,
           CASE WHEN s.customer_id IS NOT NULL THEN s.competitor::float8 END AS competitor
    FROM customers_customer c
    LEFT JOIN inter i ON i.customer_id = c.id
    LEFT JOIN tick t ON t.customer_id = c.id
    LEFT JOIN sig s ON s.customer_id = c.id
    LEFT JOIN links l ON l.customer_id = c.id
    WHERE c.tenant_id = %(tenant)s AND c.created_at < %(as_of)s {customer_filter}
    OFFSET 0
), scored AS (
    SELECT vals.*, {band_columns} FROM vals OFFSET 0
), weighed AS (
    SELECT scored.*,
           {numerator} AS num,
           {denominator} AS den,
           {coverage} AS coverage
    FROM scored
)
"""

_INSERT_SQL = """
INSERT INTO health_healthsnapshot (
    tenant_id, public_id, customer_id, day, score, coverage, weights, computed_at,
    {value_columns}
)
SELECT %(tenant)s, gen_random_uuid(), customer_id, %(day)s,
       CASE WHEN den > 0 THEN round(num::numeric / den)::smallint END,
       coverage, %(weights)s::jsonb, %(now)s,
       {select_columns}
FROM weighed
ON CONFLICT (tenant_id, customer_id, day) DO UPDATE SET
    score = EXCLUDED.score, coverage = EXCLUDED.coverage, weights = EXCLUDED.weights,
    {update_columns}
WHERE (health_healthsnapshot.score, health_healthsnapshot.coverage,
       health_healthsnapshot.weights, {current_columns})
      IS DISTINCT FROM (EXCLUDED.score, EXCLUDED.coverage, EXCLUDED.weights, {new_columns})
"""


def _statement(
    settings: HealthSettings, tenant: Tenant, day: date, customer_ids=None
) -> tuple[str, dict]:
    moment = as_of(tenant, day)
    table, weights = settings.band_table(), settings.weights()
    params: dict = {
        "tenant": tenant.pk,
        "day": day,
        "as_of": moment,
        "freq_since": moment - timedelta(days=FREQUENCY_DAYS),
        "service_since": moment - timedelta(days=SERVICE_DAYS),
        "download_since": moment - timedelta(days=DOWNLOAD_DAYS),
        "quote_since": moment - timedelta(days=QUOTE_DAYS),
        "competitor_since": moment - timedelta(days=COMPETITOR_DAYS),
    }
    for d in DIMENSIONS:
        params[f"w_{d}"] = weights[d]
    band_columns = ", ".join(f"{_band_sql(d, d, table, params)} AS {d}_score" for d in DIMENSIONS)
    counted = [d for d in DIMENSIONS if weights[d] > 0]
    numerator = " + ".join(f"coalesce(%(w_{d})s * {d}_score, 0)" for d in counted) or "0"
    denominator = (
        " + ".join(f"CASE WHEN {d}_score IS NULL THEN 0 ELSE %(w_{d})s END" for d in counted) or "0"
    )
    coverage = " + ".join(f"CASE WHEN {d}_score IS NULL THEN 0 ELSE 1 END" for d in counted) or "0"
    customer_filter = ""
    if customer_ids is not None:
        customer_filter = "AND c.id = ANY(%(customers)s)"
        params["customers"] = list(customer_ids)
    sql = _VALUES_SQL.format(
        ticket_sql=customer_facts.sql_for(customer_facts.TICKET_RESOLVED),
        customer_filter=customer_filter,
        band_columns=band_columns,
        numerator=numerator,
        denominator=denominator,
        coverage=coverage,
    )
    return sql, params


def _json(weights: dict[str, int]) -> str:
    import json

    return json.dumps(weights, sort_keys=True)


@dataclass
class Result:
    tenant: str
    day: date
    scored: int  # customers with a snapshot row for the day
    with_score: int  # of them, with a score (coverage > 0)
    entered: int  # risk list entries opened
    left: int  # risk list entries closed

    def as_dict(self) -> dict:
        return {
            "tenant": self.tenant,
            "day": self.day.isoformat(),
            "scored": self.scored,
            "with_score": self.with_score,
            "risk_entered": self.entered,
            "risk_left": self.left,
        }


def recompute(
    tenant: Tenant,
    *,
    day: date | None = None,
    now: datetime | None = None,
    settings: HealthSettings | None = None,
) -> Result:
    """Score every customer of `tenant` for `day` (default: the tenant's today), write the
    day's snapshots and settle the risk list. Inside `tenant_context(tenant)`. Idempotent:
    run again for the same day, it writes the same rows."""
    now = now or timezone.now()
    day = day or local_today(tenant, now)
    settings = settings or HealthSettings.for_tenant(tenant)
    sql, params = _statement(settings, tenant, day)
    params["weights"] = _json(settings.weights())
    params["now"] = now
    value_columns = ", ".join(f"{d}_value, {d}_score" for d in DIMENSIONS)
    select_columns = ", ".join(f"{d}, {d}_score" for d in DIMENSIONS)
    update_columns = ", ".join(
        f"{d}_value = EXCLUDED.{d}_value, {d}_score = EXCLUDED.{d}_score" for d in DIMENSIONS
    )
    names = [f"{d}_{part}" for d in DIMENSIONS for part in ("value", "score")]
    insert = _INSERT_SQL.format(
        value_columns=value_columns,
        select_columns=select_columns,
        update_columns=update_columns,
        current_columns=", ".join(f"health_healthsnapshot.{n}" for n in names),
        new_columns=", ".join(f"EXCLUDED.{n}" for n in names),
    )
    with transaction.atomic(), connection.cursor() as cursor, _planner(cursor):
        cursor.execute(sql + insert, params)
        entered, left = _settle_risk(cursor, tenant, settings, day, now)
        cursor.execute(
            "SELECT count(*), count(score) FROM health_healthsnapshot"
            " WHERE tenant_id = %s AND day = %s",
            [tenant.pk, day],
        )
        scored, with_score = cursor.fetchone()
        HealthSettings.objects.filter(pk=settings.pk).update(computed_on=day, computed_at=now)
    return Result(tenant.slug, day, scored, with_score, entered, left)


@contextmanager
def _planner(cursor):
    """PLANNER_SETTINGS for the statements of the block (transaction-local, then the
    previous values again: the caller's transaction goes on as it was)."""
    names = list(PLANNER_SETTINGS)
    apply = "SELECT " + ", ".join("set_config(%s, %s, true)" for _ in names)
    cursor.execute("SELECT " + ", ".join("current_setting(%s)" for _ in names), names)
    previous = cursor.fetchone()
    cursor.execute(apply, [x for name in names for x in (name, PLANNER_SETTINGS[name])])
    yield
    cursor.execute(apply, [x for pair in zip(names, previous, strict=True) for x in pair])


def values_for(tenant: Tenant, day: date, customer_ids, settings=None) -> dict[int, dict]:
    """The day's values and scores of some customers, computed now without writing (the
    explanation of a customer not scored yet, and the tests): customer id → columns."""
    settings = settings or HealthSettings.for_tenant(tenant, create=False)
    sql, params = _statement(settings, tenant, day, customer_ids)
    with connection.cursor() as cursor:
        cursor.execute(sql + "SELECT * FROM weighed", params)  # noqa: S608 (our SQL text)
        names = [c.name for c in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    return {row["customer_id"]: row for row in rows}


# -- the risk list ----------------------------------------------------------------------------

_WEAKEST_SQL = """(
    SELECT x.d FROM (VALUES {values}) AS x(d, s, w, o)
    WHERE x.s IS NOT NULL AND x.w > 0 ORDER BY x.s, x.w DESC, x.o LIMIT 1
)"""


def _settle_risk(cursor, tenant: Tenant, settings: HealthSettings, day: date, now) -> tuple:
    """Open an entry (its retention task to be given by a rule) for every customer that
    qualifies today and has none open; close the open entries of those that no longer
    do. Set-based."""
    params = {
        "tenant": tenant.pk,
        "day": day,
        "below": settings.risk_score_below,
        "quiet": settings.risk_quiet_days,
        "default_action": _default_action(),
    }
    for d in DIMENSIONS:
        params[f"w_{d}"] = settings.weights()[d]
    values = ", ".join(f"('{d}', s.{d}_score, %(w_{d})s, {i})" for i, d in enumerate(DIMENSIONS))
    qualifies = "s.score IS NOT NULL AND s.score < %(below)s AND s.recency_value >= %(quiet)s"
    # Only our own SQL text is formatted in; every value is a parameter.
    cursor.execute(
        f"""
        UPDATE health_riskentry r SET left_on = %(day)s
        WHERE r.tenant_id = %(tenant)s AND r.left_on IS NULL AND r.entered_on <= %(day)s
          AND NOT EXISTS (
              SELECT 1 FROM health_healthsnapshot s
              WHERE s.tenant_id = %(tenant)s AND s.customer_id = r.customer_id
                AND s.day = %(day)s AND {qualifies}
          )
        """,  # noqa: S608
        params,
    )
    left = cursor.rowcount
    # A stay's task follows its customer: reassigned, the new owner has it.
    cursor.execute(
        """
        UPDATE health_riskentry r SET owner_id = c.owner_id
        FROM customers_customer c
        WHERE r.tenant_id = %(tenant)s AND r.left_on IS NULL
          AND c.id = r.customer_id AND r.owner_id IS DISTINCT FROM c.owner_id
        """,
        params,
    )
    cursor.execute(
        f"""
        INSERT INTO health_riskentry (
            tenant_id, public_id, customer_id, owner_id, entered_on, score, weakest, action,
            task_at
        )
        SELECT s.tenant_id, gen_random_uuid(), s.customer_id, c.owner_id, %(day)s, s.score,
               coalesce(w.d, ''),
               coalesce(p.action, d.action, %(default_action)s), NULL
        FROM health_healthsnapshot s
        JOIN customers_customer c ON c.id = s.customer_id
        CROSS JOIN LATERAL (SELECT {_WEAKEST_SQL.format(values=values)} AS d) w
        LEFT JOIN health_playbookstep p
               ON p.tenant_id = s.tenant_id AND p.is_active AND p.dimension = w.d
        LEFT JOIN health_playbookstep d
               ON d.tenant_id = s.tenant_id AND d.is_active AND d.dimension = ''
        WHERE s.tenant_id = %(tenant)s AND s.day = %(day)s AND {qualifies}
          AND NOT EXISTS (
              SELECT 1 FROM health_riskentry r
              WHERE r.tenant_id = %(tenant)s AND r.customer_id = s.customer_id
                AND r.left_on IS NULL
          )
        RETURNING id
        """,  # noqa: S608
        params,
    )
    opened = [row[0] for row in cursor.fetchall()]
    if opened and day >= local_today(tenant, now):
        # Today's new stays (not a past day scored again): automation rules hear of them
        # (crm.events: the outbox, in this transaction); the tenant's rule "entered the
        # risk list → retention task" gives each its task and tells the owners
        # (health.risk.retention_task). Re-scoring past days must not set off a flood of
        # actions: their stays get no task.
        from health import events

        events.emit_risk_entered(RiskEntry.objects.filter(pk__in=opened).order_by("pk"), at=now)
    return len(opened), left


def _default_action() -> str:
    return DEFAULT_PLAYBOOK


def ensure_playbook(tenant: Tenant) -> None:
    """The default playbook step, when the tenant has none active."""
    if not PlaybookStep.objects.filter(dimension="", is_active=True).exists():
        PlaybookStep.objects.create(tenant=tenant, dimension="", action=DEFAULT_PLAYBOOK)
