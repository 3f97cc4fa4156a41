"""Kernel data: the tenant directory (Tenant), the seats (Membership), what every tenant row shares.

Tenant is the directory, read before a tenant is known, and not row-level secured.
Membership is secured like every tenant row (crm/rls.py): as the app role, a tenant's
request sees only that tenant's seats. The one read across tenants, a user's own seats
(the middleware's tenant switcher), goes through `memberships_of(user)`, the SECURITY
DEFINER function `crm_memberships_of`. Code reading memberships for a page still narrows
by tenant (`Membership.objects.in_tenant(tenant)`). Everything a tenant owns derives from
`TenantOwned` and gets both fences.
"""

from __future__ import annotations

import uuid
import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import connection, models
from django.utils import timezone as dj_timezone
from django.utils.translation import gettext_lazy as _

from crm.audit_labels import action_label, object_type_label
from crm.fields import TenantForeignKey
from crm.formatting import format_datetime
from crm.notify_events import get_event_type, render_template
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

    public_id = models.UUIDField(default=uuid.uuid4, editable=False)
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
    phone = models.CharField(
        _("mobile"),
        max_length=32,
        blank=True,
        help_text=_("Mobile number for SMS notifications and robot @-mentions."),
    )
    created_at = models.DateTimeField(_("created at"), default=dj_timezone.now, editable=False)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "user"], name="membership_one_per_tenant"),
            models.UniqueConstraint(fields=["tenant", "public_id"], name="membership_public_id"),
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


def memberships_of(user) -> list[Membership]:
    """Every seat of `user` in any tenant, with its tenant (and the user) attached.

    The narrow path around row-level security on crm_membership: the database function
    answers one user's rows only, so neither a tenant's request nor an injected query can
    list another tenant's members through it. Called by the middleware before any tenant
    is set, and by the tenant switcher.
    """
    member_cols = [f.column for f in Membership._meta.concrete_fields]
    tenant_cols = [f.column for f in Tenant._meta.concrete_fields]
    columns = ", ".join([*(f"m.{c}" for c in member_cols), *(f"t.{c}" for c in tenant_cols)])
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {columns} FROM crm_memberships_of(%s) m"  # noqa: S608 — model column names
            " JOIN crm_tenant t ON t.id = m.tenant_id ORDER BY t.name, t.id",
            [user.pk],
        )
        rows = cursor.fetchall()
    seats = []
    member_names = [f.attname for f in Membership._meta.concrete_fields]
    tenant_names = [f.attname for f in Tenant._meta.concrete_fields]
    for row in rows:
        seat = Membership.from_db("default", member_names, row[: len(member_cols)])
        seat._state.fields_cache["tenant"] = Tenant.from_db(
            "default", tenant_names, row[len(member_cols) :]
        )
        seat._state.fields_cache["user"] = user
        seats.append(seat)
    return seats


def active_memberships_of(user) -> list[Membership]:
    """`memberships_of(user)` narrowed as `Membership.objects.active()` narrows."""
    if not user.is_active:
        return []
    return [m for m in memberships_of(user) if m.is_active and m.tenant.is_active]


class TenantOwned(models.Model):
    """Base of every tenant-owned table: a non-null tenant, a public UUID, both fences.

    `objects` is scoped to the current tenant (and raises with none); `unscoped` is for the
    few platform paths that must not be (RLS still applies to them on PostgreSQL).
    Subclasses start their indexes and unique constraints with `tenant`, and reference
    other tenant models with `crm.fields.TenantForeignKey` (the database keys: crm/keys.py).
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
            # A member's changes over a period: the self-test's daily active reps.
            models.Index(fields=["tenant", "actor", "at"], name="audit_actor_at"),
        ]

    def __str__(self) -> str:
        what = self.object_repr or self.object_id
        return f"{self.action_label} · {self.object_type_label} · {what}"

    @property
    def action_label(self) -> str:
        return action_label(self.action)

    @property
    def object_type_label(self) -> str:
        return object_type_label(self.object_type)


class Heartbeat(models.Model):
    """Last run of a periodic platform job: proves beat and a worker are alive."""

    name = models.CharField(max_length=64, unique=True)
    last_seen = models.DateTimeField()

    class Meta:
        verbose_name = _("heartbeat")
        verbose_name_plural = _("heartbeats")

    def __str__(self) -> str:
        return f"{self.name} @ {format_datetime(self.last_seen)}"


# --- Notifications (F44) --------------------------------------------------------------
# The service is crm.notify.notify(); adapters in crm.notify_adapters; docs/notifications.md.


class OutletKind(models.TextChoices):
    WECOM = "wecom", _("WeCom group robot")
    DINGTALK = "dingtalk", _("DingTalk robot")
    EMAIL = "email", _("E-mail")
    SMS = "sms", _("SMS gateway")


class CircuitState(models.TextChoices):
    CLOSED = "closed", _("Closed (delivering)")
    OPEN = "open", _("Open (paused)")
    HALF_OPEN = "half_open", _("Half-open (probing)")


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    SENT = "sent", _("Sent")
    HELD = "held", _("Held (channel paused)")
    FAILED = "failed", _("Failed, will retry")
    DEAD = "dead", _("Dead (gave up)")


class Notification(TenantOwned):
    """One message to one member: the bell's record. Stored as an event code and its
    parameters, rendered in the reader's language when read (`title`, `body`)."""

    recipient = TenantForeignKey(
        Membership,
        on_delete=models.CASCADE,
        related_name="notifications",
        verbose_name=_("recipient"),
    )
    event = models.CharField(_("event"), max_length=40)
    params = models.JSONField(_("parameters"), default=dict, blank=True)
    link = models.CharField(_("link"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("created at"), default=dj_timezone.now)
    read_at = models.DateTimeField(_("read at"), null=True, blank=True)

    class Meta(TenantOwned.Meta):
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-created_at", "-id"]
        indexes = [
            # The bell's unread count and the member's newest-first list.
            models.Index(
                fields=["tenant", "recipient", "read_at", "-created_at"],
                name="notification_inbox",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def event_type(self):
        return get_event_type(self.event)

    def _render(self, attr: str) -> str:
        event_type = self.event_type
        if event_type is None:
            return self.event if attr == "title" else ""
        return render_template(getattr(event_type, attr), self.params)

    @property
    def title(self) -> str:
        """The headline in the active language."""
        return self._render("title")

    @property
    def body(self) -> str:
        """The details in the active language ("" when the event has none)."""
        return self._render("body")

    @property
    def is_unread(self) -> bool:
        return self.read_at is None


class Outlet(TenantOwned):
    """Where a tenant's notifications go out besides the bell: a WeCom or DingTalk robot, an
    SMS gateway or e-mail, at most one per kind, with its circuit breaker. (The lead sources
    are `leads.Channel`; how a rep reached a customer is a `customers.ContactMethod`.)"""

    kind = models.CharField(_("kind"), max_length=16, choices=OutletKind.choices)
    name = models.CharField(_("name"), max_length=80)
    url = models.URLField(
        _("URL"),
        max_length=500,
        blank=True,
        help_text=_("The robot's webhook address or the SMS gateway's; not used for e-mail."),
    )
    secret = models.CharField(
        _("secret"),
        max_length=200,
        blank=True,
        help_text=_("DingTalk robot: the signing secret (SEC…). Leave blank to keep it."),
    )
    token = models.CharField(
        _("token"),
        max_length=300,
        blank=True,
        help_text=_("SMS gateway: sent as a bearer token. Leave blank to keep it."),
    )
    is_active = models.BooleanField(_("active"), default=True)
    state = models.CharField(
        _("circuit"), max_length=16, choices=CircuitState.choices, default=CircuitState.CLOSED
    )
    consecutive_failures = models.PositiveIntegerField(_("consecutive failures"), default=0)
    opened_at = models.DateTimeField(_("paused at"), null=True, blank=True)
    cooldown_seconds = models.PositiveIntegerField(
        _("cool-down (seconds)"),
        default=300,
        help_text=_("How long a paused channel waits before one probe delivery is tried."),
    )
    last_error = models.CharField(_("last error"), max_length=500, blank=True)
    last_status = models.PositiveIntegerField(_("last HTTP status"), null=True, blank=True)
    last_success_at = models.DateTimeField(_("last success"), null=True, blank=True)

    class Meta(TenantOwned.Meta):
        db_table = "crm_notificationchannel"
        verbose_name = _("notification channel")
        verbose_name_plural = _("notification channels")
        ordering = ["kind"]
        constraints = [
            *TenantOwned.Meta.constraints,
            models.UniqueConstraint(fields=["tenant", "kind"], name="notificationchannel_kind"),
        ]

    def __str__(self) -> str:
        return self.name or self.get_kind_display()

    @property
    def is_robot(self) -> bool:
        return self.kind in (OutletKind.WECOM, OutletKind.DINGTALK)


class Delivery(TenantOwned):
    """One notification sent (or to be sent) over one outbound channel."""

    notification = TenantForeignKey(
        Notification,
        on_delete=models.CASCADE,
        related_name="deliveries",
        verbose_name=_("notification"),
    )
    channel = TenantForeignKey(
        Outlet,
        on_delete=models.CASCADE,
        related_name="deliveries",
        verbose_name=_("channel"),
    )
    to = models.CharField(
        _("to"), max_length=254, blank=True, help_text=_("Phone or e-mail; empty for robots.")
    )
    mentions = models.JSONField(
        _("mentions"),
        default=list,
        blank=True,
        help_text=_("Robots: the recipients' mobile numbers to @-mention."),
    )
    status = models.CharField(
        _("status"), max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    last_error = models.CharField(_("last error"), max_length=500, blank=True)
    http_status = models.PositiveIntegerField(_("HTTP status"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=dj_timezone.now)

    class Meta(TenantOwned.Meta):
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "status", "-created_at"], name="delivery_status"),
            # Held deliveries released when a channel's circuit closes.
            models.Index(fields=["tenant", "channel", "status"], name="delivery_channel"),
            # The due sweep reads all tenants' retries (platform job).
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(status__in=["pending", "failed"]),
                name="delivery_due",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel} → {self.to or '@'} · {self.get_status_display()}"


class DeliveryAttempt(TenantOwned):
    """Every try of a delivery, successful or not."""

    delivery = TenantForeignKey(
        Delivery, on_delete=models.CASCADE, related_name="attempt_log", verbose_name=_("delivery")
    )
    at = models.DateTimeField(_("at"), default=dj_timezone.now)
    ok = models.BooleanField(_("succeeded"), default=False)
    http_status = models.PositiveIntegerField(_("HTTP status"), null=True, blank=True)
    error = models.CharField(_("error"), max_length=500, blank=True)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), default=0)

    class Meta(TenantOwned.Meta):
        verbose_name = _("delivery attempt")
        verbose_name_plural = _("delivery attempts")
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["tenant", "delivery", "at"], name="deliveryattempt_at")]

    def __str__(self) -> str:
        return f"{format_datetime(self.at)} {_('succeeded') if self.ok else self.error[:60]}"


class NotificationPreference(TenantOwned):
    """Which channels a member wants an event on (absent: the event's default)."""

    membership = TenantForeignKey(
        Membership,
        on_delete=models.CASCADE,
        related_name="notification_preferences",
        verbose_name=_("member"),
    )
    event = models.CharField(_("event"), max_length=40)
    channels = models.JSONField(
        _("channels"), default=list, blank=True, help_text=_('Kinds, e.g. ["in_app", "sms"].')
    )

    class Meta(TenantOwned.Meta):
        verbose_name = _("notification preference")
        verbose_name_plural = _("notification preferences")
        constraints = [
            *TenantOwned.Meta.constraints,
            models.UniqueConstraint(
                fields=["tenant", "membership", "event"], name="notificationpreference_event"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.membership_id} {self.event}: {', '.join(self.channels)}"


# --- Background exports (crm.exports) -------------------------------------------------


class ExportStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Ready")
    FAILED = "failed", _("Failed")


def export_upload_to(instance: Export, filename: str) -> str:
    """exports/<tenant id>/<unguessable>.csv under MEDIA_ROOT (served only by the download
    view, which checks who asks)."""
    import secrets

    return f"exports/{instance.tenant_id}/{secrets.token_urlsafe(24)}.csv"


class Export(TenantOwned):
    """A list exported by a worker rather than streamed to the browser (a list above
    crm.exports.BACKGROUND_THRESHOLD rows): which list (`kind`, a registered source) with
    which filters and sort (`query`), its progress, and the file once written."""

    kind = models.CharField(_("list"), max_length=40)
    query = models.TextField(_("filters and sort"), blank=True)
    language = models.CharField(_("language"), max_length=16, blank=True)
    requested_by = TenantForeignKey(
        Membership,
        on_delete=models.CASCADE,
        related_name="exports",
        verbose_name=_("requested by"),
    )
    status = models.CharField(
        _("status"), max_length=10, choices=ExportStatus.choices, default=ExportStatus.QUEUED
    )
    rows_written = models.PositiveIntegerField(_("rows written"), default=0)
    rows_expected = models.PositiveIntegerField(_("rows expected"), null=True, blank=True)
    filename = models.CharField(_("file name"), max_length=120, blank=True)
    file = models.FileField(_("file"), upload_to=export_upload_to, max_length=200, blank=True)
    error = models.CharField(_("error"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("requested at"), default=dj_timezone.now)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta(TenantOwned.Meta):
        verbose_name = _("export")
        verbose_name_plural = _("exports")
        ordering = ["-created_at", "-id"]
        indexes = [
            # A member's own exports, newest first (the managers' list: tenant, -created_at).
            models.Index(fields=["tenant", "requested_by", "-created_at"], name="export_mine"),
            models.Index(fields=["tenant", "-created_at"], name="export_tenant_created"),
        ]

    def __str__(self) -> str:
        return f"{self.filename or self.kind} · {self.get_status_display()}"

    @property
    def is_pending(self) -> bool:
        return self.status in (ExportStatus.QUEUED, ExportStatus.RUNNING)

    @property
    def percent(self) -> int | None:
        """How far the worker is (0–100), or None when the rows to expect are unknown."""
        if self.status == ExportStatus.DONE:
            return 100
        if not self.rows_expected:
            return None
        return min(99, self.rows_written * 100 // self.rows_expected)


# --- The nightly check of the metrics (crm.metric_checks) ------------------------------


class MetricPeriod(models.TextChoices):
    DAY = "day", _("The day")
    DAYS_30 = "30d", _("The 30 days to the day")


class MetricCheck(TenantOwned):
    """One figure of the nightly check (crm.metric_checks): a registered metric over a
    period that ends on `day` (the tenant's local day checked), its figure as the pages
    compute it (crm.metrics.values_of) and the same figure recounted from its drill-down
    rows (crm.metrics.recount). Every figure checked is kept for KEEP_DAYS days: the proof
    that they added up, and the evidence when one did not."""

    day = models.DateField(_("day checked"))
    metric = models.CharField(_("metric"), max_length=100)
    period = models.CharField(_("period"), max_length=8, choices=MetricPeriod.choices)
    start = models.DateField(_("first day"))
    figure = models.FloatField(_("figure"), null=True, blank=True)
    recount = models.FloatField(_("recount from the rows"), null=True, blank=True)
    ok = models.BooleanField(_("adds up"))
    error = models.CharField(_("error"), max_length=500, blank=True)
    checked_at = models.DateTimeField(_("checked at"), default=dj_timezone.now)

    class Meta(TenantOwned.Meta):
        verbose_name = _("metric check")
        verbose_name_plural = _("metric checks")
        ordering = ["-day", "metric", "period"]
        constraints = [
            *TenantOwned.Meta.constraints,
            # Also the index of a tenant's days (the status's latest day, the pruning).
            models.UniqueConstraint(
                fields=["tenant", "day", "metric", "period"], name="metriccheck_one_per_figure"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.metric} · {self.start} – {self.day}"


class LevelDay(TenantOwned):
    """One water level's value on one of the tenant's local days (F42, crm.levels): for one
    rep (`owner`) or the whole team (`owner` empty), with the band of its last 28 days it
    was judged against. Written by the nightly job, one row per level, day and owner."""

    key = models.CharField(_("level"), max_length=60)
    day = models.DateField(_("day"))
    owner = TenantForeignKey(
        Membership,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("rep"),
        help_text=_("Empty: the whole team."),
    )
    value = models.FloatField(_("value"), null=True, blank=True)
    sample = models.PositiveIntegerField(_("rows"), default=0)
    anomaly = models.BooleanField(_("anomaly"), default=False)
    median = models.FloatField(_("median of the last 28 days"), null=True, blank=True)
    mad = models.FloatField(_("median absolute deviation"), null=True, blank=True)
    computed_at = models.DateTimeField(_("computed at"), default=dj_timezone.now)
    notified_at = models.DateTimeField(_("owner told at"), null=True, blank=True)

    class Meta(TenantOwned.Meta):
        verbose_name = _("water level")
        verbose_name_plural = _("water levels")
        ordering = ["key", "-day"]
        constraints = [
            *TenantOwned.Meta.constraints,
            # The team's row (no owner) is one per level and day too.
            models.UniqueConstraint(
                fields=["tenant", "key", "day", "owner"],
                name="levelday_one_per_owner",
                nulls_distinct=False,
            ),
        ]
        indexes = [models.Index(fields=["tenant", "day"], name="levelday_day")]

    def __str__(self) -> str:
        return f"{self.key} {self.day}"


class WeeklyDiagnosis(TenantOwned):
    """A rep's weekly process diagnosis (F37): their process rates against the team's and
    the targets, the three to work on first with what to do, and a colleague's practice
    that worked. One per rep and ISO week, written from Friday 17:00 tenant time
    (crm.process); `data` keeps the figures and keys, worded when read."""

    membership = TenantForeignKey(
        Membership,
        on_delete=models.CASCADE,
        related_name="weekly_diagnoses",
        verbose_name=_("rep"),
    )
    week = models.DateField(_("week"), help_text=_("The Monday of the ISO week."))
    start = models.DateField(_("from"))
    end = models.DateField(_("to"))
    data = models.JSONField(_("figures"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created at"), default=dj_timezone.now)

    class Meta(TenantOwned.Meta):
        verbose_name = _("weekly diagnosis")
        verbose_name_plural = _("weekly diagnoses")
        ordering = ["-week", "membership_id"]
        constraints = [
            *TenantOwned.Meta.constraints,
            models.UniqueConstraint(
                fields=["tenant", "membership", "week"], name="weekly_diagnosis_once"
            ),
        ]
        indexes = [models.Index(fields=["tenant", "-week"], name="weekly_diagnosis_week")]

    def __str__(self) -> str:
        return f"{self.membership.display_name} · {self.week:%G-W%V}"


class OutboxEvent(TenantOwned):
    """Something worth reacting to happened (F47): written by `crm.events.emit()` in the
    transaction of the change. Unprocessed (`processed_at` NULL) it is the outbox the
    drain reads; processed it stays as the event log the windowed counts read, until the
    nightly retention deletes it (`EVENT_LOG_DAYS`, crm.log_retention)."""

    kind = models.CharField(_("kind"), max_length=40)
    object_type = models.CharField(_("object type"), max_length=60)
    object_id = models.BigIntegerField(_("object id"))
    key = models.CharField(_("key"), max_length=80)
    data = models.JSONField(_("data"), default=dict, blank=True)
    at = models.DateTimeField(_("at"), default=dj_timezone.now)
    depth = models.PositiveSmallIntegerField(_("chain depth"), default=0)
    # The automation rule whose action caused the change (no foreign key: the kernel does
    # not know the automation app's tables).
    rule_id = models.BigIntegerField(_("caused by rule"), null=True, blank=True)
    processed_at = models.DateTimeField(_("processed at"), null=True, blank=True)

    class Meta(TenantOwned.Meta):
        verbose_name = _("event")
        verbose_name_plural = _("events")
        ordering = ["at", "id"]
        indexes = [
            # A windowed count ("the same customer, ≥ 3 times in 30 days"): an index range.
            models.Index(fields=["tenant", "kind", "key", "at"], name="outboxevent_window"),
            # The dry run: one kind's events of the last 30 days.
            models.Index(fields=["tenant", "kind", "at"], name="outboxevent_kind_at"),
            # The outbox: only the unprocessed rows are in it.
            models.Index(
                fields=["tenant", "id"],
                condition=models.Q(processed_at__isnull=True),
                name="outboxevent_pending",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} · {self.object_type} {self.object_id}"
