"""The audit trail in the admin: read-only, its actions and object types in words."""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from crm.admin_base import ReadOnlyTenantModelAdmin
from crm.audit import changes_for_people, object_type_label, registered_actions
from crm.models import AuditEvent


class AuditActionFilter(admin.SimpleListFilter):
    """The actions by their labels (crm.audit's registry): no query over the trail."""

    title = _("action")
    parameter_name = "action"

    def lookups(self, request, model_admin):
        return list(registered_actions().items())

    def queryset(self, request, queryset):
        return queryset.filter(action=self.value()) if self.value() else queryset


class AuditObjectTypeFilter(admin.SimpleListFilter):
    """The object types by their models' names."""

    title = _("object type")
    parameter_name = "object_type"

    def lookups(self, request, model_admin):
        types = model_admin.get_queryset(request).order_by().values_list("object_type", flat=True)
        labels = {t: object_type_label(t) for t in types.distinct()}
        return sorted(labels.items(), key=lambda item: item[1])

    def queryset(self, request, queryset):
        return queryset.filter(object_type=self.value()) if self.value() else queryset


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyTenantModelAdmin):
    list_display = [
        "at",
        "actor_name",
        "action_text",
        "object_type_text",
        "object_repr",
        "object_id",
    ]
    list_filter = [AuditActionFilter, AuditObjectTypeFilter]
    search_fields = ["object_id", "object_repr", "actor__username"]
    list_select_related = ["actor", "tenant"]
    date_hierarchy = "at"
    show_full_result_count = False  # a count over millions of rows is not worth its cost
    fields = [
        "at",
        "actor_name",
        "action_text",
        "object_type_text",
        "object_repr",
        "object_id",
        "changes_table",
    ]
    readonly_fields = fields

    @admin.display(description=_("actor"), ordering="actor__username")
    def actor_name(self, obj):
        if obj.actor is None:
            return _("System")
        return obj.actor.get_full_name() or obj.actor.get_username()

    @admin.display(description=_("action"), ordering="action")
    def action_text(self, obj):
        return obj.action_label

    @admin.display(description=_("object type"), ordering="object_type")
    def object_type_text(self, obj):
        return obj.object_type_label

    @admin.display(description=_("changes"))
    def changes_table(self, obj):
        rows = changes_for_people(obj)
        if not rows:
            return "—"
        head = format_html(
            "<tr><th>{}</th><th>{}</th><th>{}</th></tr>", _("field"), _("before"), _("after")
        )
        body = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td></tr>", rows)
        return format_html("<table>{}{}</table>", head, body)
