"""Notifications in the admin (F44): the tenant's outlets with their circuits, the
deliveries with their attempts, and the notifications sent."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from crm.admin_base import (
    ReadOnlyTenantModelAdmin,
    TenantModelAdmin,
    acting_member,
    has_admin_role,
)
from crm.models import Delivery, DeliveryAttempt, Notification, Outlet, OutletKind
from crm.notify_adapters import DeliveryError, RefusedDestination, resolve_destination
from crm.outlets import outlet_close_circuit, outlet_send_test
from crm.tenancy import current_tenant


class SecretInput(forms.PasswordInput):
    """Never sends the stored secret back to the browser."""

    def __init__(self, attrs=None):
        attrs = {"autocomplete": "new-password", **(attrs or {})}
        super().__init__(attrs=attrs, render_value=False)


class KeepSecretField(forms.CharField):
    """Blank means "keep the stored value" (the widget never shows it)."""

    widget = SecretInput

    def has_changed(self, initial, data):
        return bool(data)


class OutletForm(forms.ModelForm):
    url = forms.URLField(
        label=_("URL"),
        required=False,
        max_length=500,
        assume_scheme="https",
        help_text=Outlet._meta.get_field("url").help_text,
    )
    secret = KeepSecretField(label=_("secret"), required=False, max_length=200)
    token = KeepSecretField(label=_("token"), required=False, max_length=300)

    class Meta:
        model = Outlet
        # The tenant is for the platform superuser only (TenantModelAdmin excludes it).
        fields = [
            "tenant",
            "kind",
            "name",
            "url",
            "secret",
            "token",
            "is_active",
            "cooldown_seconds",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("secret", "token"):
            field = Outlet._meta.get_field(name)
            self.fields[name].help_text = field.help_text
            if self.instance.pk and getattr(self.instance, name):
                self.fields[name].widget.attrs["placeholder"] = "••••••••"

    def clean(self):
        cleaned = super().clean()
        for name in ("secret", "token"):
            if not cleaned.get(name) and self.instance.pk:
                cleaned[name] = getattr(self.instance, name)
        kind = cleaned.get("kind")
        if kind and kind != OutletKind.EMAIL and not cleaned.get("url"):
            self.add_error("url", _("Robots and the SMS gateway need a URL."))
        if cleaned.get("url"):
            try:
                resolve_destination(cleaned["url"])
            except RefusedDestination:
                self.add_error("url", _("This address is on a private network; it cannot be used."))
            except DeliveryError:
                pass  # e.g. not resolvable from here now: the deliveries will say so
        # The tenant is not on a tenant admin's form, so Django cannot check this itself.
        tenant = cleaned.get("tenant") or current_tenant()
        if (
            kind
            and tenant is not None
            and Outlet.unscoped.filter(tenant=tenant, kind=kind)
            .exclude(pk=self.instance.pk)
            .exists()
        ):
            self.add_error("kind", _("This tenant already has a channel of this kind."))
        return cleaned


def _delivery_error(obj) -> str:
    if not obj.last_error:
        return ""
    return obj.last_error if len(obj.last_error) <= 80 else obj.last_error[:79] + "…"


@admin.register(Outlet)
class OutletAdmin(TenantModelAdmin):
    form = OutletForm
    list_display = [
        "name",
        "kind",
        "is_active",
        "state",
        "consecutive_failures",
        "last_status",
        "short_error",
        "last_success_at",
    ]
    list_filter = ["kind", "state", "is_active"]
    readonly_fields = [
        "state",
        "consecutive_failures",
        "opened_at",
        "last_status",
        "last_error",
        "last_success_at",
    ]
    actions = ["send_test_message", "close_circuit"]

    @admin.display(description=_("last error"))
    def short_error(self, obj):
        return _delivery_error(obj)

    def save_model(self, request, obj, form, change):
        # The audit trail records that a secret changed, never its value.
        for name in ("secret", "token"):
            if name in form.cleaned_data:
                form.cleaned_data[name] = "••••" if form.cleaned_data[name] else ""
                form.initial[name] = "••••" if form.initial.get(name) else ""
        super().save_model(request, obj, form, change)

    @admin.action(description=_("Send a test message"))
    def send_test_message(self, request, queryset):
        membership = getattr(request, "membership", None)
        for channel in queryset:
            to = ""
            if channel.kind == OutletKind.EMAIL:
                to = request.user.email
            elif channel.kind == OutletKind.SMS:
                to = membership.phone if membership else ""
            if channel.kind in (OutletKind.EMAIL, OutletKind.SMS) and not to:
                self.message_user(
                    request,
                    _("%(channel)s: set your own e-mail address or mobile number first.")
                    % {"channel": channel},
                    messages.WARNING,
                )
                continue
            mentions = [membership.phone] if membership and membership.phone else []
            ok, error = outlet_send_test(
                tenant=channel.tenant,
                acting_member=acting_member(request, channel.tenant),
                outlet=channel,
                to=to,
                mentions=mentions,
            )
            if ok:
                self.message_user(
                    request, _("%(channel)s: test message sent.") % {"channel": channel}
                )
            else:
                self.message_user(
                    request,
                    _("%(channel)s: the test failed: %(error)s")
                    % {"channel": channel, "error": error},
                    messages.ERROR,
                )

    @admin.action(description=_("Close the circuit (resume delivering)"))
    def close_circuit(self, request, queryset):
        for channel in queryset:
            released = outlet_close_circuit(
                tenant=channel.tenant,
                acting_member=acting_member(request, channel.tenant),
                outlet=channel,
            )
            self.message_user(
                request,
                ngettext(
                    "%(channel)s resumed; %(n)d held delivery queued.",
                    "%(channel)s resumed; %(n)d held deliveries queued.",
                    released,
                )
                % {"channel": channel, "n": released},
            )


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    fields = ["at", "ok", "http_status", "error", "duration_ms"]
    readonly_fields = fields
    can_delete = False

    def has_view_permission(self, request, obj=None):
        return has_admin_role(request, DeliveryAdmin.admin_roles)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyTenantModelAdmin):
    list_display = [
        "created_at",
        "event",
        "channel",
        "to",
        "status",
        "attempts",
        "http_status",
        "short_error",
        "next_attempt_at",
        "sent_at",
    ]
    list_filter = ["status", "channel"]
    list_select_related = ["notification", "channel", "tenant"]
    search_fields = ["to", "last_error", "notification__event"]
    show_full_result_count = False
    inlines = [DeliveryAttemptInline]

    @admin.display(description=_("event"))
    def event(self, obj):
        return obj.notification.title

    @admin.display(description=_("last error"))
    def short_error(self, obj):
        return _delivery_error(obj)


class NotificationEventFilter(admin.SimpleListFilter):
    """The events by their labels (crm.notify's registry)."""

    title = _("event")
    parameter_name = "event"

    def lookups(self, request, model_admin):
        from crm.notify import event_types

        return sorted(((e.key, str(e.label)) for e in event_types()), key=lambda i: i[1])

    def queryset(self, request, queryset):
        return queryset.filter(event=self.value()) if self.value() else queryset


@admin.register(Notification)
class NotificationAdmin(ReadOnlyTenantModelAdmin):
    list_display = ["created_at", "recipient", "event_label", "title", "read_at"]
    list_filter = [NotificationEventFilter]
    list_select_related = ["recipient__user", "tenant"]
    search_fields = ["event", "recipient__user__username"]
    show_full_result_count = False
    date_hierarchy = "created_at"
    fields = ["created_at", "recipient", "event_label", "title", "body", "link", "read_at"]
    readonly_fields = fields

    @admin.display(description=_("event"), ordering="event")
    def event_label(self, obj):
        event_type = obj.event_type
        return event_type.label if event_type is not None else obj.event

    @admin.display(description=_("title"))
    def title(self, obj):
        return obj.title

    @admin.display(description=_("details"))
    def body(self, obj):
        return obj.body or "—"
