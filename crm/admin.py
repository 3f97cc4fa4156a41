"""The kernel's admin pages. Django's admin autodiscovery imports this module only, so it
imports the modules that register the rest: the tenants and their seats (crm.tenant_admin),
the audit trail (crm.audit_admin), notifications (crm.notify_admin), the background
exports (crm.exports_admin) and the nightly metric check (crm.metrics_admin).

The base classes of every tenant model's admin live in crm.admin_base; they are re-exported
here for the apps' admin modules."""

from __future__ import annotations

from django.contrib import admin

# The topics' admin modules register their pages when imported (autodiscovery imports this one).
from crm import (  # noqa: F401
    audit_admin,
    exports_admin,
    metrics_admin,
    notify_admin,
    tenant_admin,
)
from crm.admin_base import (
    ReadOnlyTenantModelAdmin,
    TenantModelAdmin,
    TenantUniqueForm,
    acting_member,
    has_admin_role,
)
from crm.models import Heartbeat

__all__ = [
    "ReadOnlyTenantModelAdmin",
    "TenantModelAdmin",
    "TenantUniqueForm",
    "acting_member",
    "has_admin_role",
]


@admin.register(Heartbeat)
class HeartbeatAdmin(admin.ModelAdmin):
    list_display = ["name", "last_seen"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
