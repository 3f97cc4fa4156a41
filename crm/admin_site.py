"""The admin site: tenant admins administer their own tenant, the platform superuser all."""

from functools import wraps

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _

from crm.roles import ADMINS


class ObjectAccessRules:
    """Mixed into every ModelAdmin on the site (see TenantAdminSite.register).

    Django checks the object-level permission after looking the object up, and redirects
    for a missing one: the difference would tell a tenant admin which ids exist elsewhere.
    Here a model the user may not see at all is 403 before any lookup, and an object
    outside the visible queryset is 404, as everywhere else in the product.
    """

    def get_object(self, request, object_id, from_field=None):
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        return super().get_object(request, object_id, from_field)

    def _get_obj_does_not_exist_redirect(self, request, opts, object_id):
        raise Http404(_("No such object in this tenant."))


class TenantAdminSite(admin.AdminSite):
    site_header = _("CRM administration")
    site_title = _("CRM administration")
    index_title = _("Tenant configuration")

    def has_permission(self, request) -> bool:
        """Admin access is a role in the current tenant, not a global flag: a user may be
        the admin of one tenant and a rep in another."""
        user = request.user
        if not user.is_active:
            return False
        if user.is_superuser:
            return True
        membership = getattr(request, "membership", None)
        if membership is None:
            return False
        # The tenant admin; or a role some model's admin opens to (a manager tunes
        # assignment there), who then sees only those models.
        return membership.role in ADMINS or any(
            membership.role in getattr(model_admin, "admin_roles", ())
            for model_admin in self._registry.values()
        )

    def admin_view(self, view, cacheable=False):
        inner = super().admin_view(view, cacheable)

        @wraps(inner)
        def guarded(request, *args, **kwargs):
            # Signed in but not an admin here: say so, instead of a redirect to log in again.
            if request.user.is_authenticated and not self.has_permission(request):
                raise PermissionDenied(_("The admin is for the tenant's administrators."))
            return inner(request, *args, **kwargs)

        return guarded

    def register(self, model_or_iterable, admin_class=None, **options):
        admin_class = admin_class or admin.ModelAdmin
        if not issubclass(admin_class, ObjectAccessRules):
            admin_class = type(
                admin_class.__name__,
                (ObjectAccessRules, admin_class),
                {"__module__": admin_class.__module__},
            )
        super().register(model_or_iterable, admin_class, **options)

    @method_decorator(login_not_required)
    def login(self, request, extra_context=None):
        """One login page for the whole product: send the visitor there, and back."""
        target = request.GET.get(REDIRECT_FIELD_NAME) or reverse(
            "admin:index", current_app=self.name
        )
        if not url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
            target = reverse("admin:index", current_app=self.name)
        if request.user.is_authenticated:
            if not self.has_permission(request):
                raise PermissionDenied(_("The admin is for the tenant's administrators."))
            return redirect(target)
        return redirect_to_login(target, settings.LOGIN_URL)

    def index(self, request, extra_context=None):
        tenant = getattr(request, "tenant", None)
        if tenant is not None and not request.user.is_superuser:
            extra_context = {
                "title": f"{self.index_title} · {tenant.name}",
                **(extra_context or {}),
            }
        return super().index(request, extra_context)

    def each_context(self, request):
        context = super().each_context(request)
        context["current_tenant"] = getattr(request, "tenant", None)
        return context
