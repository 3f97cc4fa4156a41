"""The nightly metric check in the admin (crm.metric_checks): every figure checked, with
its recount from the rows, read-only. The platform superuser sees every tenant's."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from crm import metrics
from crm.admin_base import ReadOnlyTenantModelAdmin
from crm.models import MetricCheck


@admin.register(MetricCheck)
class MetricCheckAdmin(ReadOnlyTenantModelAdmin):
    list_display = [
        "day",
        "metric",
        "metric_label",
        "period",
        "start",
        "figure",
        "recount",
        "ok",
        "error",
    ]
    list_filter = ["ok", "period"]
    search_fields = ["metric"]
    date_hierarchy = "day"
    fields = [
        "day",
        "metric",
        "metric_label",
        "period",
        "start",
        "figure",
        "recount",
        "ok",
        "error",
        "checked_at",
    ]
    readonly_fields = fields

    @admin.display(description=_("name"), ordering="metric")
    def metric_label(self, obj):
        found = metrics.get_metric(obj.metric)
        return found.label if found is not None else obj.metric
