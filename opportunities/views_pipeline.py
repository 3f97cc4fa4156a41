"""The pipeline over HTTP: the kanban, the table, and every path that moves opportunities
(one, many, a file). Every move goes through opportunities.services.opportunity_advance,
which checks the required actions; a refusal answers 409 with the missing items, each
linked to where it is done, and changes nothing but the history's record of it.

- GET `/opportunities/` (`opportunities:kanban`): a column per active stage with its open
  opportunities (the first opportunities.tables.CARDS_PER_COLUMN, most recently active
  first), its count, sum and weighted sum; a rep's own, everyone else's the team's
  (`?owner=` narrows it).
- GET `/opportunities/list/` (`opportunities:list`): the table, filtered, sorted and
  paginated, or streamed as CSV (`?_export=csv`, opportunities.exports).
- POST `/opportunities/<uuid>/advance/` (`opportunities:advance`): `stage` (a code) and
  `path` (form or drag). A plain form gets a redirect to the opportunity (or the refusal's
  page); the kanban's script (`HX-Request`, `HX-Target: card-<uuid>`) a fragment: the
  moved card, or the missing items (templates/opportunities/missing.html); another htmx
  form the missing items, or `HX-Redirect` to the opportunity; `Accept: application/json`
  JSON.
- POST `/opportunities/bulk/` (`opportunities:bulk`): `ids` and `stage`; what moved and
  what was refused, with the missing items of each.
- GET/POST `/opportunities/import/` (`opportunities:import`): opportunities.imports.

A refusal is caught here (never left to propagate): the request's transaction commits
and keeps the refusal's history entry.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST
from django_tables2 import RequestConfig

from crm import exports as background
from crm import search as gram_search
from crm.http import query_with
from crm.models import Membership
from crm.roles import OPPORTUNITY_ALL, OPPORTUNITY_LIST, OPPORTUNITY_WRITERS
from crm.tables import COUNT_CAP, list_paging, streamed_csv
from opportunities import exports, imports, services
from opportunities.access import access_opportunity, opportunities_visible_to, sees_amounts
from opportunities.filters import KanbanFilter, OpportunityFilter
from opportunities.models import Path, Stage
from opportunities.setup import ensure_defaults
from opportunities.tables import (
    CardRenderer,
    OpportunityTable,
    format_amount,
    kanban_columns,
    make_card,
)

# Opportunities moved by one bulk request at most (the list shows 50 a page).
BULK_MAX = 200
# The ways a person moves one opportunity over HTTP (bulk and import have their own URLs).
MOVE_PATHS = (Path.FORM, Path.DRAG)


def pipeline_member(request: HttpRequest) -> Membership:
    """The request's membership if it may open the pipeline (crm.roles.OPPORTUNITY_LIST)."""
    membership = request.membership
    if membership is None or membership.role not in OPPORTUNITY_LIST:
        raise PermissionDenied(_("Opportunities are for the members of this tenant."))
    return membership


def moves_any(membership: Membership) -> bool:
    """Whether the member may move opportunities at all: the writers move every one, a
    rep their own (the only ones they see); marketing and service only read."""
    return membership.role in OPPORTUNITY_WRITERS or membership.role not in OPPORTUNITY_ALL


def active_stages() -> list[Stage]:
    return list(Stage.objects.filter(is_active=True).order_by("position", "id"))


# -- the kanban -----------------------------------------------------------------------------


@require_GET
def kanban(request: HttpRequest) -> HttpResponse:
    membership = pipeline_member(request)
    ensure_defaults()  # a tenant's first visit creates its stages
    stages = active_stages()
    visible = opportunities_visible_to(membership)
    bar = KanbanFilter(request.GET, queryset=visible, membership=membership)
    columns = kanban_columns(membership, bar.qs, stages)
    filtered = bar.is_filtered
    total = sum(c.count for c in columns)
    show_amounts = sees_amounts(membership)
    cards = CardRenderer(stages, show_amounts=show_amounts, csrf_token=get_token(request))
    for column in columns:
        column.html = [cards.render(card) for card in column.cards]
    weighted = sum((c.weighted for c in columns), Decimal(0))
    context = {
        "columns": columns,
        "stages": stages,
        "filter": bar,
        "filtered": filtered,
        "total": total,
        "total_amount": format_amount(sum((c.amount for c in columns), Decimal(0))),
        "total_weighted": format_amount(weighted.quantize(Decimal(1))),
        "total_weighted_raw": weighted,
        "total_valid": sum(c.valid for c in columns),
        "show_amounts": show_amounts,
        "can_move": moves_any(membership),
        "can_import": membership.role in OPPORTUNITY_WRITERS,
        "is_rep": membership.role not in OPPORTUNITY_ALL,
        "owner_query": query_with(request, owner=request.GET.get("owner") or None),
        # Only asked when the kanban is empty: does the member see any opportunity at all?
        "has_opportunities": total > 0 or visible.exists(),
    }
    return TemplateResponse(request, "opportunities/kanban.html", context)


# -- the table --------------------------------------------------------------------------------


@require_GET
def opportunity_list(request: HttpRequest) -> HttpResponse:
    membership = pipeline_member(request)
    if request.GET.get("_export") == "csv":
        # The background export's rows (opportunities.exports), streamed as they are read.
        stem, rows = exports.opportunity_rows(membership, request.GET)
        return streamed_csv(rows, f"{stem}.csv", tenant=request.tenant)
    ensure_defaults()
    visible = opportunities_visible_to(membership)
    qs = visible.select_related("customer", "owner__user", "stage")
    bar = OpportunityFilter(request.GET, queryset=qs, membership=membership)
    selectable = moves_any(membership)
    table = OpportunityTable(bar.qs, selectable=selectable, show_amounts=sees_amounts(membership))
    paginate = list_paging(
        OpportunityTable._meta.per_page,
        exact=request.GET.get("count") == "exact",
        searched=False,
        walked=False,
        count_cap=COUNT_CAP,
        search_cap=gram_search.SEARCH_CAP,
        rows_from=None,
    )
    RequestConfig(request, paginate=paginate).configure(table)
    filtered = bar.is_filtered
    count = table.paginator.count
    context = {
        "table": table,
        "filter": bar,
        "filtered": filtered,
        "count": count,
        "count_capped": table.paginator.count_capped,
        "count_estimated": table.paginator.count_capped,
        "exact_count_query": query_with(request, count="exact", page=None),
        "has_opportunities": count > 0 or (filtered and visible.exists()),
        "is_rep": membership.role not in OPPORTUNITY_ALL,
        "selectable": selectable and count > 0,
        "stages": active_stages() if selectable and count else [],
        "can_import": membership.role in OPPORTUNITY_WRITERS,
        "export_query": query_with(request, _export="csv", page=None),
        "export_background": background.in_background(count, table.paginator.count_capped),
        "export_kind": exports.KIND,
        "export_list_query": background.list_query(request.GET),
    }
    return TemplateResponse(request, "opportunities/list.html", context)


# -- moving one -------------------------------------------------------------------------------


def wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def unknown_stage_message(code: str) -> str:
    codes = ", ".join(Stage.objects.filter(is_active=True).values_list("code", flat=True))
    if not code:
        return _("Choose the stage to move to (one of: %(codes)s).") % {"codes": codes}
    return _("There is no stage “%(code)s”: use one of %(codes)s.") % {
        "code": code[:40],
        "codes": codes,
    }


def stage_named(code: str) -> Stage | None:
    """The tenant's active stage with this code, or None."""
    code = (code or "").strip()
    if not code:
        return None
    return Stage.objects.filter(code=code, is_active=True).first()


def _problem(request, message: str, status: int, opportunity=None) -> HttpResponse:
    """A move that cannot be asked for (an unknown stage, a closed opportunity)."""
    if wants_json(request):
        return JsonResponse({"error": message}, status=status)
    if request.htmx:
        context = {"message": message}
        return TemplateResponse(request, "customers/refused.html", context, status=status)
    context = {"message": message, "opportunity": opportunity, "title": _("Not moved")}
    return TemplateResponse(request, "opportunities/moves.html", context, status=status)


@require_POST
def advance(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    membership = pipeline_member(request)
    opportunity = access_opportunity(membership, public_id, write=True)
    how = request.POST.get("path") or Path.FORM
    if how not in MOVE_PATHS:
        return _problem(request, _("Unknown way of moving."), 422, opportunity)
    code = request.POST.get("stage", "")
    stage = stage_named(code)
    if stage is None:
        return _problem(request, unknown_stage_message(code.strip()), 422, opportunity)
    try:
        moved = services.opportunity_advance(
            tenant=request.tenant,
            acting_member=membership,
            opportunity=opportunity,
            stage=stage,
            path=how,
        )
    except services.RequirementsUnmet as refusal:
        return refused_move(request, refusal, stage)
    except ValidationError as exc:  # closed: it no longer moves
        return _problem(request, " ".join(exc.messages), 409, opportunity)
    if wants_json(request):
        return JsonResponse(
            {
                "opportunity": str(moved.public_id),
                "stage": stage.code,
                "probability": moved.probability,
            }
        )
    if request.htmx and (request.htmx.target or "").startswith("card-"):
        # The kanban's card (static/opportunities/kanban.js), in its new column.
        moved.owner = opportunity.owner
        stages = active_stages()
        card = make_card(moved, stage, stages, membership, timezone.now())
        cards = CardRenderer(
            stages, show_amounts=sees_amounts(membership), csrf_token=get_token(request)
        )
        return HttpResponse(cards.render(card))
    messages.success(
        request, _("%(name)s moved to %(stage)s.") % {"name": moved.name, "stage": stage.name}
    )
    if request.htmx:  # another page's htmx form: that page again, with the move
        response = HttpResponse(status=204)
        response["HX-Redirect"] = reverse("opportunities:detail", args=[moved.public_id])
        return response
    return redirect("opportunities:detail", public_id=moved.public_id)


def refused_move(request, refusal: services.RequirementsUnmet, stage: Stage) -> HttpResponse:
    """409 with the missing items: JSON, the partial (htmx, the kanban), or a page."""
    if wants_json(request):
        return JsonResponse(refusal.as_dict(), status=409)
    context = {"refusal": refusal, "target_name": stage.name}
    if request.htmx:
        return TemplateResponse(request, "opportunities/missing.html", context, status=409)
    context.update(
        title=_("Not moved"),
        opportunity=refusal.opportunity,
        refused=[refusal],
        stage=stage,
    )
    return TemplateResponse(request, "opportunities/moves.html", context, status=409)


# -- moving many ------------------------------------------------------------------------------


def _back_to_list(request) -> str:
    """Where the result page links back to: the list as it was (its filters and page)."""
    back = request.POST.get("back", "")
    list_url = reverse("opportunities:list")
    if back.startswith(list_url) and url_has_allowed_host_and_scheme(back, allowed_hosts=None):
        return back
    return list_url


def _parse_ids(values) -> tuple[list[uuid.UUID], list[str]]:
    ids, bad = [], []
    for value in values:
        try:
            ids.append(uuid.UUID(str(value).strip()))
        except ValueError:
            bad.append(str(value)[:40])
    return list(dict.fromkeys(ids)), bad


@require_POST
def bulk(request: HttpRequest) -> HttpResponse:
    """Move the chosen opportunities to one stage, each through the one check."""
    membership = pipeline_member(request)
    if not moves_any(membership):
        raise PermissionDenied(_("Only their owners and the sales managers move opportunities."))
    code = request.POST.get("stage", "")
    stage = stage_named(code)
    ids, bad = _parse_ids(request.POST.getlist("ids"))
    if stage is None:
        return _problem(request, unknown_stage_message(code.strip()), 422)
    if not ids and not bad:
        return _problem(request, _("Choose the opportunities to move."), 422)
    if len(ids) > BULK_MAX:
        return _problem(
            request,
            _("Move at most %(max)d opportunities at once.") % {"max": BULK_MAX},
            422,
        )
    found = {
        o.public_id: o
        for o in opportunities_visible_to(membership)
        .select_related("customer", "stage")
        .filter(public_id__in=ids)
    }
    errors = [(value, _("Not an opportunity id.")) for value in bad]
    chosen = []
    for public_id in ids:
        opportunity = found.get(public_id)
        if opportunity is None or not services.can_write(membership, opportunity):
            errors.append((str(public_id), _("No such opportunity.")))
        elif not opportunity.is_open:
            errors.append(
                (
                    opportunity.name,
                    _("The opportunity is %(status)s: it no longer moves.")
                    % {"status": opportunity.get_status_display()},
                )
            )
        else:
            chosen.append(opportunity)
    unchanged = [o for o in chosen if o.stage_id == stage.pk]
    try:
        moved, refused = services.opportunities_advance_many(
            tenant=request.tenant,
            acting_member=membership,
            opportunities=[o for o in chosen if o.stage_id != stage.pk],
            stage=stage,
            path=Path.BULK,
        )
    except ValidationError as exc:  # closed meanwhile, by someone else
        return _problem(request, " ".join(exc.messages), 409)
    status = 409 if refused else 200
    if wants_json(request):
        return JsonResponse(
            {
                "stage": stage.code,
                "moved": [str(o.public_id) for o in moved],
                "unchanged": [str(o.public_id) for o in unchanged],
                "refused": [r.as_dict() for r in refused],
                "errors": [{"id": value, "error": message} for value, message in errors],
            },
            status=status,
        )
    context = {
        "title": _("Bulk move to %(stage)s") % {"stage": stage.name},
        "stage": stage,
        "moved": moved,
        "unchanged": unchanged,
        "refused": refused,
        "errors": errors,
        "target_name": stage.name,
        "back": _back_to_list(request),
    }
    return TemplateResponse(request, "opportunities/moves.html", context, status=status)


urlpatterns = [
    path("", kanban, name="kanban"),
    path("list/", opportunity_list, name="list"),
    path("bulk/", bulk, name="bulk"),
    path("import/", imports.import_moves, name="import"),
    path("<uuid:public_id>/advance/", advance, name="advance"),
]
