"""Stage probabilities learnt from the tenant's own history (F26), recomputed nightly
(opportunities.tasks) and on demand (`manage.py recompute_pipeline`).

For each active stage S, over the opportunities the tenant closed in the last 12 months
(won with `won_at`, or lost with `lost_at`, in the window of its local days):

- a *case* is a closed opportunity that reached S: the highest stage it was ever in (its
  `created` and `stage` history entries, written by the triggers of migration 0002, and
  its current stage) is S or a later one. A stage skipped on the way counts as passed,
  since a skip skips none of its requirements (opportunities.requirements.stages_to_pass);
  for the same reason a won opportunity has passed every stage: winning checks the
  requirements of every active stage;
- `won` is how many of those cases were won;
- the probability is round(100 × won / cases) (half away from zero) when there are at
  least CALIBRATION_MIN_CASES cases (`calibrated`), else the stage's default.

Stages are ordered as the moves order them, by (position, id). One statement computes
and upserts every stage's `StageCalibration` (set-based: no loop over opportunities), a
second brings the open opportunities' `probability` to their stage's current one, so
the forecast reflects the calibration at once (new moves read it through
opportunities.services.stage_probability). Running it again the same day gives the same
rows.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db import connection
from django.utils import timezone

from crm.models import Tenant
from opportunities.models import CALIBRATION_MIN_CASES, CALIBRATION_MONTHS, StageCalibration


@dataclass(frozen=True)
class Result:
    window_start: date
    window_end: date  # inclusive: the tenant's today
    stages: int  # calibration rows written (one per active stage)
    calibrated: int  # of which with enough cases
    refreshed: int  # open opportunities whose probability changed


def months_before(day: date, months: int) -> date:
    """The same day `months` months earlier (that month's last day when it is shorter)."""
    index = day.year * 12 + day.month - 1 - months
    year, month = index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def window(tenant: Tenant, today: date) -> tuple[date, datetime, datetime]:
    """The calibration window: its first day, and the instants [first day 00:00, the day
    after `today` 00:00) in the tenant's time zone."""
    start = months_before(today, CALIBRATION_MONTHS)
    tz = tenant.tzinfo
    since = timezone.make_aware(datetime.combine(start, time.min), tz)
    until = timezone.make_aware(datetime.combine(today + timedelta(days=1), time.min), tz)
    return start, since, until


# The stages ranked as moves rank them; the opportunities closed in the window with the
# highest rank they reached (a won one: every stage); per active stage its cases and won;
# upserted with the probability they give, or the default below the minimum.
CALIBRATE = """
WITH ranks AS (
  SELECT s.id, s.is_active, s.default_probability,
         row_number() OVER (ORDER BY s.position, s.id) AS rank
    FROM opportunities_stage s
   WHERE s.tenant_id = %(tenant)s
),
closed AS (
  SELECT o.id, o.status = 'won' AS won, o.stage_id
    FROM opportunities_opportunity o
   WHERE o.tenant_id = %(tenant)s
     AND ((o.status = 'won' AND o.won_at >= %(since)s AND o.won_at < %(until)s)
       OR (o.status = 'lost' AND o.lost_at >= %(since)s AND o.lost_at < %(until)s))
),
reached AS (
  SELECT c.id, c.won, GREATEST(current.rank, COALESCE(MAX(past.rank), 0)) AS top
    FROM closed c
    JOIN ranks current ON current.id = c.stage_id
    LEFT JOIN opportunities_opportunityevent e
      ON e.opportunity_id = c.id AND e.tenant_id = %(tenant)s
     AND e.kind IN ('created', 'stage')
    LEFT JOIN ranks past ON past.id = e.to_stage_id
   GROUP BY c.id, c.won, current.rank
),
counted AS (
  SELECT s.id AS stage_id, s.default_probability,
         COUNT(r.id) AS cases, COUNT(r.id) FILTER (WHERE r.won) AS won
    FROM ranks s
    LEFT JOIN reached r ON r.won OR r.top >= s.rank
   WHERE s.is_active
   GROUP BY s.id, s.default_probability
)
INSERT INTO opportunities_stagecalibration
  (tenant_id, public_id, stage_id, cases, won, probability, calibrated, window_start,
   computed_at)
SELECT %(tenant)s, gen_random_uuid(), stage_id, cases, won,
       CASE WHEN cases >= %(minimum)s THEN round(100.0 * won / cases)::int
            ELSE default_probability END,
       cases >= %(minimum)s, %(window_start)s, %(now)s
  FROM counted
ON CONFLICT ON CONSTRAINT calibration_one_per_stage DO UPDATE
   SET cases = EXCLUDED.cases, won = EXCLUDED.won, probability = EXCLUDED.probability,
       calibrated = EXCLUDED.calibrated, window_start = EXCLUDED.window_start,
       computed_at = EXCLUDED.computed_at
"""

# Each open opportunity at its stage's current probability: the calibrated one, else the
# stage's default (as opportunities.services.stage_probability gives a new move). Only the
# rows that change are written; probability alone makes no history entry (the triggers
# watch stage, status, amount and validity).
REFRESH = """
UPDATE opportunities_opportunity o
   SET probability = p.probability
  FROM (
    SELECT s.id, CASE WHEN c.calibrated THEN c.probability ELSE s.default_probability END
           AS probability
      FROM opportunities_stage s
      LEFT JOIN opportunities_stagecalibration c
        ON c.stage_id = s.id AND c.tenant_id = %(tenant)s
     WHERE s.tenant_id = %(tenant)s
  ) p
 WHERE o.tenant_id = %(tenant)s AND o.status = 'open' AND o.stage_id = p.id
   AND o.probability <> p.probability
"""


def recalibrate(
    tenant: Tenant,
    today: date | None = None,
    *,
    now: datetime | None = None,
    refresh: bool = True,
) -> Result:
    """Recompute the tenant's stage calibrations over the 12 months up to `today` (the
    tenant's local date; default: that of `now`, the time the rows are stamped with,
    default: the clock's), and (`refresh`) the open opportunities' probabilities. Runs
    inside `tenant_context(tenant)` (a task's or a command's)."""
    now = now or timezone.now()
    today = today or timezone.localdate(now, timezone=tenant.tzinfo)
    start, since, until = window(tenant, today)
    params = {
        "tenant": tenant.pk,
        "since": since,
        "until": until,
        "minimum": CALIBRATION_MIN_CASES,
        "window_start": start,
        "now": now,
    }
    refreshed = 0
    with connection.cursor() as cursor:
        cursor.execute(CALIBRATE, params)
        if refresh:
            cursor.execute(REFRESH, {"tenant": tenant.pk})
            refreshed = cursor.rowcount
    rows = StageCalibration.objects.filter(
        tenant=tenant, stage__is_active=True, computed_at=now
    ).values_list("calibrated", flat=True)
    flags = list(rows)
    return Result(
        window_start=start,
        window_end=today,
        stages=len(flags),
        calibrated=sum(flags),
        refreshed=refreshed,
    )
