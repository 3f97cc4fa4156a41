"""Tenant admin (F45) of the leads app. Django's admin autodiscovery imports this module
only, so it imports the rooms' admin modules, which register their own pages: intake
(leads.intake.admin), assignment (leads.assignment.admin and .admin_policy) and the board
(leads.board.admin). Here: the leads themselves with their timelines, and the reasons for
an invalid verdict (verification, F16)."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from crm.admin_base import TenantModelAdmin, has_admin_role
from crm.formatting import format_phone
from leads.models import InvalidReason, Lead, LeadEvent


class LeadEventInline(admin.TabularInline):
    model = LeadEvent
    extra = 0
    fields = ["at", "kind_label", "what"]
    readonly_fields = fields
    can_delete = False

    @admin.display(description=_("kind"))
    def kind_label(self, obj):
        return obj.get_kind_display()

    @admin.display(description=_("details"))
    def what(self, obj):
        return obj.text or "—"

    def has_view_permission(self, request, obj=None):
        # Read by whoever reads the lead in the admin (tenant admins hold no Django
        # permissions: their rights are their role).
        return has_admin_role(request, LeadAdmin.admin_roles)

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Lead)
class LeadAdmin(TenantModelAdmin):
    list_display = [
        "created_at",
        "company",
        "contact_name",
        "phone_text",
        "channel",
        "status",
        "is_suspect",
        "revisit_of",
    ]
    list_filter = ["status", "channel", "is_suspect", "source_grade"]
    search_fields = ["company", "contact_name", "phone"]
    list_select_related = ["channel", "revisit_of", "tenant"]
    show_full_result_count = False
    # Stored as codes and parameters: shown in words (the *_text fields) instead.
    exclude = ["suspect_reasons", "utm"]
    readonly_fields = [
        "channel",
        "revisit_of",
        "created_at",
        "suspect_reasons_text",
        "utm_text",
        "external_id",
    ]
    inlines = [LeadEventInline]

    @admin.display(description=_("phone"), ordering="phone")
    def phone_text(self, obj):
        return format_phone(obj.phone) or "—"

    @admin.display(description=_("suspect reasons"))
    def suspect_reasons_text(self, obj):
        return "；".join(obj.suspect_reason_texts()) or "—"

    @admin.display(description=_("UTM parameters"))
    def utm_text(self, obj):
        from leads.intake.services import UTM_LABELS

        parts = [f"{UTM_LABELS.get(k, k)}: {v}" for k, v in (obj.utm or {}).items()]
        return "；".join(parts) or "—"

    def has_add_permission(self, request):
        return False  # leads arrive through channels (a manual entry is a channel too)


# --- Verification (F16) ---------------------------------------------------------------------


@admin.register(InvalidReason)
class InvalidReasonAdmin(TenantModelAdmin):
    """The tenant's reasons for an invalid verdict (about 12; the defaults are created on
    first use by leads.verification.invalid_reasons). Switch one off rather than delete
    it: verified leads keep theirs."""

    list_display = ["name", "position", "is_active"]
    list_display_links = ["name"]
    list_editable = ["position", "is_active"]
    list_filter = ["is_active"]
    search_fields = ["name"]


# The rooms register their own admin pages; Django's autodiscovery imports this module only.
from leads.assignment import admin as assignment_admin  # noqa: E402, F401
from leads.assignment import admin_policy as assignment_policy_admin  # noqa: E402, F401
from leads.board import admin as board_admin  # noqa: E402, F401
from leads.intake import admin as intake_admin  # noqa: E402, F401
