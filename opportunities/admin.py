"""Tenant admin for opportunities (F21–F26): the pipeline's stages with their required
actions, the attachment kinds, the decision-chain roles and the lost reasons are the
tenant's data, edited here; opportunities themselves are read here and moved only on
their pages (opportunities.services), so the admin cannot step around a stage's
requirements."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from crm.admin import ReadOnlyTenantModelAdmin, TenantModelAdmin, has_admin_role
from opportunities.models import (
    AttachmentKind,
    ChainRole,
    FileType,
    ForecastMonth,
    LostReason,
    Opportunity,
    OpportunityEvent,
    Stage,
    StageCalibration,
    StageRequirement,
)

# A stage asks for 3 to 5 required actions (F21): fewer means the stage proves little,
# more that nobody reads them.
MIN_REQUIREMENTS = 3
MAX_REQUIREMENTS = 5


class RequirementFormSet(forms.BaseInlineFormSet):
    def clean(self):
        super().clean()
        if any(self.errors):
            return
        kept = [f for f in self.forms if f.cleaned_data and not f.cleaned_data.get("DELETE", False)]
        if not MIN_REQUIREMENTS <= len(kept) <= MAX_REQUIREMENTS:
            raise ValidationError(
                _("A stage has %(min)d to %(max)d required actions; this one has %(n)d.")
                % {"min": MIN_REQUIREMENTS, "max": MAX_REQUIREMENTS, "n": len(kept)}
            )


class RequirementInline(admin.TabularInline):
    """A stage's required actions, each of a kind with the parameters that kind takes."""

    model = StageRequirement
    formset = RequirementFormSet
    extra = 0
    fields = [
        "position",
        "kind",
        "label",
        "attachment_kind",
        "count",
        "talk_tag",
        "decision_role",
        "attitude",
        "field",
    ]

    def _allowed(self, request):
        return has_admin_role(request, StageAdmin.admin_roles)

    def has_view_permission(self, request, obj=None):
        return self._allowed(request)

    def has_add_permission(self, request, obj=None):
        return self._allowed(request)

    def has_change_permission(self, request, obj=None):
        return self._allowed(request)

    def has_delete_permission(self, request, obj=None):
        return self._allowed(request)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "attachment_kind" and not request.user.is_superuser:
            kwargs["queryset"] = AttachmentKind._base_manager.filter(tenant=request.tenant)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(Stage)
class StageAdmin(TenantModelAdmin):
    list_display = ["name", "code", "position", "default_probability", "days_to_stall", "is_active"]
    list_display_links = ["name"]
    list_editable = ["position", "is_active"]
    list_filter = ["is_active"]
    search_fields = ["name", "code"]
    inlines = [RequirementInline]

    def save_formset(self, request, form, formset, change):
        for requirement in formset.save(commit=False):
            requirement.tenant = form.instance.tenant
            requirement.save()
        for requirement in formset.deleted_objects:
            requirement.delete()
        formset.save_m2m()


class AttachmentKindForm(forms.ModelForm):
    allowed_types = forms.MultipleChoiceField(
        label=_("allowed file types"),
        choices=FileType.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Read from the file's bytes: a renamed file is refused."),
    )

    class Meta:
        model = AttachmentKind
        fields = [
            "tenant",
            "code",
            "name",
            "allowed_types",
            "max_size_mb",
            "is_contract",
            "counts_for_validity",
            "position",
            "is_active",
        ]


@admin.register(AttachmentKind)
class AttachmentKindAdmin(TenantModelAdmin):
    form = AttachmentKindForm
    list_display = ["name", "code", "types", "max_size_mb", "is_contract", "counts_for_validity"]
    list_display_links = ["name"]
    search_fields = ["name", "code"]

    @admin.display(description=_("allowed file types"))
    def types(self, obj):
        return ", ".join(obj.allowed_types or [])


@admin.register(ChainRole)
class ChainRoleAdmin(TenantModelAdmin):
    list_display = ["name", "decision_role", "position", "required", "is_active"]
    list_display_links = ["name"]
    list_editable = ["position", "required", "is_active"]
    list_filter = ["decision_role", "required", "is_active"]
    search_fields = ["name"]


@admin.register(LostReason)
class LostReasonAdmin(TenantModelAdmin):
    list_display = ["name", "needs_detail", "position", "is_active"]
    list_display_links = ["name"]
    list_editable = ["position", "is_active"]
    list_filter = ["is_active"]
    search_fields = ["name"]


class EventInline(admin.TabularInline):
    model = OpportunityEvent
    extra = 0
    fields = ["at", "kind", "from_stage", "to_stage", "to_status", "amount_after", "actor", "path"]
    readonly_fields = fields
    ordering = ["-at", "-id"]
    can_delete = False

    def has_view_permission(self, request, obj=None):
        return has_admin_role(request, OpportunityAdmin.admin_roles)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Opportunity)
class OpportunityAdmin(ReadOnlyTenantModelAdmin):
    """Read only: an opportunity moves on its page, through the stage checks."""

    list_display = ["name", "customer", "owner", "stage", "status", "amount", "is_valid"]
    list_filter = ["status", "stage", "budget_band"]
    search_fields = ["name", "customer__name"]
    list_select_related = ["customer", "owner__user", "stage", "tenant"]
    inlines = [EventInline]


@admin.register(StageCalibration)
class StageCalibrationAdmin(ReadOnlyTenantModelAdmin):
    list_display = ["stage", "cases", "won", "probability", "calibrated", "computed_at"]
    list_select_related = ["stage", "tenant"]


@admin.register(ForecastMonth)
class ForecastMonthAdmin(ReadOnlyTenantModelAdmin):
    list_display = ["month", "owner", "forecast", "valid_forecast", "signed", "accuracy"]
    list_filter = ["month"]
    list_select_related = ["owner__user", "tenant"]
