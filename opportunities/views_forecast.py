"""The forecast page (F26), `/opportunities/forecast/`: the next six months' weighted
forecast (all open opportunities, and the valid ones), the frozen forecasts of the last
twelve months against what was signed with their accuracy (a table and a chart), and which
stage probabilities are learnt from the tenant's history and which are still the default.

Reps see their own figures; managers, marketing and admins (crm.roles.OPPORTUNITY_ALL)
the team's and each rep's. Service agents never see amounts (crm.roles.AMOUNT_HIDDEN).
The page runs the same handful of queries whatever the number of opportunities: one
grouped sum for the live months, one read of the frozen rows, one of the stages with
their calibration, one of the reps' names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.core.exceptions import PermissionDenied
from django.db.models import F
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from crm.models import Membership
from crm.roles import AMOUNT_HIDDEN, OPPORTUNITY_ALL, OPPORTUNITY_LIST
from opportunities import forecast
from opportunities.access import opportunities_visible_to
from opportunities.models import CALIBRATION_MIN_CASES, ForecastMonth, Stage

FORECAST_READERS = OPPORTUNITY_LIST - AMOUNT_HIDDEN


def money(value: Decimal | None) -> str:
    """An amount in whole yuan with thousands separators; “—” for none."""
    if value is None:
        return "—"
    return f"¥{value:,.0f}"


def percent(value: Decimal | None) -> str:
    if value is None:
        return "—"
    return f"{value * 100:.1f}%"


# -- live -----------------------------------------------------------------------------------


@dataclass
class LiveCell:
    forecast: Decimal
    valid: Decimal
    count: int

    @property
    def forecast_text(self) -> str:
        return money(self.forecast)

    @property
    def valid_text(self) -> str:
        return money(self.valid)


@dataclass
class LiveRow:
    key: str  # "team", "mine" or the rep's membership public id
    label: str
    cells: list[LiveCell]
    total: LiveCell


def _live_row(key: str, label: str, figures: dict[date, forecast.Figure], months) -> LiveRow:
    total = forecast.Figure()
    for month in months:
        total.add(figures[month])
    cells = [LiveCell(f.forecast, f.valid, f.count) for f in (figures[m] for m in months)]
    return LiveRow(key, label, cells, LiveCell(total.forecast, total.valid, total.count))


# -- frozen ---------------------------------------------------------------------------------


@dataclass
class Frozen:
    """One frozen month of the team (or of a rep) as the page shows it."""

    month: date
    forecast: Decimal
    valid_forecast: Decimal
    opportunities: int
    signed: Decimal | None
    accuracy: Decimal | None
    closed: bool

    @classmethod
    def of(cls, row: ForecastMonth) -> Frozen:
        return cls(
            month=row.month,
            forecast=row.forecast,
            valid_forecast=row.valid_forecast,
            opportunities=row.opportunities,
            signed=row.signed,
            accuracy=row.accuracy,
            closed=row.closed_at is not None,
        )

    @property
    def forecast_text(self) -> str:
        return money(self.forecast)

    @property
    def valid_text(self) -> str:
        return money(self.valid_forecast)

    @property
    def signed_text(self) -> str:
        return money(self.signed) if self.closed else "—"

    @property
    def accuracy_text(self) -> str:
        return percent(self.accuracy) if self.closed else "—"


@dataclass
class RepHistory:
    key: str
    label: str
    months: dict[date, Frozen] = field(default_factory=dict)


def _chart(team: list[Frozen]) -> dict:
    """The chart's data (static/opportunities/forecast.js): per month the frozen forecast
    and what was signed (bars), and the accuracy in % (a line; none while open)."""
    return {
        "months": [f"{row.month:%Y-%m}" for row in team],
        "forecast": [float(row.forecast) for row in team],
        "signed": [float(row.signed) if row.closed else None for row in team],
        "accuracy": [
            round(float(row.accuracy) * 100, 1) if row.accuracy is not None else None
            for row in team
        ],
        "names": {
            "forecast": _("Frozen forecast"),
            "signed": _("Signed"),
            "accuracy": _("Accuracy (%)"),
        },
    }


# -- stages ---------------------------------------------------------------------------------


@dataclass
class StageRow:
    name: str
    default: int
    probability: int
    cases: int | None
    won: int | None
    calibrated: bool
    computed: bool


def _stages() -> list[StageRow]:
    """The active stages with their calibration (at most one per stage: one query)."""
    rows = (
        Stage.objects.filter(is_active=True)
        .order_by("position", "id")
        .values(
            "name",
            "default_probability",
            cases=F("calibrations__cases"),
            won=F("calibrations__won"),
            calibrated=F("calibrations__calibrated"),
            probability=F("calibrations__probability"),
        )
    )
    return [
        StageRow(
            name=row["name"],
            default=row["default_probability"],
            probability=row["probability"] if row["calibrated"] else row["default_probability"],
            cases=row["cases"],
            won=row["won"],
            calibrated=bool(row["calibrated"]),
            computed=row["cases"] is not None,
        )
        for row in rows
    ]


# -- the page -------------------------------------------------------------------------------


def _membership(request: HttpRequest) -> Membership:
    membership = request.membership
    if membership is None or membership.role not in FORECAST_READERS:
        raise PermissionDenied(_("The forecast is for sales, marketing and admins."))
    return membership


@require_GET
def forecast_page(request: HttpRequest) -> HttpResponse:
    membership = _membership(request)
    tenant = request.tenant
    team_view = membership.role in OPPORTUNITY_ALL
    this_month = forecast.first_of_month(forecast.local_today(tenant))

    live = forecast.live(opportunities_visible_to(membership), this_month)
    frozen_rows = ForecastMonth.objects.all()
    if not team_view:
        frozen_rows = frozen_rows.filter(owner=membership)
    first_past = forecast.add_months(this_month, -forecast.HISTORY_MONTHS)
    frozen = list(forecast.history(frozen_rows, first_past, this_month))

    # The reps' names, of the live figures and the frozen rows alike: one query.
    owners = set(live.by_owner) | {row.owner_id for row in frozen if row.owner_id is not None}
    names = {
        member.pk: (str(member.public_id), member.display_name)
        for member in Membership.objects.filter(pk__in=owners).select_related("user")
    }

    months = live.months
    if team_view:
        live_rows = [_live_row("team", _("Team"), live.team, months)]
        live_rows += sorted(
            (
                _live_row(names[pk][0], names[pk][1], figures, months)
                for pk, figures in live.by_owner.items()
            ),
            key=lambda row: row.label,
        )
    else:
        live_rows = [_live_row("mine", _("My opportunities"), live.team, months)]
    has_live = any(row.total.count for row in live_rows)

    # The team's months (a rep: their own rows) and, for managers, each rep's.
    team = [Frozen.of(row) for row in frozen if row.owner_id is None or not team_view]
    reps: dict[int, RepHistory] = {}
    if team_view:
        for row in frozen:
            if row.owner_id is None:
                continue
            key, label = names[row.owner_id]
            reps.setdefault(row.owner_id, RepHistory(key, label)).months[row.month] = Frozen.of(row)
    rep_history = sorted(reps.values(), key=lambda rep: rep.label)
    history_months = [row.month for row in team] or sorted(
        {m for rep in rep_history for m in rep.months}
    )

    context = {
        "team_view": team_view,
        "months": months,
        "live_rows": live_rows,
        "has_live": has_live,
        "team": team,
        "rep_history": [
            (rep, [rep.months.get(month) for month in history_months]) for rep in rep_history
        ],
        "history_months": history_months,
        "chart": _chart(team) if team else None,
        "stages": _stages(),
        "minimum_cases": CALIBRATION_MIN_CASES,
        "this_month": this_month,
    }
    return TemplateResponse(request, "opportunities/forecast.html", context)


urlpatterns = [path("forecast/", forecast_page, name="forecast")]
