"""Service feedback (F27–F30): helpdesk tickets that flow back into sales.

A helpdesk channel's webhook lands in the same inbox as leads (the raw payload stored
first, processed by a task, re-processable); its events become `Ticket`s, one per
(channel, external id), updated on re-delivery. A ticket finds its customer by customer
code, phone, e-mail, then e-mail domain (`match_key` says which), or waits unmatched
until service or a manager links it; the link is remembered (`TicketLink`) so the next
ticket from that phone or e-mail matches by itself. Keyword lists (`FlagKeyword`) flag
upsell, referral and churn risk; tickets cluster by product model × fault code × region
into `QualityAlert`s. docs/service.md is the map.
"""

from __future__ import annotations

from datetime import time

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from crm.fields import TenantForeignKey
from crm.models import Membership, TenantOwned
from crm.tenancy import TenantManager, TenantQuerySet
from customers.models import Contact, Customer

# -- the tenant's lists and settings --------------------------------------------------------


class FlagKind(models.TextChoices):
    UPSELL = "upsell", _("Upsell")
    REFERRAL = "referral", _("Referral")
    CHURN = "churn", _("Churn risk")


class FlagKeyword(TenantOwned):
    """A word in a ticket's text that flags it (增购 → upsell, 推荐 → referral, 投诉 →
    churn risk). Tenant data, edited in the admin; defaults on first use."""

    kind = models.CharField(_("flag"), max_length=10, choices=FlagKind.choices)
    keyword = models.CharField(_("keyword"), max_length=40)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta(TenantOwned.Meta):
        verbose_name = _("flag keyword")
        verbose_name_plural = _("flag keywords")
        ordering = ["kind", "keyword"]
        constraints = [
            *TenantOwned.Meta.constraints,
            models.UniqueConstraint(fields=["tenant", "kind", "keyword"], name="flag_keyword_once"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.keyword}"


class ReviewHint(TenantOwned):
    """A rule on ticket text for the service review card (F28): when a recent ticket of the
    customer mentions every one of `words` ("V2.0", "兼容"), the card says `hint` ("带上
    兼容性白皮书")."""

    words = models.JSONField(_("words (all of them)"), default=list)
    hint = models.CharField(_("hint"), max_length=200)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta(TenantOwned.Meta):
        verbose_name = _("review hint")
        verbose_name_plural = _("review hints")
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{' + '.join(self.words or [])} → {self.hint}"


def default_work_starts() -> time:
    """09:00. A callable: Django's check for fixed defaults (fields.W161) compares a fixed
    time with the clock and warns whenever it runs within ten seconds of it."""
    return time(9, 0)


def default_work_ends() -> time:
    """18:00 (see default_work_starts)."""
    return time(18, 0)


class ServiceSettings(TenantOwned):
    """The tenant's service targets and how minutes are counted (one row per tenant,
    created on first use)."""

    first_response_minutes = models.PositiveIntegerField(
        _("first response target (minutes)"), default=15, validators=[MinValueValidator(1)]
    )
    resolution_hours = models.PositiveIntegerField(
        _("resolution target (hours)"), default=24, validators=[MinValueValidator(1)]
    )
    working_hours_only = models.BooleanField(
        _("count working hours only"),
        default=False,
        help_text=_(
            "Count response and resolution minutes in working hours on working days only "
            "(the Chinese public holidays and their make-up working weekends included)."
        ),
    )
    work_starts = models.TimeField(_("working day starts"), default=default_work_starts)
    work_ends = models.TimeField(_("working day ends"), default=default_work_ends)
    alert_threshold = models.PositiveSmallIntegerField(
        _("quality alert threshold"),
        default=5,
        validators=[MinValueValidator(2)],
        help_text=_("Tickets of one product model, fault code and region within the window."),
    )
    alert_window_hours = models.PositiveSmallIntegerField(
        _("quality alert window (hours)"), default=72, validators=[MinValueValidator(1)]
    )
    alert_quiet_days = models.PositiveSmallIntegerField(
        _("an alert closes after this many quiet days"),
        default=7,
        validators=[MinValueValidator(1)],
    )

    class Meta(TenantOwned.Meta):
        verbose_name = _("service settings")
        verbose_name_plural = _("service settings")
        constraints = [
            *TenantOwned.Meta.constraints,
            models.UniqueConstraint(fields=["tenant"], name="service_settings_one"),
        ]

    def __str__(self) -> str:
        return str(_("Service settings"))

    @classmethod
    def for_tenant(cls, tenant, *, create: bool = True) -> ServiceSettings:
        """The tenant's settings: its row, created with the defaults on first use (with
        `create` False, as a page reads them: the defaults, unsaved)."""
        found = cls.objects.filter(tenant=tenant).first()
        if found is None and not create:
            return cls(tenant=tenant)
        if found is None:
            cls.objects.bulk_create([cls(tenant=tenant)], ignore_conflicts=True)
            found = cls.objects.get(tenant=tenant)
        found.tenant = tenant
        return found

    def clean(self) -> None:
        if self.work_starts and self.work_ends and self.work_ends <= self.work_starts:
            raise ValidationError({"work_ends": _("The working day must end after it starts.")})


# -- tickets --------------------------------------------------------------------------------


class MatchKey(models.TextChoices):
    """How a ticket found its customer."""

    NONE = "", _("Not matched")
    CODE = "code", _("Customer code")
    PHONE = "phone", _("Phone")
    EMAIL = "email", _("E-mail")
    DOMAIN = "domain", _("E-mail domain")
    LINK = "link", _("Remembered link")
    MANUAL = "manual", _("Linked by hand")


class TicketStatus(models.TextChoices):
    OPEN = "open", pgettext_lazy("ticket status", "Open")
    RESOLVED = "resolved", _("Resolved")
    CLOSED = "closed", _("Closed")


class TicketQuerySet(TenantQuerySet):
    def unmatched(self):
        return self.filter(customer__isnull=True)


class Ticket(TenantOwned):
    # The helpdesk channel (a leads.Channel of type helpdesk) and its ticket id: unique,
    # so a re-delivery updates the ticket. Named by string: no import of the leads app.
    channel = TenantForeignKey(
        "leads.Channel", on_delete=models.PROTECT, related_name="+", verbose_name=_("channel")
    )
    external_id = models.CharField(_("ticket id"), max_length=100)
    event = TenantForeignKey(
        "leads.InboundEvent",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("last inbound event"),
    )
    customer = TenantForeignKey(
        Customer,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="tickets",
        verbose_name=_("customer"),
    )
    contact = TenantForeignKey(
        Contact,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("contact"),
    )
    match_key = models.CharField(
        _("matched by"), max_length=10, choices=MatchKey.choices, blank=True, default=""
    )
    match_value = models.CharField(_("matched on"), max_length=254, blank=True)
    # What the helpdesk sent to match on, normalised (phone in E.164, e-mail lower-cased).
    customer_code = models.CharField(_("customer code"), max_length=60, blank=True)
    requester_name = models.CharField(_("requester"), max_length=100, blank=True)
    phone_key = models.CharField(_("phone"), max_length=32, blank=True)
    email = models.CharField(_("e-mail"), max_length=254, blank=True)
    product_line = models.CharField(_("product line"), max_length=100, blank=True)
    product_model = models.CharField(_("product model"), max_length=100, blank=True)
    fault_code = models.CharField(_("fault code"), max_length=60, blank=True)
    province = models.CharField(_("province"), max_length=30, blank=True)
    city = models.CharField(_("city"), max_length=30, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=TicketStatus.choices, default=TicketStatus.OPEN
    )
    subject = models.CharField(_("subject"), max_length=200, blank=True)
    text = models.TextField(_("text"), blank=True)
    opened_at = models.DateTimeField(_("opened at"))
    first_response_at = models.DateTimeField(_("first response at"), null=True, blank=True)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    # Minutes as counted for the tenant (calendar, or working hours: ServiceSettings);
    # null when unknown or implausible (`duration_issue` says why: excluded from averages).
    first_response_minutes = models.PositiveIntegerField(
        _("first response (minutes)"), null=True, blank=True
    )
    resolution_minutes = models.PositiveIntegerField(
        _("resolution (minutes)"), null=True, blank=True
    )
    duration_issue = models.CharField(_("duration problem"), max_length=120, blank=True)
    sentiment = models.SmallIntegerField(
        _("sentiment (−100 to 100)"),
        null=True,
        blank=True,
        validators=[MinValueValidator(-100), MaxValueValidator(100)],
    )
    nps = models.SmallIntegerField(
        _("NPS sub-score (0–10)"),
        null=True,
        blank=True,
        validators=[MinValueValidator(0), MaxValueValidator(10)],
    )
    satisfaction = models.SmallIntegerField(
        _("satisfaction (1–5)"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(5)],
    )
    flags = models.JSONField(_("flags"), default=list, blank=True)  # FlagKind values
    flag_words = models.JSONField(_("flagging words"), default=list, blank=True)
    alert = TenantForeignKey(
        "QualityAlert",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="tickets",
        verbose_name=_("quality alert"),
    )
    received_at = models.DateTimeField(_("received at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now)

    objects = TenantManager.from_queryset(TicketQuerySet)()

    class Meta(TenantOwned.Meta):
        verbose_name = _("ticket")
        verbose_name_plural = _("tickets")
        ordering = ["-opened_at", "-id"]
        constraints = [
            *TenantOwned.Meta.constraints,
            models.UniqueConstraint(
                fields=["tenant", "channel", "external_id"], name="ticket_once_per_channel"
            ),
        ]
        indexes = [
            models.Index(F("tenant"), F("opened_at").desc(), F("id").desc(), name="ticket_opened"),
            models.Index(
                F("tenant"),
                F("customer"),
                F("opened_at").desc(),
                name="ticket_customer",
            ),
            # The unmatched queue, oldest first (its page, the home card): read in the
            # index's own order, so the first rows cost a few reads, not a sort of them all.
            models.Index(
                F("tenant"),
                F("received_at"),
                F("id"),
                name="ticket_unmatched",
                condition=Q(customer__isnull=True),
            ),
            # The quality clusters: one product model × fault code × region in a window.
            models.Index(
                fields=["tenant", "product_model", "fault_code", "province", "opened_at"],
                name="ticket_cluster",
            ),
        ]

    def __str__(self) -> str:
        return self.subject or self.external_id


class LinkKey(models.TextChoices):
    PHONE = "phone", _("Phone")
    EMAIL = "email", _("E-mail")


class TicketLink(TenantOwned):
    """A link service or a manager made by hand from a phone or e-mail to a customer,
    remembered: the next ticket from it matches by itself."""

    key = models.CharField(_("key"), max_length=10, choices=LinkKey.choices)
    value = models.CharField(_("value"), max_length=254)
    customer = TenantForeignKey(
        Customer, on_delete=models.CASCADE, related_name="+", verbose_name=_("customer")
    )
    linked_by = TenantForeignKey(
        Membership,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("linked by"),
    )
    linked_at = models.DateTimeField(_("linked at"), default=timezone.now)

    class Meta(TenantOwned.Meta):
        verbose_name = _("remembered link")
        verbose_name_plural = _("remembered links")
        constraints = [
            *TenantOwned.Meta.constraints,
            models.UniqueConstraint(fields=["tenant", "key", "value"], name="ticket_link_once"),
        ]

    def __str__(self) -> str:
        return f"{self.value} → {self.customer}"


# -- quality alerts -------------------------------------------------------------------------


class QualityAlert(TenantOwned):
    """Tickets of one product model, fault code and region, too many in a rolling window
    (F29): one alert to the quality group and the affected customers' owners; later
    tickets of the cluster attach to it while it is open."""

    product_model = models.CharField(_("product model"), max_length=100)
    fault_code = models.CharField(_("fault code"), max_length=60)
    province = models.CharField(_("region"), max_length=30, blank=True)
    opened_at = models.DateTimeField(_("raised at"), default=timezone.now)
    last_ticket_at = models.DateTimeField(_("last ticket at"), default=timezone.now)
    closed_at = models.DateTimeField(
        pgettext_lazy("quality alert", "closed at"), null=True, blank=True
    )
    closed_by = TenantForeignKey(
        Membership,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("closed by"),
    )
    close_note = models.CharField(_("closing note"), max_length=300, blank=True)

    class Meta(TenantOwned.Meta):
        verbose_name = _("quality alert")
        verbose_name_plural = _("quality alerts")
        ordering = ["-opened_at", "-id"]
        constraints = [
            *TenantOwned.Meta.constraints,
            # One open alert per cluster: the 6th ticket attaches to it.
            models.UniqueConstraint(
                fields=["tenant", "product_model", "fault_code", "province"],
                condition=Q(closed_at__isnull=True),
                name="quality_alert_one_open",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.product_model} · {self.fault_code} · {self.province or '—'}"


# -- the review card's read receipts --------------------------------------------------------


class ReviewRead(TenantOwned):
    """A rep marked a customer's service review card read (F28): who, when, and the latest
    ticket it covered; the manager sees them."""

    customer = TenantForeignKey(
        Customer, on_delete=models.CASCADE, related_name="+", verbose_name=_("customer")
    )
    member = TenantForeignKey(
        Membership, on_delete=models.CASCADE, related_name="+", verbose_name=_("read by")
    )
    read_at = models.DateTimeField(_("read at"), default=timezone.now)
    last_ticket = TenantForeignKey(
        Ticket,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("latest ticket covered"),
    )

    class Meta(TenantOwned.Meta):
        verbose_name = _("review card read")
        verbose_name_plural = _("review card reads")
        ordering = ["-read_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "customer", "-read_at"], name="review_read_customer")
        ]

    def __str__(self) -> str:
        return f"{self.customer} · {self.member}"
