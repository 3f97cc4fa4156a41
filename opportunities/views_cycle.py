"""The lead-to-contract cycle report (F38) and its CSV, under /reports/cycle/
(opportunities.report_urls).

Marketing, managers and admins read every cohort, filtered by channel and rep at will; a
rep reads the cohorts of the leads they own (the rep filter is theirs, another member's
id is not found); everyone else is refused. A channel or member id that is not the
tenant's answers 404."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from crm.metrics import REP, reading
from crm.models import Membership
from crm.roles import OWNER_CHOICES, OWNERS, REPORT_READERS
from crm.tables import spreadsheet_safe, streamed_csv
from leads.models import Channel, ChannelType
from opportunities import cycle
from opportunities import cycle_metrics as cm


def _membership(request: HttpRequest) -> Membership:
    membership = request.membership
    if membership is None or membership.role not in REPORT_READERS | OWNERS:
        raise PermissionDenied(_("The cycle report is for sales, marketing and managers."))
    return membership


def _channels():
    return Channel.objects.exclude(type=ChannelType.HELPDESK).order_by("name", "id")


def _reps(request: HttpRequest):
    return (
        Membership.objects.filter(tenant=request.tenant, role__in=OWNER_CHOICES)
        .select_related("user")
        .order_by("user__username", "id")
    )


def _filters(request: HttpRequest, membership: Membership, form: cycle.CohortForm) -> dict:
    """The figures' filters from the form; 404 for an id the member may not filter by."""
    filters = {}
    channel = form.cleaned_data.get("channel")
    if channel is not None:
        if not _channels().filter(pk=channel).exists():
            raise Http404(_("No such channel."))
        filters[cm.CHANNEL] = channel
    rep = form.cleaned_data.get("rep")
    if membership.role not in REPORT_READERS:
        # A rep: their own leads only.
        if rep is not None and rep != membership.pk:
            raise Http404(_("No such rep."))
        rep = membership.pk
    elif rep is not None and not _reps(request).filter(pk=rep).exists():
        raise Http404(_("No such rep."))
    if rep is not None:
        filters[REP] = rep
    return filters


@require_GET
def cycle_report(request: HttpRequest) -> HttpResponse:
    membership = _membership(request)
    tenant = request.tenant
    form = cycle.CohortForm(request.GET, today=timezone.localdate(timezone=tenant.tzinfo))
    export = request.GET.get("_export")
    if not form.is_valid():
        if export:
            errors = "; ".join(str(e) for errs in form.errors.values() for e in errs)
            return HttpResponse(errors, status=400, content_type="text/plain; charset=utf-8")
        context = {"form": form, "report": None, **_choices(request, membership)}
        return TemplateResponse(request, "opportunities/cycle.html", context, status=400)
    filters = _filters(request, membership, form)
    start, end = form.cleaned_data["start"], form.cleaned_data["end"]
    with reading(tenant) as alias:
        report = cycle.cycle_report(tenant, start, end, filters=filters, using=alias)
    if export == "csv":
        rows = [cycle.csv_header(), *cycle.csv_rows(report)]
        rows = [[spreadsheet_safe(v) for v in row] for row in rows]
        filename = f"lead-to-contract-{report.start:%Y%m}-{report.end:%Y%m}.csv"
        return streamed_csv(rows, filename, tenant=tenant)
    context = {
        "form": form,
        "report": report,
        "columns": cycle.COLUMNS,
        "buckets": [label for _name, label, *_rest in cm.BUCKETS],
        "definitions": cycle.definitions(),
        "filters": filters,
        "query": request.GET.urlencode(),
        "start_value": f"{start:%Y-%m}",
        "end_value": f"{end:%Y-%m}",
        **_choices(request, membership),
    }
    return TemplateResponse(request, "opportunities/cycle.html", context)


def _choices(request: HttpRequest, membership: Membership) -> dict:
    """The filters' options: every channel; every rep for the readers of all leads."""
    reps = list(_reps(request)) if membership.role in REPORT_READERS else []
    return {"channels": list(_channels()), "reps": reps}


urlpatterns = [path("cycle/", cycle_report, name="cycle")]
