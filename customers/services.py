"""Customers and follow-ups (F16–F18): a valid lead becomes a customer with a contact, every
later contact is a structured Interaction with a required next action, and "contact ended"
proposes the next date (+3 working days) and a status from the note's keywords.

Everything here runs inside the tenant's context (`crm.tenancy.tenant_context`); the pick
lists (`presets()`) and the keyword rules (`suggest_status()`) are created with the
defaults on first use per tenant and are admin-editable afterwards. The writes follow the
write contract (crm/services.py): `customer_for_lead`, `interaction_schedule` and
`interaction_log` take `(*, tenant, acting_member, …)`, run in one transaction and write
their audit row inside it. They write customers' rows only: what a follow-up or a verdict
does to its lead is the leads app's (leads.followups_services.lead_follow_up,
leads.verification.lead_verify), which calls them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from crm import normalize
from crm.audit import audit
from crm.formatting import format_phone
from crm.services import actor_user, check_tenant
from crm.tenancy import NoTenantError, advisory_lock, current_tenant, tenant_today
from customers import events
from customers.models import (
    Contact,
    ContactMethod,
    Customer,
    CustomerLevel,
    DecisionRole,
    Interaction,
    InteractionKind,
    Preset,
    PresetKind,
    StatusSuggestion,
)

# -- defaults, created on first use per tenant ----------------------------------------------

DEFAULT_PRESETS: dict[str, tuple[tuple[str, bool], ...]] = {
    PresetKind.TALK_TAG: (
        ("技术疑虑", False),
        ("预算卡点", False),
        ("决策链未明", False),
        ("竞品比较", False),
        ("交期关注", False),
        ("售后关注", False),
        ("已达成共识", True),
    ),
    PresetKind.PAIN: (
        ("设备老化", False),
        ("检测效率低", False),
        ("合规压力", False),
        ("成本高", False),
        ("售后响应慢", False),
        ("扩产需求", False),
    ),
    PresetKind.ACTION: (
        ("电话回访", False),
        ("发送方案", False),
        ("发送报价", False),
        ("安排拜访", False),
        ("上门拜访", False),
        ("安排演示", False),
        ("寄送样品", False),
        ("邀请参观", False),
        ("确认预算", False),
    ),
}

DEFAULT_STATUS_SUGGESTIONS: tuple[tuple[str, str], ...] = (
    ("再考虑", "异议处理"),
    ("价格多少", "报价阶段"),
    ("报价", "报价阶段"),
    ("太贵", "异议处理"),
    ("合同", "合同谈判"),
    ("试用", "方案演示"),
)

# The next action of a lead verified "valid · visit booked": the visit itself, on its date.
VISIT_ACTION = "上门拜访"

# Words in a note that mean the customer agreed to something: the loop is closed.
AGREEMENT_WORDS = ("确认", "同意", "安排")
CONTACT_ENDED_WORKING_DAYS = 3


def _tenant():
    tenant = current_tenant()
    if tenant is None:
        raise NoTenantError("customers.services needs a tenant: run it in tenant_context()")
    return tenant


def presets(kind: str):
    """The tenant's active entries of one pick list (talk tags, pain points, actions), in
    order; the defaults are created the first time a tenant's list is read."""
    if kind not in PresetKind.values:
        raise ValueError(f"unknown preset kind: {kind!r}")
    tenant = _tenant()
    active = Preset.objects.filter(kind=kind, is_active=True).order_by("position", "id")
    if active:  # read once: the answer keeps the rows, so iterating it costs no query
        return active
    if not Preset.objects.filter(kind=kind).exists():
        Preset.objects.bulk_create(
            [
                Preset(tenant=tenant, kind=kind, name=name, is_agreement=agreement, position=i * 10)
                for i, (name, agreement) in enumerate(DEFAULT_PRESETS[kind], start=1)
            ],
            ignore_conflicts=True,  # a concurrent first use created them already
        )
    return active.all()


def visit_action() -> Preset:
    """The action a booked visit is scheduled as (`VISIT_ACTION` in the tenant's action
    library): created the first time a tenant needs it, kept if an admin switched it off
    (the visit is still one), never renamed."""
    tenant = _tenant()
    presets(PresetKind.ACTION)  # the defaults first, so the library keeps its order
    found = Preset.objects.filter(kind=PresetKind.ACTION, name=VISIT_ACTION).first()
    if found is not None:
        return found
    Preset.objects.bulk_create(
        [Preset(tenant=tenant, kind=PresetKind.ACTION, name=VISIT_ACTION, position=45)],
        ignore_conflicts=True,  # a concurrent first use created it already
    )
    return Preset.objects.get(kind=PresetKind.ACTION, name=VISIT_ACTION)


def status_suggestions():
    """The tenant's active keyword → status rules, in order (defaults on first use)."""
    tenant = _tenant()
    if not StatusSuggestion.objects.exists():
        StatusSuggestion.objects.bulk_create(
            [
                StatusSuggestion(tenant=tenant, keyword=keyword, status=status, position=i * 10)
                for i, (keyword, status) in enumerate(DEFAULT_STATUS_SUGGESTIONS, start=1)
            ],
            ignore_conflicts=True,
        )
    return StatusSuggestion.objects.filter(is_active=True).order_by("position", "id")


def suggest_status(note: str) -> str:
    """The status the first matching keyword rule suggests for a note ("" when none)."""
    text = (note or "").strip()
    if not text:
        return ""
    folded = text.casefold()
    for rule in status_suggestions():
        keyword = rule.keyword.strip()
        if keyword and keyword.casefold() in folded:
            return rule.status
    return ""


# -- dates ------------------------------------------------------------------------------------


def add_working_days(start: date, n: int) -> date:
    """`n` working days (Monday to Friday) after `start`: Thursday + 3 is Tuesday, Friday
    + 3 is Wednesday, Saturday + 1 is Monday."""
    if n < 0:
        raise ValueError("n must not be negative")
    day = start
    added = 0
    while added < n:
        day += timedelta(days=1)
        if day.weekday() < 5:
            added += 1
    return day


def contact_ended_defaults(note: str, *, now: datetime | None = None) -> tuple[date, str]:
    """ "Contact ended" (F18): the next contact's date (+3 working days from today in the
    tenant's time zone) and the status the note suggests."""
    due = add_working_days(tenant_today(now), CONTACT_ENDED_WORKING_DAYS)
    return due, suggest_status(note)


# -- a lead becomes a customer (F16) --------------------------------------------------------


def _phone_key(phone: str) -> str:
    parsed = normalize.parse_phone(phone) if phone else None
    return parsed.e164 if parsed is not None else ""


def customer_title(lead) -> str:
    """What a customer made from `lead` is called: its company, else the contact's name,
    else the phone as people read it (138 0013 8000), else the e-mail, else the lead's
    own title."""
    title = lead.company or lead.contact_name or format_phone(lead.phone) or lead.email or str(lead)
    return title[:200]


def _titled_by_phone(customer: Customer, phone_key: str) -> bool:
    """A customer with no company whose title is only its contact's phone number."""
    return not customer.name_key and customer.name in (phone_key, format_phone(phone_key))


def customer_for_lead(*, tenant, acting_member, lead) -> tuple[Customer, Contact, bool]:
    """The customer and contact a valid lead is (F16): the contact with the lead's phone
    (unless it is a placeholder), else the customer with the lead's normalised company
    name, else a new customer; the contact is created when the customer has none with that
    phone. `created` says whether the customer is new. Concurrent calls for the same phone
    or company are serialised. Audited when it writes (a new customer: customer.created;
    a new contact, owner or name on a known one: customer.updated_from_lead). Linking the
    lead to them is the caller's (leads.verification.lead_verify)."""
    check_tenant(tenant, acting_member, lead)
    phone_key = lead.phone_key or _phone_key(lead.phone)
    if normalize.looks_fake_phone(phone_key):
        # A placeholder (13800000000 …) is shared by strangers: it finds nobody, as in the
        # intake's de-duplication; the contact keeps the number but not as a key.
        phone_key = ""
    name_key = lead.company_key or normalize.company_key(lead.company)
    with transaction.atomic():
        # One order for the two locks, as the intake's de-duplication does.
        if phone_key:
            advisory_lock("customer-phone", tenant.pk, phone_key)
        if name_key:
            advisory_lock("customer-name", tenant.pk, name_key)

        contact, contact_created = None, False
        if phone_key:
            contact = (
                Contact.objects.select_related("customer")
                .filter(phone_key=phone_key)
                .order_by("created_at", "id")
                .first()
            )
        if contact is not None:
            customer, created = contact.customer, False
        else:
            customer = (
                Customer.objects.filter(name_key=name_key).order_by("id").first()
                if name_key
                else None
            )
            created = customer is None
            if customer is None:
                customer = Customer.objects.create(
                    tenant=tenant,
                    name=customer_title(lead),
                    name_key=name_key,
                    industry=lead.industry or "",
                    province=lead.province or "",
                    city=lead.city or "",
                    owner=lead.owner,
                    source_lead=lead,
                )
            contact, contact_created = _contact_in(customer, lead, phone_key)
        changes = {}
        if customer.owner_id is None and lead.owner_id is not None:
            customer.owner = lead.owner
            changes["owner"] = [None, str(lead.owner)]
        if lead.contact_name and phone_key and _titled_by_phone(customer, phone_key):
            # Known so far only by a phone number: the person's name is a better title.
            changes["name"] = [customer.name, lead.contact_name[:200]]
            customer.name = lead.contact_name[:200]
        if changes:
            customer.save(update_fields=list(changes))
        if created:
            audit(
                tenant=tenant,
                actor=actor_user(acting_member),
                action="customer.created",
                obj=customer,
                changes={"source_lead": [None, str(lead)]},
            )
        elif changes or contact_created:
            audit(
                tenant=tenant,
                actor=actor_user(acting_member),
                action="customer.updated_from_lead",
                obj=customer,
                changes=changes,
            )
    return customer, contact, created


def _contact_in(customer: Customer, lead, phone_key: str) -> tuple[Contact, bool]:
    """The customer's contact for this lead's person: same phone, else same name when the
    lead has no phone; created when missing (then the flag is True)."""
    contacts = Contact.objects.filter(customer=customer).order_by("created_at", "id")
    found = None
    if phone_key:
        found = contacts.filter(phone_key=phone_key).first()
    elif lead.contact_name:
        key = normalize.person_key(lead.contact_name)
        found = next((c for c in contacts if normalize.person_key(c.name) == key), None)
    if found is not None:
        return found, False
    contact = Contact.objects.create(
        tenant=customer.tenant,
        customer=customer,
        name=(lead.contact_name or "")[:100],
        phone=lead.phone or "",
        phone_key=phone_key,
        email=lead.email or "",
        title=lead.title or "",
    )
    return contact, True


# -- follow-ups (F17, F18) ------------------------------------------------------------------


def _names(values: Iterable) -> list[str]:
    """Preset instances or names → names, de-duplicated, in the order given."""
    names: list[str] = []
    for value in values or ():
        name = value.name if isinstance(value, Preset) else str(value).strip()
        if name and name not in names:
            names.append(name)
    return names


def _unknown(names: list[str], kind: str) -> list[str]:
    if not names:
        return []
    known = set(Preset.objects.filter(kind=kind).values_list("name", flat=True))
    if not known:
        known = {p.name for p in presets(kind)}
    return [n for n in names if n not in known]


def closes_loop(talk_tags: Iterable[str], note: str) -> bool:
    """An agreement: a talk tag that means it, or 确认/同意/安排 in the note."""
    tags = _names(talk_tags)
    if (
        tags
        and Preset.objects.filter(
            kind=PresetKind.TALK_TAG, name__in=tags, is_agreement=True
        ).exists()
    ):
        return True
    return any(word in (note or "") for word in AGREEMENT_WORDS)


def next_step_errors(
    next_action, next_action_due: date | None, *, at: datetime, due_field="next_action_due"
) -> dict[str, list[str]]:
    """The field errors of a next step "before `next_action_due` do `next_action`": both
    required, the action from the tenant's library, the date not in the past (tenant's
    time zone). `due_field` names the date's field (a booked visit's is `visit_date`)."""
    tenant = _tenant()
    errors: dict[str, list[str]] = {}
    if next_action is None:
        errors.setdefault("next_action", []).append(_("Choose the next action."))
    elif (
        not isinstance(next_action, Preset)
        or next_action.kind != PresetKind.ACTION
        or next_action.tenant_id != tenant.pk
    ):
        errors.setdefault("next_action", []).append(_("Choose an action from the list."))
    if next_action_due is None:
        message = (
            _("Choose the date of the booked visit.")
            if due_field == "visit_date"
            else _("Say by when the next action is due.")
        )
        errors.setdefault(due_field, []).append(message)
    elif next_action_due < tenant_today(at):
        message = (
            _("The visit cannot be in the past.")
            if due_field == "visit_date"
            else _("The next action cannot be due in the past.")
        )
        errors.setdefault(due_field, []).append(message)
    return errors


def _step_changes(interaction: Interaction) -> dict:
    return {
        "next_action": [None, interaction.next_action.name],
        "next_action_due": [None, interaction.next_action_due.isoformat()],
    }


def interaction_schedule(
    *, tenant, acting_member, lead, next_action, next_action_due: date, at: datetime
) -> Interaction:
    """The next step a valid verdict sets (F16): an Interaction of kind verification on the
    lead and its customer, "before `next_action_due` do `next_action`", logged by
    `acting_member` at the verification. It closes their earlier open next steps on that
    lead or customer, as a follow-up would; the verification itself is the touch
    (leads.verification.lead_verify records it), so none is added here. Validate with
    `next_step_errors()` first."""
    check_tenant(tenant, acting_member, lead)
    with transaction.atomic():
        same_target = Q(lead=lead)
        if lead.customer_id is not None:
            same_target |= Q(customer_id=lead.customer_id)
        Interaction.objects.filter(
            same_target, by=acting_member, next_done_at__isnull=True, at__lte=at
        ).update(next_done_at=at)
        interaction = Interaction.objects.create(
            tenant=tenant,
            kind=InteractionKind.VERIFICATION,
            lead=lead,
            customer_id=lead.customer_id,
            contact_id=lead.contact_id,
            by=acting_member,
            at=at,
            channel="phone",
            next_action=next_action,
            next_action_due=next_action_due,
        )
        audit(
            tenant=tenant,
            actor=actor_user(acting_member),
            action="interaction.scheduled",
            obj=interaction,
            changes=_step_changes(interaction),
        )
    return interaction


def interaction_log(
    *,
    tenant,
    acting_member,
    lead=None,
    customer=None,
    contact=None,
    channel: str,
    talk_tags: Iterable = (),
    pains: Iterable = (),
    roles: Iterable = (),
    note: str = "",
    next_action,
    next_action_due: date | None,
    at: datetime | None = None,
) -> Interaction:
    """Log one structured follow-up (F17) by `acting_member` on a customer, or on a lead
    (an object of the leads app: its customer and contact are the follow-up's unless
    given).

    Raises ValidationError with field errors (nothing written) for a missing next action,
    a next action due in the past (in the tenant's time zone), an unknown channel, tag,
    pain point or role. On success: closes the same rep's previous open follow-up on that
    lead/customer, sets `suggested_status` and `closes_loop`, and audits it. Customers'
    rows only: a follow-up on a lead goes through leads.followups_services.lead_follow_up,
    which also records the lead's touch and timeline entry in the same transaction.
    """
    check_tenant(tenant, acting_member, lead, customer, contact)
    at = at or timezone.now()
    note = (note or "").strip()
    tags, pain_names = _names(talk_tags), _names(pains)
    role_codes = [str(r) for r in dict.fromkeys(roles or ())]
    if lead is not None:
        customer = customer or lead.customer
        contact = contact or lead.contact

    errors: dict[str, list[str]] = {}
    if lead is None and customer is None:
        errors.setdefault("__all__", []).append(_("A follow-up needs a lead or a customer."))
    if channel not in ContactMethod.values:
        errors.setdefault("channel", []).append(_("Choose how you were in contact."))
    errors.update(next_step_errors(next_action, next_action_due, at=at))
    if unknown := _unknown(tags, PresetKind.TALK_TAG):
        errors.setdefault("talk_tags", []).append(
            _("Unknown talk tags: %(tags)s") % {"tags": "、".join(unknown)}
        )
    if unknown := _unknown(pain_names, PresetKind.PAIN):
        errors.setdefault("pains", []).append(
            _("Unknown pain points: %(pains)s") % {"pains": "、".join(unknown)}
        )
    if bad := [r for r in role_codes if r not in DecisionRole.values]:
        errors.setdefault("roles", []).append(
            _("Unknown decision-chain roles: %(roles)s") % {"roles": ", ".join(bad)}
        )
    if len(note) > Interaction._meta.get_field("note").max_length:
        errors.setdefault("note", []).append(_("Keep the note under 500 characters."))
    if errors:
        raise ValidationError(errors)

    with transaction.atomic():
        same_target = Q()
        if lead is not None:
            same_target |= Q(lead=lead)
        if customer is not None:
            same_target |= Q(customer=customer)
        # A follow-up logged for an earlier moment leaves the later ones open.
        Interaction.objects.filter(
            same_target, by=acting_member, next_done_at__isnull=True, at__lte=at
        ).update(next_done_at=at)
        interaction = Interaction.objects.create(
            tenant=tenant,
            lead=lead,
            customer=customer,
            contact=contact,
            by=acting_member,
            at=at,
            channel=channel,
            talk_tags=tags,
            pains=pain_names,
            roles=role_codes,
            note=note,
            next_action=next_action,
            next_action_due=next_action_due,
            suggested_status=suggest_status(note),
            closes_loop=closes_loop(tags, note),
        )
        audit(
            tenant=tenant,
            actor=actor_user(acting_member),
            action="interaction.logged",
            obj=interaction,
            changes=_step_changes(interaction),
        )
        events.emit_follow_up(interaction)
    return interaction


def customer_set_level(*, tenant, acting_member, customer: Customer, level: str) -> bool:
    """Set the customer's level (A/B/C), audited, with its `customer.level_changed` event.
    `acting_member` None: the system (an automation rule). ValidationError for an unknown
    level. Whether it changed."""
    check_tenant(tenant, acting_member, customer)
    if level not in CustomerLevel.values:
        raise ValidationError({"level": _("Unknown customer level %(level)s.") % {"level": level}})
    with transaction.atomic():
        previous = (
            Customer.objects.select_for_update().filter(pk=customer.pk).values_list("level").get()
        )[0]
        if previous == level:
            return False
        customer.level = level
        Customer.objects.filter(pk=customer.pk).update(level=level)
        audit(
            tenant=tenant,
            actor=actor_user(acting_member),
            action="customer.level_set",
            obj=customer,
            changes={"level": [previous, level]},
        )
        events.emit_level_changed(customer, previous)
    return True


# -- contacts ---------------------------------------------------------------------------------

# A contact's job: its customer, its title, whether it left and where to.
JOB_FIELDS = ("customer_id", "title", "has_left", "new_company")


def contact_job(contact_id: int | None) -> dict | None:
    """The stored job fields of a contact (read before an edit is saved), None if new."""
    if contact_id is None:
        return None
    return Contact.objects.filter(pk=contact_id).values(*JOB_FIELDS).first()


def job_changed(before: dict | None, contact: Contact) -> bool:
    """Whether the edit from `before` to `contact` says the contact changed jobs: marked
    as having left, a new company named, moved to another customer, or one title replaced
    by another. A new contact, a title filled in for the first time, a new phone are not."""
    if before is None:
        return False
    title, was = contact.title.strip(), (before["title"] or "").strip()
    new_company = contact.new_company.strip()
    return (
        (contact.has_left and not before["has_left"])
        or (bool(new_company) and new_company != (before["new_company"] or "").strip())
        or contact.customer_id != before["customer_id"]
        or (bool(was) and bool(title) and title != was)
    )


def contact_changed_jobs(*, tenant, acting_member, contact: Contact, before: dict | None) -> bool:
    """After an edit of `contact` (saved, in the caller's transaction; `before`: its
    `contact_job()` read before the save): when the contact changed jobs
    (`job_changed`), the `contact.changed_jobs` event about the customer it worked for,
    audited, in the same transaction. Whether it did."""
    check_tenant(tenant, acting_member, contact)
    if not job_changed(before, contact):
        return False
    customer = Customer.objects.get(pk=before["customer_id"])
    with transaction.atomic():
        audit(
            tenant=tenant,
            actor=actor_user(acting_member),
            action="contact.changed_jobs",
            obj=contact,
            changes={
                name: [before[name], getattr(contact, name)]
                for name in JOB_FIELDS
                if before[name] != getattr(contact, name)
            },
        )
        events.emit_contact_changed_jobs(contact, before, customer)
    return True


def contact_mark_left(*, tenant, acting_member, contact: Contact, new_company: str = "") -> bool:
    """Mark `contact` as having left its customer, now at `new_company` when given (an
    empty one keeps what is stored), from the customer page (customers.views.contact_left):
    saved, then `contact_changed_jobs` with its job read before the save, as the admin's
    contact edit does, in one transaction. Whether that was a job change (marking again
    with the same company is not)."""
    check_tenant(tenant, acting_member, contact)
    new_company = (new_company or "").strip()
    if len(new_company) > Contact._meta.get_field("new_company").max_length:
        raise ValidationError({"new_company": _("The new company's name is too long.")})
    with transaction.atomic():
        # Locked: two marks at once are one job change.
        contact = Contact.objects.select_for_update().get(pk=contact.pk)
        before = {name: getattr(contact, name) for name in JOB_FIELDS}  # as contact_job()
        contact.has_left = True
        if new_company:
            contact.new_company = new_company
        if (contact.has_left, contact.new_company) != (before["has_left"], before["new_company"]):
            contact.save(update_fields=["has_left", "new_company"])
        return contact_changed_jobs(
            tenant=tenant, acting_member=acting_member, contact=contact, before=before
        )


def follow_up_data(interaction: Interaction) -> dict:
    """A follow-up as the lead timeline's FOLLOW_UP entry stores it; `follow_up_text()`
    words it (as LeadEvent.text does), for the customer page's own follow-ups."""
    return {
        "interaction": str(interaction.public_id),
        "channel": interaction.channel,
        "talk_tags": list(interaction.talk_tags),
        "pains": list(interaction.pains),
        "roles": list(interaction.roles),
        "note": interaction.note[:300],
        "next_action": interaction.next_action.name,
        "next_action_due": interaction.next_action_due.isoformat(),
        "suggested_status": interaction.suggested_status,
        "closes_loop": interaction.closes_loop,
    }


def follow_up_text(data: dict) -> str:
    """A follow-up in words, from `follow_up_data()`: how, the tags and pains, the note,
    the next step and the suggested status (the lead timeline's FOLLOW_UP entries read
    the same, leads.models.LeadEvent.text)."""
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
        text += " · " + _("suggested status: %(status)s") % {"status": data["suggested_status"]}
    return text
