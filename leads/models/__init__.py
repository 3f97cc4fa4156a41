"""Lead intake (F1–F7): channels, the inbound-event inbox, tags and rules, leads and their
timeline. Assignment, SLA clocks and the board build on these."""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from crm.formatting import format_datetime, format_phone
from crm.indexes import NullsOrderIndex
from crm.models import Membership, TenantOwned
from crm.tenancy import TenantManager, TenantQuerySet
from customers.models import ContactMethod, Industry

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


class TagColor(models.TextChoices):
    """The badge colours (Bootstrap's names, used as CSS classes on the pages)."""

    PRIMARY = "primary", _("Blue")
    INFO = "info", _("Cyan")
    SUCCESS = "success", _("Green")
    WARNING = "warning", _("Yellow")
    DANGER = "danger", _("Red")
    SECONDARY = "secondary", _("Grey")
    DARK = "dark", _("Black")


class Tag(TenantOwned):
    name = models.CharField(_("name"), max_length=40)
    color = models.CharField(
        _("colour"),
        max_length=20,
        default=TagColor.SECONDARY,
        choices=TagColor.choices,
        help_text=_("The colour of the tag's badge on the lead pages."),
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
    # The error as a technical record in English (searchable) and, when the intake knows
    # it, as a stored message (leads.messages) that the inbox shows in the reader's words.
    error = models.TextField(_("error"), blank=True)
    error_detail = models.JSONField(_("error detail"), default=dict, blank=True)
    # Optional fields the mapping could not fill (the lead was made without them) and
    # texts cut to their limit: stored messages, `unmapped` ones with the value received.
    mapping_issues = models.JSONField(_("field mapping problems"), default=list, blank=True)
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
        received = format_datetime(self.received_at)
        return f"{self.channel} · {received} · {self.get_status_display()}"

    @property
    def error_text(self) -> str:
        """The error in the reader's language (the stored text for older events)."""
        from leads.messages import intake_text

        return intake_text(self.error_detail) if self.error_detail else self.error

    def mapping_issue_texts(self) -> list[str]:
        from leads.messages import intake_text

        return [intake_text(i) for i in self.mapping_issues]


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


class Verification(models.TextChoices):
    """The rep's verdict on a lead (F16): two valid outcomes, two invalid ones."""

    VALID_VISIT = "valid_visit", _("Valid · visit booked")
    VALID_MORE_INFO = "valid_more_info", _("Valid · needs more information")
    INVALID_CONTACT = "invalid_contact", _("Invalid · wrong contact details")
    INVALID_NOT_TARGET = "invalid_not_target", _("Invalid · not a target customer")

    @classmethod
    def valid(cls) -> set[str]:
        return {cls.VALID_VISIT, cls.VALID_MORE_INFO}


class InvalidReason(TenantOwned):
    """The tenant's preset reasons for an invalid verdict (about 12, admin-editable)."""

    name = models.CharField(_("name"), max_length=60)
    position = models.PositiveSmallIntegerField(_("order"), default=0)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta(TenantOwned.Meta):
        verbose_name = _("invalid reason")
        verbose_name_plural = _("invalid reasons")
        ordering = ["position", "id"]
        constraints = [
            *TenantOwned.Meta.constraints,
            models.UniqueConstraint(fields=["tenant", "name"], name="invalidreason_unique"),
        ]

    def __str__(self) -> str:
        return self.name


class LeadQuerySet(TenantQuerySet):
    def originals(self):
        return self.filter(revisit_of__isnull=True)

    def revisits(self):
        return self.filter(revisit_of__isnull=False)

    def suspect(self):
        return self.filter(is_suspect=True)

    def within_revisit_window(self, now=None):
        return self.filter(created_at__gte=(now or timezone.now()) - REVISIT_WINDOW)

    def open_load(self):
        """The leads that make up their owners' open load (F10), the one definition the
        assignment engine's cap, the rep's profile, "why didn't I get it" and the board
        read (`leads.assignment.engine.open_loads`): leads with an owner, status assigned and no
        verdict yet. A lead stops counting the moment it is verified (valid or invalid),
        whoever owns it later; leads in the pool or waiting for dispatch have no owner."""
        return self.filter(open_load_q())


def open_load_q() -> Q:
    """`LeadQuerySet.open_load()` as a condition, for queries that combine it."""
    return Q(owner__isnull=False, status=LeadStatus.ASSIGNED, verification="")


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
    # What the intake could not map (the value as received) or had to cut: stored
    # messages (leads.messages); the full payload stays on the inbound event.
    intake_issues = models.JSONField(_("intake notes"), default=list, blank=True)
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

    # Assignment (F8–F13): the state the engine, the SLA sweep and the board read.
    score = models.IntegerField(_("lead score"), null=True, blank=True)
    assigned_at = models.DateTimeField(_("assigned at"), null=True, blank=True)
    dispatch_round = models.PositiveSmallIntegerField(
        _("dispatch round"),
        default=0,
        help_text=_(
            "How many times the lead has been handed to a rep; SLA clocks restart per round."
        ),
    )
    dispatch_after = models.DateTimeField(
        _("retry dispatch at"),
        null=True,
        blank=True,
        help_text=_(
            "Nobody was eligible: dispatch is tried again, with optional criteria dropped."
        ),
    )
    pooled_at = models.DateTimeField(_("in the pool since"), null=True, blank=True)
    pool_reason = models.CharField(_("why in the pool"), max_length=20, blank=True)
    first_touch_at = models.DateTimeField(_("first touch"), null=True, blank=True)
    last_touch_at = models.DateTimeField(_("last touch"), null=True, blank=True)
    touch_count = models.PositiveSmallIntegerField(_("touches"), default=0)
    first_touch_late = models.BooleanField(_("first touch late"), null=True, blank=True)
    verified_at = models.DateTimeField(_("verified at"), null=True, blank=True)
    # Verification (F16) and what a valid lead became.
    verification = models.CharField(
        _("verification"), max_length=20, choices=Verification.choices, blank=True
    )
    invalid_reason = models.ForeignKey(
        "InvalidReason",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="leads",
        verbose_name=_("invalid reason"),
    )
    verified_by = models.ForeignKey(
        Membership,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("verified by"),
    )
    customer = models.ForeignKey(
        "customers.Customer",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="leads",
        verbose_name=_("customer"),
    )
    contact = models.ForeignKey(
        "customers.Contact",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="leads",
        verbose_name=_("contact"),
    )

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
            # The list's sort by score (leads.tables.LeadTable.order_score), both ways.
            NullsOrderIndex(
                F("tenant"), F("score").desc(nulls_last=True), F("id").desc(), name="lead_score"
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
            # The SLA sweep and the dispatch retry: only open leads are indexed.
            models.Index(
                fields=["tenant", "status", "assigned_at"],
                name="lead_open_assigned",
                condition=Q(status__in=["new", "assigned"]),
            ),
            models.Index(
                fields=["tenant", "dispatch_after"],
                name="lead_dispatch_after",
                condition=Q(dispatch_after__isnull=False),
            ),
            models.Index(
                fields=["tenant", "owner", "status"],
                name="lead_owner_open",
                condition=Q(status="assigned"),
            ),
        ]

    def __str__(self) -> str:
        who = " · ".join(p for p in (self.company, self.contact_name) if p)
        if who or self.phone or self.email:
            return who or format_phone(self.phone) or self.email
        # Nothing but the sender's id (a WeCom external user …): say so, with its end.
        ref = self.external_id[-6:] if self.external_id else str(self.public_id)[:6]
        return gettext("Unnamed contact %(ref)s") % {"ref": ref}

    @property
    def is_revisit(self) -> bool:
        return self.revisit_of_id is not None

    def suspect_reason_texts(self) -> list[str]:
        from leads.messages import reason_text

        return [reason_text(r) for r in self.suspect_reasons]

    def intake_issue_texts(self) -> list[str]:
        from leads.messages import intake_text

        return [intake_text(i) for i in self.intake_issues]


class LeadEventKind(models.TextChoices):
    INTAKE = "intake", _("Received")
    TAGGED = "tagged", _("Tagged")
    REVISIT = "revisit", _("Revisit of an earlier lead")
    SUSPECT = "suspect", _("Flagged as suspect")
    REGISTRY = "registry", _("Business registry check")
    ASSIGNED = "assigned", _("Assigned")
    WAITING = "waiting", _("Waiting for an eligible rep")
    POOLED = "pooled", _("Put in the pool")
    REASSIGNED = "reassigned", _("Reassigned")
    TOUCH = "touch", _("Contacted")
    SLA = "sla", _("SLA alert")
    VERIFIED = "verified", pgettext_lazy("lead verification", "Verified")
    FOLLOW_UP = "follow_up", _("Follow-up")


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
        return f"{self.get_kind_display()} {format_datetime(self.at)}"

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
        worded = self._assignment_text(data)
        return self.message if worded is None else worded

    def _assignment_text(self, data: dict) -> str | None:
        if self.kind == LeadEventKind.ASSIGNED:
            return _("Assigned to %(owner)s") % {"owner": data.get("owner", "?")}
        if self.kind == LeadEventKind.WAITING:
            return _(
                "Nobody is eligible now: dispatch is tried again in %(minutes)s minutes, "
                "with optional criteria dropped"
            ) % {"minutes": data.get("minutes", "?")}
        if self.kind == LeadEventKind.POOLED:
            try:
                why = PoolReason(data.get("reason", "")).label
            except ValueError:
                why = data.get("reason", "")
            return _("Put in the pool: %(reason)s") % {"reason": why}
        if self.kind == LeadEventKind.REASSIGNED:
            text = _("Reassigned from %(previous)s to %(owner)s") % {
                "previous": data.get("previous") or _("the pool"),
                "owner": data.get("owner", "?"),
            }
            return f"{text}: {data['reason']}" if data.get("reason") else text
        if self.kind == LeadEventKind.TOUCH:
            channel = dict(ContactMethod.choices).get(data.get("channel"), data.get("channel", ""))
            text = _("Contacted by %(channel)s") % {"channel": channel}
            if data.get("first"):
                text += " · " + (
                    _("first touch, late") if data.get("late") else _("first touch, on time")
                )
            return f"{text}: {data['note']}" if data.get("note") else text
        if self.kind == LeadEventKind.SLA:
            try:
                return str(SlaThreshold(data.get("threshold", "")).label)
            except ValueError:
                return data.get("threshold", "")
        if self.kind == LeadEventKind.VERIFIED:
            try:
                text = str(Verification(data.get("outcome", "")).label)
            except ValueError:
                text = data.get("outcome", "")
            if data.get("reason"):
                return f"{text}: {data['reason']}"
            if data.get("customer_name"):
                text = _("%(outcome)s → customer %(customer)s (%(how)s)") % {
                    "outcome": text,
                    "customer": data["customer_name"],
                    "how": _("new") if data.get("customer_created") else _("existing"),
                }
            if data.get("inherited_from"):
                text += " · " + _("taken over from the earlier lead %(lead)s") % {
                    "lead": data.get("original_label", "?")
                }
            if data.get("next_action"):
                text += " → " + _("before %(date)s: %(action)s") % {
                    "date": data.get("next_action_due", "?"),
                    "action": data["next_action"],
                }
            return text
        if self.kind == LeadEventKind.FOLLOW_UP:
            channel = dict(ContactMethod.choices).get(data.get("channel"), data.get("channel", ""))
            parts = [str(channel), *data.get("talk_tags", []), *data.get("pains", [])]
            text = " · ".join(p for p in parts if p)
            if data.get("note"):
                text += f": {data['note']}"
            if data.get("next_action"):
                text += " → " + _("before %(date)s: %(action)s") % {
                    "date": data.get("next_action_due", "?"),
                    "action": data["next_action"],
                }
            if data.get("suggested_status"):
                text += " · " + _("suggested status: %(status)s") % {
                    "status": data["suggested_status"]
                }
            return text
        return None


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


# --- Assignment (F8–F14) ----------------------------------------------------------------
# Decisions and rules are explained in docs/assignment.md.


class PoolReason(models.TextChoices):
    NO_CANDIDATE = "no_candidate", _("No eligible rep, even with optional criteria dropped")
    NO_SECOND_TOUCH = "no_second_touch", _("No second touch within 72 h of the first")
    MANUAL = "manual", _("Put back in the pool by a manager")
    FAILED = "failed", _("Assignment failed")


class ResponseTier(models.TextChoices):
    FAST = "fast", _("Responds within 15 minutes")
    NORMAL = "normal", _("Responds within 1 hour")
    SLOW = "slow", _("Responds the same day")


class CyclePreference(models.TextChoices):
    SHORT = "short", _("Short, quick deals")
    LONG = "long", _("Long, nurtured deals")
    ANY = "any", _("Either")


class Zone(models.TextChoices):
    NORMAL = "", _("Normal")
    OBSERVATION = "observation", _("Observation zone: paused from dispatch")
    PROBATION = "probation", _("Observation zone: back on probation")


class RepProfile(TenantOwned):
    """What a rep is good at and how much they can take (F9, F10); one per rep seat."""

    membership = models.OneToOneField(
        Membership,
        on_delete=models.CASCADE,
        related_name="rep_profile",
        verbose_name=_("rep"),
    )
    industries = models.JSONField(_("industries"), default=list, blank=True)
    provinces = models.JSONField(_("provinces"), default=list, blank=True)
    cities = models.JSONField(_("cities"), default=list, blank=True)
    product_lines = models.JSONField(
        _("product lines"),
        default=list,
        blank=True,
        help_text=_("Matched against the lead's tags and enquiry, e.g. 影像设备, DR, CT."),
    )
    response_tier = models.CharField(
        _("response speed"),
        max_length=10,
        choices=ResponseTier.choices,
        default=ResponseTier.NORMAL,
    )
    cycle_preference = models.CharField(
        _("deal-cycle preference"),
        max_length=10,
        choices=CyclePreference.choices,
        default=CyclePreference.ANY,
    )
    capacity = models.IntegerField(
        _("capacity"),
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
        help_text=_(
            "Most open unverified leads at once; blank takes the policy's default (8). "
            "0 takes no new leads."
        ),
    )
    share_weight = models.FloatField(
        _("share weight"),
        default=1.0,
        validators=[MinValueValidator(0.1), MaxValueValidator(10)],
        help_text=_("Relative target share: 2 means twice the leads of a rep at 1."),
    )
    is_available = models.BooleanField(
        _("available"), default=True, help_text=_("Untick for leave, training or holidays.")
    )
    unavailable_until = models.DateField(
        _("away until"),
        null=True,
        blank=True,
        help_text=_("Back on dispatch after this day, by itself."),
    )
    zone = models.CharField(_("zone"), max_length=12, choices=Zone.choices, blank=True, default="")
    zone_since = models.DateTimeField(_("in the zone since"), null=True, blank=True)
    late_streak = models.PositiveSmallIntegerField(_("late first touches in a row"), default=0)
    on_time_streak = models.PositiveSmallIntegerField(
        _("on-time first touches in a row"), default=0
    )
    training_acknowledged_at = models.DateTimeField(
        _("training card acknowledged"), null=True, blank=True
    )
    last_assigned_at = models.DateTimeField(_("last lead received"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)

    class Meta(TenantOwned.Meta):
        verbose_name = _("rep profile")
        verbose_name_plural = _("rep profiles")
        ordering = ["membership__user__username"]

    def __str__(self) -> str:
        return self.membership.display_name

    def available_on(self, day) -> bool:
        return rep_available(self.is_available, self.unavailable_until, day)


def profile_of(membership: Membership) -> RepProfile | None:
    """The member's RepProfile, or None; read once per membership object (the reverse
    one-to-one caches it, absent included), so a page asking twice queries once."""
    try:
        return membership.rep_profile
    except RepProfile.DoesNotExist:
        return None


def rep_available(is_available: bool, away_until, day) -> bool:
    """Available on `day`: ticked, and not before the day after `away_until`."""
    return is_available and (away_until is None or day > away_until)


class PolicyStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    PUBLISHED = "published", _("Published")


class AssignmentPolicy(TenantOwned):
    """The weights and thresholds that decide who gets a lead (F8–F10, F14).

    A tenant edits one draft; publishing copies it, with its score rules, into the next
    immutable version. Every decision records the version that made it.
    """

    status = models.CharField(
        _("status"), max_length=10, choices=PolicyStatus.choices, default=PolicyStatus.DRAFT
    )
    version = models.PositiveIntegerField(_("version"), null=True, blank=True, editable=False)
    note = models.CharField(_("what changed"), max_length=200, blank=True)
    base_score = models.IntegerField(
        _("base score"), default=50, help_text=_("Every lead starts here; rules add or subtract.")
    )
    default_capacity = models.PositiveSmallIntegerField(
        _("default capacity"),
        default=8,
        help_text=_("Open unverified leads a rep may hold when their profile sets no cap."),
    )
    weight_industry = models.FloatField(_("weight: industry match"), default=0.5)
    weight_region = models.FloatField(_("weight: region match"), default=0.3)
    weight_product = models.FloatField(_("weight: product line match"), default=0.3)
    weight_response = models.FloatField(
        _("weight: response speed"),
        default=0.2,
        help_text=_("Added in full for fast responders, half for normal ones."),
    )
    weight_cycle = models.FloatField(_("weight: deal-cycle preference"), default=0.2)
    require_region = models.BooleanField(
        _("require region"),
        default=False,
        help_text=_(
            "Only reps covering the lead's province; dropped first when nobody is eligible."
        ),
    )
    require_industry = models.BooleanField(
        _("require industry"),
        default=False,
        help_text=_("Only reps with the lead's industry; dropped second when nobody is eligible."),
    )
    relax_after_minutes = models.PositiveIntegerField(
        _("wait before dropping criteria (minutes)"), default=10
    )
    best_band = models.FloatField(
        _("best band"),
        default=0.15,
        validators=[MinValueValidator(0), MaxValueValidator(1)],
        help_text=_("Reps within this fraction of the top score count as the best; 0.15 = 15%."),
    )
    fairness_window_days = models.PositiveSmallIntegerField(
        _("fairness window (days)"), default=30, validators=[MinValueValidator(1)]
    )
    hot_zone_days = models.PositiveSmallIntegerField(
        _("hot zone after (days without a lead)"), default=7, validators=[MinValueValidator(1)]
    )
    hot_zone_min_score = models.IntegerField(_("hot zone: lead score at least"), default=70)
    observation_late_streak = models.PositiveSmallIntegerField(
        _("observation zone after (late first touches in a row)"),
        default=3,
        validators=[MinValueValidator(1)],
    )
    observation_recovery = models.PositiveSmallIntegerField(
        _("back to normal after (on-time first touches)"),
        default=5,
        validators=[MinValueValidator(1)],
    )
    late_after_hours = models.PositiveSmallIntegerField(
        _("first touch late after (hours)"), default=24, validators=[MinValueValidator(1)]
    )
    long_cycle_budget = models.PositiveIntegerField(
        _("long-cycle budget from (yuan)"),
        default=500_000,
        help_text=_("Leads with a budget at least this are long-cycle deals."),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    published_at = models.DateTimeField(_("published at"), null=True, blank=True, editable=False)

    # The fields a version copies from its draft (everything that changes a decision).
    PARAMETERS = (
        "base_score",
        "default_capacity",
        "weight_industry",
        "weight_region",
        "weight_product",
        "weight_response",
        "weight_cycle",
        "require_region",
        "require_industry",
        "relax_after_minutes",
        "best_band",
        "fairness_window_days",
        "hot_zone_days",
        "hot_zone_min_score",
        "observation_late_streak",
        "observation_recovery",
        "late_after_hours",
        "long_cycle_budget",
    )

    class Meta(TenantOwned.Meta):
        verbose_name = _("assignment policy")
        verbose_name_plural = _("assignment policies")
        ordering = ["status", "-version"]
        constraints = [
            *TenantOwned.Meta.constraints,
            models.UniqueConstraint(
                fields=["tenant", "version"],
                condition=Q(version__isnull=False),
                name="assignmentpolicy_one_per_version",
            ),
            models.UniqueConstraint(
                fields=["tenant"],
                condition=Q(status="draft"),
                name="assignmentpolicy_one_draft",
            ),
            models.CheckConstraint(
                condition=Q(status="draft", version__isnull=True)
                | Q(status="published", version__isnull=False),
                name="assignmentpolicy_version_iff_published",
            ),
        ]

    def __str__(self) -> str:
        if self.status == PolicyStatus.DRAFT:
            return str(_("Draft"))
        return _("Version %(version)s") % {"version": self.version}

    @property
    def is_draft(self) -> bool:
        return self.status == PolicyStatus.DRAFT


class ScoreField(models.TextChoices):
    CHANNEL_TYPE = "channel_type", _("Channel type")
    BUDGET = "budget", _("Budget (yuan)")
    MESSAGE = "message", _("Enquiry text")
    COMPANY = "company", _("Company")
    INDUSTRY = "industry", _("Industry")
    PROVINCE = "province", _("Province")
    CITY = "city", _("City")
    COMPANY_SIZE = "company_size", _("Company size class")
    IN_TENDER = "in_tender", _("In a tender")
    SAMPLE_PROVIDED = "sample_provided", _("Sample provided")
    TAG = "tag", _("Tag")
    SUSPECT = "is_suspect", _("Suspect")
    REVISIT = "is_revisit", _("Revisit")


class ScoreOperator(models.TextChoices):
    EQUALS = "eq", _("equals")
    IN = "in", _("is one of")
    GT = "gt", _("greater than")
    LT = "lt", _("less than")
    CONTAINS = "contains", _("contains the keyword")
    CHANNEL_IS = "channel_is", _("channel is")
    GRADE_IS = "grade_is", _("source grade is")
    LATE_FIRST_RESPONSE = "late_first_response", _("first response later than (minutes)")


class ScoreRule(TenantOwned):
    """One line of the lead score (F8): when the condition holds, add the points."""

    policy = models.ForeignKey(
        AssignmentPolicy, on_delete=models.CASCADE, related_name="rules", verbose_name=_("policy")
    )
    label = models.CharField(_("label"), max_length=80, blank=True)
    field = models.CharField(
        _("field"),
        max_length=20,
        blank=True,
        choices=ScoreField.choices,
        help_text=_("Not needed for “channel is”, “source grade is” and “late first response”."),
    )
    operator = models.CharField(_("operator"), max_length=20, choices=ScoreOperator.choices)
    value = models.CharField(
        _("value"), max_length=300, blank=True, help_text=_("Lists: separated by commas.")
    )
    points = models.SmallIntegerField(
        _("points"), validators=[MinValueValidator(-100), MaxValueValidator(100)]
    )
    position = models.PositiveSmallIntegerField(_("order"), default=0)

    class Meta(TenantOwned.Meta):
        verbose_name = _("score rule")
        verbose_name_plural = _("score rules")
        ordering = ["position", "id"]

    def __str__(self) -> str:
        if self.label:
            return self.label
        parts = (self.get_field_display(), self.get_operator_display(), self.value)
        return " ".join(str(p) for p in parts if p)

    def clean(self) -> None:
        from leads.assignment.scoring import rule_errors

        errors = rule_errors(self.field, self.operator, self.value)
        if errors:
            raise ValidationError(errors)


class DecisionKind(models.TextChoices):
    AUTO = "auto", _("Automatic")
    RETRY = "retry", _("Retried after the wait")
    REVISIT = "revisit", _("Revisit: to the first lead's owner")
    RETURN = "return", _("Returned to the pool and dispatched again")
    MANUAL = "manual", _("Reassigned by a manager")


class DecisionOutcome(models.TextChoices):
    ASSIGNED = "assigned", _("Assigned")
    WAITING = "waiting", _("Waiting for an eligible rep")
    POOLED = "pooled", _("Put in the pool")


class AssignmentDecision(TenantOwned):
    """Why a lead went where it went (F12): every candidate with its eligibility verdict
    and score breakdown, the fairness ledger as it stood, the tie-break seed and the
    policy version. Written once, never edited."""

    lead = models.ForeignKey(
        Lead, on_delete=models.CASCADE, related_name="decisions", verbose_name=_("lead")
    )
    policy = models.ForeignKey(
        AssignmentPolicy,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="decisions",
        verbose_name=_("policy version"),
    )
    kind = models.CharField(_("kind"), max_length=10, choices=DecisionKind.choices)
    outcome = models.CharField(_("outcome"), max_length=10, choices=DecisionOutcome.choices)
    chosen = models.ForeignKey(
        Membership,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("chosen rep"),
    )
    previous_owner = models.ForeignKey(
        Membership,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("previous owner"),
    )
    decided_at = models.DateTimeField(_("decided at"), default=timezone.now)
    seed = models.BigIntegerField(_("tie-break seed"), null=True, blank=True)
    lead_score = models.IntegerField(_("lead score"), null=True, blank=True)
    score_breakdown = models.JSONField(_("score breakdown"), default=list, blank=True)
    candidates = models.JSONField(_("candidates"), default=list, blank=True)
    relaxed = models.JSONField(_("criteria dropped"), default=list, blank=True)
    hot_zone = models.BooleanField(_("hot zone first"), default=False)
    reason = models.TextField(_("reason"), blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("by"),
    )

    class Meta(TenantOwned.Meta):
        verbose_name = _("assignment decision")
        verbose_name_plural = _("assignment decisions")
        ordering = ["-decided_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "lead", "-decided_at"], name="decision_lead"),
            models.Index(fields=["tenant", "-decided_at"], name="decision_newest"),
        ]

    def __str__(self) -> str:
        return f"{self.lead} → {self.chosen or self.get_outcome_display()}"


class RepLedgerDay(TenantOwned):
    """The fairness ledger (F10), one row per rep and day in the tenant's time zone.

    `expected` adds, for every decision the rep was eligible for, their share of it
    (share weight ÷ the eligible reps' total); `received` counts the leads they got. A rep
    on leave is eligible for nothing, so their expectation does not grow: on return they
    are neither owed a flood nor behind."""

    membership = models.ForeignKey(
        Membership, on_delete=models.CASCADE, related_name="+", verbose_name=_("rep")
    )
    day = models.DateField(_("day"))
    expected = models.FloatField(_("expected"), default=0)
    received = models.IntegerField(_("received"), default=0)

    class Meta(TenantOwned.Meta):
        verbose_name = _("ledger day")
        verbose_name_plural = _("ledger days")
        constraints = [
            *TenantOwned.Meta.constraints,
            models.UniqueConstraint(
                fields=["tenant", "membership", "day"], name="repledgerday_one_per_day"
            ),
        ]
        indexes = [models.Index(fields=["tenant", "day"], name="ledger_tenant_day")]

    def __str__(self) -> str:
        return f"{self.membership_id} {self.day}: {self.received}/{self.expected:.2f}"


class ReplayStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


class ReplayRun(TenantOwned):
    """One simulation of the draft policy over the last N days (F14); touches no lead."""

    policy = models.ForeignKey(
        AssignmentPolicy, on_delete=models.CASCADE, related_name="replays", verbose_name=_("draft")
    )
    baseline = models.ForeignKey(
        AssignmentPolicy,
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("compared with"),
    )
    days = models.PositiveSmallIntegerField(
        _("days"), default=30, validators=[MinValueValidator(1), MaxValueValidator(365)]
    )
    parameters = models.JSONField(_("draft as simulated"), default=dict)
    status = models.CharField(
        _("status"), max_length=10, choices=ReplayStatus.choices, default=ReplayStatus.QUEUED
    )
    result = models.JSONField(_("result"), default=dict, blank=True)
    error = models.TextField(_("error"), blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("requested by"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta(TenantOwned.Meta):
        verbose_name = _("replay")
        verbose_name_plural = _("replays")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.policy} · {self.days} d · {self.get_status_display()}"


# --- SLA clocks (F11, F13) ----------------------------------------------------------------


class SlaPolicy(TenantOwned):
    """The tenant's SLA thresholds; one row per tenant, created with the defaults."""

    a_unassigned_minutes = models.PositiveIntegerField(
        _("A-class lead unassigned (minutes)"), default=30, validators=[MinValueValidator(1)]
    )
    unassigned_minutes = models.PositiveIntegerField(
        _("any lead unassigned (minutes)"), default=120, validators=[MinValueValidator(1)]
    )
    unverified_hours = models.PositiveIntegerField(
        _("assigned, not verified: remind the rep after (hours)"),
        default=24,
        validators=[MinValueValidator(1)],
    )
    unverified_escalation_hours = models.PositiveIntegerField(
        _("… then tell the manager after another (hours)"),
        default=8,
        validators=[MinValueValidator(1)],
    )
    no_followup_hours = models.PositiveIntegerField(
        _("valid lead without follow-up (hours)"), default=72, validators=[MinValueValidator(1)]
    )
    second_touch_hours = models.PositiveIntegerField(
        _("no second touch after the first: back to the pool (hours)"),
        default=72,
        validators=[MinValueValidator(1)],
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta(TenantOwned.Meta):
        verbose_name = _("SLA policy")
        verbose_name_plural = _("SLA policies")
        constraints = [
            *TenantOwned.Meta.constraints,
            models.UniqueConstraint(fields=["tenant"], name="slapolicy_one_per_tenant"),
        ]

    def __str__(self) -> str:
        return str(_("SLA policy"))


class SlaThreshold(models.TextChoices):
    A_UNASSIGNED = "a_unassigned", _("A-class lead unassigned")
    UNASSIGNED = "unassigned", _("Lead unassigned")
    UNVERIFIED_REP = "unverified_rep", _("Not verified: rep reminded")
    UNVERIFIED_MANAGER = "unverified_mgr", _("Not verified: manager told")
    NO_FOLLOWUP = "no_followup", _("Valid lead without follow-up")
    NO_SECOND_TOUCH = "no_second_touch", _("No second touch: back to the pool")


class SlaAlert(TenantOwned):
    """One fired threshold for one lead and dispatch round. The unique constraint is what
    makes the sweep fire once, however many beat processes run it."""

    lead = models.ForeignKey(
        Lead, on_delete=models.CASCADE, related_name="sla_alerts", verbose_name=_("lead")
    )
    threshold = models.CharField(_("threshold"), max_length=20, choices=SlaThreshold.choices)
    round = models.PositiveSmallIntegerField(_("dispatch round"), default=0)
    owner = models.ForeignKey(
        Membership,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("owner"),
    )
    fired_at = models.DateTimeField(_("fired at"), default=timezone.now)

    class Meta(TenantOwned.Meta):
        verbose_name = _("SLA alert")
        verbose_name_plural = _("SLA alerts")
        ordering = ["-fired_at"]
        constraints = [
            *TenantOwned.Meta.constraints,
            models.UniqueConstraint(
                fields=["tenant", "lead", "threshold", "round"], name="slaalert_once"
            ),
        ]
        indexes = [models.Index(fields=["tenant", "-fired_at"], name="slaalert_newest")]

    def __str__(self) -> str:
        return f"{self.lead} · {self.get_threshold_display()}"


# --- The daily board (F15, F19) -------------------------------------------------------------


class BoardSettings(TenantOwned):
    """How the board ranks a rep's work (F15): rank = level weight (the customer's, or a
    lead's source grade) × lead score factor × urgency weight × (1 + hours overdue ×
    overdue weight). One row per tenant."""

    level_a = models.FloatField(_("weight: A-level customer or A-grade lead"), default=3.0)
    level_b = models.FloatField(_("weight: B-level customer or B-grade lead"), default=2.0)
    level_c = models.FloatField(_("weight: C-level customer or C-grade lead"), default=1.0)
    urgency_verify = models.FloatField(_("urgency: lead to verify"), default=3.0)
    urgency_overdue = models.FloatField(_("urgency: follow-up overdue"), default=2.5)
    urgency_due = models.FloatField(_("urgency: follow-up due today"), default=1.5)
    urgency_revisit = models.FloatField(_("urgency: revisit"), default=2.0)
    overdue_per_hour = models.FloatField(
        _("weight per hour overdue"), default=0.05, validators=[MinValueValidator(0)]
    )

    class Meta(TenantOwned.Meta):
        verbose_name = _("board settings")
        verbose_name_plural = _("board settings")
        constraints = [
            *TenantOwned.Meta.constraints,
            models.UniqueConstraint(fields=["tenant"], name="boardsettings_one_per_tenant"),
        ]

    def __str__(self) -> str:
        return str(_("board settings"))


class DailySummary(TenantOwned):
    """A rep's closed day (F19): what was done and what is left, as it stood then."""

    membership = models.ForeignKey(
        Membership, on_delete=models.CASCADE, related_name="+", verbose_name=_("rep")
    )
    day = models.DateField(_("day"))
    contacts = models.PositiveIntegerField(_("contacts made"), default=0)
    loops_closed = models.PositiveIntegerField(_("loops closed"), default=0)
    overdue_left = models.PositiveIntegerField(_("overdue items left"), default=0)
    tomorrow = models.JSONField(_("tomorrow's actions"), default=list, blank=True)
    details = models.JSONField(_("details"), default=dict, blank=True)
    closed_at = models.DateTimeField(_("closed at"), default=timezone.now)

    class Meta(TenantOwned.Meta):
        verbose_name = _("daily summary")
        verbose_name_plural = _("daily summaries")
        ordering = ["-day", "membership_id"]
        constraints = [
            *TenantOwned.Meta.constraints,
            models.UniqueConstraint(
                fields=["tenant", "membership", "day"], name="dailysummary_one_per_day"
            ),
        ]
        indexes = [models.Index(fields=["tenant", "day"], name="dailysummary_day")]

    def __str__(self) -> str:
        return f"{self.membership_id} {self.day}"


# -- The lead-quality report's daily roll-ups (F36; leads/reports/rollups.py) -----------------


class ReportChange(TenantOwned):
    """A mark that leads created in one UTC hour changed in a way the lead-quality report
    counts. Written by PostgreSQL triggers on leads and follow-ups (migration 0006), so no
    code path can forget it; drained by `leads.reports.rollups.refresh`. While a mark is pending,
    the local days its hour overlaps are counted live, never from their roll-ups."""

    hour = models.DateTimeField(_("hour"))

    class Meta(TenantOwned.Meta):
        verbose_name = _("report change")
        verbose_name_plural = _("report changes")
        indexes = [models.Index(fields=["tenant", "hour"], name="reportchange_hour")]

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.hour:%Y-%m-%d %H:00}"


class ReportDay(TenantOwned):
    """A local day whose roll-ups are computed, and in which time zone. A day is read from
    its roll-ups only when the zone is still the tenant's and no change mark is pending."""

    day = models.DateField(_("day"))
    time_zone = models.CharField(_("time zone"), max_length=64)
    computed_at = models.DateTimeField(_("computed at"), default=timezone.now)

    class Meta(TenantOwned.Meta):
        verbose_name = _("report day")
        verbose_name_plural = _("report days")
        constraints = [
            *TenantOwned.Meta.constraints,
            models.UniqueConstraint(fields=["tenant", "day"], name="reportday_one_per_day"),
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.day} ({self.time_zone})"


class QualityDay(TenantOwned):
    """The leads created on one local day, counted per channel, source grade and invalid
    reason (null for leads without one): the report's channel, grade and reason tables
    are sums of these rows. Ids, not foreign keys: derived data that a later refresh
    rewrites."""

    day = models.DateField(_("day"))
    channel_id = models.BigIntegerField(_("channel"))
    source_grade = models.CharField(_("source grade"), max_length=1)
    invalid_reason_id = models.BigIntegerField(_("invalid reason"), null=True)
    delivered = models.IntegerField(default=0)
    verified_24h = models.IntegerField(default=0)
    valid_24h = models.IntegerField(default=0)
    invalid = models.IntegerField(default=0)
    duplicates = models.IntegerField(default=0)
    suspect = models.IntegerField(default=0)

    class Meta(TenantOwned.Meta):
        verbose_name = _("lead-quality day")
        verbose_name_plural = _("lead-quality days")
        indexes = [models.Index(fields=["tenant", "day"], name="qualityday_day")]


class QualityRepDay(TenantOwned):
    """The leads created on one local day, per owner: valid ones, those followed up within
    72 h, those assigned and touched, and the exact times to first touch of the
    latter (float64 seconds, sorted, packed) so medians over any range stay exact."""

    day = models.DateField(_("day"))
    owner_id = models.BigIntegerField(_("owner"))
    valid = models.IntegerField(default=0)
    followed_up = models.IntegerField(default=0)
    touched = models.IntegerField(default=0)
    first_touch_seconds = models.BinaryField(_("times to first touch"), default=b"")

    class Meta(TenantOwned.Meta):
        verbose_name = _("lead-quality rep day")
        verbose_name_plural = _("lead-quality rep days")
        indexes = [models.Index(fields=["tenant", "day"], name="qualityrepday_day")]
