"""The back-test of draft health settings (issue 16, item 5): before an admin saves new
weights or bands, how would past snapshots, re-scored with the draft, have ranked the
customers who later went quiet and those who ordered?

Definitions (docs/health.md, "Back-test"):

- Evaluation days: the days with snapshots in the LOOKBACK_DAYS (26 weeks) that end
  AFTERMATH_DAYS (90) before today, thinned to one every STEP_DAYS (7): the newest such
  day, then each next older one at least a week before the last kept. Only days with 90
  days of aftermath count, so that "went quiet" can be judged.
- Each snapshot is re-scored from its stored `<dim>_value`s twice: with the saved settings
  ("now") and with the draft — both from the same values, so the only difference is the
  settings (the stored `score` was computed with whatever applied that day). The bands'
  SQL is compute._band_sql's; the overall is the weighted mean of the dimensions with data
  and a weight, rounded half up, as the nightly recompute computes it. A customer with no
  score under a version (coverage 0) is not ranked by it.
- Per evaluation day, customers are ranked by score; the bottom decile is the lowest 10 %
  of the ranked. Customers tied at the decile's edge count in proportion (with 20 ranked,
  two in the decile: three tied at the lowest score count ⅔ each), so ties never decide.
- Went quiet: no interaction in the 90 days from the start of the evaluation day.
- Ordered: an "order_won" customer fact (crm.customer_facts) in those 90 days.
- "Marked lost": customers have no lost flag in this product, so there is no such group.

The figure per group and version is the share of its (customer, day) pairs found in the
bottom decile: high is good for "went quiet", low is good for "ordered". One statement,
set-based.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.db import connection

from crm import customer_facts
from crm.models import Tenant
from health import compute
from health.models import HealthSettings, HealthSnapshot

LOOKBACK_DAYS = 182  # 26 weeks of evaluation days
STEP_DAYS = 7
AFTERMATH_DAYS = 90  # how far after an evaluation day "went quiet" and "ordered" look
DECILE = 10  # the bottom 1/DECILE


@dataclass
class Group:
    """One outcome's figures: how many (customer, day) pairs had it among the ranked, and
    the share of them in the bottom decile (a percentage; None when there are none)."""

    key: str
    now_count: int = 0
    now_share: float | None = None
    draft_count: int = 0
    draft_share: float | None = None

    @property
    def change(self) -> float | None:
        if self.now_share is None or self.draft_share is None:
            return None
        return round(self.draft_share - self.now_share, 1)


@dataclass
class Backtest:
    enough: bool
    days: list[date] = field(default_factory=list)  # the evaluation days, oldest first
    customers: int = 0  # distinct customers ranked on some evaluation day
    pairs_now: int = 0  # (customer, day) pairs ranked with the saved settings
    pairs_draft: int = 0  # and with the draft
    quiet: Group = field(default_factory=lambda: Group("quiet"))
    ordered: Group = field(default_factory=lambda: Group("ordered"))
    oldest: date | None = None  # the oldest snapshot day (for "not enough history")
    needed_before: date | None = None  # an evaluation day must be on or before this
    seconds: float = 0.0

    @property
    def groups(self) -> list[Group]:
        return [self.quiet, self.ordered]


def evaluation_days(tenant: Tenant, today: date) -> tuple[list[date], date | None, date]:
    """(the evaluation days oldest first, the oldest snapshot day, the latest day allowed)."""
    latest = today - timedelta(days=AFTERMATH_DAYS)
    earliest = latest - timedelta(days=LOOKBACK_DAYS - 1)
    oldest = (
        HealthSnapshot.objects.filter(tenant=tenant).order_by("day").values_list("day", flat=True)
    ).first()
    available = (
        HealthSnapshot.objects.filter(tenant=tenant, day__gte=earliest, day__lte=latest)
        .order_by("-day")
        .values_list("day", flat=True)
        .distinct()
    )
    kept: list[date] = []
    for day in available:
        if not kept or (kept[-1] - day).days >= STEP_DAYS:
            kept.append(day)
    return sorted(kept), oldest, latest


def _prefixed(sql: str, params: dict, prefix: str) -> tuple[str, dict]:
    """A SQL fragment with its parameter names prefixed (two settings in one statement)."""
    renamed = re.sub(r"%\((\w+)\)s", lambda m: f"%({prefix}{m[1]})s", sql)
    return renamed, {f"{prefix}{k}": v for k, v in params.items()}


def _score_sql(settings: HealthSettings, prefix: str, params: dict) -> str:
    """The overall score of a snapshot row re-scored with `settings`, as SQL over the
    `<dim>_value` columns (NULL when no dimension with a weight has data)."""
    table, weights = settings.band_table(), settings.weights()
    nums, dens = [], []
    for d in compute.DIMENSIONS:
        if weights[d] <= 0:
            continue
        own: dict = {}
        band, own = _prefixed(compute._band_sql(d, f"s.{d}_value", table, own), own, prefix)
        band = band.replace("::smallint", "")  # integers already; a cast per row costs
        params.update(own)
        params[f"{prefix}w_{d}"] = weights[d]
        w = f"%({prefix}w_{d})s::int"
        nums.append(f"coalesce({w} * ({band}), 0)")
        dens.append(f"CASE WHEN s.{d}_value IS NULL THEN 0 ELSE {w} END")
    if not nums:
        return "NULL::int"
    num, den = " + ".join(nums), " + ".join(dens)
    # round(num / den) half up, in integers (num, den ≥ 0): numeric per row is slow.
    return f"CASE WHEN ({den}) > 0 THEN (2 * ({num}) + ({den})) / (2 * ({den})) END"


# Went quiet, set-based: the periods without an interaction that are longer than the
# aftermath (after an interaction until the next or for good, before the first) are few; a
# (customer, day) is quiet when one of them spans the day's 90 days, or when the customer
# has no interaction at all in the range looked at. Each customer's quiet days and order
# days are a bit mask over the evaluation days (at most 27), so that the snapshots meet
# the outcomes in one join on the customer.
_SQL = """
WITH d AS (
    SELECT day, as_of, (n - 1)::int AS i
    FROM unnest(%(days)s::date[], %(moments)s::timestamptz[]) WITH ORDINALITY AS d(day, as_of, n)
), periods AS (
    -- A customer heard from in the range has one at least: its last interaction starts one.
    SELECT i.customer_id, v.since, v.until
    FROM (
        SELECT customer_id, at,
               lead(at) OVER (PARTITION BY customer_id ORDER BY at) AS next_at,
               lag(at) OVER (PARTITION BY customer_id ORDER BY at) AS prev_at
        FROM customers_interaction
        WHERE tenant_id = %(tenant)s AND customer_id IS NOT NULL
          AND at >= %(first)s AND at < %(last)s
    ) i
    CROSS JOIN LATERAL (VALUES
        (i.at, i.next_at, i.next_at IS NULL OR i.next_at - i.at > %(aftermath)s),
        (NULL::timestamptz, i.at, i.prev_at IS NULL AND i.at - %(first)s >= %(aftermath)s)
    ) AS v(since, until, keep)
    WHERE v.keep
), flags AS (
    SELECT customer_id, bit_or(quiet) AS quiet, bit_or(ordered) AS ordered, bool_or(heard) AS heard
    FROM (
        SELECT p.customer_id, coalesce(1::bigint << d.i, 0) AS quiet, 0::bigint AS ordered,
               true AS heard
        FROM periods p
        LEFT JOIN d ON (p.since IS NULL OR p.since < d.as_of)
                   AND (p.until IS NULL OR p.until >= d.as_of + %(aftermath)s)
        UNION ALL
        SELECT f.customer_id, 0, 1::bigint << d.i, false
        FROM ({order_sql}) f
        JOIN d ON f.at >= d.as_of AND f.at < d.as_of + %(aftermath)s
        WHERE f.customer_id IS NOT NULL
    ) x
    GROUP BY customer_id
), agg AS (
    SELECT s.day,
           {now_score} AS now_score,
           {draft_score} AS draft_score,
           f.customer_id IS NULL OR NOT f.heard OR (f.quiet >> (d.n - 1)::int) & 1 = 1 AS quiet,
           coalesce((f.ordered >> (d.n - 1)::int) & 1 = 1, false) AS ordered,
           count(*) AS n
    FROM health_healthsnapshot s
    JOIN unnest(%(days)s::date[]) WITH ORDINALITY AS d(day, n) ON d.day = s.day
    LEFT JOIN flags f ON f.customer_id = s.customer_id
    WHERE s.tenant_id = %(tenant)s
    GROUP BY 1, 2, 3, 4, 5
), per_score AS (
    -- Per day and score, under each version (agg is read once: the scan stays parallel).
    SELECT CASE WHEN GROUPING(now_score) = 0 THEN 'now' ELSE 'draft' END AS version, day,
           CASE WHEN GROUPING(now_score) = 0 THEN now_score ELSE draft_score END AS score,
           sum(n) AS n,
           coalesce(sum(n) FILTER (WHERE quiet), 0) AS quiet,
           coalesce(sum(n) FILTER (WHERE ordered), 0) AS ordered
    FROM agg
    GROUP BY GROUPING SETS ((day, now_score), (day, draft_score))
), ranked AS (
    -- The share of a score's customers in the bottom decile: all below the edge, none
    -- above, in proportion at it.
    SELECT version, n, quiet, ordered,
           greatest(0, least(1,
               (sum(n) OVER (PARTITION BY version, day) / %(decile)s
                - (sum(n) OVER (PARTITION BY version, day ORDER BY score) - n)) / n
           )) AS inside
    FROM per_score
    WHERE score IS NOT NULL
)
SELECT version, sum(n), sum(quiet), sum(quiet * inside), sum(ordered), sum(ordered * inside)
FROM ranked GROUP BY version
"""

_CUSTOMERS_SQL = """
SELECT count(DISTINCT customer_id) FROM health_healthsnapshot
WHERE tenant_id = %(tenant)s AND day = ANY(%(days)s::date[]) AND ({any_value})
"""


def _share(found, count) -> float | None:
    return round(100 * float(found or 0) / float(count), 1) if count else None


def run(
    tenant: Tenant,
    *,
    draft: HealthSettings,
    saved: HealthSettings | None = None,
    today: date | None = None,
    now: datetime | None = None,
) -> Backtest:
    """The back-test of `draft` against `saved` (default: the tenant's saved settings).
    Inside `tenant_context(tenant)`; reads only."""
    started = time.monotonic()
    today = today or compute.local_today(tenant, now)
    saved = saved or HealthSettings.for_tenant(tenant, create=False)
    days, oldest, latest = evaluation_days(tenant, today)
    if not days:
        return Backtest(enough=False, oldest=oldest, needed_before=latest)
    moments = [compute.as_of(tenant, day) for day in days]
    aftermath = timedelta(days=AFTERMATH_DAYS)
    params: dict = {
        "tenant": tenant.pk,
        "days": days,
        "moments": moments,
        "first": moments[0],
        "last": moments[-1] + aftermath,
        "aftermath": aftermath,
        "decile": DECILE,
    }
    sql = _SQL.format(
        order_sql=customer_facts.sql_for(customer_facts.ORDER_WON),
        now_score=_score_sql(saved, "now_", params),
        draft_score=_score_sql(draft, "draft_", params),
    )
    any_value = " OR ".join(f"{d}_value IS NOT NULL" for d in compute.DIMENSIONS)
    figures = {}
    with connection.cursor() as cursor:
        # A statement that runs once: compiling it (JIT) costs more than it saves; its
        # grouping fits in memory with a little more than the default.
        cursor.execute(
            "SELECT current_setting('jit'), current_setting('work_mem'),"
            " set_config('jit', 'off', true), set_config('work_mem', '64MB', true)"
        )
        jit, work_mem = cursor.fetchone()[:2]
        cursor.execute(sql, params)
        for version, *row in cursor.fetchall():
            figures[version] = row
        cursor.execute(_CUSTOMERS_SQL.format(any_value=any_value), params)
        customers = cursor.fetchone()[0]
        cursor.execute(
            "SELECT set_config('jit', %s, true), set_config('work_mem', %s, true)", [jit, work_mem]
        )
    pairs_now, q_now, q_now_in, o_now, o_now_in = figures.get("now", [0, 0, 0, 0, 0])
    pairs_draft, q_draft, q_draft_in, o_draft, o_draft_in = figures.get("draft", [0, 0, 0, 0, 0])
    return Backtest(
        enough=True,
        days=days,
        customers=customers,
        pairs_now=int(pairs_now),
        pairs_draft=int(pairs_draft),
        quiet=Group(
            "quiet", int(q_now), _share(q_now_in, q_now), int(q_draft), _share(q_draft_in, q_draft)
        ),
        ordered=Group(
            "ordered",
            int(o_now),
            _share(o_now_in, o_now),
            int(o_draft),
            _share(o_draft_in, o_draft),
        ),
        oldest=oldest,
        needed_before=latest,
        seconds=round(time.monotonic() - started, 2),
    )
