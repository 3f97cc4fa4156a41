"""Request scoping: the language, then the tenant and membership, once per request."""

from __future__ import annotations

from django.conf import settings
from django.template.response import TemplateResponse
from django.utils import timezone, translation
from django.utils.cache import patch_vary_headers

from crm.models import active_memberships_of
from crm.tenancy import all_tenants_context, tenant_context

SESSION_TENANT_KEY = "crm_tenant_id"


class LanguageMiddleware:
    """Simplified Chinese unless the user chose otherwise (the language cookie).

    Unlike Django's LocaleMiddleware this ignores the browser's Accept-Language: the
    product's users work in Chinese even on English-language machines.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.languages = {code for code, _ in settings.LANGUAGES}

    def __call__(self, request):
        language = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME)
        if language not in self.languages:
            language = settings.LANGUAGE_CODE
        translation.activate(language)
        request.LANGUAGE_CODE = language
        response = self.get_response(request)
        patch_vary_headers(response, ("Cookie",))
        response.headers.setdefault("Content-Language", language)
        return response


def tenant_exempt(view):
    """Mark a view that a signed-in user without any membership may still reach."""
    view.tenant_exempt = True
    return view


class TenantMiddleware:
    """Sets request.tenant, request.membership and request.memberships, and runs the rest
    of the request inside that tenant's transaction (scoped managers + RLS setting).

    The tenant is the one chosen with the switcher (kept in the session) if the user still
    holds an active seat there, else their first. The platform superuser's admin runs in
    all-tenants mode. Anonymous requests carry no tenant: public endpoints (webhooks,
    hosted forms) enter their tenant themselves from the channel key.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.tenant = None
        request.membership = None
        request.memberships = []
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return self.get_response(request)

        # Before any tenant is set: the user's own seats only, through the narrow path.
        memberships = active_memberships_of(user)
        request.memberships = memberships
        wanted = request.session.get(SESSION_TENANT_KEY)
        chosen = next((m for m in memberships if m.tenant_id == wanted), None)
        chosen = chosen or (memberships[0] if memberships else None)
        if chosen is not None:
            request.membership = chosen
            request.tenant = chosen.tenant

        if user.is_superuser and request.path_info.startswith("/admin/"):
            with all_tenants_context():
                return self.get_response(request)
        if request.tenant is None:
            return self.get_response(request)
        # Times on the tenant's pages are in the tenant's zone.
        timezone.activate(request.tenant.tzinfo)
        try:
            with tenant_context(request.tenant):
                return self.get_response(request)
        finally:
            timezone.deactivate()

    def process_view(self, request, view_func, view_args, view_kwargs):
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and request.membership is None
            and not user.is_superuser
            and not getattr(view_func, "tenant_exempt", False)
            # Public views (login, /healthz) are marked by Django's @login_not_required.
            and getattr(view_func, "login_required", True)
        ):
            return TemplateResponse(request, "crm/no_membership.html", status=403).render()
        return None
