"""Tenant admin for signals and tracked links: read here, never edited (signals are
append-only; links are sent from the customer page, health.links)."""

from __future__ import annotations

from django.contrib import admin

from crm.admin import ReadOnlyTenantModelAdmin
from health.models import Signal, TrackedLink


@admin.register(Signal)
class SignalAdmin(ReadOnlyTenantModelAdmin):
    list_display = ["at", "kind", "customer", "resolved_by", "competitor", "query", "link"]
    list_filter = ["kind", "resolved_by"]
    search_fields = ["customer__name", "query", "url", "competitor"]
    list_select_related = ["customer", "link", "tenant"]
    date_hierarchy = "at"
    raw_id_fields = ["customer", "contact", "link"]


@admin.register(TrackedLink)
class TrackedLinkAdmin(ReadOnlyTenantModelAdmin):
    list_display = ["title", "kind", "customer", "sent_at", "open_count", "first_opened_at"]
    list_filter = ["kind"]
    search_fields = ["title", "customer__name", "target_url"]
    list_select_related = ["customer", "tenant"]
    exclude = ["token"]
    raw_id_fields = ["customer", "contact", "created_by"]
