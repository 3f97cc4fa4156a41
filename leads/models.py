"""Lead intake (F1–F7): channels, the inbound-event inbox, tags and rules, leads and their
timeline. Assignment, SLA clocks and the board build on these."""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.models import Membership, TenantOwned
from crm.tenancy import TenantManager, TenantQuerySet

REVISIT_WINDOW = timedelta(days=30)
REPLAY_WINDOW = timedelta(hours=24)


def new_channel_key() -> str:
    return secrets.token_urlsafe(18)  # 24 URL-safe characters, 144 bits


def new_channel_secret() -> str:
    return secrets.token_urlsafe(32)


class ChannelType(models.TextChoices):
    WEB_FORM = "web_form", _("Website form")
    WECHAT_OA = "wechat_oa", _("WeChat official account")
    TRADE_SHOW_QR = "trade_show_qr", _("Trade-show QR code")
    DOUYIN = "douyin", _("Douyin lead ads")
    WECOM = "wecom", _("WeCom external contact")
    SMS = "sms", _("SMS gateway")
    CALL_CENTER = "call_center", _("400 call centre")
    IMPORT = "import", _("Import (CSV/Excel)")


class SourceGrade(models.TextChoices):
    A = "A", _("A class")
    B = "B", _("B class")
    C = "C", _("C class")


class MappingPreset(models.TextChoices):
    NONE = "", _("None: lead field names as sent")
    DOUYIN = "douyin", _("Douyin lead-ads push")
    SMS = "sms", _("SMS gateway")
    CALL_CENTER = "call_center", _("400 call-centre event")
    WECOM = "wecom", _("WeCom external contact added")


class Tag(TenantOwned):
    name = models.CharField(_("name"), max_length=40)
    color = models.CharField(
        _("colour"),
        max_length=20,
        default="secondary",
        help_text=_("A Bootstrap colour name: primary, danger, warning, info …"),
    )

    class Meta(TenantOwned.Meta):
        verbose_name = _("tag")
        verbose_name_plural = _("tags")
        ordering = ["name"]
        constraints = [
            *TenantOwned.Meta.constraints,
            models.UniqueConstraint(fields=["tenant", "name"], name="tag_name_per_tenant"),
        ]

    def __str__(self) -> str:
        return self.name


class TaggingRule(TenantOwned):
    """Free-text keywords → a tag (F6). Chinese keywords match as substrings; Latin words
    and abbreviations ("DR", "CT") match whole tokens, case-insensitively."""

    tag = models.ForeignKey(
        Tag, on_delete=models.CASCADE, related_name="rules", verbose_name=_("tag")
    )
    keywords = models.TextField(_("keywords"), help_text=_("One per line, or separated by commas."))
    is_active = models.BooleanField(_("active"), default=True)

    class Meta(TenantOwned.Meta):
        verbose_name = _("tagging rule")
        verbose_name_plural = _("tagging rules")

    def __str__(self) -> str:
        return f"{self.tag}: {', '.join(self.keyword_list()[:5])}"

    def keyword_list(self) -> list[str]:
        parts = self.keywords.replace("，", ",").replace("\n", ",").split(",")
        return [p.strip() for p in parts if p.strip()]


class Channel(TenantOwned):
    """Where leads come from (F1). Found by its unguessable key, proven by its secret."""

    name = models.CharField(_("name"), max_length=80)
    type = models.CharField(_("type"), max_length=20, choices=ChannelType.choices)
    key = models.CharField(
        _("key"), max_length=64, unique=True, default=new_channel_key, editable=False
    )
    secret = models.CharField(
        _("secret"), max_length=128, default=new_channel_secret, editable=False
    )
    default_grade = models.CharField(
        _("default source grade"), max_length=1, choices=SourceGrade.choices, default=SourceGrade.B
    )
    is_active = models.BooleanField(_("active"), default=True)
    tags = models.ManyToManyField(
        Tag,
        blank=True,
        related_name="channels",
        verbose_name=_("tags"),
        help_text=_("Put on every lead from this channel."),
    )
    preset = models.CharField(
        _("mapping preset"),
        max_length=20,
        choices=MappingPreset.choices,
        blank=True,
        default=MappingPreset.NONE,
    )
    mapping = models.JSONField(
        _("mapping rules"),
        default=list,
        blank=True,
        help_text=_(
            'A list of rules: {"field": "company_size", "path": "form.size", '
            '"map": {"1-50人": 1}, "default": null}. They override the preset per field.'
        ),
    )
    # WeCom callback settings (type wecom only), from the app's "receive messages" page.
    wecom_corp_id = models.CharField(_("WeCom corp ID"), max_length=64, blank=True)
    wecom_token = models.CharField(_("WeCom token"), max_length=64, blank=True)
    wecom_aes_key = models.CharField(_("WeCom EncodingAESKey"), max_length=43, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)

    class Meta(TenantOwned.Meta):
        verbose_name = _("channel")
        verbose_name_plural = _("channels")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def rotate_secret(self) -> str:
        self.secret = new_channel_secret()
        return self.secret


class EventStatus(models.TextChoices):
    RECEIVED = "received", _("Received")
    PROCESSED = "processed", _("Processed")
    FAILED = "failed", _("Failed")


class EventSource(models.TextChoices):
    WEBHOOK = "webhook", _("Webhook")
    FORM = "form", _("Hosted form")
    WECOM = "wecom", _("WeCom callback")
    IMPORT = "import", _("Import")


class InboundEventQuerySet(TenantQuerySet):
    def stale(self, older_than: timedelta = timedelta(minutes=2)):
        return self.filter(status=EventStatus.RECEIVED, received_at__lt=timezone.now() - older_than)


class InboundEvent(TenantOwned):
    """The inbox (F2): every payload exactly as received, stored before any processing."""

    channel = models.ForeignKey(
        Channel, on_delete=models.PROTECT, related_name="events", verbose_name=_("channel")
    )
    source = models.CharField(_("source"), max_length=10, choices=EventSource.choices)
    received_at = models.DateTimeField(_("received at"), default=timezone.now)
    headers = models.JSONField(_("headers"), default=dict, blank=True)
    raw_body = models.TextField(_("raw body"), blank=True)
    body_sha256 = models.CharField(max_length=64, editable=False)
    payload = models.JSONField(_("payload"), null=True, blank=True)
    idempotency_key = models.CharField(_("idempotency key"), max_length=200, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=EventStatus.choices, default=EventStatus.RECEIVED
    )
    error = models.TextField(_("error"), blank=True)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    processed_at = models.DateTimeField(_("processed at"), null=True, blank=True)
    lead = models.ForeignKey(
        "Lead",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="inbound_events",
        verbose_name=_("lead"),
    )
    batch = models.ForeignKey(
        "ImportBatch",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="events",
        verbose_name=_("import batch"),
    )

    objects = TenantManager.from_queryset(InboundEventQuerySet)()

    class Meta(TenantOwned.Meta):
        verbose_name = _("inbound event")
        verbose_name_plural = _("inbound events")
        ordering = ["-received_at", "-id"]
        constraints = [
            *TenantOwned.Meta.constraints,
            models.UniqueConstraint(
                fields=["tenant", "channel", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="inbound_idempotency_key",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "status", "-received_at"], name="inbound_status"),
            # Replays without an Idempotency-Key: the same body on the same channel in 24 h.
            models.Index(
                fields=["tenant", "channel", "body_sha256", "received_at"], name="inbound_body"
            ),
            # The re-drive sweep reads all tenants' unprocessed events (platform job).
            models.Index(
                fields=["received_at"], condition=Q(status="received"), name="inbound_unprocessed"
            ),
        ]

    def __str__(self) -> str:
        return (
            f"{self.channel} · {self.received_at:%Y-%m-%d %H:%M:%S} · {self.get_status_display()}"
        )


class Industry(models.TextChoices):
    MANUFACTURING = "manufacturing", _("Manufacturing")
    ENERGY = "energy", _("Energy")
    INFRASTRUCTURE = "infrastructure", _("Infrastructure")
    OTHER = "other", _("Other")


class LeadStatus(models.TextChoices):
    NEW = "new", _("New")
    ASSIGNED = "assigned", _("Assigned")
    VALID = "valid", _("Valid")
    INVALID = "invalid", _("Invalid")


class RegistryStatus(models.TextChoices):
    NOT_CHECKED = "", _("Not checked")
    VERIFIED = "verified", _("Verified")
    NOT_FOUND = "not_found", _("Not found")
    ERROR = "error", _("Check failed")


class LeadQuerySet(TenantQuerySet):
    def originals(self):
        return self.filter(revisit_of__isnull=True)

    def revisits(self):
        return self.filter(revisit_of__isnull=False)

    def suspect(self):
        return self.filter(is_suspect=True)

    def within_revisit_window(self, now=None):
        return self.filter(created_at__gte=(now or timezone.now()) - REVISIT_WINDOW)


class Lead(TenantOwned):
    # The five core fields (F7) …
    company = models.CharField(_("company"), max_length=200, blank=True)
    contact_name = models.CharField(_("contact"), max_length=100, blank=True)
    phone = models.CharField(
        _("phone"),
        max_length=32,
        blank=True,
        help_text=_("E.164 when it parses, else as received."),
    )
    industry = models.CharField(_("industry"), max_length=20, choices=Industry.choices, blank=True)
    message = models.TextField(_("enquiry"), blank=True)
    # … and the optional ones.
    industry_remark = models.CharField(_("industry remark"), max_length=200, blank=True)
    email = models.CharField(_("e-mail"), max_length=254, blank=True)
    title = models.CharField(_("job title"), max_length=100, blank=True)
    province = models.CharField(_("province"), max_length=30, blank=True)
    city = models.CharField(_("city"), max_length=30, blank=True)
    company_size = models.PositiveSmallIntegerField(_("company size class"), null=True, blank=True)
    budget = models.CharField(_("budget"), max_length=60, blank=True)
    in_tender = models.BooleanField(_("in a tender"), null=True, blank=True)
    sample_provided = models.BooleanField(_("sample provided"), null=True, blank=True)
    external_id = models.CharField(
        _("external id"),
        max_length=128,
        blank=True,
        help_text=_("The sender's id: WeCom external user, Douyin clue id …"),
    )
    utm = models.JSONField(_("UTM parameters"), default=dict, blank=True)

    channel = models.ForeignKey(
        Channel, on_delete=models.PROTECT, related_name="leads", verbose_name=_("channel")
    )
    source_grade = models.CharField(_("source grade"), max_length=1, choices=SourceGrade.choices)
    status = models.CharField(
        _("status"), max_length=10, choices=LeadStatus.choices, default=LeadStatus.NEW
    )
    owner = models.ForeignKey(
        Membership,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_leads",
        verbose_name=_("owner"),
    )
    tags = models.ManyToManyField(Tag, blank=True, related_name="leads", verbose_name=_("tags"))
    revisit_of = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="revisits",
        verbose_name=_("revisit of"),
    )
    is_suspect = models.BooleanField(_("suspect"), default=False)
    suspect_reasons = models.JSONField(_("suspect reasons"), default=list, blank=True)
    registry_status = models.CharField(
        _("business registry"),
        max_length=10,
        blank=True,
        choices=RegistryStatus.choices,
        default=RegistryStatus.NOT_CHECKED,
    )
    # Normalised keys for de-duplication (F5).
    phone_key = models.CharField(max_length=32, blank=True, editable=False)
    company_key = models.CharField(max_length=200, blank=True, editable=False)
    contact_key = models.CharField(max_length=100, blank=True, editable=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    objects = TenantManager.from_queryset(LeadQuerySet)()

    class Meta(TenantOwned.Meta):
        verbose_name = _("lead")
        verbose_name_plural = _("leads")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "-created_at", "-id"], name="lead_newest"),
            models.Index(fields=["tenant", "status", "-created_at"], name="lead_status"),
            models.Index(fields=["tenant", "channel", "-created_at"], name="lead_channel"),
            models.Index(fields=["tenant", "owner", "-created_at"], name="lead_owner"),
            # The list's sortable text columns (measured in bench/leads.py at 100,000 leads).
            models.Index(fields=["tenant", "company", "id"], name="lead_company"),
            models.Index(fields=["tenant", "contact_name", "id"], name="lead_contact"),
            models.Index(
                fields=["tenant", "source_grade", "-created_at", "-id"], name="lead_grade"
            ),
            models.Index(
                fields=["tenant", "phone_key", "created_at"],
                name="lead_phone_key",
                condition=~Q(phone_key=""),
            ),
            models.Index(
                fields=["tenant", "company_key", "contact_key", "created_at"],
                name="lead_company_key",
                condition=~Q(company_key=""),
            ),
        ]

    def __str__(self) -> str:
        who = " · ".join(p for p in (self.company, self.contact_name) if p)
        return who or self.phone or str(self.public_id)[:8]

    @property
    def is_revisit(self) -> bool:
        return self.revisit_of_id is not None

    def suspect_reason_texts(self) -> list[str]:
        from leads.messages import reason_text

        return [reason_text(r) for r in self.suspect_reasons]


class LeadEventKind(models.TextChoices):
    INTAKE = "intake", _("Received")
    TAGGED = "tagged", _("Tagged")
    REVISIT = "revisit", _("Revisit of an earlier lead")
    SUSPECT = "suspect", _("Flagged as suspect")
    REGISTRY = "registry", _("Business registry check")


class LeadEvent(TenantOwned):
    """One entry of a lead's timeline (F20); later stages add their kinds."""

    lead = models.ForeignKey(
        Lead, on_delete=models.CASCADE, related_name="events", verbose_name=_("lead")
    )
    kind = models.CharField(_("kind"), max_length=20)
    at = models.DateTimeField(_("at"), default=timezone.now)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("actor"),
    )
    message = models.CharField(_("message"), max_length=300, blank=True)
    data = models.JSONField(_("data"), default=dict, blank=True)

    class Meta(TenantOwned.Meta):
        verbose_name = _("lead event")
        verbose_name_plural = _("lead events")
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["tenant", "lead", "-at"], name="leadevent_lead_at")]

    def __str__(self) -> str:
        return f"{self.kind} {self.at:%Y-%m-%d %H:%M}"

    def get_kind_display(self) -> str:
        try:
            return LeadEventKind(self.kind).label
        except ValueError:
            return self.kind

    @property
    def text(self) -> str:
        """What happened, in the reader's language, from the kind and its data."""
        from leads.messages import reason_text

        data = self.data or {}
        if self.kind == LeadEventKind.INTAKE and data.get("channel"):
            return _("Received from %(channel)s") % {"channel": data["channel"]}
        if self.kind == LeadEventKind.TAGGED and data.get("tags"):
            return "、".join(data["tags"])
        if self.kind == LeadEventKind.REVISIT and data.get("original_label"):
            return _("Revisit of %(lead)s") % {"lead": data["original_label"]}
        if self.kind == LeadEventKind.SUSPECT and data.get("reasons"):
            return "；".join(reason_text(r) for r in data["reasons"])
        if self.kind == LeadEventKind.REGISTRY and not self.message:
            try:
                return str(RegistryStatus(data.get("status", "")).label)
            except ValueError:
                return ""
        return self.message


class ImportStatus(models.TextChoices):
    PREVIEW = "preview", _("Preview")
    CONFIRMED = "confirmed", _("Confirmed")


class ImportBatch(TenantOwned):
    """One uploaded file (F1 import): parsed rows kept for the preview, then one inbound
    event per valid row on confirmation."""

    channel = models.ForeignKey(
        Channel, on_delete=models.PROTECT, related_name="imports", verbose_name=_("channel")
    )
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("uploaded by"),
    )
    filename = models.CharField(_("file"), max_length=200)
    columns = models.JSONField(
        _("columns"), default=list, help_text=_("How each column of the file was read.")
    )
    rows = models.JSONField(_("rows"), default=list)
    status = models.CharField(
        _("status"), max_length=10, choices=ImportStatus.choices, default=ImportStatus.PREVIEW
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    confirmed_at = models.DateTimeField(_("confirmed at"), null=True, blank=True)

    class Meta(TenantOwned.Meta):
        verbose_name = _("import")
        verbose_name_plural = _("imports")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.filename
