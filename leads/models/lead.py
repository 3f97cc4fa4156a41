"""Leads (F7) and their timeline (F20), with the preset invalid reasons (F16)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crm.fields import TenantForeignKey
from crm.formatting import format_datetime, format_phone
from crm.indexes import NullsOrderIndex
from crm.models import Membership, TenantOwned
from crm.tenancy import TenantManager, TenantQuerySet
from customers.models import ContactMethod, Industry
from leads.models.choices import (
    REVISIT_WINDOW,
    LeadEventKind,
    LeadStatus,
    PoolReason,
    RegistryStatus,
    SlaThreshold,
    SourceGrade,
    Verification,
)
from leads.models.intake import Channel, Tag


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
        read (`leads.assignment.reps.open_loads`): leads with an owner, status assigned and no
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

    channel = TenantForeignKey(
        Channel, on_delete=models.PROTECT, related_name="leads", verbose_name=_("channel")
    )
    source_grade = models.CharField(_("source grade"), max_length=1, choices=SourceGrade.choices)
    status = models.CharField(
        _("status"), max_length=10, choices=LeadStatus.choices, default=LeadStatus.NEW
    )
    owner = TenantForeignKey(
        Membership,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_leads",
        verbose_name=_("owner"),
    )
    # db_constraint=False: the link table's keys are composite, tenant first (crm.keys).
    tags = models.ManyToManyField(
        Tag, blank=True, db_constraint=False, related_name="leads", verbose_name=_("tags")
    )
    revisit_of = TenantForeignKey(
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
    invalid_reason = TenantForeignKey(
        "InvalidReason",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="leads",
        verbose_name=_("invalid reason"),
    )
    verified_by = TenantForeignKey(
        Membership,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("verified by"),
    )
    # Whether an opportunity was opened from the lead (one whose origin lead it is): kept
    # by PostgreSQL triggers of the opportunities app (its migration 0007), which also
    # restore it when a save would write a stale value; the lead-to-contract cycle's
    # valid leads read it instead of an EXISTS over every opportunity.
    has_opportunity = models.BooleanField(
        _("opportunity opened"), default=False, db_default=False, editable=False
    )
    # Whether the owner logged a follow-up on the lead (customers.Interaction by the owner)
    # within 72 h of the assignment (assigned_at ≤ at ≤ assigned_at + 72 h): the process
    # report's 72 h follow-up (leads.reports.process). Kept by PostgreSQL triggers (leads
    # migration 0023) on follow-ups and on a lead whose owner or assignment changes.
    followed_up_72h = models.BooleanField(
        _("followed up within 72 h"), default=False, db_default=False, editable=False
    )
    customer = TenantForeignKey(
        "customers.Customer",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="leads",
        verbose_name=_("customer"),
    )
    contact = TenantForeignKey(
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
            # The revisits of a range (the duplicates figure and its list): the few of
            # them by their own index, not the foreign key's over every tenant's revisits.
            models.Index(
                fields=["tenant", "-created_at", "-id"],
                condition=Q(revisit_of__isnull=False),
                name="lead_revisits",
            ),
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
            # The suspect filter (1 lead in 30 or so): its page and its capped count read
            # this, not every lead of the tenant.
            models.Index(
                fields=["tenant", "-created_at", "-id"],
                name="lead_suspect",
                condition=Q(is_suspect=True),
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
            # The response-time water level (leads.reports.levels): a day's assignments.
            models.Index(
                fields=["tenant", "assigned_at"],
                name="lead_assigned_at",
                condition=Q(assigned_at__isnull=False),
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


class LeadEvent(TenantOwned):
    """One entry of a lead's timeline (F20); later stages add their kinds."""

    lead = TenantForeignKey(
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
        indexes = [
            models.Index(fields=["tenant", "lead", "-at"], name="leadevent_lead_at"),
            # The self-test: a rep's timeline entries over a period (daily active reps),
            # and the contacts of a period (follow-up notes within 24 h).
            models.Index(fields=["tenant", "actor", "at"], name="leadevent_actor_at"),
            models.Index(
                fields=["tenant", "at"], name="leadevent_touch_at", condition=Q(kind="touch")
            ),
        ]

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
