"""Customers, contacts, decision-chain roles and follow-ups (Interaction): the customer 360.

A valid lead becomes (or joins) a Customer with a Contact (F16); every contact with them
afterwards is a structured Interaction with a required next action (F17). The tenant's
preset lists (talk tags, pain points, the action library) are `Preset` rows.
"""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Greatest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.fields import TenantForeignKey
from crm.formatting import format_date, format_phone
from crm.indexes import NullsOrderIndex
from crm.models import Membership, Tenant, TenantOwned
from crm.tenancy import TenantManager, TenantQuerySet


class CustomerLevel(models.TextChoices):
    A = "A", _("A: key account")
    B = "B", _("B: growing account")
    C = "C", _("C: regular account")


class Industry(models.TextChoices):
    """A lead's and a customer's industry (a customer holds its first lead's code)."""

    MANUFACTURING = "manufacturing", _("Manufacturing")
    ENERGY = "energy", _("Energy")
    INFRASTRUCTURE = "infrastructure", _("Infrastructure")
    OTHER = "other", _("Other")


class CustomerQuerySet(TenantQuerySet):
    def order_by_last_contact(self, *, descending: bool = True):
        """Most recently contacted first (never contacted last), or the reverse; both
        read the index `customer_last_contact` in order, forwards or backwards."""
        if descending:
            keys = (F("last_contact_at").desc(nulls_last=True), F("id").desc())
        else:
            keys = (F("last_contact_at").asc(nulls_first=True), F("id").asc())
        return self.order_by(*keys)


class Customer(TenantOwned):
    name = models.CharField(_("name"), max_length=200)
    name_key = models.CharField(max_length=200, blank=True, editable=False)
    # The customer's code in the company's other systems (ERP, helpdesk): tickets match
    # their customer by it first (service_feedback).
    code = models.CharField(_("customer code"), max_length=60, blank=True)
    level = models.CharField(
        _("level"), max_length=1, choices=CustomerLevel.choices, default=CustomerLevel.C
    )
    industry = models.CharField(_("industry"), max_length=20, blank=True)
    province = models.CharField(_("province"), max_length=30, blank=True)
    city = models.CharField(_("city"), max_length=30, blank=True)
    owner = TenantForeignKey(
        Membership,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="customers",
        verbose_name=_("owner"),
    )
    source_lead = TenantForeignKey(
        "leads.Lead",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("first lead"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    # The latest follow-up's time, kept by PostgreSQL triggers on customers_interaction
    # (migration 0002) whatever writes the follow-ups: the list sorts and filters on it.
    last_contact_at = models.DateTimeField(_("last contact"), null=True, blank=True, editable=False)
    # The latest time a contact was added to the customer or its record changed (an audit
    # event on it), kept by PostgreSQL triggers on customers_contact and crm_auditevent
    # (migration 0008): with the two times above, when its profile was last refreshed
    # (customers.selftest).
    profile_touched_at = models.DateTimeField(
        _("profile touched"), null=True, blank=True, editable=False
    )

    # The number of different tags its leads carry between them, kept by PostgreSQL
    # triggers on the leads' tags and on a lead's customer (leads migration 0019): the
    # self-test counts the customers with 3 tags (leads.selftest).
    lead_tag_count = models.PositiveIntegerField(
        _("tags of its leads"), default=0, db_default=0, editable=False
    )

    objects = TenantManager.from_queryset(CustomerQuerySet)()

    class Meta(TenantOwned.Meta):
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        ordering = ["name", "id"]
        constraints = [
            *TenantOwned.Meta.constraints,
            # One customer per normalised company name (crm.normalize.company_key).
            models.UniqueConstraint(
                fields=["tenant", "name_key"],
                condition=~Q(name_key=""),
                name="customer_one_per_name",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "owner", "level"], name="customer_owner"),
            # The customer list (customers.tables.CustomerTable): most recently contacted
            # first, never contacted last; the same read backwards for the other direction;
            # for everyone, for one owner (a rep's own list, the owner filter) and for one
            # level (the level filter and sort). The last-contact range filter scans the
            # first one between its bounds.
            NullsOrderIndex(
                F("tenant"),
                F("last_contact_at").desc(nulls_last=True),
                F("id").desc(),
                name="customer_last_contact",
            ),
            NullsOrderIndex(
                F("tenant"),
                F("owner"),
                F("last_contact_at").desc(nulls_last=True),
                F("id").desc(),
                name="customer_owner_contact",
            ),
            NullsOrderIndex(
                F("tenant"),
                F("level"),
                F("last_contact_at").desc(nulls_last=True),
                F("id").desc(),
                name="customer_level_contact",
            ),
            # The list sorted by name.
            models.Index(fields=["tenant", "name", "id"], name="customer_name"),
            # A ticket's customer by its code.
            models.Index(fields=["tenant", "code"], name="customer_code", condition=~Q(code="")),
            # The self-test's profile freshness: customers by the last refresh of their
            # profile (customers.selftest.REFRESHED), fresh or stale from a time on.
            models.Index(
                F("tenant"),
                Greatest("created_at", "last_contact_at", "profile_touched_at"),
                name="customer_profile_refreshed",
            ),
            # The self-test's customers by the tags of their leads, created before a time.
            models.Index(
                fields=["tenant", "lead_tag_count", "created_at"], name="customer_lead_tags"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class DecisionRole(models.TextChoices):
    DECISION_MAKER = "decision_maker", _("Decision maker")
    TECHNICAL = "technical", _("Technical evaluator")
    USER = "user", _("User department")
    PURCHASING = "purchasing", _("Purchasing")
    FINANCE = "finance", _("Finance")
    INFLUENCER = "influencer", _("Influencer")


class Contact(TenantOwned):
    customer = TenantForeignKey(
        Customer, on_delete=models.CASCADE, related_name="contacts", verbose_name=_("customer")
    )
    name = models.CharField(_("name"), max_length=100, blank=True)
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    phone_key = models.CharField(max_length=32, blank=True, editable=False)
    email = models.CharField(_("e-mail"), max_length=254, blank=True)
    title = models.CharField(_("job title"), max_length=100, blank=True)
    role = models.CharField(
        _("decision-chain role"), max_length=20, choices=DecisionRole.choices, blank=True
    )
    # A job change (customers.services.contact_changed_jobs): left the customer, and where to.
    has_left = models.BooleanField(
        _("has left the company"),
        default=False,
        db_default=False,
        help_text=_("Tick when the contact no longer works for this customer."),
    )
    new_company = models.CharField(
        _("now works at"),
        max_length=100,
        blank=True,
        db_default="",
        help_text=_("The contact's new company, when known."),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta(TenantOwned.Meta):
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")
        ordering = ["name", "id"]
        indexes = [
            models.Index(
                fields=["tenant", "phone_key"], name="contact_phone", condition=~Q(phone_key="")
            ),
        ]

    def __str__(self) -> str:
        return self.name or format_phone(self.phone) or self.email or str(self.customer)


class PresetKind(models.TextChoices):
    TALK_TAG = "talk_tag", _("Talk tag")
    PAIN = "pain", _("Pain point")
    ACTION = "action", _("Next action")


class Preset(TenantOwned):
    """One entry of a tenant's pick lists for follow-ups: talk tags (技术疑虑, 预算卡点 …),
    pain points, and the next-action library. Picked, never typed (F17)."""

    kind = models.CharField(_("list"), max_length=10, choices=PresetKind.choices)
    name = models.CharField(_("name"), max_length=60)
    is_agreement = models.BooleanField(
        _("means agreement"),
        default=False,
        help_text=_("A talk tag that closes a loop (the day's summary counts it)."),
    )
    position = models.PositiveSmallIntegerField(_("order"), default=0)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta(TenantOwned.Meta):
        verbose_name = _("follow-up preset")
        verbose_name_plural = _("follow-up presets")
        ordering = ["kind", "position", "id"]
        constraints = [
            *TenantOwned.Meta.constraints,
            models.UniqueConstraint(fields=["tenant", "kind", "name"], name="preset_unique_name"),
        ]

    def __str__(self) -> str:
        return self.name


class ContactMethod(models.TextChoices):
    """How a rep was in contact with someone: a follow-up's and a lead touch's `channel`."""

    PHONE = "phone", _("Phone")
    WECHAT = "wechat", _("WeChat")
    VISIT = "visit", _("Visit")
    MEETING = "meeting", _("Meeting")
    EMAIL = "email", _("E-mail")


class InteractionKind(models.TextChoices):
    FOLLOW_UP = "follow_up", _("Follow-up")
    VERIFICATION = "verification", _("Verification call")


class Interaction(TenantOwned):
    """One structured follow-up (F17): how, what was said, what hurts, who was reached, and
    the next action "before DATE do ACTION". The next one closes it (`next_done_at`).

    `kind` verification: the call that verified a lead valid, holding the next step the
    verdict set (the booked visit, or the action for the missing information). It is the
    lead's first next step, not a follow-up: the lead-quality report's "followed up within
    72 h" and the day's count of follow-ups leave it out (the verification counts as
    itself)."""

    kind = models.CharField(
        _("kind"),
        max_length=12,
        choices=InteractionKind.choices,
        default=InteractionKind.FOLLOW_UP,
        db_default=InteractionKind.FOLLOW_UP,
    )

    customer = TenantForeignKey(
        Customer,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="interactions",
        verbose_name=_("customer"),
    )
    lead = TenantForeignKey(
        "leads.Lead",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="interactions",
        verbose_name=_("lead"),
    )
    contact = TenantForeignKey(
        Contact,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="interactions",
        verbose_name=_("contact"),
    )
    by = TenantForeignKey(
        Membership, on_delete=models.PROTECT, related_name="interactions", verbose_name=_("by")
    )
    at = models.DateTimeField(_("at"), default=timezone.now)
    channel = models.CharField(_("channel"), max_length=10)  # a ContactMethod
    talk_tags = models.JSONField(_("talk tags"), default=list, blank=True)
    pains = models.JSONField(_("pain points"), default=list, blank=True)
    roles = models.JSONField(_("decision-chain roles reached"), default=list, blank=True)
    note = models.CharField(_("note"), max_length=500, blank=True)
    next_action = TenantForeignKey(
        Preset,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("next action"),
        limit_choices_to={"kind": PresetKind.ACTION},
    )
    next_action_due = models.DateField(_("next action before"))
    next_done_at = models.DateTimeField(_("next action done"), null=True, blank=True)
    suggested_status = models.CharField(_("suggested status"), max_length=40, blank=True)
    closes_loop = models.BooleanField(
        _("closes a loop"),
        default=False,
        help_text=_("An agreement: a tag that means it, or 确认/同意/安排 in the note."),
    )

    class Meta(TenantOwned.Meta):
        verbose_name = _("follow-up")
        verbose_name_plural = _("follow-ups")
        ordering = ["-at", "-id"]
        indexes = [
            # The board: a rep's open next actions by due date.
            models.Index(
                fields=["tenant", "by", "next_action_due"],
                name="interaction_open_due",
                condition=Q(next_done_at__isnull=True),
            ),
            models.Index(fields=["tenant", "customer", "-at"], name="interaction_customer"),
            models.Index(fields=["tenant", "lead", "-at"], name="interaction_lead"),
            models.Index(fields=["tenant", "by", "-at"], name="interaction_by_at"),
            # A day's follow-ups of every rep (the process-data water level).
            models.Index(fields=["tenant", "-at"], name="interaction_at"),
            # The next steps due in a range, done or not (the process figures' action
            # completion, the self-test's task completion): their counts from the index
            # alone (when and whether done, the lead a hand-over is looked up by), their
            # drill-down lists newest first by (due day, id) without a sort.
            models.Index(
                fields=["tenant", "next_action_due", "id"],
                include=["next_done_at", "lead"],
                name="interaction_due",
            ),
        ]

    def __str__(self) -> str:
        try:
            channel = ContactMethod(self.channel).label
        except ValueError:
            channel = self.channel
        return f"{format_date(self.at)} {channel}"


class StatusSuggestion(TenantOwned):
    """A keyword in a follow-up's note that suggests where the deal stands (F18): "再考虑"
    → objection handling, "价格多少" → quote stage. Admin-editable."""

    keyword = models.CharField(_("keyword"), max_length=40)
    status = models.CharField(_("suggested status"), max_length=40)
    position = models.PositiveSmallIntegerField(_("order"), default=0)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta(TenantOwned.Meta):
        verbose_name = _("status suggestion")
        verbose_name_plural = _("status suggestions")
        ordering = ["position", "id"]
        constraints = [
            *TenantOwned.Meta.constraints,
            models.UniqueConstraint(fields=["tenant", "keyword"], name="suggestion_one_keyword"),
        ]

    def __str__(self) -> str:
        return f"{self.keyword} → {self.status}"


class CustomerSearchGram(models.Model):
    """One gram of one customer's name, lower-cased: the two characters starting at each
    position (the last character alone). The customer search's index under row-level
    security (crm.search); filled and kept by triggers on `customers_customer` (migration
    0004), so every path that writes a customer keeps it true."""

    pk = models.CompositePrimaryKey("tenant_id", "gram", "customer_id")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, db_index=False, related_name="+")
    # No database constraint: the triggers remove a deleted customer's grams by key.
    customer = models.ForeignKey(
        Customer,
        on_delete=models.DO_NOTHING,
        db_index=False,
        db_constraint=False,
        related_name="+",
    )
    # Byte order ("C"): a one-character term is the range [c, next code point).
    gram = models.CharField(max_length=2, db_collation="C")

    class Meta:
        db_table = "customers_searchgram"
        verbose_name = "customer search gram"

    def __str__(self):
        return self.gram
