"""The sales process report and the weekly diagnoses (F37), pages of the kernel that read
the registry's figures of group "process" (crm.process).

- GET `/reports/process/` (`process_report`): per rep and for the team, the process rates
  and figures over a period (`start`, `end`: local days; default the last four full
  weeks) beside the previous period of the same length, every number linked to its rows;
  `_export=csv` for the spreadsheet.
- GET `/reports/process/diagnosis/` (`process_diagnoses`): the weekly diagnoses (`week`:
  a day of the week wanted).
- GET `/reports/process/diagnosis/<uuid>/` (`process_diagnosis`): one diagnosis.

Who may: managers and admins see every rep; a rep sees their own line (and the team's
total) and their own diagnoses, another's is a 404 as a foreign id is; the other roles
get a 403.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta

from django import forms
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from crm import process
from crm.metrics import get_rate, reading
from crm.models import Membership, WeeklyDiagnosis
from crm.roles import MANAGERS, PROCESS_READERS
from crm.tables import streamed_csv

PER_PAGE = 50


def _reader(request: HttpRequest) -> Membership:
    membership = request.membership
    if membership is None or membership.role not in PROCESS_READERS:
        raise PermissionDenied(gettext("The sales process report is for reps and managers."))
    return membership


def _sees_everyone(membership: Membership) -> bool:
    return membership.role in MANAGERS


class PeriodForm(forms.Form):
    """The report's period: local days [start, end]. Empty fields take the default: the
    last four full weeks (Monday to Sunday) before this one."""

    start = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    end = forms.DateField(
        label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, data=None, *, today: date, **kwargs):
        super().__init__(data, **kwargs)
        self.today = today

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        default_start, default_end = process.default_period(self.today)
        start, end = cleaned.get("start"), cleaned.get("end")
        if start is None and end is None:
            start, end = default_start, default_end
        elif end is None:
            end = start + timedelta(days=7 * process.DEFAULT_WEEKS - 1)
        elif start is None:
            start = end - timedelta(days=7 * process.DEFAULT_WEEKS - 1)
        if start > end:
            self.add_error("end", gettext("The end date is before the start date."))
        elif (end - start).days + 1 > process.MAX_DAYS:
            self.add_error(
                "start",
                gettext("The range is longer than %(days)s days: choose a later start date.")
                % {"days": process.MAX_DAYS},
            )
        cleaned["start"], cleaned["end"] = start, end
        return cleaned


def _errors_text(form) -> str:
    return "; ".join(str(e) for errors in form.errors.values() for e in errors)


@require_GET
def process_report(request: HttpRequest) -> HttpResponse:
    membership = _reader(request)
    tenant = request.tenant
    form = PeriodForm(request.GET, today=timezone.localdate(timezone=tenant.tzinfo))
    export = request.GET.get("_export", "")
    if export not in ("", "csv"):
        return HttpResponse(
            gettext("Unknown export: use _export=csv."),
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    if not form.is_valid():
        if export:
            return HttpResponse(
                _errors_text(form), status=400, content_type="text/plain; charset=utf-8"
            )
        context = {"form": form, "report": None}
        return TemplateResponse(request, "crm/process_report.html", context, status=400)
    start, end = form.cleaned_data["start"], form.cleaned_data["end"]
    only = None if _sees_everyone(membership) else membership
    with reading(tenant) as alias:
        result = process.report(tenant, start, end, only=only, using=alias)
    if export == "csv":
        filename = f"sales-process-{start:%Y%m%d}-{end:%Y%m%d}.csv"
        return streamed_csv(process.csv_rows(result), filename, tenant=tenant)
    context = {
        "form": form,
        "report": result,
        "range_query": f"start={start:%Y-%m-%d}&end={end:%Y-%m-%d}",
        "sees_everyone": only is None,
    }
    return TemplateResponse(request, "crm/process_report.html", context)


def _diagnoses(membership: Membership):
    found = WeeklyDiagnosis.objects.select_related("membership__user")
    if not _sees_everyone(membership):
        found = found.filter(membership=membership)
    return found


def _top_labels(diagnosis: WeeklyDiagnosis) -> list:
    labels = []
    for action in (diagnosis.data or {}).get("actions", []):
        rate = get_rate(action.get("key", ""))
        if rate is not None:
            labels.append(rate.label)
    return labels


@require_GET
def process_diagnoses(request: HttpRequest) -> HttpResponse:
    membership = _reader(request)
    found = _diagnoses(membership)
    week_text = request.GET.get("week", "").strip()
    week = None
    if week_text:
        try:
            day = date.fromisoformat(week_text)
        except ValueError:
            return HttpResponse(
                gettext("Give the week as a date like 2026-03-09."),
                status=400,
                content_type="text/plain; charset=utf-8",
            )
        week = day - timedelta(days=day.weekday())
        found = found.filter(week=week)
    page = Paginator(found.order_by("-week", "membership_id"), PER_PAGE).get_page(
        request.GET.get("page")
    )
    rows = [(d, _top_labels(d)) for d in page]
    weeks = list(
        _diagnoses(membership).order_by("-week").values_list("week", flat=True).distinct()[:12]
    )
    context = {
        "page": page,
        "rows": rows,
        "week": week,
        "weeks": weeks,
        "sees_everyone": _sees_everyone(membership),
    }
    return TemplateResponse(request, "crm/process_diagnoses.html", context)


@require_GET
def process_diagnosis(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    membership = _reader(request)
    diagnosis = get_object_or_404(_diagnoses(membership), public_id=public_id)
    context = {"diagnosis": diagnosis, **process.describe(diagnosis)}
    return TemplateResponse(request, "crm/process_diagnosis.html", context)
