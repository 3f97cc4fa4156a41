"""The tenants (the platform superuser's) and their seats (each tenant admin's) in the admin."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from crm.admin_base import TenantModelAdmin
from crm.models import Membership, Tenant


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
