"""Tenant admin for service feedback: the flag keyword lists, the review card's hint
rules and the service settings are the tenant's data, edited here; tickets, alerts and
remembered links are read here (tickets come from the helpdesk, links are made on the
unmatched queue)."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from crm.admin import ReadOnlyTenantModelAdmin, TenantModelAdmin
from service_feedback.models import (
    FlagKeyword,
    QualityAlert,
    ReviewHint,
    ServiceSettings,
    Ticket,
    TicketLink,
)


@admin.register(FlagKeyword)
class FlagKeywordAdmin(TenantModelAdmin):
    list_display = ["keyword", "kind", "is_active"]
    list_display_links = ["keyword"]
    list_editable = ["is_active"]
    list_filter = ["kind", "is_active"]
    search_fields = ["keyword"]


class ReviewHintForm(forms.ModelForm):
    words = forms.CharField(
        label=_("words (all of them)"),
        help_text=_("Separated by commas: a ticket mentioning every one of them shows the hint."),
    )

    class Meta:
        model = ReviewHint
        fields = ["tenant", "words", "hint", "is_active"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and "words" in self.fields:
            self.initial["words"] = ", ".join(self.instance.words or [])

    def clean_words(self):
        raw = self.cleaned_data["words"].replace("，", ",")
        words = [w.strip() for w in raw.split(",") if w.strip()]
        if not words:
            raise ValidationError(_("Name at least one word."))
        return words


@admin.register(ReviewHint)
class ReviewHintAdmin(TenantModelAdmin):
    form = ReviewHintForm
    list_display = ["__str__", "is_active"]
    list_filter = ["is_active"]


@admin.register(ServiceSettings)
class ServiceSettingsAdmin(TenantModelAdmin):
    list_display = [
        "__str__",
        "first_response_minutes",
        "resolution_hours",
        "working_hours_only",
        "alert_threshold",
        "alert_window_hours",
    ]


@admin.register(Ticket)
class TicketAdmin(ReadOnlyTenantModelAdmin):
    list_display = ["external_id", "subject", "customer", "status", "match_key", "opened_at"]
    list_filter = ["status", "match_key"]
    search_fields = ["external_id", "subject", "customer__name"]
    list_select_related = ["customer", "tenant"]


@admin.register(QualityAlert)
class QualityAlertAdmin(ReadOnlyTenantModelAdmin):
    list_display = ["__str__", "opened_at", "last_ticket_at", "closed_at"]
    list_filter = ["closed_at"]


@admin.register(TicketLink)
class TicketLinkAdmin(TenantModelAdmin):
    """Remembered links: an admin removes a wrong one here."""

    list_display = ["value", "key", "customer", "linked_by", "linked_at"]
    list_filter = ["key"]
    search_fields = ["value", "customer__name"]
    list_select_related = ["customer", "linked_by__user", "tenant"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
