"""The opportunities app's indicators of the CRM health self-test (crm.selftest,
docs/selftest.md) and the metrics (group "selftest") their numbers come from, registered
from opportunities.registrations:

2. open opportunities whose stage lags < 15 %;
6. the last month's forecast deviation < 12 %.
"""

from __future__ import annotations

from datetime import date, timedelta

from django.db.models import F, Q, QuerySet
from django.utils.translation import gettext_lazy as _

from crm.metrics import (
    COUNT,
    REGION,
    REP,
    SUM,
    Column,
    Dimension,
    Metric,
    RowLink,
    period_bounds,
    register_metric,
)
from crm.models import Tenant
from crm.selftest import (
    GROUP,
    SECTION,
    Indicator,
    Result,
    elapsed,
    figures,
    register_indicator,
    share_result,
)
from crm.selftest import window as recent_window
from opportunities.forecast import add_months, first_of_month
from opportunities.models import ForecastMonth, Opportunity, OpportunityStatus

# 2. Stage update lag -----------------------------------------------------------------------

LAG_SHARE = 0.15


def open_rows(tenant: Tenant, start: date, end: date) -> QuerySet:
    """The open opportunities created before the end of `end`, with the days they had
    spent in their stage by then (`days_in_stage`). A stage's expected duration is its
    "days to stall" (14 unless the tenant changed it)."""
    _since, until = period_bounds(tenant, start, end)
    return Opportunity.objects.filter(
        tenant=tenant, status=OpportunityStatus.OPEN, created_at__lt=until
    ).annotate(days_in_stage=elapsed("stage_entered_at", until, timedelta(days=1)))


LAGGING = Q(days_in_stage__gt=F("stage__days_to_stall"))
OPEN_COLUMNS = (
    Column("name", _("Opportunity")),
    Column("customer__name", _("Customer")),
    Column("owner__user__username", _("Owner")),
    Column("stage__name", _("Stage")),
    Column("stage_entered_at", _("In this stage since")),
    Column("days_in_stage", _("Days in stage")),
    Column("stage__days_to_stall", _("Expected days")),
)
DIMENSIONS = (Dimension(REGION, "customer__province"), Dimension(REP, "owner"))
LINK = RowLink("opportunities:detail", "public_id")


def stage_lag(tenant: Tenant, today: date) -> Result:
    start, end = recent_window(today)
    return share_result(
        tenant,
        start,
        end,
        numerator="selftest.stage_lagging",
        denominator="selftest.open_opportunities",
        failing="selftest.stage_lagging",
    )


# 6. Forecast deviation ---------------------------------------------------------------------

DEVIATION = 0.12


def forecast_rows(tenant: Tenant, start: date, end: date) -> QuerySet:
    """The reps' closed forecast rows of the months starting in [start, end]: each holds
    what was frozen for the rep on the month's first day and what the rep signed in it
    (their sums are the team's)."""
    return ForecastMonth.objects.filter(
        tenant=tenant,
        month__gte=start,
        month__lte=end,
        owner__isnull=False,
        closed_at__isnull=False,
    )


# A rep's own deviation of 12 % or more: accuracy = 1 − deviation ≤ 0.88, or a forecast
# with nothing signed.
OFF = Q(accuracy__lte=1 - DEVIATION) | Q(accuracy__isnull=True, forecast__gt=0)
FORECAST_COLUMNS = (
    Column("month", _("Month")),
    Column("owner__user__username", _("Rep")),
    Column("forecast", _("Forecast")),
    Column("signed", _("Signed")),
    Column("accuracy", _("Accuracy")),
)
FORECAST_DIMENSIONS = (Dimension(REP, "owner"),)


def last_month(today: date) -> tuple[date, date]:
    """The month before `today`'s: its first and last days."""
    first = add_months(first_of_month(today), -1)
    return first, first_of_month(today) - timedelta(days=1)


def forecast_deviation(tenant: Tenant, today: date) -> Result:
    """|forecast − signed| ÷ signed over the last month's closed rows; None when it has
    none or nothing was signed."""
    start, end = last_month(today)
    keys = (
        "selftest.forecast",
        "selftest.signed",
        "selftest.forecast_off",
    )
    found = figures(tenant, start, end, *keys)
    forecast, signed = found[keys[0]], found[keys[1]]
    return Result(
        value=float(abs(forecast - signed) / signed) if signed else None,
        numerator=keys[0],
        denominator=keys[1],
        failing=keys[2],
        start=start,
        end=end,
        numerator_value=forecast,
        denominator_value=signed,
        failing_value=found[keys[2]],
    )


# --- Registration ---------------------------------------------------------------------------


def register() -> None:
    common = {"section": SECTION, "group": GROUP}
    lag = {"columns": OPEN_COLUMNS, "dimensions": DIMENSIONS, "link": LINK, "aggregate": COUNT}
    register_metric(
        Metric(
            key="selftest.open_opportunities",
            label=_("Open opportunities"),
            definition=_("Opportunities open now and created before the end of the range."),
            rows=open_rows,
            **lag,
            **common,
        )
    )
    register_metric(
        Metric(
            key="selftest.stage_lagging",
            label=_("Opportunities lagging in their stage"),
            definition=_(
                "Open opportunities that, at the end of the range, had stayed in their stage "
                "longer than its days to stall."
            ),
            rows=open_rows,
            where=LAGGING,
            **lag,
            **common,
        )
    )
    frozen = {"columns": FORECAST_COLUMNS, "dimensions": FORECAST_DIMENSIONS}
    frozen["dated_by"] = "month"
    register_metric(
        Metric(
            key="selftest.forecast",
            label=_("Frozen forecast"),
            definition=_(
                "The weighted forecast frozen for each rep on the first day of the months in "
                "the range that are closed, added up."
            ),
            rows=forecast_rows,
            aggregate=SUM,
            of="forecast",
            unit="amount",
            **frozen,
            **common,
        )
    )
    register_metric(
        Metric(
            key="selftest.signed",
            label=_("Signed against the forecast"),
            definition=_(
                "What each rep signed in the closed months of the range, as recorded when the "
                "month was closed, added up."
            ),
            rows=forecast_rows,
            aggregate=SUM,
            of="signed",
            unit="amount",
            **frozen,
            **common,
        )
    )
    register_metric(
        Metric(
            key="selftest.forecast_off",
            label=_("Reps' forecasts off by 12 percent or more"),
            definition=_(
                "Reps' closed months in the range whose signed amount differs from their frozen "
                "forecast by 12 percent or more (or with a forecast and nothing signed)."
            ),
            rows=forecast_rows,
            where=OFF,
            aggregate=COUNT,
            **frozen,
            **common,
        )
    )

    register_indicator(
        Indicator(
            key="stage_lag",
            position=2,
            label=_("Stage update lag"),
            target=_("< 15 %"),
            threshold=LAG_SHARE,
            higher_is_better=False,
            inclusive=False,
            compute=stage_lag,
            definition=_(
                "Of the open opportunities, the share that has stayed in its stage longer than "
                "the stage's expected duration (its days to stall, 14 by default)."
            ),
            advice=_(
                "Break broad stages into 3 to 5 required actions each, so that moving on is "
                "part of the work; ask the owners of the listed opportunities to move them to "
                "their real stage or close them."
            ),
            no_data=_("The tenant has no open opportunity."),
        )
    )
    register_indicator(
        Indicator(
            key="forecast",
            position=6,
            label=_("Forecast deviation"),
            target=_("< 12 %"),
            threshold=DEVIATION,
            higher_is_better=False,
            inclusive=False,
            compute=forecast_deviation,
            definition=_(
                "For last month: |forecast frozen on its first day − amount signed in it| ÷ "
                "amount signed, over the reps' closed forecast rows."
            ),
            advice=_(
                "Go through the listed reps' forecasts: keep the amounts and expected close "
                "months of open opportunities current, require each stage's evidence before "
                "moving on, and let calibrated stage probabilities replace the defaults."
            ),
            no_data=_(
                "Last month's forecast was not frozen and closed, or nothing was signed in it."
            ),
        )
    )
