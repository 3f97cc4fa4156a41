"""Tenant-aware admin (F45): the base classes every tenant model's admin page builds on.
Querysets, foreign-key choices and saves stay in the tenant; crm.admin re-exports them."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import models
from django.db.models import Value
from django.utils import timezone
from django.utils.text import get_text_list
from django.utils.translation import gettext_lazy as _

from crm.audit import audit, form_changes
from crm.models import Membership, Role, Tenant
from crm.roles import ADMINS


def has_admin_role(request, roles) -> bool:
    """The platform superuser, or a member whose role in the current tenant is in `roles`."""
    if request.user.is_superuser:
        return True
    membership = getattr(request, "membership", None)
    return membership is not None and membership.role in roles


def acting_member(request, tenant: Tenant) -> Membership | None:
    """The seat an admin page writes with in `tenant`: the `acting_member` it hands a
    service (crm.services). A tenant admin's own membership; for the platform superuser
    without a seat there, an unsaved stand-in naming them, so that the audit trail names
    who acted rather than the system (as the admin's own saves do). Only a service that
    records who acted through crm.services.actor_user may be handed the stand-in."""
    membership = getattr(request, "membership", None)
    if membership is not None and membership.tenant_id == tenant.pk:
        return membership
    if request.user.is_superuser:
        return Membership(tenant=tenant, user=request.user, role=Role.ADMIN)
    return membership


def _label(model, form_field, name):
    try:
        return model._meta.get_field(name).verbose_name
    except FieldDoesNotExist:
        return form_field.label or name


class TenantUniqueForm(forms.ModelForm):
    """Mixed into a TenantModelAdmin's form (get_form): the tenant-scoped unique constraints
    as form errors.

    The tenant is not a tenant admin's form field, and derived fields (a customer's
    normalised name) are not form fields either, so Django skips every constraint that
    names them and the save would end in an IntegrityError (a 500). Here each
    UniqueConstraint on `tenant` whose other fields are on the form (or derived from
    one, `TenantModelAdmin.derived_fields`) is checked against the tenant's rows, and a
    clash is an error on that field (or the form's, for several).
    """

    admin_tenant = None  # the request's tenant; None for the platform superuser
    derived_fields: dict[str, str] = {}  # a derived field -> the form field it comes from
    prepare_instance = None  # fills the derived fields from the form's values

    def _post_clean(self):
        super()._post_clean()
        if self.prepare_instance is not None:
            self.prepare_instance(self.instance)
        tenant_id = self.admin_tenant.pk if self.admin_tenant else self.instance.tenant_id
        if tenant_id is None:
            return
        for constraint in self._meta.model._meta.constraints:
            if isinstance(constraint, models.UniqueConstraint):
                self._check_tenant_unique(constraint, tenant_id)

    def _check_tenant_unique(self, constraint, tenant_id):
        model = self._meta.model
        fields = list(constraint.fields)
        if "tenant" not in fields or constraint.expressions:
            return
        others = [name for name in fields if name != "tenant"]
        shown = [self.derived_fields.get(name, name) for name in others]
        if any(name not in self.fields or self.has_error(name) for name in shown):
            return  # not the user's to change here, or wrong already
        if "tenant" in self.fields and not set(others) & set(self.derived_fields):
            return  # all on the form: Django checks it itself
        lookup = {"tenant_id": tenant_id}
        for name in others:
            field = model._meta.get_field(name)
            value = getattr(self.instance, field.attname)
            if value is None:
                return  # NULLs never clash
            lookup[field.attname] = value
        if constraint.condition is not None:
            against = self.instance._get_field_expression_map(meta=model._meta)
            against["tenant"] = Value(tenant_id)
            if not constraint.condition.check(against):
                return
        clashes = model._base_manager.filter(**lookup)
        if constraint.condition is not None:
            clashes = clashes.filter(constraint.condition)
        if self.instance.pk is not None:
            clashes = clashes.exclude(pk=self.instance.pk)
        if not clashes.exists():
            return
        labels = [str(_label(model, self.fields[name], name)) for name in shown]
        if labels:
            message = _("This tenant already has a %(model)s with this %(fields)s.") % {
                "model": model._meta.verbose_name,
                "fields": get_text_list(labels, _("and")),
            }
        else:
            message = _("This tenant already has a %(model)s.") % {
                "model": model._meta.verbose_name
            }
        self.add_error(shown[0] if len(shown) == 1 else None, message)


class TenantModelAdmin(admin.ModelAdmin):
    """Base for the admin of any model with a `tenant` field.

    A tenant admin sees and edits only the current tenant's rows, picks related objects
    only from it, and never chooses the tenant: it is set on save. The platform superuser
    (who runs the admin in all-tenants mode) sees every tenant and a tenant column.
    Every add, change and delete is audited. A foreign or missing id is a 404 (the site's
    ObjectAccessRules).
    """

    class Media:
        # Classes for what would otherwise be style attributes (the CSP refuses those).
        css = {"all": ["crm/admin.css"]}

    def get_queryset(self, request):
        qs = self.model._base_manager.select_related("tenant")
        if not request.user.is_superuser:
            qs = qs.filter(tenant=request.tenant)
        ordering = self.get_ordering(request)
        return qs.order_by(*ordering) if ordering else qs

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # The platform superuser reads a tenant's object in that tenant's time zone, as the
        # tenant's own members do (their requests run in it already).
        tenant = self._object_tenant(request, object_id) if request.user.is_superuser else None
        if tenant is None:
            return super().changeform_view(request, object_id, form_url, extra_context)
        with timezone.override(tenant.tzinfo):
            response = super().changeform_view(request, object_id, form_url, extra_context)
            if hasattr(response, "render"):
                response.render()
            return response

    def _object_tenant(self, request, object_id):
        if object_id is None:
            return None
        try:
            obj = self.get_queryset(request).filter(pk=unquote(object_id)).first()
        except (ValueError, ValidationError):
            return None
        return obj.tenant if obj is not None else None

    def get_list_display(self, request):
        columns = list(super().get_list_display(request))
        if request.user.is_superuser and "tenant" not in columns:
            columns.append("tenant")
        return columns

    def get_list_filter(self, request):
        filters = list(super().get_list_filter(request))
        if request.user.is_superuser and "tenant" not in filters:
            filters.append("tenant")
        return filters

    def get_exclude(self, request, obj=None):
        exclude = list(super().get_exclude(request, obj) or [])
        return [*exclude, "tenant"] if not request.user.is_superuser else exclude

    # A derived field in a tenant-scoped unique constraint -> the form field it comes from
    # (a customer's normalised name_key -> name), with prepare_instance filling it in.
    derived_fields: dict[str, str] = {}

    def prepare_instance(self, obj):
        """Fill in the fields derived from the form's values, before validation and save."""

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        attrs = {
            "admin_tenant": None if request.user.is_superuser else request.tenant,
            "derived_fields": self.derived_fields,
            "prepare_instance": staticmethod(self.prepare_instance),
        }
        return type(form.__name__, (TenantUniqueForm, form), attrs)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        kwargs["queryset"] = self._tenant_choices(db_field, request, kwargs.get("queryset"))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        kwargs["queryset"] = self._tenant_choices(db_field, request, kwargs.get("queryset"))
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def _tenant_choices(self, db_field, request, queryset):
        related = db_field.remote_field.model
        qs = queryset if queryset is not None else related._base_manager.all()
        if request.user.is_superuser or not _has_tenant_field(related):
            return qs
        return qs.filter(tenant=request.tenant)

    def save_model(self, request, obj, form, change):
        if not request.user.is_superuser or getattr(obj, "tenant_id", None) is None:
            obj.tenant = request.tenant
        self.prepare_instance(obj)
        super().save_model(request, obj, form, change)
        audit(
            tenant=obj.tenant,
            actor=request.user,
            action="admin.change" if change else "admin.add",
            obj=obj,
            changes=form_changes(form) if change else {},
        )

    def delete_model(self, request, obj):
        audit(tenant=obj.tenant, actor=request.user, action="admin.delete", obj=obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            audit(tenant=obj.tenant, actor=request.user, action="admin.delete", obj=obj)
        super().delete_queryset(request, queryset)

    # Tenant admins administer their tenant by role, not by Django's global permissions.
    # A model the sales managers tune (assignment weights, rep profiles, SLA thresholds)
    # adds their role here; the admin then shows them that model and nothing else.
    admin_roles = ADMINS

    def has_module_permission(self, request):
        return has_admin_role(request, self.admin_roles)

    def has_view_permission(self, request, obj=None):
        return has_admin_role(request, self.admin_roles)

    def has_add_permission(self, request):
        return has_admin_role(request, self.admin_roles)

    def has_change_permission(self, request, obj=None):
        return has_admin_role(request, self.admin_roles)

    def has_delete_permission(self, request, obj=None):
        return has_admin_role(request, self.admin_roles)


class ReadOnlyTenantModelAdmin(TenantModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def _has_tenant_field(model) -> bool:
    return any(f.name == "tenant" for f in model._meta.get_fields())
