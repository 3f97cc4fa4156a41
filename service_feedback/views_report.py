"""The service metrics report page (F30) and its CSV export, under /reports/service/."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from crm.roles import CUSTOMER_ALL
from crm.tables import spreadsheet_safe, streamed_csv
from service_feedback import report as reports

# Service agents, managers, admins and marketing.
READERS = CUSTOMER_ALL
CSV_TABLES = ("product_line", "province", "trend")


def _membership(request: HttpRequest):
    membership = request.membership
    if membership is None or membership.role not in READERS:
        raise PermissionDenied(_("The service report is for service, marketing and managers."))
    return membership


@require_GET
def service(request: HttpRequest) -> HttpResponse:
    _membership(request)
    tz = request.tenant.tzinfo
    form = reports.PeriodForm(request.GET, today=timezone.localdate(timezone=tz))
    export = request.GET.get("_export")
    if not form.is_valid():
        if export:
            errors = "; ".join(str(e) for errs in form.errors.values() for e in errs)
            return HttpResponse(errors, status=400, content_type="text/plain; charset=utf-8")
        context = {"form": form, "report": None}
        return TemplateResponse(request, "service_feedback/report.html", context, status=400)

    report = reports.service_report(form.start, form.end, tenant=request.tenant, grain=form.bucket)
    if export == "csv":
        table = request.GET.get("table", "product_line")
        if table not in CSV_TABLES:
            return HttpResponse(
                _("Unknown table: choose product_line, province or trend."),
                status=400,
                content_type="text/plain; charset=utf-8",
            )
        return _csv_response(request, report, table)

    range_query = (
        f"opened_from={report.start:%Y-%m-%d}&opened_to={report.end:%Y-%m-%d}&grain={report.grain}"
    )
    context = {
        "form": form,
        "report": report,
        "columns": reports.COLUMNS,
        "range_query": range_query,
        "export_tables": [
            ("product_line", _("Product lines")),
            ("province", _("Regions")),
            ("trend", _("Trend")),
        ],
    }
    return TemplateResponse(request, "service_feedback/report.html", context)


def csv_header(table: str) -> list[str]:
    first = {
        "product_line": _("product line"),
        "province": _("region"),
        "trend": _("period"),
    }[table]
    labels = []
    for name, label in reports.COLUMNS:
        if name in ("mean_resolution", "median_resolution"):
            labels.append(_("%(figure)s (minutes)") % {"figure": label})
        elif name in ("in_target_rate", "repeat_rate"):
            labels.append(_("%(figure)s (%%)") % {"figure": label})
        else:
            labels.append(str(label))
    return [first, *labels]


def csv_rows(report: reports.Report, table: str) -> list[list]:
    rows = {
        "product_line": [*report.product_lines, report.total],
        "province": [*report.provinces, report.total],
        "trend": [*report.trend, report.total],
    }[table]
    out = []
    for row in rows:
        values = []
        for cell in row.cells:
            if cell.value is None:
                values.append("")
            elif cell.name in ("mean_resolution", "median_resolution"):
                values.append(f"{cell.value:.1f}")
            elif cell.name in ("in_target_rate", "repeat_rate"):
                values.append(f"{cell.value * 100:.1f}")
            else:
                values.append(cell.value)
        out.append([spreadsheet_safe(row.label), *values])
    return out


def _csv_response(request: HttpRequest, report: reports.Report, table: str):
    rows = [csv_header(table), *csv_rows(report, table)]
    filename = f"service-{table}-{report.start:%Y%m%d}-{report.end:%Y%m%d}.csv"
    return streamed_csv(rows, filename, tenant=request.tenant)


urlpatterns = [
    path("service/", service, name="service"),
]
