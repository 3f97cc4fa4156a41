"""Intake in the admin: the channels with their addresses and field mapping, tags
and tagging rules, the inbox of inbound events, and the import batches. Imported by
leads/admin.py (admin autodiscovery)."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from crm import inbox
from crm.admin_base import ReadOnlyTenantModelAdmin, TenantModelAdmin, acting_member
from leads.intake import mapping
from leads.intake.channels import channel_rotate_secret
from leads.intake.services import channel_mapping_problems, inbound_event_reprocess
from leads.messages import field_label, intake_text
from leads.models import (
    Channel,
    ChannelType,
    EventStatus,
    ImportBatch,
    InboundEvent,
    Tag,
    TaggingRule,
)


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
            "native_app_id",
            "tenant",
        ]
        widgets = {
            "mapping": forms.Textarea(attrs={"rows": 8, "cols": 90, "class": "crm-monospace"})
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
        if inbox.needs_app_id(data.get("type"), data.get("preset")) and not data.get(
            "native_app_id"
        ):
            self.add_error(
                "native_app_id", _("This helpdesk signs with its app ID: enter it here.")
            )
        return data


@admin.register(Channel)
class ChannelAdmin(TenantModelAdmin):
    form = ChannelForm
    list_display = ["name", "type", "default_grade", "is_active", "webhook_url", "created_at"]
    list_filter = ["type", "is_active", "default_grade"]
    search_fields = ["name"]
    filter_horizontal = ["tags"]
    readonly_fields = ["key", "webhook_url", "form_url", "mapping_problems"]
    actions = ["rotate_secret"]
    fieldsets = [
        (None, {"fields": ["name", "type", "default_grade", "is_active", "tags"]}),
        (_("Addresses"), {"fields": ["key", "webhook_url", "form_url"]}),
        (_("Mapping"), {"fields": ["preset", "mapping", "mapping_problems"]}),
        (
            _("WeCom callback"),
            {"fields": ["wecom_corp_id", "wecom_token", "wecom_aes_key"], "classes": ["collapse"]},
        ),
        (_("Helpdesk signing"), {"fields": ["native_app_id"], "classes": ["collapse"]}),
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

    @admin.display(description=_("field mapping problems"))
    def mapping_problems(self, obj):
        """What the mapping could not fill lately: the leads were made without it."""
        if not obj.pk:
            return "—"
        problems = channel_mapping_problems(channel=obj)
        if not problems:
            return _("None in the last %(days)d days.") % {"days": problems.days}
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    field_label(p["field"]),
                    p["value"] or "—",
                    p["problem"],
                    p["count"],
                    p["last"].strftime("%Y-%m-%d %H:%M"),
                )
                for p in problems
            ),
        )
        return format_html(
            '<table data-testid="mapping-problems"><thead><tr><th>{}</th><th>{}</th><th>{}</th>'
            "<th>{}</th><th>{}</th></tr></thead><tbody>{}</tbody></table><p>{}</p>",
            _("field"),
            _("value received"),
            _("problem"),
            _("events"),
            _("last seen"),
            rows,
            _(
                "The last %(days)d days. The leads were made without these values (they are "
                "kept on the lead and its event): add them to the rule's map, with null for "
                "“leave empty”."
            )
            % {"days": problems.days},
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
            secret = channel_rotate_secret(
                tenant=channel.tenant,
                acting_member=acting_member(request, channel.tenant),
                channel=channel,
            )
            messages.warning(
                request,
                format_html(
                    _("New secret of {} (shown only now): <code>{}</code>"),
                    channel.name,
                    secret,
                ),
            )


@admin.register(Tag)
class TagAdmin(TenantModelAdmin):
    list_display = ["name", "color_badge"]
    search_fields = ["name"]

    # The pages' badge colours (Bootstrap 5.3), for the admin, which does not load Bootstrap.
    SWATCHES = {
        "primary": "#0d6efd",
        "info": "#0dcaf0",
        "success": "#198754",
        "warning": "#ffc107",
        "danger": "#dc3545",
        "secondary": "#6c757d",
        "dark": "#212529",
    }

    @admin.display(description=_("colour"), ordering="color")
    def color_badge(self, obj):
        return format_html(
            '<svg class="crm-swatch" width=".9em" height=".9em" viewBox="0 0 9 9"'
            ' aria-hidden="true">'
            '<rect width="9" height="9" rx="2" fill="{}"/></svg> {}',
            self.SWATCHES.get(obj.color, "#6c757d"),
            obj.get_color_display(),
        )


@admin.register(TaggingRule)
class TaggingRuleAdmin(TenantModelAdmin):
    list_display = ["tag", "keywords", "is_active"]
    list_filter = ["is_active", "tag"]
    list_select_related = ["tag", "tenant"]


class MappingProblemFilter(admin.SimpleListFilter):
    title = _("field mapping problems")
    parameter_name = "mapping_problems"

    def lookups(self, request, model_admin):
        return [("yes", _("Yes")), ("no", _("No"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.exclude(mapping_issues=[])
        if self.value() == "no":
            return queryset.filter(mapping_issues=[])
        return queryset


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
    list_filter = ["status", "source", "channel", MappingProblemFilter]
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
        "error_shown",
        "mapping_problems",
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
        text = obj.error_text
        if obj.mapping_issues and not text:
            text = _("Field mapping problems: %(n)d") % {"n": len(obj.mapping_issues)}
        return (text[:80] + "…") if len(text) > 80 else text

    @admin.display(description=_("error"))
    def error_shown(self, obj):
        return obj.error_text or "—"

    @admin.display(description=_("field mapping problems"))
    def mapping_problems(self, obj):
        if not obj.mapping_issues:
            return "—"
        return format_html(
            '<ul data-testid="mapping-issues">{}</ul>',
            format_html_join("", "<li>{}</li>", ((intake_text(i),) for i in obj.mapping_issues)),
        )

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
        # Read the selection once, before re-processing changes the events' status: the
        # queryset may be filtered by that status, and counting it again would miss them.
        selected = list(queryset.order_by().values_list("pk", "status"))
        failed = list(
            InboundEvent.objects.filter(
                pk__in=[pk for pk, status in selected if status == EventStatus.FAILED]
            )
        )
        queued = sum(inbound_event_reprocess(event=e) for e in failed)
        unreadable = len(failed) - queued  # refused on receipt, the body still unreadable
        skipped = len(selected) - len(failed)
        if queued:
            messages.success(
                request,
                ngettext(
                    "%(n)d failed event queued again.", "%(n)d failed events queued again.", queued
                )
                % {"n": queued},
            )
        if skipped:
            level = messages.info if queued else messages.warning
            level(
                request,
                ngettext(
                    "%(n)d selected event was not failed and was left as it is: only failed "
                    "events are re-processed.",
                    "%(n)d selected events were not failed and were left as they are: only "
                    "failed events are re-processed.",
                    skipped,
                )
                % {"n": skipped},
            )
        if unreadable:
            messages.warning(
                request,
                ngettext(
                    "%(n)d selected event was refused on receipt and its body still cannot "
                    "be read: it stays failed (see its error); the sender must send it again.",
                    "%(n)d selected events were refused on receipt and their bodies still "
                    "cannot be read: they stay failed (see their errors); the sender must send "
                    "them again.",
                    unreadable,
                )
                % {"n": unreadable},
            )


@admin.register(ImportBatch)
class ImportBatchAdmin(ReadOnlyTenantModelAdmin):
    list_display = ["created_at", "filename", "channel", "status", "uploaded_by"]
    list_select_related = ["channel", "uploaded_by", "tenant"]
    exclude = ["rows"]
