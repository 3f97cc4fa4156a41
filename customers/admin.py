"""Tenant admin for customers (F16–F18): customers and contacts, the follow-up pick lists
(talk tags, pain points, the action library) and the keyword → status suggestions."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from crm.admin import TenantModelAdmin, has_admin_role
from crm.formatting import format_phone
from customers import services
from customers.models import Contact, Customer, Industry, Preset, StatusSuggestion


class ContactInline(admin.TabularInline):
    """The customer's contacts, edited with it (rights follow the customer's admin)."""

    model = Contact
    extra = 0
    fields = ["name", "phone", "email", "title", "role", "has_left", "new_company"]

    def has_view_permission(self, request, obj=None):
        return has_admin_role(request, CustomerAdmin.admin_roles)

    def has_add_permission(self, request, obj=None):
        return has_admin_role(request, CustomerAdmin.admin_roles)

    def has_change_permission(self, request, obj=None):
        return has_admin_role(request, CustomerAdmin.admin_roles)

    def has_delete_permission(self, request, obj=None):
        return has_admin_role(request, CustomerAdmin.admin_roles)


class CustomerForm(forms.ModelForm):
    """The industry picked from the list leads use (the field holds its code)."""

    class Meta:
        model = Customer
        fields = ["tenant", "name", "code", "level", "industry", "province", "city", "owner"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "industry" in self.fields:
            self.fields["industry"] = forms.ChoiceField(
                label=Customer._meta.get_field("industry").verbose_name,
                choices=[("", "---------"), *Industry.choices],
                required=False,
            )


@admin.register(Customer)
class CustomerAdmin(TenantModelAdmin):
    form = CustomerForm
    list_display = ["name", "level", "owner", "province", "city", "last_contact_at", "created_at"]
    list_filter = ["level"]
    search_fields = ["name", "code"]
    list_select_related = ["owner__user", "tenant"]
    readonly_fields = ["source_lead", "last_contact_at", "created_at"]
    fields = [
        "name",
        "code",
        "level",
        "industry",
        "province",
        "city",
        "owner",
        "source_lead",
        "last_contact_at",
        "created_at",
    ]

    derived_fields = {"name_key": "name"}  # one customer per normalised name

    def prepare_instance(self, obj):
        from crm.normalize import company_key

        obj.name_key = company_key(obj.name)

    def save_formset(self, request, form, formset, change):
        from crm.normalize import parse_phone

        for contact in formset.save(commit=False):
            contact.tenant = form.instance.tenant
            parsed = parse_phone(contact.phone) if contact.phone else None
            contact.phone_key = parsed.e164 if parsed else ""
            before = services.contact_job(contact.pk)
            contact.save()
            _job_change(request, contact, before)
        for contact in formset.deleted_objects:
            contact.delete()
        formset.save_m2m()

    def get_inlines(self, request, obj):
        return [ContactInline] if obj is not None else []


@admin.register(Contact)
class ContactAdmin(TenantModelAdmin):
    list_display = ["name", "customer", "phone_text", "title", "role", "has_left"]
    list_filter = ["role", "has_left"]
    search_fields = ["name", "phone", "customer__name"]
    list_select_related = ["customer", "tenant"]

    @admin.display(description=_("phone"), ordering="phone")
    def phone_text(self, obj):
        return format_phone(obj.phone) or "—"

    def save_model(self, request, obj, form, change):
        from crm.normalize import parse_phone

        parsed = parse_phone(obj.phone) if obj.phone else None
        obj.phone_key = parsed.e164 if parsed else ""
        before = services.contact_job(obj.pk) if change else None
        super().save_model(request, obj, form, change)
        _job_change(request, obj, before)


def _job_change(request, contact: Contact, before: dict | None) -> None:
    """The edit's job change, if it is one (`contact.changed_jobs`, automation's trigger)."""
    member = getattr(request, "membership", None)
    if member is not None and member.tenant_id != contact.tenant_id:
        member = None  # the platform superuser, in another tenant
    services.contact_changed_jobs(
        tenant=contact.tenant,
        acting_member=member,
        contact=contact,
        before=before,
    )


@admin.register(Preset)
class PresetAdmin(TenantModelAdmin):
    """The follow-up pick lists: talk tags, pain points, the next-action library."""

    list_display = ["name", "kind", "position", "is_agreement", "is_active"]
    list_display_links = ["name"]
    list_editable = ["position", "is_active"]
    list_filter = ["kind", "is_active"]
    search_fields = ["name"]


@admin.register(StatusSuggestion)
class StatusSuggestionAdmin(TenantModelAdmin):
    """Keywords in a follow-up's note → the suggested status ("contact ended", F18)."""

    list_display = ["keyword", "status", "position", "is_active"]
    list_display_links = ["keyword"]
    list_editable = ["position", "is_active"]
    list_filter = ["is_active"]
    search_fields = ["keyword", "status"]
