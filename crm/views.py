from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from django_tables2 import RequestConfig

from crm import navigation, status
from crm.access import access_own_membership
from crm.middleware import SESSION_TENANT_KEY
from crm.models import Membership
from crm.roles import MANAGERS
from crm.tables import MemberFilter, MemberTable


def home(request: HttpRequest) -> HttpResponse:
    # An app may make its own page a role's home (crm.navigation.register_home_redirect).
    target = navigation.home_redirect_for(request)
    if target is not None:
        return redirect(target)
    items = [i for i in navigation.items_for(request) if i.key != "home"]
    context = {
        "items": items,
        "role": request.membership.role if request.membership else None,
        # Apps' cards (crm.navigation.register_home_card), rendered in the request's tenant.
        "cards": [
            render_to_string(template, card_context, request)
            for template, card_context in navigation.home_cards_for(request)
        ],
    }
    context["status"] = status.for_page(request)
    return TemplateResponse(request, "crm/home.html", context)


@require_POST
def tenant_switch(request: HttpRequest, slug: str) -> HttpResponse:
    membership = access_own_membership(request.user, slug)
    request.session[SESSION_TENANT_KEY] = membership.tenant_id
    messages.success(request, _("Switched to %(tenant)s.") % {"tenant": membership.tenant.name})
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        target = "home"
    return redirect(target)


def team(request: HttpRequest) -> HttpResponse:
    if not request.membership or request.membership.role not in MANAGERS:
        raise PermissionDenied(_("The team list is for managers and admins."))
    qs = Membership.objects.in_tenant(request.tenant).select_related("user")
    member_filter = MemberFilter(request.GET, queryset=qs)
    table = MemberTable(member_filter.qs)
    RequestConfig(request, paginate={"per_page": 50}).configure(table)
    return TemplateResponse(request, "crm/team.html", {"table": table, "filter": member_filter})


@login_not_required
@require_GET
def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico on every page Django's admin renders: the icon."""
    from django.templatetags.static import static

    return redirect(static("crm/favicon.svg"), permanent=True)


@login_not_required
@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    healthy, report = status.system_status()
    last_run = report["beat"]["last_run"]
    report["beat"]["last_run"] = last_run.isoformat() if last_run is not None else None
    return JsonResponse(report, status=200 if healthy else 503)
