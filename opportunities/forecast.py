"""The weighted forecast (F26): live, frozen on each month's first day, and held against
what was signed once the month is over.

- The weighted forecast of a month is Σ amount × probability / 100 over the OPEN
  opportunities whose `expected_close` is that month (an opportunity without an amount
  adds nothing), per rep (the owner) and for the team (the whole tenant); the valid ones
  (`is_valid`, F23) are also added up on their own.
- `freeze(tenant, month)` writes the month's `ForecastMonth` rows as they stand (the
  team's, `owner` null, and one per owner with any open opportunity expected that month),
  once: a month that has rows is never recomputed.
- `close(tenant, month)` after the month: `signed` = Σ amount of the opportunities won
  with `won_at` in that month (the tenant's time zone), per rep and team, and `accuracy`
  = 1 − |forecast − signed| / signed (null when nothing was signed: shown as “—”). A rep
  who signed in a month where nothing of theirs was expected gets a row with a forecast
  of 0 (what was frozen for them), so the reps' rows add up to the team's. Closed rows
  are kept as history, never closed again.

All of it is set-based SQL, run inside `tenant_context(tenant)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal

from django.db import connection
from django.db.models import Count, DecimalField, ExpressionWrapper, F, Q, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from crm.models import Tenant
from opportunities.models import ForecastMonth, OpportunityStatus

# How many months the page shows ahead (this month included) and back.
LIVE_MONTHS = 6
HISTORY_MONTHS = 12
# The accuracy column holds -999.9999 … 999.9999: a forecast a thousand times what was
# signed is shown as that floor.
ACCURACY_FLOOR = Decimal("-999.9999")


def first_of_month(day: date) -> date:
    return day.replace(day=1)


def add_months(month: date, n: int) -> date:
    index = month.year * 12 + month.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def month_bounds(tenant: Tenant, month: date) -> tuple[datetime, datetime]:
    """[the month's first day 00:00, the next month's first day 00:00) in the tenant's
    time zone."""
    tz = tenant.tzinfo
    return (
        timezone.make_aware(datetime.combine(first_of_month(month), time.min), tz),
        timezone.make_aware(datetime.combine(add_months(first_of_month(month), 1), time.min), tz),
    )


def local_today(tenant: Tenant, now: datetime | None = None) -> date:
    return timezone.localdate(now or timezone.now(), timezone=tenant.tzinfo)


# -- live -----------------------------------------------------------------------------------

WEIGHTED = ExpressionWrapper(
    Coalesce(F("amount"), Value(Decimal(0))) * F("probability") / Value(Decimal(100)),
    output_field=DecimalField(max_digits=20, decimal_places=6),
)


@dataclass
class Figure:
    """A weighted sum: all open opportunities, the valid ones among them, how many."""

    forecast: Decimal = Decimal(0)
    valid: Decimal = Decimal(0)
    count: int = 0

    def add(self, other: Figure) -> None:
        self.forecast += other.forecast
        self.valid += other.valid
        self.count += other.count


@dataclass
class Live:
    """The live weighted forecast of `months`: per owner id and month, and the team's."""

    months: list[date]
    by_owner: dict[int, dict[date, Figure]] = field(default_factory=dict)
    team: dict[date, Figure] = field(default_factory=dict)


def live(opportunities, first: date, months: int = LIVE_MONTHS) -> Live:
    """The weighted forecast of the months from `first` on, over `opportunities` (a
    queryset: the tenant's, or a rep's own), in one grouped query."""
    span = [add_months(first, n) for n in range(months)]
    rows = (
        opportunities.filter(
            status=OpportunityStatus.OPEN, expected_close__gte=span[0], expected_close__lte=span[-1]
        )
        .order_by()
        .values("owner_id", "expected_close")
        .annotate(
            weighted=Sum(WEIGHTED),
            valid=Sum(WEIGHTED, filter=Q(is_valid=True)),
            count=Count("id"),
        )
    )
    result = Live(months=span, team={m: Figure() for m in span})
    for row in rows:
        figure = Figure(row["weighted"] or Decimal(0), row["valid"] or Decimal(0), row["count"])
        owner = result.by_owner.setdefault(row["owner_id"], {m: Figure() for m in span})
        owner[row["expected_close"]].add(figure)
        result.team[row["expected_close"]].add(figure)
    return result


# -- frozen ---------------------------------------------------------------------------------

# The month's rows: per owner and (ROLLUP's grand total, owner null) the team, which exists
# even when nothing is expected (a forecast of 0); nothing when the month has rows.
FREEZE = """
INSERT INTO opportunities_forecastmonth
  (tenant_id, public_id, month, owner_id, forecast, valid_forecast, opportunities, frozen_at)
SELECT %(tenant)s, gen_random_uuid(), %(month)s, g.owner_id, g.forecast, g.valid, g.n, %(now)s
  FROM (
    SELECT o.owner_id,
           COALESCE(round(SUM(COALESCE(o.amount, 0) * o.probability / 100.0), 2), 0) AS forecast,
           COALESCE(round(SUM(COALESCE(o.amount, 0) * o.probability / 100.0)
                          FILTER (WHERE o.is_valid), 2), 0) AS valid,
           COUNT(o.id) AS n
      FROM opportunities_opportunity o
     WHERE o.tenant_id = %(tenant)s AND o.status = 'open' AND o.expected_close = %(month)s
     GROUP BY ROLLUP (o.owner_id)
  ) g
 WHERE NOT EXISTS (
   SELECT 1 FROM opportunities_forecastmonth f
    WHERE f.tenant_id = %(tenant)s AND f.month = %(month)s)
ON CONFLICT ON CONSTRAINT forecast_one_per_month DO NOTHING
"""


def freeze(tenant: Tenant, month: date, *, now: datetime | None = None) -> int:
    """Freeze `month`'s forecast (its first day is taken): the rows written, 0 when the
    month was frozen already."""
    params = {"tenant": tenant.pk, "month": first_of_month(month), "now": now or timezone.now()}
    with connection.cursor() as cursor:
        cursor.execute(FREEZE, params)
        return cursor.rowcount


# Both start from what each rep (and, ROLLUP's grand total, the team) signed in the month.
# Reps who signed in the month with no row frozen for them: their forecast was 0.
ADD_SIGNERS = """
WITH signed AS (
  SELECT o.owner_id, SUM(COALESCE(o.amount, 0)) AS signed
    FROM opportunities_opportunity o
   WHERE o.tenant_id = %(tenant)s AND o.status = 'won'
     AND o.won_at >= %(since)s AND o.won_at < %(until)s
   GROUP BY ROLLUP (o.owner_id)),
team AS (
  SELECT frozen_at FROM opportunities_forecastmonth
   WHERE tenant_id = %(tenant)s AND month = %(month)s AND owner_id IS NULL)
INSERT INTO opportunities_forecastmonth
  (tenant_id, public_id, month, owner_id, forecast, valid_forecast, opportunities, frozen_at,
   signed, accuracy, closed_at)
SELECT %(tenant)s, gen_random_uuid(), %(month)s, s.owner_id, 0, 0, 0, team.frozen_at,
       s.signed, CASE WHEN s.signed > 0 THEN 0 END, %(now)s
  FROM signed s CROSS JOIN team
 WHERE s.owner_id IS NOT NULL
   AND NOT EXISTS (
     SELECT 1 FROM opportunities_forecastmonth f
      WHERE f.tenant_id = %(tenant)s AND f.month = %(month)s AND f.owner_id = s.owner_id)
ON CONFLICT ON CONSTRAINT forecast_one_per_month DO NOTHING
"""

# The month's frozen rows, not closed yet: signed and accuracy.
CLOSE = """
WITH signed AS (
  SELECT o.owner_id, SUM(COALESCE(o.amount, 0)) AS signed
    FROM opportunities_opportunity o
   WHERE o.tenant_id = %(tenant)s AND o.status = 'won'
     AND o.won_at >= %(since)s AND o.won_at < %(until)s
   GROUP BY ROLLUP (o.owner_id)),
rows AS (
  SELECT f.id, COALESCE(s.signed, 0) AS signed
    FROM opportunities_forecastmonth f
    LEFT JOIN signed s ON s.owner_id IS NOT DISTINCT FROM f.owner_id
   WHERE f.tenant_id = %(tenant)s AND f.month = %(month)s AND f.closed_at IS NULL)
UPDATE opportunities_forecastmonth f
   SET signed = r.signed,
       accuracy = CASE WHEN r.signed > 0
         THEN GREATEST(round(1 - abs(f.forecast - r.signed) / r.signed, 4), %(floor)s) END,
       closed_at = %(now)s
  FROM rows r
 WHERE f.id = r.id
"""


def close(
    tenant: Tenant, month: date, *, today: date | None = None, now: datetime | None = None
) -> int:
    """Close `month` once it has ended in the tenant's time zone: what was signed and the
    accuracy on its frozen rows. Returns the rows closed (0: not frozen, or closed)."""
    month = first_of_month(month)
    today = today or local_today(tenant, now)
    if add_months(month, 1) > today:
        raise ValueError(f"{month:%Y-%m} has not ended yet on {today}")
    since, until = month_bounds(tenant, month)
    params = {
        "tenant": tenant.pk,
        "month": month,
        "since": since,
        "until": until,
        "now": now or timezone.now(),
        "floor": ACCURACY_FLOOR,
    }
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM opportunities_forecastmonth WHERE tenant_id = %(tenant)s"
            " AND month = %(month)s AND owner_id IS NULL AND closed_at IS NULL",
            params,
        )
        if cursor.fetchone() is None:
            return 0
        cursor.execute(ADD_SIGNERS, params)
        added = cursor.rowcount
        cursor.execute(CLOSE, params)
        return added + cursor.rowcount


def close_ended(tenant: Tenant, today: date, *, now: datetime | None = None) -> list[date]:
    """Close every frozen month before `today`'s that is still open (the job catches up
    after a night it missed). Returns the months closed."""
    pending = list(
        ForecastMonth.objects.filter(
            tenant=tenant,
            owner__isnull=True,
            closed_at__isnull=True,
            month__lt=first_of_month(today),
        )
        .order_by("month")
        .values_list("month", flat=True)
    )
    for month in pending:
        close(tenant, month, today=today, now=now)
    return pending


def history(rows, first: date, last: date):
    """The frozen months from `first` to `last`, oldest first (a ForecastMonth queryset:
    the tenant's or a rep's own)."""
    return rows.filter(month__gte=first, month__lte=last).order_by("month", "owner_id")
