"""The periods the dashboards and the drill-down lists count over: local days [start, end]
of the tenant's time zone, chosen as a preset (this week, this month, this quarter, the
last 30 days) or as custom dates, with the previous period beside them
(crm.metrics.previous_period: the same days of the month or quarter before, else as many
days just before).

    form = PeriodForm(request.GET, today=local_today(request.tenant))
    if form.is_valid():
        form.chosen  # Period(start, end, preset, previous_start, previous_end)

`?start=YYYY-MM-DD&end=YYYY-MM-DD` is a custom period (a start alone runs to today, an end
alone from the first day of its month); `?period=week|month|quarter|30d` a preset;
neither, the form's default preset (this month). A bad date, an end before the start or
a period longer than MAX_DAYS is a field error: the pages answer 400 with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from django import forms
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crm.metrics import previous_period
from crm.models import Tenant

WEEK, MONTH, QUARTER, LAST_30 = "week", "month", "quarter", "30d"
CUSTOM = "custom"
PRESETS = (
    (WEEK, _("This week")),
    (MONTH, _("This month")),
    (QUARTER, _("This quarter")),
    (LAST_30, _("Last 30 days")),
)
# A longer period would make the previous one reach back more than four years.
MAX_DAYS = 731


def local_today(tenant: Tenant) -> date:
    """Today in the tenant's time zone."""
    return timezone.localdate(timezone=tenant.tzinfo)


def preset_range(preset: str, today: date) -> tuple[date, date]:
    """The local days of a preset, up to today: the week from Monday, the month from its
    first day, the quarter from its first day, or the 30 days ending today."""
    if preset == WEEK:
        return today - timedelta(days=today.weekday()), today
    if preset == MONTH:
        return today.replace(day=1), today
    if preset == QUARTER:
        return today.replace(month=(today.month - 1) // 3 * 3 + 1, day=1), today
    if preset == LAST_30:
        return today - timedelta(days=29), today
    raise ValueError(f"unknown preset {preset!r}")


@dataclass(frozen=True)
class Period:
    start: date
    end: date
    preset: str  # one of PRESETS' keys, or CUSTOM

    @property
    def previous(self) -> tuple[date, date]:
        return previous_period(self.start, self.end)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def query(self) -> dict[str, str]:
        """The period as query parameters (always as dates: a link keeps its meaning)."""
        return {"start": self.start.isoformat(), "end": self.end.isoformat()}


class PeriodForm(forms.Form):
    period = forms.ChoiceField(
        label=_("Period"), choices=(*PRESETS, (CUSTOM, _("Custom"))), required=False
    )
    start = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    end = forms.DateField(
        label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, data=None, *, today: date, default: str = MONTH, **kwargs):
        super().__init__(data, **kwargs)
        self.today = today
        self.default = default

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        start, end = cleaned.get("start"), cleaned.get("end")
        preset = cleaned.get("period") or ""
        if start is None and end is None and preset != CUSTOM:
            preset = preset or self.default
            start, end = preset_range(preset, self.today)
        else:
            # One date alone: from it up to today, or that date's month up to it.
            preset = CUSTOM
            if end is None:
                end = max(start, self.today)
            if start is None:
                start = end.replace(day=1)
        if start > end:
            self.add_error("end", gettext("The end date is before the start date."))
        elif (end - start).days + 1 > MAX_DAYS:
            self.add_error(
                "start",
                gettext("The period is longer than %(days)s days: choose a later start date.")
                % {"days": MAX_DAYS},
            )
        cleaned["period"], cleaned["start"], cleaned["end"] = preset, start, end
        return cleaned

    @property
    def chosen(self) -> Period:
        data = self.cleaned_data
        return Period(data["start"], data["end"], data["period"])

    def error_text(self) -> str:
        """Every error of the form on one line (the CSV's 400 answer)."""
        return "; ".join(str(e) for errors in self.errors.values() for e in errors)
