"""Tenant admin for intake (F45): channels, mapping rules, tags, the inbox."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from crm.admin import ReadOnlyTenantModelAdmin, TenantModelAdmin
from crm.audit import audit
from leads import mapping
from leads.models import (
    Channel,
    ChannelType,
    EventStatus,
    ImportBatch,
    InboundEvent,
    Lead,
    LeadEvent,
    Tag,
    TaggingRule,
)
from leads.services import inbound_event_reprocess


def public_url(request, name: str, key: str) -> str:
    return request.build_absolute_uri(reverse(name, args=[key]))


class ChannelForm(forms.ModelForm):
    class Meta:
        model = Channel
        fields = [
            "name",
            "type",
            "default_grade",
            "is_active",
            "tags",
            "preset",
            "mapping",
            "wecom_corp_id",
            "wecom_token",
            "wecom_aes_key",
            "tenant",
        ]
        widgets = {
            "mapping": forms.Textarea(
                attrs={"rows": 8, "cols": 90, "style": "font-family: monospace"}
            )
        }

    def clean_mapping(self):
        rules = self.cleaned_data.get("mapping")
        if rules in (None, ""):
            return []
        problems = mapping.validate_rules(rules)
        if problems:
            raise forms.ValidationError(problems)
        return rules

    def clean(self):
        data = super().clean()
        if data.get("type") == ChannelType.WECOM:
            for name in ("wecom_corp_id", "wecom_token", "wecom_aes_key"):
                if not data.get(name):
                    self.add_error(name, _("Required for a WeCom channel."))
            aes = data.get("wecom_aes_key") or ""
            if aes and len(aes) != 43:
                self.add_error("wecom_aes_key", _("WeCom's EncodingAESKey has 43 characters."))
        return data


@admin.register(Channel)
class ChannelAdmin(TenantModelAdmin):
    form = ChannelForm
    list_display = ["name", "type", "default_grade", "is_active", "webhook_url", "created_at"]
    list_filter = ["type", "is_active", "default_grade"]
    search_fields = ["name"]
    filter_horizontal = ["tags"]
    readonly_fields = ["key", "webhook_url", "form_url"]
    actions = ["rotate_secret"]
    fieldsets = [
        (None, {"fields": ["name", "type", "default_grade", "is_active", "tags"]}),
        (_("Addresses"), {"fields": ["key", "webhook_url", "form_url"]}),
        (_("Mapping"), {"fields": ["preset", "mapping"]}),
        (
            _("WeCom callback"),
            {"fields": ["wecom_corp_id", "wecom_token", "wecom_aes_key"], "classes": ["collapse"]},
        ),
    ]

    @admin.display(description=_("webhook URL"))
    def webhook_url(self, obj):
        return public_url(self._request, "hook", obj.key) if obj.pk else "—"

    @admin.display(description=_("hosted form"))
    def form_url(self, obj):
        if not obj.pk:
            return "—"
        url = public_url(self._request, "lead_form", obj.key)
        qr = reverse("lead_form_qr", args=[obj.key, "svg"])
        return format_html(
            '<a href="{}" target="_blank">{}</a> · <a href="{}" target="_blank">{}</a>',
            url,
            url,
            qr,
            _("QR code"),
        )

    def get_queryset(self, request):
        self._request = request
        return super().get_queryset(request)

    def get_form(self, request, obj=None, change=False, **kwargs):
        self._request = request
        return super().get_form(request, obj, change, **kwargs)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not change:
            # The secret is shown this once; afterwards only a rotation reveals a new one.
            messages.warning(
                request,
                format_html(
                    _(
                        "Channel created. Webhook URL: <code>{}</code> · secret (shown only now): "
                        "<code>{}</code>"
                    ),
                    public_url(request, "hook", obj.key),
                    obj.secret,
                ),
            )

    @admin.action(description=_("Rotate the secret (the old one stops working)"))
    def rotate_secret(self, request, queryset):
        for channel in queryset:
            channel.rotate_secret()
            channel.save(update_fields=["secret"])
            audit(
                tenant=channel.tenant,
                actor=request.user,
                action="channel.rotate_secret",
                obj=channel,
            )
            messages.warning(
                request,
                format_html(
                    _("New secret of {} (shown only now): <code>{}</code>"),
                    channel.name,
                    channel.secret,
                ),
            )


@admin.register(Tag)
class TagAdmin(TenantModelAdmin):
    list_display = ["name", "color"]
    search_fields = ["name"]


@admin.register(TaggingRule)
class TaggingRuleAdmin(TenantModelAdmin):
    list_display = ["tag", "keywords", "is_active"]
    list_filter = ["is_active", "tag"]
    list_select_related = ["tag", "tenant"]


@admin.register(InboundEvent)
class InboundEventAdmin(TenantModelAdmin):
    list_display = [
        "received_at",
        "channel",
        "source",
        "status",
        "short_error",
        "lead_link",
        "attempts",
    ]
    list_filter = ["status", "source", "channel"]
    list_select_related = ["channel", "lead", "tenant"]
    search_fields = ["idempotency_key", "error", "public_id"]
    date_hierarchy = "received_at"
    show_full_result_count = False
    actions = ["reprocess"]
    fields = [
        "channel",
        "source",
        "received_at",
        "status",
        "error",
        "attempts",
        "processed_at",
        "lead_link",
        "idempotency_key",
        "headers_pretty",
        "raw_body",
        "payload_pretty",
    ]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # the inbox is the record of what arrived

    @admin.display(description=_("error"))
    def short_error(self, obj):
        return (obj.error[:80] + "…") if len(obj.error) > 80 else obj.error

    @admin.display(description=_("lead"))
    def lead_link(self, obj):
        if obj.lead_id is None:
            return "—"
        return format_html(
            '<a href="{}">{}</a>', reverse("leads:detail", args=[obj.lead.public_id]), obj.lead
        )

    @admin.display(description=_("headers"))
    def headers_pretty(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.headers, ensure_ascii=False, indent=2))

    @admin.display(description=_("payload"))
    def payload_pretty(self, obj):
        if obj.payload is None:
            return "—"
        return format_html("<pre>{}</pre>", json.dumps(obj.payload, ensure_ascii=False, indent=2))

    @admin.action(description=_("Re-process the selected failed events"))
    def reprocess(self, request, queryset):
        queued = sum(
            inbound_event_reprocess(event=e) for e in queryset.filter(status=EventStatus.FAILED)
        )
        skipped = queryset.count() - queued
        messages.success(
            request,
            ngettext("%(n)d event queued again.", "%(n)d events queued again.", queued)
            % {"n": queued},
        )
        if skipped:
            messages.info(
                request, _("Only failed events are re-processed; %(n)d skipped.") % {"n": skipped}
            )


class LeadEventInline(admin.TabularInline):
    model = LeadEvent
    extra = 0
    fields = ["at", "kind", "text"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Lead)
class LeadAdmin(TenantModelAdmin):
    list_display = [
        "created_at",
        "company",
        "contact_name",
        "phone",
        "channel",
        "status",
        "is_suspect",
        "revisit_of",
    ]
    list_filter = ["status", "channel", "is_suspect", "source_grade"]
    search_fields = ["company", "contact_name", "phone"]
    list_select_related = ["channel", "revisit_of", "tenant"]
    show_full_result_count = False
    readonly_fields = [
        "channel",
        "revisit_of",
        "created_at",
        "suspect_reasons",
        "utm",
        "external_id",
    ]
    inlines = [LeadEventInline]

    def has_add_permission(self, request):
        return False  # leads arrive through channels (a manual entry is a channel too)


@admin.register(ImportBatch)
class ImportBatchAdmin(ReadOnlyTenantModelAdmin):
    list_display = ["created_at", "filename", "channel", "status", "uploaded_by"]
    list_select_related = ["channel", "uploaded_by", "tenant"]
    exclude = ["rows"]
