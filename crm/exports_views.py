"""Background export screens (crm.exports): queue one from a list, the member's exports
with their progress, and the download.

- POST `/exports/new/` (`export_create`): `kind` (a registered source) and `query` (the
  list's query string); queues the export and redirects to the list of exports.
- GET `/exports/` (`exports`): the member's own exports (managers and admins: the
  tenant's), newest first; while one is queued or running the list refreshes itself
  every 2 s (htmx: the `#exports` partial alone).
- GET `/exports/<uuid>/download/` (`export_download`): the file, to whoever may see the
  export; 404 for anyone else, another tenant's id included.
"""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from crm.exports import export_request, get_source, visible_exports
from crm.models import ExportStatus, Membership
from crm.roles import MANAGERS

PER_PAGE = 20
TEMPLATE = "crm/exports.html"


def _member(request: HttpRequest) -> Membership:
    if request.membership is None:
        raise PermissionDenied("Exports are for members of a tenant.")
    return request.membership


@require_POST
def export_create(request: HttpRequest) -> HttpResponse:
    membership = _member(request)
    try:
        export_request(
            tenant=request.tenant,
            membership=membership,
            kind=request.POST.get("kind", ""),
            query=request.POST.get("query", ""),
        )
    except LookupError:
        raise Http404("No such list.") from None
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("exports")


@never_cache
@require_GET
def export_list(request: HttpRequest) -> HttpResponse:
    membership = _member(request)
    exports = visible_exports(membership).order_by("-created_at", "-id")
    page = Paginator(exports, PER_PAGE).get_page(request.GET.get("page"))
    for job in page:
        job.source = get_source(job.kind)
    context = {
        "page": page,
        "pending": any(job.is_pending for job in page),
        "everyone": membership.role in MANAGERS,
    }
    template = TEMPLATE + "#exports" if request.htmx else TEMPLATE
    return TemplateResponse(request, template, context)


@require_GET
def export_download(request: HttpRequest, public_id: uuid.UUID) -> FileResponse:
    membership = _member(request)
    job = visible_exports(membership).filter(public_id=public_id).first()
    if job is None or job.status != ExportStatus.DONE or not job.file:
        raise Http404("No such export.")
    try:
        handle = job.file.open("rb")
    except FileNotFoundError:
        raise Http404("The export's file is gone.") from None
    return FileResponse(
        handle,
        as_attachment=True,
        filename=job.filename or "export.csv",
        content_type="text/csv; charset=utf-8",
    )
