"""The water levels page (F42): /reports/levels/, read from the registry (crm.levels).

Per level: today's value so far against its target, the last 28 recorded days as a line
with the target and the anomalies marked, and a table per person: the team, then every
rep for the report readers (managers, marketing, admins), or the rep's own row for a rep.
`?rep=<membership public id>` draws that rep's line beside the team's (a rep may only name
themselves; another id, or another tenant's, is 404). Every value links to the rows
behind it (crm.metrics.drill_url). Service agents are refused.
"""

from __future__ import annotations

import statistics
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta

from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from crm import levels as registry
from crm.levels import Level, Reading, chart_number, format_value, rows_url, target_text
from crm.metrics import reading
from crm.models import LevelDay, Membership, Role
from crm.report_rows import Cell
from crm.roles import LEVEL_READERS, REPORT_READERS


@dataclass
class PersonRow:
    """One person's (or the team's) line of a level's table."""

    key: str  # "team" or the membership id
    label: str
    owner_id: int | None
    today: Cell
    latest: Cell
    latest_anomaly: bool
    median: Cell
    on_target: str  # "12 / 27"
    anomalies: int
    last_anomaly: Cell | None = None
    focus_url: str = ""

    @property
    def cells(self) -> tuple[Cell, Cell]:
        return self.today, self.latest


@dataclass
class LevelBlock:
    level: Level
    target: float
    target_text: str
    today: Cell
    today_sample: int
    today_meets: bool | None
    rows: list[PersonRow] = field(default_factory=list)


def _cell(level: Level, name: str, value: float | None, url: str = "") -> Cell:
    return Cell(name, value, format_value(level, value), url if value is not None else "")


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


def _focus(request: HttpRequest, membership: Membership, everyone: bool) -> Membership | None:
    """The rep whose line is drawn beside the team's: `?rep=<public id>`, or the rep."""
    wanted = request.GET.get("rep", "")
    if not wanted:
        return None if everyone else membership
    try:
        wanted_id = uuid.UUID(wanted)
    except ValueError:
        raise ValueError(_("Choose a rep from the table.")) from None
    if not everyone and wanted_id != membership.public_id:
        raise Http404(_("No such rep."))
    found = (
        Membership.objects.in_tenant(request.tenant)
        .filter(public_id=wanted_id)
        .select_related("user")
        .first()
    )
    if found is None:
        raise Http404(_("No such rep."))
    return found


class _Recorded:
    """The recorded rows of the window, by level and owner."""

    def __init__(self, rows: list[LevelDay]):
        self.by: dict[tuple[str, int | None], dict[date, LevelDay]] = {}
        for row in rows:
            self.by.setdefault((row.key, row.owner_id), {})[row.day] = row

    def of(self, key: str, owner_id: int | None) -> dict[date, LevelDay]:
        return self.by.get((key, owner_id), {})

    def owners(self) -> set[int]:
        return {owner for _key, owner in self.by if owner is not None}


def _person_row(
    level: Level,
    target: float,
    *,
    key: str,
    label: str,
    owner_id: int | None,
    today_day: date,
    today: Reading | None,
    days: dict[date, LevelDay],
    end: date,
) -> PersonRow:
    values = [row.value for row in days.values() if row.value is not None]
    latest = days.get(end)
    flagged = sorted((row for row in days.values() if row.anomaly), key=lambda r: r.day)
    met = sum(1 for v in values if level.meets(v, target))
    last_anomaly = None
    if flagged:
        last = flagged[-1]
        last_anomaly = Cell(
            "last_anomaly",
            last.value,
            f"{last.day:%m-%d} {format_value(level, last.value)}",
            rows_url(level, last.day, owner_id),
        )
    latest_value = latest.value if latest else None
    return PersonRow(
        key=key,
        label=label,
        owner_id=owner_id,
        today=_cell(
            level,
            "today",
            today.value if today else None,
            rows_url(level, today_day, owner_id),
        ),
        latest=_cell(level, "latest", latest_value, rows_url(level, end, owner_id)),
        latest_anomaly=bool(latest and latest.anomaly),
        median=_cell(level, "median", statistics.median(values) if values else None),
        on_target=f"{met} / {len(values)}",
        anomalies=len(flagged),
        last_anomaly=last_anomaly,
    )


def _chart(
    level: Level,
    target: float,
    days: list[date],
    series: list[tuple[str, int | None, dict[date, LevelDay]]],
) -> dict:
    """One level's chart as static/crm/levels.js draws it."""
    drawn = []
    for name, owner_id, rows in series:
        points = []
        for day in days:
            row = rows.get(day)
            value = row.value if row else None
            points.append(
                {
                    "value": chart_number(level, value),
                    "url": rows_url(level, day, owner_id) if value is not None else "",
                    "anomaly": bool(row and row.anomaly),
                    "text": format_value(level, value),
                }
            )
        drawn.append({"name": name, "points": points})
    return {
        "key": level.key,
        "unit": "%" if level.unit == registry.SHARE else _("min"),
        "target": chart_number(level, target),
        "targetLabel": _("Target %(target)s") % {"target": target_text(level, target)},
        "days": [f"{day:%m-%d}" for day in days],
        "series": drawn,
    }


def _error(message: str) -> HttpResponse:
    return HttpResponse(message, status=400, content_type="text/plain; charset=utf-8")


def _people(tenant, recorded: _Recorded, live: dict, alias: str) -> list[Membership]:
    """The reps of the table: every active rep, and whoever else has a value."""
    seen = recorded.owners() | {
        owner for readings in live.values() for owner in readings if owner is not None
    }
    return list(
        Membership.objects.in_tenant(tenant)
        .filter(Q(role=Role.REP, is_active=True) | Q(pk__in=seen))
        .select_related("user")
        .order_by("user__username")
        .using(alias)
    )


def _block(level: Level, tenant, readings, recorded: _Recorded, people, *, today, end, everyone):
    """One level's figures: today so far, and a row for the team and each person."""
    target = level.target_for(tenant)
    team_today = readings.get(None) or Reading(None, 0)
    block = LevelBlock(
        level=level,
        target=target,
        target_text=target_text(level, target),
        today=_cell(level, "today", team_today.value, rows_url(level, today, None)),
        today_sample=team_today.sample,
        today_meets=level.meets(team_today.value, target),
    )
    common = {"today_day": today, "end": end}
    team = recorded.of(level.key, None)
    block.rows.append(
        _person_row(
            level,
            target,
            key="team",
            label=_("Team"),
            owner_id=None,
            today=team_today,
            days=team,
            **common,
        )
    )
    for person in people:
        row = _person_row(
            level,
            target,
            key=str(person.pk),
            label=person.display_name,
            owner_id=person.pk,
            today=readings.get(person.pk),
            days=recorded.of(level.key, person.pk),
            **common,
        )
        if everyone:
            row.focus_url = f"{reverse('levels')}?rep={person.public_id}"
        block.rows.append(row)
    return block


@require_GET
def levels_page(request: HttpRequest) -> HttpResponse:
    membership = request.membership
    if membership is None or membership.role not in LEVEL_READERS:
        raise PermissionDenied(_("The water levels are for the sales team, marketing and admins."))
    tenant = request.tenant
    everyone = membership.role in REPORT_READERS
    try:
        focus = _focus(request, membership, everyone)
    except ValueError as error:
        return _error(str(error))

    today = timezone.localdate(timezone=tenant.tzinfo)
    start, end = registry.window_of(today)
    registered = registry.levels()
    with reading(tenant) as alias:
        owners = None if everyone else [membership.pk]
        recorded = _Recorded(registry.recorded(start, end, owners=owners, using=alias))
        live = {level.key: level.compute(tenant, today, using=alias) for level in registered}
        people = _people(tenant, recorded, live, alias) if everyone else [membership]

    blocks, charts = [], []
    for level in registered:
        blocks.append(
            _block(
                level,
                tenant,
                live[level.key],
                recorded,
                people,
                today=today,
                end=end,
                everyone=everyone,
            )
        )
        series = [(_("Team"), None, recorded.of(level.key, None))]
        if focus is not None:
            series.append((focus.display_name, focus.pk, recorded.of(level.key, focus.pk)))
        charts.append(_chart(level, blocks[-1].target, _days(start, end), series))
    context = {
        "blocks": blocks,
        "charts": {"levels": charts},
        "focus": focus,
        "everyone": everyone,
        "start": start,
        "end": end,
        "window": registry.WINDOW,
    }
    return TemplateResponse(request, "crm/levels.html", context)
