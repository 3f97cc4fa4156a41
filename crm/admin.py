"""Tenant-aware admin (F45): querysets, foreign-key choices and saves stay in the tenant."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from crm.audit import audit, form_changes
from crm.models import AuditEvent, Heartbeat, Membership, Role, Tenant


def _is_tenant_admin(request) -> bool:
    membership = getattr(request, "membership", None)
    return membership is not None and membership.role == Role.ADMIN


class TenantModelAdmin(admin.ModelAdmin):
    """Base for the admin of any model with a `tenant` field.

    A tenant admin sees and edits only the current tenant's rows, picks related objects
    only from it, and never chooses the tenant: it is set on save. The platform superuser
    (who runs the admin in all-tenants mode) sees every tenant and a tenant column.
    Every add, change and delete is audited. A foreign or missing id is a 404 (the site's
    ObjectAccessRules).
    """

    def get_queryset(self, request):
        qs = self.model._base_manager.select_related("tenant")
        if not request.user.is_superuser:
            qs = qs.filter(tenant=request.tenant)
        ordering = self.get_ordering(request)
        return qs.order_by(*ordering) if ordering else qs

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
    def has_module_permission(self, request):
        return request.user.is_superuser or _is_tenant_admin(request)

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser or _is_tenant_admin(request)

    def has_add_permission(self, request):
        return request.user.is_superuser or _is_tenant_admin(request)

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser or _is_tenant_admin(request)

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser or _is_tenant_admin(request)


class ReadOnlyTenantModelAdmin(TenantModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def _has_tenant_field(model) -> bool:
    return any(f.name == "tenant" for f in model._meta.get_fields())


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    """Platform superuser only (Django permissions; tenant admins hold none)."""

    list_display = ["name", "slug", "timezone", "is_active", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Membership)
class MembershipAdmin(TenantModelAdmin):
    list_display = ["user", "full_name", "role", "is_active", "created_at"]
    list_filter = ["role", "is_active"]
    search_fields = ["user__username", "user__first_name", "user__last_name"]
    list_select_related = ["user", "tenant"]
    ordering = ["user__username"]

    @admin.display(description=_("name"))
    def full_name(self, obj):
        return obj.user.get_full_name()

    def get_readonly_fields(self, request, obj=None):
        # A tenant admin manages seats (role, active); the platform adds users to tenants.
        if request.user.is_superuser:
            return []
        return ["user"] if obj else []

    def has_add_permission(self, request):
        return request.user.is_superuser


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyTenantModelAdmin):
    list_display = ["at", "actor", "action", "object_type", "object_repr", "object_id"]
    list_filter = ["action", "object_type"]
    search_fields = ["object_id", "object_repr", "actor__username"]
    list_select_related = ["actor", "tenant"]
    date_hierarchy = "at"
    show_full_result_count = False  # a count over millions of rows is not worth its cost


@admin.register(Heartbeat)
class HeartbeatAdmin(admin.ModelAdmin):
    list_display = ["name", "last_seen"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
