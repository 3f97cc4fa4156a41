"""The board's rank weights in the admin (F15): one row per tenant, created with the defaults
when first opened. Imported by leads/admin.py (admin autodiscovery)."""

from __future__ import annotations

from django.contrib import admin
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from crm.admin import TenantModelAdmin
from crm.roles import MANAGERS
from leads.models import BoardSettings


@admin.register(BoardSettings)
class BoardSettingsAdmin(TenantModelAdmin):
    """rank = level weight × lead score factor × urgency weight × (1 + hours overdue ×
    weight per hour)."""

    # Managers own how their reps' work is ranked, as they own assignment
    # (docs/decisions.md).
    admin_roles = MANAGERS
    list_display = [
        "name",
        "level_a",
        "level_b",
        "level_c",
        "urgency_verify",
        "urgency_overdue",
        "urgency_due",
        "urgency_revisit",
        "overdue_per_hour",
    ]
    list_display_links = ["name"]
    fieldsets = [
        (
            _("Customer level or source grade"),
            {
                "fields": ["level_a", "level_b", "level_c"],
                "description": _(
                    "A lead without a customer yet takes the weight of its source grade."
                ),
            },
        ),
        (
            _("Urgency"),
            {"fields": ["urgency_verify", "urgency_overdue", "urgency_due", "urgency_revisit"]},
        ),
        (
            _("Time overdue"),
            {
                "fields": ["overdue_per_hour"],
                "description": _(
                    "rank = level weight × lead score factor × urgency weight × (1 + hours "
                    "overdue × weight per hour). The lead score factor is a lead's score ÷ "
                    "the assignment policy's base score while it waits for its verdict (at "
                    "least 0.2), 1 otherwise. A lead is overdue once its 24 h clock has run "
                    "out, a follow-up from the start of its due day once that day has passed."
                ),
            },
        ),
    ]

    @admin.display(description=_("settings"))
    def name(self, obj):
        return str(obj)

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if request.user.is_superuser:
            return [(None, {"fields": ["tenant"]}), *fieldsets]
        return fieldsets

    def changelist_view(self, request, extra_context=None):
        """A tenant's one row: straight to its form (created with the defaults)."""
        tenant = getattr(request, "tenant", None)
        if request.user.is_superuser or tenant is None or not self.has_change_permission(request):
            return super().changelist_view(request, extra_context)
        settings, _created = BoardSettings.objects.get_or_create(tenant=tenant)
        url = reverse(
            "admin:leads_boardsettings_change", args=[settings.pk], current_app=self.admin_site.name
        )
        return redirect(url)

    def has_add_permission(self, request):
        if not super().has_add_permission(request):
            return False
        if request.user.is_superuser:
            return True  # one per tenant is then checked by the constraint (the tenant field)
        tenant = getattr(request, "tenant", None)
        return tenant is not None and not BoardSettings.objects.filter(tenant=tenant).exists()

    def has_delete_permission(self, request, obj=None):
        # Deleting would only bring the defaults back on the next board.
        return request.user.is_superuser
