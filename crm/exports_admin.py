"""The background exports in the admin (crm.exports): read-only, for the tenant's admins."""

from __future__ import annotations

from django.contrib import admin

from crm.admin_base import ReadOnlyTenantModelAdmin
from crm.models import Export


@admin.register(Export)
class ExportAdmin(ReadOnlyTenantModelAdmin):
    list_display = [
        "created_at",
        "kind",
        "requested_by",
        "status",
        "rows_written",
        "rows_expected",
        "finished_at",
    ]
    list_filter = ["status", "kind"]
    list_select_related = ["requested_by__user", "tenant"]
    show_full_result_count = False
    date_hierarchy = "created_at"
    fields = [
        "kind",
        "query",
        "requested_by",
        "status",
        "rows_written",
        "rows_expected",
        "filename",
        "error",
        "created_at",
        "started_at",
        "finished_at",
    ]
    readonly_fields = fields
