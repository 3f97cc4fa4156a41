"""Lead intake (F1–F7): channels, the inbound-event inbox, tags and tagging rules, and
import batches."""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.fields import TenantForeignKey
from crm.formatting import format_datetime
from crm.models import TenantOwned
from crm.tenancy import TenantManager, TenantQuerySet
from leads.models.choices import (
    ChannelType,
    EventSource,
    EventStatus,
    ImportStatus,
    MappingPreset,
    SourceGrade,
    TagColor,
    preset_choices,
    presets_for,
)


def new_channel_key() -> str:
    return secrets.token_urlsafe(18)  # 24 URL-safe characters, 144 bits


def new_channel_secret() -> str:
    return secrets.token_urlsafe(32)


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

    tag = TenantForeignKey(
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
    # Unique per tenant (every unique key starts with the tenant, docs/scaling.md); across
    # tenants by its 144 random bits. Found by itself through `leads_channel_by_key`.
    key = models.CharField(_("key"), max_length=64, default=new_channel_key, editable=False)
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
        db_constraint=False,  # the link table's keys are composite, tenant first (crm.keys)
        related_name="channels",
        verbose_name=_("tags"),
        help_text=_("Put on every lead from this channel."),
    )
    preset = models.CharField(
        _("mapping preset"),
        max_length=20,
        choices=preset_choices,
        blank=True,
        default=MappingPreset.NONE,
        help_text=_(
            "The payload format the channel sends. A helpdesk channel declares its "
            "helpdesk's (blank: the ticket field names of docs/webhooks.md)."
        ),
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
    # The helpdesk's app ID when it signs its pushes natively (Sobot's appid; type helpdesk).
    native_app_id = models.CharField(
        _("helpdesk app ID"),
        max_length=64,
        blank=True,
        help_text=_(
            "Helpdesk channels signed the helpdesk's own way: its app ID (Sobot: appid). "
            "The channel's secret is the signing key."
        ),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)

    class Meta(TenantOwned.Meta):
        verbose_name = _("channel")
        verbose_name_plural = _("channels")
        ordering = ["name"]
        constraints = [
            *TenantOwned.Meta.constraints,
            models.UniqueConstraint(fields=["tenant", "key"], name="channel_key_per_tenant"),
        ]
        indexes = [models.Index(fields=["key"], name="channel_key")]

    def __str__(self) -> str:
        return self.name

    def clean(self):
        super().clean()
        if self.type and self.preset not in presets_for(self.type):
            raise ValidationError(
                {"preset": _("This preset is not one a channel of this type can declare.")}
            )

    def rotate_secret(self) -> str:
        self.secret = new_channel_secret()
        return self.secret


class InboundEventQuerySet(TenantQuerySet):
    def stale(self, older_than: timedelta = timedelta(minutes=2)):
        return self.filter(status=EventStatus.RECEIVED, received_at__lt=timezone.now() - older_than)


class InboundEvent(TenantOwned):
    """The inbox (F2): every payload exactly as received, stored before any processing."""

    channel = TenantForeignKey(
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
    lead = TenantForeignKey(
        "Lead",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="inbound_events",
        verbose_name=_("lead"),
    )
    batch = TenantForeignKey(
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


class ImportBatch(TenantOwned):
    """One uploaded file (F1 import): parsed rows kept for the preview, then one inbound
    event per valid row on confirmation."""

    channel = TenantForeignKey(
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
