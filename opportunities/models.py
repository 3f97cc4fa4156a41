"""Opportunities (F21–F26): stages that demand evidence, the buying committee, validity,
the signed contract and an honest forecast. docs/opportunities.md is the map.

The tenant's pipeline is data: `Stage` rows with their `StageRequirement`s (the required
actions), `AttachmentKind`s, `ChainRole`s (the decision-chain roles) and `LostReason`s,
created with their defaults the first time a tenant uses opportunities
(opportunities.setup) and edited in the admin. An `Opportunity` moves only through the
services in opportunities.services, which check the requirements on every path; its
history (`OpportunityEvent`) is written by database triggers (migration 0002), so that
no write, a queryset update included, can skip it.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from crm.fields import TenantForeignKey
from crm.models import Membership, TenantOwned
from crm.tenancy import TenantManager, TenantQuerySet
from customers.models import Contact, Customer, DecisionRole

# -- the tenant's lists ---------------------------------------------------------------------


class Stage(TenantOwned):
    """A pipeline stage. Its required actions must all be met before an opportunity moves
    past it (to a later stage, or to won)."""

    code = models.SlugField(
        _("code"),
        max_length=30,
        help_text=_("What the advance endpoint and the CSV name the stage by, e.g. needs."),
    )
    name = models.CharField(_("name"), max_length=60)
    position = models.PositiveSmallIntegerField(_("order"), default=0)
    default_probability = models.PositiveSmallIntegerField(
        _("default probability (%)"),
        validators=[MinValueValidator(0), MaxValueValidator(100)],
        help_text=_(
            "Used until the tenant has 20 closed cases through this stage in 12 months; "
            "then the nightly calibration replaces it."
        ),
    )
    days_to_stall = models.PositiveSmallIntegerField(
        _("days to stall"),
        default=14,
        validators=[MinValueValidator(1)],
        help_text=_("An opportunity with no activity for this many days goes on the board."),
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta(TenantOwned.Meta):
        verbose_name = _("stage")
        verbose_name_plural = _("stages")
        ordering = ["position", "id"]
        constraints = [
            *TenantOwned.Meta.constraints,
            models.UniqueConstraint(fields=["tenant", "code"], name="stage_unique_code"),
        ]

    def __str__(self) -> str:
        return self.name


class FileType(models.TextChoices):
    """What an attachment's bytes are (opportunities.files reads them; the name is not
    believed)."""

    PDF = "pdf", "PDF"
    DOCX = "docx", "Word (.docx)"
    XLSX = "xlsx", "Excel (.xlsx)"
    PNG = "png", "PNG"
    JPEG = "jpeg", "JPEG"
    CSV = "csv", "CSV"


class AttachmentKind(TenantOwned):
    code = models.SlugField(_("code"), max_length=30)
    name = models.CharField(_("name"), max_length=60)
    allowed_types = models.JSONField(
        _("allowed file types"),
        default=list,
        help_text=_(
            "File types accepted, read from the file's bytes: pdf, docx, xlsx, png, jpeg, csv."
        ),
    )
    max_size_mb = models.PositiveSmallIntegerField(
        _("size limit (MB)"), default=20, validators=[MinValueValidator(1), MaxValueValidator(200)]
    )
    is_contract = models.BooleanField(
        _("signed contract"),
        default=False,
        help_text=_(
            "Winning needs one of these with the status 已生效; service agents never download them."
        ),
    )
    counts_for_validity = models.BooleanField(
        _("counts for validity"),
        default=False,
        help_text=_("A requirement document or competitor table: one makes the validity check."),
    )
    position = models.PositiveSmallIntegerField(_("order"), default=0)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta(TenantOwned.Meta):
        verbose_name = _("attachment kind")
        verbose_name_plural = _("attachment kinds")
        ordering = ["position", "id"]
        constraints = [
            *TenantOwned.Meta.constraints,
            models.UniqueConstraint(fields=["tenant", "code"], name="attachment_kind_code"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        unknown = [t for t in self.allowed_types or [] if t not in FileType.values]
        if not self.allowed_types or unknown:
            raise ValidationError(
                {
                    "allowed_types": _("Name one or more of: %(types)s.")
                    % {"types": ", ".join(FileType.values)}
                }
            )


class ChainRole(TenantOwned):
    """A decision-chain role of the tenant's list (CIO, 采购总监 …), mapped to the role a
    follow-up records (customers.DecisionRole), so a follow-up that reached it updates
    its members' contact status."""

    name = models.CharField(_("name"), max_length=60)
    decision_role = models.CharField(
        _("decision-chain role"), max_length=20, choices=DecisionRole.choices
    )
    position = models.PositiveSmallIntegerField(_("order"), default=0)
    is_active = models.BooleanField(_("active"), default=True)
    required = models.BooleanField(
        _("required in a complete chain"),
        default=False,
        help_text=_(
            "An open opportunity's decision chain is complete when every required role "
            "has a member whose attitude is known (the decision-chain water level)."
        ),
    )

    class Meta(TenantOwned.Meta):
        verbose_name = _("decision-chain role")
        verbose_name_plural = _("decision-chain roles")
        ordering = ["position", "id"]
        constraints = [
            *TenantOwned.Meta.constraints,
            models.UniqueConstraint(fields=["tenant", "name"], name="chain_role_unique_name"),
        ]

    def __str__(self) -> str:
        return self.name


class LostReason(TenantOwned):
    """A specific reason an opportunity was lost (F24): "CTO否决技术架构", "预算冻结" …"""

    name = models.CharField(_("name"), max_length=60)
    needs_detail = models.BooleanField(
        _("needs a detail"),
        default=False,
        help_text=_('The reason names something, e.g. the competitor chosen ("选择竞品: 西门子").'),
    )
    position = models.PositiveSmallIntegerField(_("order"), default=0)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta(TenantOwned.Meta):
        verbose_name = _("lost reason")
        verbose_name_plural = _("lost reasons")
        ordering = ["position", "id"]
        constraints = [
            *TenantOwned.Meta.constraints,
            models.UniqueConstraint(fields=["tenant", "name"], name="lost_reason_unique_name"),
        ]

    def __str__(self) -> str:
        return self.name


# -- required actions -----------------------------------------------------------------------


class RequirementKind(models.TextChoices):
    ATTACHMENT = "attachment", _("An attachment of a kind")
    FOLLOW_UPS = "follow_ups", _("Follow-ups with a talk tag")
    QUESTION = "question", _("A technical question marked")
    DECISION_CHAIN = "decision_chain", _("A decision-chain member")
    FIELD = "field", _("A field filled")


class OpportunityField(models.TextChoices):
    """The fields a `field` requirement can ask for."""

    AMOUNT = "amount", _("Amount")
    BUDGET_BAND = "budget_band", _("Budget band (not 待确认)")
    EXPECTED_CLOSE = "expected_close", _("Expected close month")
    PRODUCT_LINE = "product_line", _("Product line")
    CONTACT = "contact", _("Main contact")


class Influence(models.TextChoices):
    HIGH = "high", _("High")
    MEDIUM = "medium", _("Medium")
    LOW = "low", _("Low")


class Attitude(models.TextChoices):
    SUPPORT = "support", _("Supports")
    NEUTRAL = "neutral", _("Watching")
    OPPOSE = "oppose", _("Opposes")
    UNKNOWN = "unknown", _("Unknown")


# Which parameters each kind takes (the others stay empty): StageRequirement.clean.
REQUIREMENT_PARAMETERS = {
    RequirementKind.ATTACHMENT: {"attachment_kind"},
    RequirementKind.FOLLOW_UPS: {"count", "talk_tag"},
    RequirementKind.QUESTION: set(),
    RequirementKind.DECISION_CHAIN: {"count", "decision_role", "attitude"},
    RequirementKind.FIELD: {"field"},
}
_PARAMETERS = ("attachment_kind", "count", "talk_tag", "decision_role", "attitude", "field")


class StageRequirement(TenantOwned):
    """One required action of a stage, of a typed kind with its parameters."""

    stage = TenantForeignKey(
        Stage, on_delete=models.CASCADE, related_name="requirements", verbose_name=_("stage")
    )
    kind = models.CharField(_("kind"), max_length=20, choices=RequirementKind.choices)
    label = models.CharField(
        _("label"),
        max_length=100,
        blank=True,
        help_text=_("Shown to the rep; written for you if empty."),
    )
    attachment_kind = TenantForeignKey(
        AttachmentKind,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("attachment kind"),
    )
    count = models.PositiveSmallIntegerField(
        _("how many"), null=True, blank=True, validators=[MinValueValidator(1)]
    )
    talk_tag = models.CharField(
        _("talk tag"), max_length=60, blank=True, help_text=_("Empty: any follow-up counts.")
    )
    decision_role = models.CharField(
        _("decision-chain role"),
        max_length=20,
        choices=DecisionRole.choices,
        blank=True,
        help_text=_("Empty: any role."),
    )
    attitude = models.CharField(
        _("attitude"),
        max_length=10,
        choices=Attitude.choices,
        blank=True,
        help_text=_("Empty: any attitude."),
    )
    field = models.CharField(
        _("field"), max_length=20, choices=OpportunityField.choices, blank=True
    )
    position = models.PositiveSmallIntegerField(_("order"), default=0)

    class Meta(TenantOwned.Meta):
        verbose_name = _("required action")
        verbose_name_plural = _("required actions")
        ordering = ["stage__position", "position", "id"]
        indexes = [models.Index(fields=["tenant", "stage", "position"], name="requirement_stage")]

    def __str__(self) -> str:
        return self.label or self.auto_label()

    def auto_label(self) -> str:
        return describe(self)

    def clean(self) -> None:
        if self.kind not in REQUIREMENT_PARAMETERS:
            return
        wanted = REQUIREMENT_PARAMETERS[self.kind]
        errors = {}
        for name in _PARAMETERS:
            value = getattr(self, f"{name}_id" if name == "attachment_kind" else name)
            filled = value not in (None, "")
            if name in wanted and name in ("attachment_kind", "field") and not filled:
                errors[name] = _("This kind of action needs it.")
            elif name not in wanted and filled:
                errors[name] = _("Not used by this kind of action: leave it empty.")
        if self.kind == RequirementKind.FOLLOW_UPS and not self.count:
            errors["count"] = _("How many follow-ups are needed?")
        if errors:
            raise ValidationError(errors)


def describe(requirement: StageRequirement) -> str:
    """The requirement in words, when the admin gave it no label."""
    kind = requirement.kind
    if kind == RequirementKind.ATTACHMENT:
        name = requirement.attachment_kind.name if requirement.attachment_kind_id else "?"
        if requirement.attachment_kind_id and requirement.attachment_kind.is_contract:
            return gettext("%(kind)s uploaded with the status 已生效") % {"kind": name}
        return gettext("%(kind)s attached") % {"kind": name}
    if kind == RequirementKind.FOLLOW_UPS:
        count = requirement.count or 1
        if requirement.talk_tag:
            return gettext("%(count)d follow-up(s) tagged “%(tag)s”") % {
                "count": count,
                "tag": requirement.talk_tag,
            }
        return gettext("%(count)d follow-up(s) logged") % {"count": count}
    if kind == RequirementKind.QUESTION:
        return gettext("A technical question marked")
    if kind == RequirementKind.DECISION_CHAIN:
        who = (
            DecisionRole(requirement.decision_role).label
            if requirement.decision_role
            else gettext("decision-chain member")
        )
        if requirement.attitude:
            return gettext("%(who)s mapped who %(attitude)s") % {
                "who": who,
                "attitude": str(Attitude(requirement.attitude).label).lower(),
            }
        return gettext("%(who)s mapped") % {"who": who}
    if kind == RequirementKind.FIELD:
        return gettext("%(field)s filled") % {"field": OpportunityField(requirement.field).label}
    return str(kind)


# -- the opportunity ------------------------------------------------------------------------


class BudgetBand(models.TextChoices):
    PENDING = "pending", _("待确认")
    UNDER_100K = "lt100k", _("10万以下")
    TO_500K = "100k_500k", _("10–50万")
    TO_1M = "500k_1m", _("50–100万")
    TO_5M = "1m_5m", _("100–500万")
    OVER_5M = "gt5m", _("500万以上")


class OpportunityStatus(models.TextChoices):
    OPEN = "open", pgettext_lazy("opportunity status", "Open")
    WON = "won", _("Won")
    LOST = "lost", _("Lost")


class OpportunityQuerySet(TenantQuerySet):
    def open(self):
        return self.filter(status=OpportunityStatus.OPEN)


class Opportunity(TenantOwned):
    name = models.CharField(_("name"), max_length=200)
    customer = TenantForeignKey(
        Customer, on_delete=models.PROTECT, related_name="opportunities", verbose_name=_("customer")
    )
    contact = TenantForeignKey(
        Contact,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("main contact"),
    )
    owner = TenantForeignKey(
        Membership, on_delete=models.PROTECT, related_name="opportunities", verbose_name=_("owner")
    )
    origin_lead = TenantForeignKey(
        "leads.Lead",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="opportunities",
        verbose_name=_("origin lead"),
    )
    product_line = models.CharField(_("product line"), max_length=100, blank=True)
    amount = models.DecimalField(
        _("amount (CNY)"),
        max_digits=14,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
    )
    budget_band = models.CharField(
        _("budget band"), max_length=10, choices=BudgetBand.choices, default=BudgetBand.PENDING
    )
    expected_close = models.DateField(
        _("expected close month"), null=True, blank=True, help_text=_("The month's first day.")
    )
    stage = TenantForeignKey(
        Stage, on_delete=models.PROTECT, related_name="opportunities", verbose_name=_("stage")
    )
    probability = models.PositiveSmallIntegerField(
        _("probability (%)"), validators=[MinValueValidator(0), MaxValueValidator(100)]
    )
    status = models.CharField(
        _("status"),
        max_length=5,
        choices=OpportunityStatus.choices,
        default=OpportunityStatus.OPEN,
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    stage_entered_at = models.DateTimeField(_("in this stage since"), default=timezone.now)
    last_activity_at = models.DateTimeField(_("last activity"), default=timezone.now)
    # The validity funnel (F23): the evidence of each check, kept by whatever writes it
    # (a visit or meeting logged on the customer: a trigger on customers_interaction,
    # migration 0002; the document and the approval: opportunities.services), and
    # `is_valid`, computed by PostgreSQL from them on every write, whatever the path.
    visit_at = models.DateTimeField(_("visit or meeting logged"), null=True, blank=True)
    evidence_at = models.DateTimeField(
        _("requirement document or competitor table"), null=True, blank=True
    )
    approved_at = models.DateTimeField(_("validity approved"), null=True, blank=True)
    is_valid = models.GeneratedField(
        expression=Q(visit_at__isnull=False)
        & ~Q(budget_band="pending")
        & Q(evidence_at__isnull=False)
        & Q(approved_at__isnull=False),
        output_field=models.BooleanField(),
        db_persist=True,
        verbose_name=_("valid"),
    )
    won_at = models.DateTimeField(_("won at"), null=True, blank=True)
    lost_at = models.DateTimeField(_("lost at"), null=True, blank=True)
    lost_reason = TenantForeignKey(
        LostReason,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("lost reason"),
    )
    lost_detail = models.CharField(_("lost reason detail"), max_length=100, blank=True)
    lost_blocker = TenantForeignKey(
        "OpportunityContact",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("blocked by"),
    )
    # The lead-to-contract cycle (F25, F38): the origin lead's first screening (its
    # verification, else its creation) to the signature, in days.
    cycle_started_at = models.DateTimeField(_("cycle started"), null=True, blank=True)
    lead_to_contract_days = models.PositiveIntegerField(
        _("lead to contract (days)"), null=True, blank=True
    )

    objects = TenantManager.from_queryset(OpportunityQuerySet)()

    class Meta(TenantOwned.Meta):
        verbose_name = _("opportunity")
        verbose_name_plural = _("opportunities")
        ordering = ["-last_activity_at", "-id"]
        indexes = [
            # The kanban: one column (a stage's open opportunities), most recently active
            # first, for the team and for one owner.
            models.Index(
                F("tenant"),
                F("stage"),
                F("last_activity_at").desc(),
                F("id").desc(),
                name="opportunity_column",
                condition=Q(status="open"),
            ),
            models.Index(
                F("tenant"),
                F("owner"),
                F("stage"),
                F("last_activity_at").desc(),
                F("id").desc(),
                name="opportunity_owner_column",
                condition=Q(status="open"),
            ),
            # The kanban's column totals (count, amount, weighted, valid) read from the
            # index alone.
            models.Index(
                fields=["tenant", "stage"],
                include=["amount", "probability", "is_valid"],
                name="opportunity_stage_totals",
                condition=Q(status="open"),
            ),
            # The table, newest first; by owner.
            models.Index(
                F("tenant"), F("created_at").desc(), F("id").desc(), name="opportunity_created"
            ),
            models.Index(
                F("tenant"),
                F("owner"),
                F("created_at").desc(),
                F("id").desc(),
                name="opportunity_owner",
            ),
            # The forecast: open ones by expected month; signed ones by their month.
            models.Index(
                fields=["tenant", "expected_close"],
                name="opportunity_expected",
                condition=Q(status="open"),
            ),
            models.Index(
                fields=["tenant", "won_at"], name="opportunity_won", condition=Q(status="won")
            ),
            # The metrics' families dated by winning and losing (opportunities.metrics): a
            # period's rows whatever their status now (the dashboard's figures filter the
            # status inside the aggregate), newest first for their drill-down lists.
            models.Index(
                F("tenant"),
                F("won_at").desc(),
                F("id").desc(),
                name="opportunity_won_at",
                condition=Q(won_at__isnull=False),
            ),
            models.Index(
                F("tenant"),
                F("lost_at").desc(),
                F("id").desc(),
                name="opportunity_lost_at",
                condition=Q(lost_at__isnull=False),
            ),
            models.Index(fields=["tenant", "customer"], name="opportunity_customer"),
            models.Index(fields=["tenant", "origin_lead"], name="opportunity_lead"),
            # The contracts won from a cohort of leads (opportunities.cycle_metrics): the
            # won ones by their origin lead, with their days, counted from the index.
            models.Index(
                fields=["tenant", "origin_lead"],
                include=["lead_to_contract_days", "id"],
                condition=Q(status="won"),
                name="opportunity_won_lead",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_open(self) -> bool:
        return self.status == OpportunityStatus.OPEN


class ContactStatus(models.TextChoices):
    NOT_YET = "not_yet", _("Not contacted yet")
    REACHED = "reached", _("Reached")
    ENGAGED = "engaged", _("Engaged")


class OpportunityContact(TenantOwned):
    """A member of the opportunity's decision chain (F22)."""

    opportunity = TenantForeignKey(
        Opportunity, on_delete=models.CASCADE, related_name="chain", verbose_name=_("opportunity")
    )
    contact = TenantForeignKey(
        Contact, on_delete=models.PROTECT, related_name="+", verbose_name=_("contact")
    )
    role = TenantForeignKey(
        ChainRole, on_delete=models.PROTECT, related_name="+", verbose_name=_("role")
    )
    influence = models.CharField(
        _("influence"), max_length=6, choices=Influence.choices, default=Influence.MEDIUM
    )
    attitude = models.CharField(
        _("attitude"), max_length=10, choices=Attitude.choices, default=Attitude.UNKNOWN
    )
    contact_status = models.CharField(
        _("contact status"),
        max_length=10,
        choices=ContactStatus.choices,
        default=ContactStatus.NOT_YET,
    )
    last_contacted_at = models.DateTimeField(_("last contacted"), null=True, blank=True)
    key_demands = models.CharField(_("key demands"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("added at"), default=timezone.now)

    class Meta(TenantOwned.Meta):
        verbose_name = _("decision-chain member")
        verbose_name_plural = _("decision chain")
        ordering = ["opportunity", "id"]
        constraints = [
            *TenantOwned.Meta.constraints,
            models.UniqueConstraint(
                fields=["tenant", "opportunity", "contact", "role"], name="chain_member_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.contact} · {self.role}"


class AttachmentStatus(models.TextChoices):
    DRAFT = "", _("—")
    EFFECTIVE = "effective", _("已生效")


def attachment_path(instance: Attachment, filename: str) -> str:
    """Where a file is stored: per tenant and opportunity, under an unguessable name (the
    original name is kept in the row, never in the path)."""
    import uuid

    extension = instance.file_type or "bin"
    folder = f"opportunities/{instance.tenant_id}/{instance.opportunity_id}"
    return f"{folder}/{uuid.uuid4().hex}.{extension}"


def attachment_storage():
    """settings.STORAGES["attachments"]: files kept apart from the media served by URL."""
    from django.core.files.storage import storages

    return storages["attachments"]


class Attachment(TenantOwned):
    opportunity = TenantForeignKey(
        Opportunity,
        on_delete=models.CASCADE,
        related_name="attachments",
        verbose_name=_("opportunity"),
    )
    kind = TenantForeignKey(
        AttachmentKind, on_delete=models.PROTECT, related_name="+", verbose_name=_("kind")
    )
    file = models.FileField(
        _("file"), upload_to=attachment_path, max_length=200, storage=attachment_storage
    )
    name = models.CharField(_("file name"), max_length=200)
    file_type = models.CharField(_("file type"), max_length=5, choices=FileType.choices)
    size = models.PositiveIntegerField(_("size (bytes)"))
    sha256 = models.CharField(max_length=64)
    status = models.CharField(
        _("status"), max_length=10, choices=AttachmentStatus.choices, blank=True, default=""
    )
    uploaded_by = TenantForeignKey(
        Membership, on_delete=models.PROTECT, related_name="+", verbose_name=_("uploaded by")
    )
    uploaded_at = models.DateTimeField(_("uploaded at"), default=timezone.now)

    class Meta(TenantOwned.Meta):
        verbose_name = _("attachment")
        verbose_name_plural = _("attachments")
        ordering = ["-uploaded_at", "-id"]
        indexes = [models.Index(fields=["tenant", "opportunity", "kind"], name="attachment_kind")]

    def __str__(self) -> str:
        return self.name


class TechnicalQuestion(TenantOwned):
    """An open technical question marked on the opportunity (a requirement kind)."""

    opportunity = TenantForeignKey(
        Opportunity,
        on_delete=models.CASCADE,
        related_name="questions",
        verbose_name=_("opportunity"),
    )
    text = models.CharField(_("question"), max_length=300)
    opened_by = TenantForeignKey(
        Membership, on_delete=models.PROTECT, related_name="+", verbose_name=_("marked by")
    )
    opened_at = models.DateTimeField(_("marked at"), default=timezone.now)
    closed_at = models.DateTimeField(_("answered at"), null=True, blank=True)

    class Meta(TenantOwned.Meta):
        verbose_name = _("technical question")
        verbose_name_plural = _("technical questions")
        ordering = ["-opened_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "opportunity"], name="question_opportunity"),
            # The sales process figures: the objections raised in a range.
            models.Index(fields=["tenant", "opened_at"], name="question_opened"),
        ]

    def __str__(self) -> str:
        return self.text


# A manager approves an opportunity's validity within this many hours of the request.
APPROVAL_WINDOW_HOURS = 72


class ValidityRequest(TenantOwned):
    """The validity funnel's approval (F23): the owner asks, a manager answers; an approval
    counts only within 72 hours of the request and never from the owner."""

    opportunity = TenantForeignKey(
        Opportunity,
        on_delete=models.CASCADE,
        related_name="validity_requests",
        verbose_name=_("opportunity"),
    )
    requested_by = TenantForeignKey(
        Membership, on_delete=models.PROTECT, related_name="+", verbose_name=_("requested by")
    )
    requested_at = models.DateTimeField(_("requested at"), default=timezone.now)
    decided_by = TenantForeignKey(
        Membership,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("decided by"),
    )
    decided_at = models.DateTimeField(
        pgettext_lazy("approval", "decided at"), null=True, blank=True
    )
    approved = models.BooleanField(_("approved"), null=True, blank=True)
    note = models.CharField(_("note"), max_length=300, blank=True)

    class Meta(TenantOwned.Meta):
        verbose_name = _("validity approval")
        verbose_name_plural = _("validity approvals")
        ordering = ["-requested_at", "-id"]
        indexes = [
            models.Index(
                fields=["tenant", "opportunity", "-requested_at"], name="validity_request"
            ),
            # The managers' queue of requests waiting for an answer.
            models.Index(
                fields=["tenant", "requested_at"],
                name="validity_pending",
                condition=Q(decided_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.opportunity} · {self.requested_at:%Y-%m-%d %H:%M}"


# -- history, calibration, forecast ---------------------------------------------------------


class EventKind(models.TextChoices):
    CREATED = "created", _("Created")
    STAGE = "stage", _("Stage changed")
    STATUS = "status", _("Won or lost")
    AMOUNT = "amount", _("Amount changed")
    VALIDITY = "validity", _("Validity changed")
    REFUSED = "refused", _("Move refused")
    REQUESTED = "requested", _("Approval requested")
    DECIDED = "decided", _("Approval decided")


class Path(models.TextChoices):
    """Which way a change came (set by the service; `sql` when none was)."""

    FORM = "form", _("Form")
    DRAG = "drag", _("Kanban")
    BULK = "bulk", _("Bulk edit")
    IMPORT = "import", _("Import")
    AUTOMATION = "automation", _("Automation")
    SYSTEM = "system", _("System")
    SQL = "sql", _("Direct database change")


class OpportunityEvent(TenantOwned):
    """One entry of an opportunity's history: a change of stage, status, amount or
    validity, an approval asked or given (written by triggers, migration 0002), or a
    refused move with its check (written by the service)."""

    opportunity = TenantForeignKey(
        Opportunity, on_delete=models.CASCADE, related_name="events", verbose_name=_("opportunity")
    )
    kind = models.CharField(_("kind"), max_length=10, choices=EventKind.choices)
    at = models.DateTimeField(_("at"), default=timezone.now)
    actor = TenantForeignKey(
        Membership,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("by"),
    )
    path = models.CharField(_("path"), max_length=10, choices=Path.choices, default=Path.SQL)
    from_stage = TenantForeignKey(
        Stage, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    to_stage = TenantForeignKey(
        Stage, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    from_status = models.CharField(max_length=5, blank=True, default="", db_default="")
    to_status = models.CharField(max_length=5, blank=True, default="", db_default="")
    amount_before = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    amount_after = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    probability = models.PositiveSmallIntegerField(null=True, blank=True)
    detail = models.JSONField(_("detail"), default=dict, blank=True)

    class Meta(TenantOwned.Meta):
        verbose_name = _("opportunity history entry")
        verbose_name_plural = _("opportunity history")
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "opportunity", "-at"], name="opportunity_event"),
            # The calibration: stage entries over 12 months.
            models.Index(
                fields=["tenant", "at"], name="opportunity_event_stage", condition=Q(kind="stage")
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} · {self.at:%Y-%m-%d %H:%M}"


# A stage's probability is learnt from the tenant's history from this many cases on.
CALIBRATION_MIN_CASES = 20
CALIBRATION_MONTHS = 12


class StageCalibration(TenantOwned):
    """A stage's probability learnt from the tenant's last 12 months (F26): of the
    opportunities that passed through the stage and have since closed, the share won."""

    stage = TenantForeignKey(
        Stage, on_delete=models.CASCADE, related_name="calibrations", verbose_name=_("stage")
    )
    cases = models.PositiveIntegerField(_("closed cases"))
    won = models.PositiveIntegerField(_("won"))
    probability = models.PositiveSmallIntegerField(_("probability (%)"))
    calibrated = models.BooleanField(
        _("calibrated"), help_text=_("False: fewer than 20 cases, the default is used.")
    )
    window_start = models.DateField(_("window start"))
    computed_at = models.DateTimeField(_("computed at"), default=timezone.now)

    class Meta(TenantOwned.Meta):
        verbose_name = _("stage calibration")
        verbose_name_plural = _("stage calibrations")
        constraints = [
            *TenantOwned.Meta.constraints,
            models.UniqueConstraint(fields=["tenant", "stage"], name="calibration_one_per_stage"),
        ]

    def __str__(self) -> str:
        return f"{self.stage} · {self.probability}%"


class ForecastMonth(TenantOwned):
    """A month's forecast, frozen on its first day (per rep, and the team as `owner` null):
    Σ amount × probability of the open opportunities expected to close in it; at the
    month's end what was signed and the accuracy 1 − |forecast − signed| / signed."""

    month = models.DateField(_("month"))
    owner = TenantForeignKey(
        Membership,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("rep"),
    )
    forecast = models.DecimalField(_("forecast"), max_digits=16, decimal_places=2)
    valid_forecast = models.DecimalField(
        _("forecast of valid ones"), max_digits=16, decimal_places=2, default=0
    )
    opportunities = models.PositiveIntegerField(_("opportunities"), default=0)
    frozen_at = models.DateTimeField(_("frozen at"), default=timezone.now)
    signed = models.DecimalField(
        _("signed"), max_digits=16, decimal_places=2, null=True, blank=True
    )
    accuracy = models.DecimalField(
        _("accuracy"), max_digits=7, decimal_places=4, null=True, blank=True
    )
    closed_at = models.DateTimeField(pgettext_lazy("forecast", "closed at"), null=True, blank=True)

    class Meta(TenantOwned.Meta):
        verbose_name = _("frozen forecast")
        verbose_name_plural = _("frozen forecasts")
        ordering = ["-month", "owner_id"]
        constraints = [
            *TenantOwned.Meta.constraints,
            models.UniqueConstraint(
                fields=["tenant", "month", "owner"],
                name="forecast_one_per_month",
                nulls_distinct=False,
            ),
        ]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} · {self.owner or _('team')}"
