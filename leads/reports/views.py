"""Marketing's reports on leads: the lead-quality report (F36), with its CSV export."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from crm.metrics import reading_all
from crm.roles import REPORT_READERS
from crm.tables import spreadsheet_safe, streamed_csv
from leads.reports import quality as reports

CSV_TABLES = ("channel", "grade", "reason", "rep")


def _membership(request: HttpRequest):
    membership = request.membership
    if membership is None or membership.role not in REPORT_READERS:
        raise PermissionDenied(_("Reports are for marketing, managers and admins."))
    return membership


@require_GET
def lead_quality(request: HttpRequest) -> HttpResponse:
    _membership(request)
    tz = request.tenant.tzinfo
    form = reports.RangeForm(request.GET, today=timezone.localdate(timezone=tz))
    export = request.GET.get("_export")
    if not form.is_valid():
        if export:
            errors = "; ".join(str(e) for errs in form.errors.values() for e in errs)
            return HttpResponse(errors, status=400, content_type="text/plain; charset=utf-8")
        context = {"form": form, "report": None}
        return TemplateResponse(request, "leads/report_lead_quality.html", context, status=400)

    # On the reports alias (a replica when configured), as the dashboards; the figures'
    # links open the lead list there too (crm.metrics.read_as_reports).
    with reading_all(request.tenant):
        report = reports.lead_quality(form.start, form.end, tenant=request.tenant)
    if export == "csv":
        table = request.GET.get("table", "channel")
        if table not in CSV_TABLES:
            return HttpResponse(
                _("Unknown table: choose channel, grade, reason or rep."),
                status=400,
                content_type="text/plain; charset=utf-8",
            )
        return _csv_response(request, report, table)

    context = {
        "form": form,
        "report": report,
        "export_tables": [
            ("channel", _("Channels")),
            ("grade", _("Source grades")),
            ("reason", _("Invalid reasons")),
            ("rep", _("Reps")),
        ],
        "range_query": f"created_from={report.start:%Y-%m-%d}&created_to={report.end:%Y-%m-%d}",
        "figure_columns": reports.FIGURE_COLUMNS,
        "rep_columns": reports.REP_COLUMNS,
        "chart_height": 60 + 36 * len(report.reasons),
    }
    return TemplateResponse(request, "leads/report_lead_quality.html", context)


def csv_header(report: reports.Report, table: str) -> list[str]:
    if table in ("channel", "grade"):
        first = _("channel") if table == "channel" else _("source grade")
        return [first, *(str(label) for _name, label in reports.FIGURE_COLUMNS)]
    if table == "reason":
        columns = [spreadsheet_safe(label) for _key, label in report.reason_columns]
        return [_("invalid reason"), _("invalid"), *columns]
    labels = [str(label) for name, label in reports.REP_COLUMNS if name != "median_first_touch"]
    return [_("rep"), *labels, _("median time to first touch (minutes)")]


def csv_rows(report: reports.Report, table: str) -> list[list]:
    if table == "channel":
        rows = [*report.channels, report.total]
    elif table == "grade":
        rows = [*report.grades, report.total]
    elif table == "reason":
        rows = report.reasons
    else:
        rows = report.reps
    out = []
    for row in rows:
        values = []
        for cell in row.cells:
            if cell.name == "median_first_touch":
                # Minutes as a number, for the spreadsheet.
                values.append("—" if cell.value is None else f"{cell.value / 60:.1f}")
            else:
                values.append(cell.text)
        out.append([spreadsheet_safe(row.label), *values])
    return out


def _csv_response(request: HttpRequest, report: reports.Report, table: str):
    """One table of the report through the product's one CSV writer (crm.tables)."""
    rows = [csv_header(report, table), *csv_rows(report, table)]
    filename = f"lead-quality-{table}-{report.start:%Y%m%d}-{report.end:%Y%m%d}.csv"
    return streamed_csv(rows, filename, tenant=request.tenant)
