"""Tenant-aware admin (F45): querysets, foreign-key choices and saves stay in the tenant."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import models
from django.db.models import Value
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.text import get_text_list
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from crm.audit import (
    audit,
    changes_for_people,
    form_changes,
    object_type_label,
    registered_actions,
)
from crm.models import (
    AuditEvent,
    CircuitState,
    Delivery,
    DeliveryAttempt,
    Heartbeat,
    Membership,
    Notification,
    Outlet,
    OutletKind,
    Role,
    Tenant,
)
from crm.notify_adapters import DeliveryError, RefusedDestination, resolve_destination
from crm.tenancy import current_tenant


def _is_tenant_admin(request) -> bool:
    membership = getattr(request, "membership", None)
    return membership is not None and membership.role == Role.ADMIN


def has_admin_role(request, roles) -> bool:
    """The platform superuser, or a member whose role in the current tenant is in `roles`."""
    if request.user.is_superuser:
        return True
    membership = getattr(request, "membership", None)
    return membership is not None and membership.role in roles


def _label(model, form_field, name):
    try:
        return model._meta.get_field(name).verbose_name
    except FieldDoesNotExist:
        return form_field.label or name


class TenantUniqueForm(forms.ModelForm):
    """Mixed into a TenantModelAdmin's form (get_form): the tenant-scoped unique constraints
    as form errors.

    The tenant is not a tenant admin's form field, and derived fields (a customer's
    normalised name) are not form fields either, so Django skips every constraint that
    names them and the save would end in an IntegrityError (a 500). Here each
    UniqueConstraint on `tenant` whose other fields are on the form (or derived from
    one, `TenantModelAdmin.derived_fields`) is checked against the tenant's rows, and a
    clash is an error on that field (or the form's, for several).
    """

    admin_tenant = None  # the request's tenant; None for the platform superuser
    derived_fields: dict[str, str] = {}  # a derived field -> the form field it comes from
    prepare_instance = None  # fills the derived fields from the form's values

    def _post_clean(self):
        super()._post_clean()
        if self.prepare_instance is not None:
            self.prepare_instance(self.instance)
        tenant_id = self.admin_tenant.pk if self.admin_tenant else self.instance.tenant_id
        if tenant_id is None:
            return
        for constraint in self._meta.model._meta.constraints:
            if isinstance(constraint, models.UniqueConstraint):
                self._check_tenant_unique(constraint, tenant_id)

    def _check_tenant_unique(self, constraint, tenant_id):
        model = self._meta.model
        fields = list(constraint.fields)
        if "tenant" not in fields or constraint.expressions:
            return
        others = [name for name in fields if name != "tenant"]
        shown = [self.derived_fields.get(name, name) for name in others]
        if any(name not in self.fields or self.has_error(name) for name in shown):
            return  # not the user's to change here, or wrong already
        if "tenant" in self.fields and not set(others) & set(self.derived_fields):
            return  # all on the form: Django checks it itself
        lookup = {"tenant_id": tenant_id}
        for name in others:
            field = model._meta.get_field(name)
            value = getattr(self.instance, field.attname)
            if value is None:
                return  # NULLs never clash
            lookup[field.attname] = value
        if constraint.condition is not None:
            against = self.instance._get_field_expression_map(meta=model._meta)
            against["tenant"] = Value(tenant_id)
            if not constraint.condition.check(against):
                return
        clashes = model._base_manager.filter(**lookup)
        if constraint.condition is not None:
            clashes = clashes.filter(constraint.condition)
        if self.instance.pk is not None:
            clashes = clashes.exclude(pk=self.instance.pk)
        if not clashes.exists():
            return
        labels = [str(_label(model, self.fields[name], name)) for name in shown]
        if labels:
            message = _("This tenant already has a %(model)s with this %(fields)s.") % {
                "model": model._meta.verbose_name,
                "fields": get_text_list(labels, _("and")),
            }
        else:
            message = _("This tenant already has a %(model)s.") % {
                "model": model._meta.verbose_name
            }
        self.add_error(shown[0] if len(shown) == 1 else None, message)


class TenantModelAdmin(admin.ModelAdmin):
    """Base for the admin of any model with a `tenant` field.

    A tenant admin sees and edits only the current tenant's rows, picks related objects
    only from it, and never chooses the tenant: it is set on save. The platform superuser
    (who runs the admin in all-tenants mode) sees every tenant and a tenant column.
    Every add, change and delete is audited. A foreign or missing id is a 404 (the site's
    ObjectAccessRules).
    """

    class Media:
        # Classes for what would otherwise be style attributes (the CSP refuses those).
        css = {"all": ["crm/admin.css"]}

    def get_queryset(self, request):
        qs = self.model._base_manager.select_related("tenant")
        if not request.user.is_superuser:
            qs = qs.filter(tenant=request.tenant)
        ordering = self.get_ordering(request)
        return qs.order_by(*ordering) if ordering else qs

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # The platform superuser reads a tenant's object in that tenant's time zone, as the
        # tenant's own members do (their requests run in it already).
        tenant = self._object_tenant(request, object_id) if request.user.is_superuser else None
        if tenant is None:
            return super().changeform_view(request, object_id, form_url, extra_context)
        with timezone.override(tenant.tzinfo):
            response = super().changeform_view(request, object_id, form_url, extra_context)
            if hasattr(response, "render"):
                response.render()
            return response

    def _object_tenant(self, request, object_id):
        if object_id is None:
            return None
        try:
            obj = self.get_queryset(request).filter(pk=unquote(object_id)).first()
        except (ValueError, ValidationError):
            return None
        return obj.tenant if obj is not None else None

    def get_list_display(self, request):
        columns = list(super().get_list_display(request))
        if request.user.is_superuser and "tenant" not in columns:
            columns.append("tenant")
        return columns

    def get_list_filter(self, request):
        filters = list(super().get_list_filter(request))
        if request.user.is_superuser and "tenant" not in filters:
            filters.append("tenant")
        return filters

    def get_exclude(self, request, obj=None):
        exclude = list(super().get_exclude(request, obj) or [])
        return [*exclude, "tenant"] if not request.user.is_superuser else exclude

    # A derived field in a tenant-scoped unique constraint -> the form field it comes from
    # (a customer's normalised name_key -> name), with prepare_instance filling it in.
    derived_fields: dict[str, str] = {}

    def prepare_instance(self, obj):
        """Fill in the fields derived from the form's values, before validation and save."""

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        attrs = {
            "admin_tenant": None if request.user.is_superuser else request.tenant,
            "derived_fields": self.derived_fields,
            "prepare_instance": staticmethod(self.prepare_instance),
        }
        return type(form.__name__, (TenantUniqueForm, form), attrs)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        kwargs["queryset"] = self._tenant_choices(db_field, request, kwargs.get("queryset"))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        kwargs["queryset"] = self._tenant_choices(db_field, request, kwargs.get("queryset"))
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def _tenant_choices(self, db_field, request, queryset):
        related = db_field.remote_field.model
        qs = queryset if queryset is not None else related._base_manager.all()
        if request.user.is_superuser or not _has_tenant_field(related):
            return qs
        return qs.filter(tenant=request.tenant)

    def save_model(self, request, obj, form, change):
        if not request.user.is_superuser or getattr(obj, "tenant_id", None) is None:
            obj.tenant = request.tenant
        self.prepare_instance(obj)
        super().save_model(request, obj, form, change)
        audit(
            tenant=obj.tenant,
            actor=request.user,
            action="admin.change" if change else "admin.add",
            obj=obj,
            changes=form_changes(form) if change else {},
        )

    def delete_model(self, request, obj):
        audit(tenant=obj.tenant, actor=request.user, action="admin.delete", obj=obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            audit(tenant=obj.tenant, actor=request.user, action="admin.delete", obj=obj)
        super().delete_queryset(request, queryset)

    # Tenant admins administer their tenant by role, not by Django's global permissions.
    # A model the sales managers tune (assignment weights, rep profiles, SLA thresholds)
    # adds their role here; the admin then shows them that model and nothing else.
    admin_roles = frozenset({Role.ADMIN})

    def has_module_permission(self, request):
        return has_admin_role(request, self.admin_roles)

    def has_view_permission(self, request, obj=None):
        return has_admin_role(request, self.admin_roles)

    def has_add_permission(self, request):
        return has_admin_role(request, self.admin_roles)

    def has_change_permission(self, request, obj=None):
        return has_admin_role(request, self.admin_roles)

    def has_delete_permission(self, request, obj=None):
        return has_admin_role(request, self.admin_roles)


class ReadOnlyTenantModelAdmin(TenantModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def _has_tenant_field(model) -> bool:
    return any(f.name == "tenant" for f in model._meta.get_fields())


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    """Platform superuser only (Django permissions; tenant admins hold none)."""

    list_display = ["name", "slug", "timezone", "is_active", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Membership)
class MembershipAdmin(TenantModelAdmin):
    list_display = ["user", "full_name", "role", "is_active", "created_at"]
    list_filter = ["role", "is_active"]
    search_fields = ["user__username", "user__first_name", "user__last_name"]
    list_select_related = ["user", "tenant"]
    ordering = ["user__username"]

    @admin.display(description=_("name"))
    def full_name(self, obj):
        return obj.user.get_full_name()

    def get_readonly_fields(self, request, obj=None):
        # A tenant admin manages seats (role, active); the platform adds users to tenants.
        if request.user.is_superuser:
            return []
        return ["user"] if obj else []

    def has_add_permission(self, request):
        return request.user.is_superuser


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


@admin.register(Heartbeat)
class HeartbeatAdmin(admin.ModelAdmin):
    list_display = ["name", "last_seen"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


# --- Notifications (F44) ------------------------------------------------------------------


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
        from crm.notify import send_test

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
            ok, error = send_test(channel, to=to, mentions=mentions)
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
            audit(
                tenant=channel.tenant,
                actor=request.user,
                action="notify.test",
                obj=channel,
                changes={"ok": [None, ok]},
            )

    @admin.action(description=_("Close the circuit (resume delivering)"))
    def close_circuit(self, request, queryset):
        from crm.notify import close_circuit

        for channel in queryset:
            released = close_circuit(channel)
            audit(
                tenant=channel.tenant,
                actor=request.user,
                action="notify.close_circuit",
                obj=channel,
                changes={"state": [channel.state, CircuitState.CLOSED]},
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
        return request.user.is_superuser or _is_tenant_admin(request)

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
