"""Quality alerts (F29) over HTTP.

- GET `/service/alerts/` (`alerts`): the tenant's alerts, the open ones first, newest
  first, with their ticket counts; paginated (constant queries).
- GET `/service/alerts/<uuid>/` (`alert`): the alert's cluster and its tickets (paged),
  and for managers and admins the form that closes it with a note.
- POST `/service/alerts/<uuid>/close/` (`alert_close`): close it by hand
  (services.alert_close): 422 with the note's error, 409 when closed already.

Every member with a seat reads the alerts (the owners of the affected customers are told
of them); managers and admins close them. Another tenant's id: 404.
"""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, F
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from crm.roles import MANAGERS
from service_feedback import services
from service_feedback.models import QualityAlert
from service_feedback.views_review import reader

PER_PAGE = 25
TICKETS_PER_PAGE = 50


def _alert(public_id) -> QualityAlert:
    alert = (
        QualityAlert.objects.filter(public_id=public_id).select_related("closed_by__user").first()
    )
    if alert is None:
        raise Http404("No such alert.")
    return alert


@require_GET
def alert_list(request: HttpRequest) -> HttpResponse:
    reader(request)
    alerts = QualityAlert.objects.annotate(ticket_count=Count("tickets")).order_by(
        F("closed_at").desc(nulls_first=True), "-opened_at", "-id"
    )
    page = Paginator(alerts, PER_PAGE).get_page(request.GET.get("page"))
    return TemplateResponse(request, "service_feedback/alert_list.html", {"page": page})


def _detail(request, membership, alert, *, error: str = "", note: str = "", status=200):
    tickets = alert.tickets.select_related("customer").order_by("-opened_at", "-id")
    context = {
        "alert": alert,
        "page": Paginator(tickets, TICKETS_PER_PAGE).get_page(request.GET.get("page")),
        "may_close": membership.role in MANAGERS and alert.closed_at is None,
        "error": error,
        "note": note,
    }
    return TemplateResponse(request, "service_feedback/alert_detail.html", context, status=status)


@require_GET
def alert_detail(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    membership = reader(request)
    return _detail(request, membership, _alert(public_id))


@require_POST
def alert_close(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    membership = reader(request)
    alert = _alert(public_id)
    if membership.role not in MANAGERS:
        raise PermissionDenied(_("Managers and admins close quality alerts."))
    note = request.POST.get("note", "")
    try:
        services.alert_close(
            tenant=request.tenant, acting_member=membership, alert=alert, note=note
        )
    except ValidationError as exc:
        if hasattr(exc, "error_dict"):
            error = " ".join(exc.message_dict.get("note", exc.messages))
            return _detail(request, membership, alert, error=error, note=note, status=422)
        context = {"message": " ".join(exc.messages), "lead": None}
        return TemplateResponse(request, "customers/conflict.html", context, status=409)
    messages.success(request, _("Quality alert closed."))
    return redirect("service_feedback:alert", public_id=alert.public_id)


urlpatterns = [
    path("alerts/", alert_list, name="alerts"),
    path("alerts/<uuid:public_id>/", alert_detail, name="alert"),
    path("alerts/<uuid:public_id>/close/", alert_close, name="alert_close"),
]
