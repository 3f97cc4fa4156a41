"""Kernel data: the tenant directory (Tenant, Membership) and what every tenant row shares.

Tenant and Membership are the directory, read before a tenant is known (at login, to list a
user's tenants), so they are not row-level secured; code reading memberships for a page
always narrows by tenant (`Membership.objects.in_tenant(tenant)`). Everything a tenant owns
derives from `TenantOwned` and gets both fences.
"""

from __future__ import annotations

import uuid
import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone as dj_timezone
from django.utils.translation import gettext_lazy as _

from crm.tenancy import TenantManager


def _validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(_("Unknown time zone: %(tz)s"), params={"tz": value})


class Tenant(models.Model):
    name = models.CharField(_("name"), max_length=120)
    slug = models.SlugField(
        _("slug"),
        max_length=50,
        unique=True,
        validators=[
            RegexValidator(r"^[a-z0-9][a-z0-9-]*$", _("Lower-case letters, digits and hyphens."))
        ],
        help_text=_("Short name used in URLs and commands, e.g. demo."),
    )
    timezone = models.CharField(
        _("time zone"), max_length=64, default="Asia/Shanghai", validators=[_validate_timezone]
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), default=dj_timezone.now, editable=False)

    class Meta:
        verbose_name = _("tenant")
        verbose_name_plural = _("tenants")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def tzinfo(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)


class Role(models.TextChoices):
    REP = "rep", _("Sales rep")
    MANAGER = "manager", _("Sales manager")
    MARKETING = "marketing", _("Marketing")
    SERVICE = "service", _("Service agent")
    ADMIN = "admin", _("Tenant admin")


class MembershipQuerySet(models.QuerySet):
    def in_tenant(self, tenant: Tenant) -> MembershipQuerySet:
        return self.filter(tenant=tenant)

    def active(self) -> MembershipQuerySet:
        return self.filter(is_active=True, tenant__is_active=True, user__is_active=True)

    def for_user(self, user) -> MembershipQuerySet:
        return self.filter(user=user).select_related("tenant")


class Membership(models.Model):
    """A user's seat in one tenant, with one role. A user may hold seats in several tenants."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    tenant = models.ForeignKey(
        Tenant, on_delete=models.CASCADE, related_name="memberships", verbose_name=_("tenant")
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="memberships",
        verbose_name=_("user"),
    )
    role = models.CharField(_("role"), max_length=16, choices=Role.choices, default=Role.REP)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), default=dj_timezone.now, editable=False)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "user"], name="membership_one_per_tenant"),
        ]
        indexes = [
            models.Index(fields=["tenant", "role"], name="membership_tenant_role"),
            # The team list sorted by joining date, newest or oldest first, page by page.
            models.Index(fields=["tenant", "created_at", "id"], name="membership_tenant_created"),
        ]

    def __str__(self) -> str:
        return f"{self.display_name} · {self.tenant} · {self.get_role_display()}"

    @property
    def display_name(self) -> str:
        return self.user.get_full_name() or self.user.get_username()

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    def has_role(self, *roles: str) -> bool:
        return self.role in roles


class TenantOwned(models.Model):
    """Base of every tenant-owned table: a non-null tenant, a public UUID, both fences.

    `objects` is scoped to the current tenant (and raises with none); `unscoped` is for the
    few platform paths that must not be (RLS still applies to them on PostgreSQL).
    Subclasses start their indexes and unique constraints with `tenant`.
    """

    tenant = models.ForeignKey(
        Tenant, on_delete=models.CASCADE, related_name="+", verbose_name=_("tenant")
    )
    public_id = models.UUIDField(_("public id"), default=uuid.uuid4, editable=False)

    objects = TenantManager()
    unscoped = models.Manager()  # noqa: DJ012 (a manager, not a field)

    class Meta:
        abstract = True
        base_manager_name = "unscoped"
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "public_id"], name="%(app_label)s_%(class)s_public_id"
            ),
        ]


class AuditEvent(TenantOwned):
    """Who changed what and when (F46). Written by crm.audit.audit(), never edited."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("actor"),
    )
    action = models.CharField(_("action"), max_length=64)
    object_type = models.CharField(_("object type"), max_length=100)
    object_id = models.CharField(_("object id"), max_length=64)
    object_repr = models.CharField(_("object"), max_length=200, blank=True)
    changes = models.JSONField(
        _("changes"),
        default=dict,
        blank=True,
        help_text=_("Changed fields: {field: [before, after]}."),
    )
    at = models.DateTimeField(_("at"), default=dj_timezone.now, db_index=False)

    class Meta(TenantOwned.Meta):
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        ordering = ["-at", "-id"]
        indexes = [
            # The object page's history and the admin's newest-first list.
            models.Index(
                fields=["tenant", "object_type", "object_id", "-at"], name="audit_object_at"
            ),
            models.Index(fields=["tenant", "-at"], name="audit_tenant_at"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.object_type} {self.object_repr or self.object_id}"


class Heartbeat(models.Model):
    """Last run of a periodic platform job: proves beat and a worker are alive."""

    name = models.CharField(max_length=64, unique=True)
    last_seen = models.DateTimeField()

    class Meta:
        verbose_name = _("heartbeat")
        verbose_name_plural = _("heartbeats")

    def __str__(self) -> str:
        return f"{self.name} @ {self.last_seen:%Y-%m-%d %H:%M:%S}"
