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
        params.update(own)
        params[f"{prefix}w_{d}"] = weights[d]
        w = f"%({prefix}w_{d})s::int"
        nums.append(f"coalesce({w} * ({band}), 0)")
        dens.append(f"CASE WHEN s.{d}_value IS NULL THEN 0 ELSE {w} END")
    if not nums:
        return "NULL::int"
    num, den = " + ".join(nums), " + ".join(dens)
    return f"CASE WHEN ({den}) > 0 THEN round(({num})::numeric / ({den}))::int END"


_SQL = """
WITH d AS (
    SELECT * FROM unnest(%(days)s::date[], %(moments)s::timestamptz[]) AS d(day, as_of)
), orders AS (
    SELECT DISTINCT f.customer_id, d.day
    FROM ({order_sql}) f
    JOIN d ON f.at >= d.as_of AND f.at < d.as_of + %(aftermath)s
    WHERE f.customer_id IS NOT NULL
), scored AS (
    SELECT s.customer_id, s.day, d.as_of,
           {now_score} AS now_score,
           {draft_score} AS draft_score
    FROM health_healthsnapshot s
    JOIN d ON d.day = s.day
    WHERE s.tenant_id = %(tenant)s
), outcomes AS (
    SELECT sc.*,
           NOT EXISTS (
               SELECT 1 FROM customers_interaction i
               WHERE i.tenant_id = %(tenant)s AND i.customer_id = sc.customer_id
                 AND i.at >= sc.as_of AND i.at < sc.as_of + %(aftermath)s
           ) AS quiet,
           o.customer_id IS NOT NULL AS ordered
    FROM scored sc
    LEFT JOIN orders o ON o.customer_id = sc.customer_id AND o.day = sc.day
    WHERE sc.now_score IS NOT NULL OR sc.draft_score IS NOT NULL
), ranked AS (
    SELECT customer_id, quiet, ordered, now_score, draft_score,
           CASE WHEN now_score IS NOT NULL THEN greatest(0, least(1,
               (count(now_score) OVER (PARTITION BY day) / %(decile)s::numeric
                - (rank() OVER (PARTITION BY day ORDER BY now_score) - 1))
               / count(*) OVER (PARTITION BY day, now_score))) END AS in_now,
           CASE WHEN draft_score IS NOT NULL THEN greatest(0, least(1,
               (count(draft_score) OVER (PARTITION BY day) / %(decile)s::numeric
                - (rank() OVER (PARTITION BY day ORDER BY draft_score) - 1))
               / count(*) OVER (PARTITION BY day, draft_score))) END AS in_draft
    FROM outcomes
)
SELECT count(DISTINCT customer_id),
       count(now_score), count(draft_score),
       count(now_score) FILTER (WHERE quiet), sum(in_now) FILTER (WHERE quiet),
       count(draft_score) FILTER (WHERE quiet), sum(in_draft) FILTER (WHERE quiet),
       count(now_score) FILTER (WHERE ordered), sum(in_now) FILTER (WHERE ordered),
       count(draft_score) FILTER (WHERE ordered), sum(in_draft) FILTER (WHERE ordered)
FROM ranked
"""


def _share(found, count: int) -> float | None:
    return round(100 * float(found or 0) / count, 1) if count else None


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
    params: dict = {
        "tenant": tenant.pk,
        "days": days,
        "moments": [compute.as_of(tenant, day) for day in days],
        "aftermath": timedelta(days=AFTERMATH_DAYS),
        "decile": DECILE,
    }
    sql = _SQL.format(
        order_sql=customer_facts.sql_for(customer_facts.ORDER_WON),
        now_score=_score_sql(saved, "now_", params),
        draft_score=_score_sql(draft, "draft_", params),
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    (customers, pairs_now, pairs_draft, q_now, q_now_in, q_draft, q_draft_in) = row[:7]
    o_now, o_now_in, o_draft, o_draft_in = row[7:]
    return Backtest(
        enough=True,
        days=days,
        customers=customers,
        pairs_now=pairs_now,
        pairs_draft=pairs_draft,
        quiet=Group("quiet", q_now, _share(q_now_in, q_now), q_draft, _share(q_draft_in, q_draft)),
        ordered=Group(
            "ordered", o_now, _share(o_now_in, o_now), o_draft, _share(o_draft_in, o_draft)
        ),
        oldest=oldest,
        needed_before=latest,
        seconds=round(time.monotonic() - started, 2),
    )
