"""Every write on an opportunity (the kernel's write contract, crm.services): keyword
arguments, input checked before anything is written, one transaction with its audit row.

One service moves an opportunity whichever way the move comes (the form, the kanban drag,
a bulk edit, an import, automation: `path`): `opportunity_advance` checks every required
action of every stage up to the target and either moves it or raises `RequirementsUnmet`
with the missing items, having changed nothing but the history's record of the refusal.
`opportunity_win` and `opportunity_lose` are the only ways to close one. The history
(OpportunityEvent) is written by triggers (migration 0002); the services name the actor
and the path for them in transaction-local settings (`_mark`).
"""

from __future__ import annotations

import calendar
from contextlib import contextmanager
from datetime import date, datetime, timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.audit import audit
from crm.models import Membership, Role, Tenant
from crm.roles import OPPORTUNITY_CREATORS, OPPORTUNITY_WRITERS, OWNER_CHOICES, VALIDITY_APPROVERS
from crm.services import actor_user, check_tenant
from customers.models import Contact, ContactMethod, Customer, Interaction
from opportunities import events, requirements
from opportunities.files import check_upload
from opportunities.models import (
    APPROVAL_WINDOW_HOURS,
    Attachment,
    AttachmentKind,
    AttachmentStatus,
    Attitude,
    BudgetBand,
    ChainRole,
    ContactStatus,
    EventKind,
    Influence,
    LostReason,
    Opportunity,
    OpportunityContact,
    OpportunityEvent,
    OpportunityStatus,
    Path,
    Stage,
    StageCalibration,
    TechnicalQuestion,
    ValidityRequest,
)
from opportunities.setup import ensure_defaults

# A visit or meeting up to this many days before an opportunity opens counts for its
# validity (the visit that found the need usually comes first).
VISIT_LOOKBACK_DAYS = 90


class RequirementsUnmet(Exception):
    """A move whose required actions are not all done: `missing` the Checks that fail."""

    def __init__(self, opportunity: Opportunity, target: str, missing: list):
        self.opportunity = opportunity
        self.target = target
        self.missing = missing
        super().__init__(f"{len(missing)} required action(s) missing")

    def as_dict(self) -> dict:
        return {
            "opportunity": str(self.opportunity.public_id),
            "target": self.target,
            "missing": [check.as_dict() for check in self.missing],
        }


# -- helpers --------------------------------------------------------------------------------


@contextmanager
def _acting(acting_member: Membership | None, path: str):
    """Tell the history triggers who acts and by which path while the block writes
    (transaction-local settings, cleared again after it: a later write in the same
    transaction that is not a service's is recorded as "sql")."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('app.actor_id', %s, true), set_config('app.path', %s, true)",
            [str(acting_member.pk) if acting_member else "", str(path)],
        )
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT set_config('app.actor_id', '', true), set_config('app.path', '', true)"
            )


def can_write(membership: Membership, opportunity: Opportunity) -> bool:
    """Its owner and crm.roles.OPPORTUNITY_WRITERS work on an opportunity."""
    return opportunity.owner_id == membership.pk or membership.role in OPPORTUNITY_WRITERS


def _writer(acting_member: Membership | None, opportunity: Opportunity) -> None:
    if acting_member is not None and not can_write(acting_member, opportunity):
        raise PermissionDenied(_("Only its owner and the sales managers work on an opportunity."))


def _open(opportunity: Opportunity) -> None:
    if not opportunity.is_open:
        raise ValidationError(
            _("The opportunity is %(status)s: it no longer moves.")
            % {"status": opportunity.get_status_display()}
        )


def _locked(opportunity: Opportunity) -> Opportunity:
    """The opportunity's row, locked for this transaction and read afresh."""
    fresh = (
        Opportunity.objects.select_for_update(of=("self",))
        .select_related("customer")
        .get(pk=opportunity.pk)
    )
    return fresh


def month_start(value: date | None) -> date | None:
    return value.replace(day=1) if value else None


def stage_probability(stage: Stage) -> int:
    """The stage's probability: the calibrated one when the tenant's history has enough
    cases (opportunities.calibration), else the stage's default."""
    calibration = StageCalibration.objects.filter(stage=stage, calibrated=True).first()
    return calibration.probability if calibration else stage.default_probability


def first_stage() -> Stage:
    ensure_defaults()
    stage = Stage.objects.filter(is_active=True).order_by("position", "id").first()
    if stage is None:
        raise ValidationError(_("The pipeline has no active stage: an admin must add one."))
    return stage


def _touch(opportunity: Opportunity, now: datetime | None = None) -> None:
    Opportunity.objects.filter(pk=opportunity.pk).update(last_activity_at=now or timezone.now())


def _cycle_start(customer: Customer, lead) -> datetime | None:
    """Where the lead-to-contract cycle starts: the origin lead's first screening (its
    verification), else its creation; for an opportunity opened on a customer, the
    customer's first lead's."""
    lead = lead or customer.source_lead
    if lead is None:
        return None
    return lead.verified_at or lead.created_at


def _recent_visit(customer: Customer, since: datetime) -> datetime | None:
    return (
        Interaction.objects.filter(
            customer=customer,
            channel__in=[ContactMethod.VISIT, ContactMethod.MEETING],
            at__gte=since,
        )
        .order_by("-at")
        .values_list("at", flat=True)
        .first()
    )


# -- create and edit ------------------------------------------------------------------------


def _check_owner(owner: Membership, tenant: Tenant) -> None:
    if owner.tenant_id != tenant.pk or not owner.is_active or owner.role not in OWNER_CHOICES:
        raise ValidationError({"owner": _("The owner must be an active rep or manager.")})


def opportunity_create(
    *,
    tenant: Tenant,
    acting_member: Membership | None,
    customer: Customer,
    name: str = "",
    owner: Membership | None = None,
    origin_lead=None,
    contact: Contact | None = None,
    product_line: str = "",
    amount=None,
    budget_band: str = BudgetBand.PENDING,
    expected_close: date | None = None,
    path: str = Path.FORM,
    now: datetime | None = None,
) -> Opportunity:
    """Open an opportunity on `customer` (from a verified lead: `origin_lead`, its
    customer and contact) in the first stage, owned by `owner` (default: the acting
    member, else the customer's owner)."""
    check_tenant(tenant, customer, owner, origin_lead, contact)
    if acting_member is not None and acting_member.role not in OPPORTUNITY_CREATORS:
        raise PermissionDenied(_("Reps and sales managers open opportunities."))
    now = now or timezone.now()
    if origin_lead is not None:
        if origin_lead.customer_id is None or origin_lead.verified_at is None:
            raise ValidationError(
                _("Only a lead verified valid (with its customer) becomes an opportunity.")
            )
        if origin_lead.customer_id != customer.pk:
            raise ValidationError(_("The lead belongs to another customer."))
        contact = contact or origin_lead.contact
    if contact is not None and contact.customer_id != customer.pk:
        raise ValidationError({"contact": _("The contact is not one of the customer's.")})
    owner = owner or (
        acting_member if acting_member and acting_member.role in OWNER_CHOICES else customer.owner
    )
    if owner is None:
        raise ValidationError({"owner": _("Choose who owns the opportunity.")})
    _check_owner(owner, tenant)
    if amount is not None and amount < 0:
        raise ValidationError({"amount": _("The amount cannot be negative.")})
    stage = first_stage()
    name = (name or "").strip() or (
        f"{customer.name} · {product_line}" if product_line else customer.name
    )
    with transaction.atomic(), _acting(acting_member, path):
        opportunity = Opportunity.objects.create(
            tenant=tenant,
            name=name[:200],
            customer=customer,
            contact=contact,
            owner=owner,
            origin_lead=origin_lead,
            product_line=product_line,
            amount=amount,
            budget_band=budget_band,
            expected_close=month_start(expected_close),
            stage=stage,
            probability=stage_probability(stage),
            created_at=now,
            stage_entered_at=now,
            last_activity_at=now,
            cycle_started_at=_cycle_start(customer, origin_lead),
            visit_at=_recent_visit(customer, now - timedelta(days=VISIT_LOOKBACK_DAYS)),
        )
        audit(
            tenant=tenant,
            actor=actor_user(acting_member),
            action="opportunity.create",
            obj=opportunity,
            changes={"customer": customer.name, "stage": stage.code, "path": path},
        )
    return opportunity


EDITABLE = ("name", "product_line", "amount", "budget_band", "expected_close", "contact", "owner")


def opportunity_update(
    *,
    tenant: Tenant,
    acting_member: Membership | None,
    opportunity: Opportunity,
    changes: dict,
    path: str = Path.FORM,
) -> Opportunity:
    """Change the opportunity's fields (`changes`: any of EDITABLE). Only managers change
    the owner; an amount change is in the history (the trigger)."""
    check_tenant(tenant, opportunity)
    _writer(acting_member, opportunity)
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise ValueError(f"not editable: {sorted(unknown)}")
    if "owner" in changes and changes["owner"].pk != opportunity.owner_id:
        if acting_member is not None and acting_member.role not in OPPORTUNITY_WRITERS:
            raise ValidationError({"owner": _("Only a sales manager hands an opportunity over.")})
        _check_owner(changes["owner"], tenant)
    contact = changes.get("contact")
    if contact is not None and contact.customer_id != opportunity.customer_id:
        raise ValidationError({"contact": _("The contact is not one of the customer's.")})
    if changes.get("amount") is not None and changes["amount"] < 0:
        raise ValidationError({"amount": _("The amount cannot be negative.")})
    if "name" in changes and not (changes["name"] or "").strip():
        raise ValidationError({"name": _("Give the opportunity a name.")})
    if "expected_close" in changes:
        changes["expected_close"] = month_start(changes["expected_close"])
    with transaction.atomic(), _acting(acting_member, path):
        fresh = _locked(opportunity)
        _open(fresh)
        before = {}
        for name, value in changes.items():
            old = getattr(fresh, name)
            if old != value:
                before[name] = str(old) if old is not None else ""
                setattr(fresh, name, value)
        if before:
            fresh.last_activity_at = timezone.now()
            fresh.save(update_fields=[*before, "last_activity_at"])
            audit(
                tenant=tenant,
                actor=actor_user(acting_member),
                action="opportunity.update",
                obj=fresh,
                changes={n: [before[n], str(getattr(fresh, n) or "")] for n in before},
            )
    return fresh


# -- moving through the stages --------------------------------------------------------------


def _refuse(
    tenant: Tenant,
    acting_member: Membership | None,
    opportunity: Opportunity,
    target: str,
    missing: list,
    path: str,
) -> RequirementsUnmet:
    """The refusal's history entry (the check), and the exception to raise."""
    OpportunityEvent.objects.create(
        tenant=tenant,
        opportunity=opportunity,
        kind=EventKind.REFUSED,
        actor=acting_member,
        path=path,
        from_stage=opportunity.stage,
        detail={"target": target, "missing": [c.as_dict() for c in missing]},
    )
    return RequirementsUnmet(opportunity, target, missing)


def opportunity_advance(
    *,
    tenant: Tenant,
    acting_member: Membership | None,
    opportunity: Opportunity,
    stage: Stage,
    path: str = Path.FORM,
) -> Opportunity:
    """Move the opportunity to `stage`. Forward: every required action of every stage
    before it must be met, or `RequirementsUnmet` is raised (the refusal recorded in the
    history, the opportunity unchanged). Back to an earlier stage: always allowed."""
    check_tenant(tenant, opportunity, stage)
    _writer(acting_member, opportunity)
    if not stage.is_active:
        raise ValidationError(
            {"stage": _("The stage %(name)s is switched off.") % {"name": stage.name}}
        )
    refusal = None
    with transaction.atomic(), _acting(acting_member, path):
        fresh = _locked(opportunity)
        _open(fresh)
        if fresh.stage_id == stage.pk:
            return fresh
        current = fresh.stage
        forward = (stage.position, stage.pk) > (current.position, current.pk)
        if forward:
            checked = requirements.evaluate(fresh, requirements.stages_to_pass(fresh, stage))
            missing = [c for stage_check in checked for c in stage_check.missing]
            if missing:
                refusal = _refuse(tenant, acting_member, fresh, stage.code, missing, path)
        if refusal is None:
            now = timezone.now()
            fresh.stage = stage
            fresh.probability = stage_probability(stage)
            fresh.stage_entered_at = now
            fresh.last_activity_at = now
            fresh.save(
                update_fields=["stage", "probability", "stage_entered_at", "last_activity_at"]
            )
            audit(
                tenant=tenant,
                actor=actor_user(acting_member),
                action="opportunity.advance",
                obj=fresh,
                changes={"stage": [current.code, stage.code], "path": path},
            )
            events.emit_opportunity(events.STAGE_CHANGED, fresh, previous_stage=current.code)
    if refusal is not None:
        raise refusal
    return fresh


def opportunity_win(
    *,
    tenant: Tenant,
    acting_member: Membership | None,
    opportunity: Opportunity,
    path: str = Path.FORM,
    now: datetime | None = None,
) -> Opportunity:
    """Close the opportunity as won (F25): every stage's required actions met and a signed
    contract uploaded with the status 已生效. The signature closes the lead-to-contract
    cycle, stored on the opportunity."""
    check_tenant(tenant, opportunity)
    _writer(acting_member, opportunity)
    refusal = None
    with transaction.atomic(), _acting(acting_member, path):
        fresh = _locked(opportunity)
        _open(fresh)
        found = requirements.facts(fresh)
        checked = requirements.evaluate(
            fresh, requirements.stages_to_pass(fresh, None), found=found
        )
        missing = [c for stage_check in checked for c in stage_check.missing]
        contracts = set(
            AttachmentKind.objects.filter(is_contract=True).values_list("pk", flat=True)
        )
        signed = any(
            kind in contracts and status == AttachmentStatus.EFFECTIVE
            for kind, status in found.attachments
        )
        if not signed and not any(
            c.requirement.kind == "attachment" and c.requirement.attachment_kind.is_contract
            for c in missing
        ):
            missing.append(_contract_check(fresh))
        if missing:
            refusal = _refuse(tenant, acting_member, fresh, OpportunityStatus.WON, missing, path)
        else:
            now = now or timezone.now()
            fresh.status = OpportunityStatus.WON
            fresh.won_at = now
            fresh.probability = 100
            fresh.last_activity_at = now
            if fresh.cycle_started_at is not None:
                fresh.lead_to_contract_days = max(0, (now - fresh.cycle_started_at).days)
            fresh.save(
                update_fields=[
                    "status",
                    "won_at",
                    "probability",
                    "last_activity_at",
                    "lead_to_contract_days",
                ]
            )
            audit(
                tenant=tenant,
                actor=actor_user(acting_member),
                action="opportunity.win",
                obj=fresh,
                changes={
                    "amount": str(fresh.amount or ""),
                    "cycle_days": fresh.lead_to_contract_days,
                },
            )
            events.emit_opportunity(events.WON, fresh)
    if refusal is not None:
        raise refusal
    return fresh


def _contract_check(opportunity: Opportunity) -> requirements.Check:
    """The win rule's own check, when the stages do not ask for the contract themselves."""
    from opportunities.models import RequirementKind, StageRequirement

    kind = AttachmentKind.objects.filter(is_contract=True, is_active=True).first()
    requirement = StageRequirement(
        tenant_id=opportunity.tenant_id,
        stage=opportunity.stage,
        kind=RequirementKind.ATTACHMENT,
        attachment_kind=kind,
        label=_("A signed contract uploaded with the status 已生效"),
    )
    from django.urls import reverse

    link = reverse("opportunities:detail", args=[opportunity.public_id]) + "#attachments"
    return requirements.Check(requirement, False, _("not yet"), link)


def opportunity_lose(
    *,
    tenant: Tenant,
    acting_member: Membership | None,
    opportunity: Opportunity,
    reason: LostReason | None,
    detail: str = "",
    blocker: OpportunityContact | None = None,
    path: str = Path.FORM,
) -> Opportunity:
    """Close the opportunity as lost (F24): a reason from the tenant's presets (with its
    detail when the reason names something, e.g. the competitor), and optionally the
    decision-chain member who blocked it."""
    check_tenant(tenant, opportunity, reason, blocker)
    _writer(acting_member, opportunity)
    detail = (detail or "").strip()
    errors = {}
    if reason is None or not reason.is_active:
        errors["reason"] = _("Choose why it was lost.")
    elif reason.needs_detail and not detail:
        errors["detail"] = _("%(reason)s: name it (e.g. the competitor chosen).") % {
            "reason": reason.name
        }
    if blocker is not None and blocker.opportunity_id != opportunity.pk:
        errors["blocker"] = _("Choose a member of this opportunity's decision chain.")
    if errors:
        raise ValidationError(errors)
    with transaction.atomic(), _acting(acting_member, path):
        fresh = _locked(opportunity)
        _open(fresh)
        now = timezone.now()
        fresh.status = OpportunityStatus.LOST
        fresh.lost_at = now
        fresh.lost_reason = reason
        fresh.lost_detail = detail[:100]
        fresh.lost_blocker = blocker
        fresh.probability = 0
        fresh.last_activity_at = now
        fresh.save(
            update_fields=[
                "status",
                "lost_at",
                "lost_reason",
                "lost_detail",
                "lost_blocker",
                "probability",
                "last_activity_at",
            ]
        )
        audit(
            tenant=tenant,
            actor=actor_user(acting_member),
            action="opportunity.lose",
            obj=fresh,
            changes={"reason": reason.name, "detail": detail},
        )
        events.emit_opportunity(events.LOST, fresh)
    return fresh


# -- evidence: attachments, questions, the decision chain ----------------------------------


def attachment_add(
    *,
    tenant: Tenant,
    acting_member: Membership,
    opportunity: Opportunity,
    kind: AttachmentKind | None,
    upload,
    effective: bool = False,
) -> Attachment:
    """Attach a file of `kind` (its type read from its bytes, its size checked). A signed
    contract may be marked 已生效 at once (`effective`)."""
    check_tenant(tenant, opportunity, kind)
    _writer(acting_member, opportunity)
    if kind is None or not kind.is_active:
        raise ValidationError({"kind": _("Choose what the file is.")})
    if upload is None:
        raise ValidationError({"file": _("Choose a file.")})
    if effective and not kind.is_contract:
        raise ValidationError({"effective": _("Only a signed contract takes the status 已生效.")})
    file_type, digest = check_upload(kind, upload)
    with transaction.atomic(), _acting(acting_member, Path.FORM):
        fresh = _locked(opportunity)
        _open(fresh)
        attachment = Attachment(
            tenant=tenant,
            opportunity=fresh,
            kind=kind,
            name=(getattr(upload, "name", "") or "file")[-200:],
            file_type=file_type,
            size=upload.size,
            sha256=digest,
            status=AttachmentStatus.EFFECTIVE if effective else AttachmentStatus.DRAFT,
            uploaded_by=acting_member,
        )
        attachment.file.save(attachment.name, upload, save=False)
        attachment.save()
        now = timezone.now()
        update = {"last_activity_at": now}
        if kind.counts_for_validity and fresh.evidence_at is None:
            update["evidence_at"] = now
        Opportunity.objects.filter(pk=fresh.pk).update(**update)
        audit(
            tenant=tenant,
            actor=actor_user(acting_member),
            action="opportunity.attach",
            obj=fresh,
            changes={"kind": kind.code, "file": attachment.name, "sha256": digest},
        )
    return attachment


def attachment_make_effective(
    *, tenant: Tenant, acting_member: Membership, attachment: Attachment
) -> Attachment:
    """Mark a signed contract 已生效."""
    check_tenant(tenant, attachment)
    _writer(acting_member, attachment.opportunity)
    if not attachment.kind.is_contract:
        raise ValidationError(_("Only a signed contract takes the status 已生效."))
    with transaction.atomic():
        attachment.status = AttachmentStatus.EFFECTIVE
        attachment.save(update_fields=["status"])
        _touch(attachment.opportunity)
        audit(
            tenant=tenant,
            actor=actor_user(acting_member),
            action="opportunity.contract_effective",
            obj=attachment.opportunity,
            changes={"file": attachment.name},
        )
    return attachment


def question_mark(
    *, tenant: Tenant, acting_member: Membership, opportunity: Opportunity, text: str
) -> TechnicalQuestion:
    check_tenant(tenant, opportunity)
    _writer(acting_member, opportunity)
    text = (text or "").strip()
    if not text:
        raise ValidationError({"text": _("Write the question down.")})
    with transaction.atomic():
        question = TechnicalQuestion.objects.create(
            tenant=tenant, opportunity=opportunity, text=text[:300], opened_by=acting_member
        )
        _touch(opportunity)
        audit(
            tenant=tenant,
            actor=actor_user(acting_member),
            action="opportunity.question",
            obj=opportunity,
            changes={"question": question.text},
        )
    return question


def question_close(*, tenant: Tenant, acting_member: Membership, question: TechnicalQuestion):
    check_tenant(tenant, question)
    _writer(acting_member, question.opportunity)
    if question.closed_at is None:
        question.closed_at = timezone.now()
        question.save(update_fields=["closed_at"])
        _touch(question.opportunity)
    return question


def chain_member_add(
    *,
    tenant: Tenant,
    acting_member: Membership,
    opportunity: Opportunity,
    role: ChainRole | None,
    contact: Contact | None = None,
    contact_name: str = "",
    contact_title: str = "",
    contact_phone: str = "",
    influence: str = Influence.MEDIUM,
    attitude: str = Attitude.UNKNOWN,
    contact_status: str = ContactStatus.NOT_YET,
    key_demands: str = "",
) -> OpportunityContact:
    """Map a member of the decision chain (F22): one of the customer's contacts, or a new
    one (`contact_name`), in a role of the tenant's list."""
    check_tenant(tenant, opportunity, role, contact)
    _writer(acting_member, opportunity)
    errors = {}
    if role is None or not role.is_active:
        errors["role"] = _("Choose the role.")
    if contact is None and not (contact_name or "").strip():
        errors["contact"] = _("Choose a contact of the customer, or name a new one.")
    if contact is not None and contact.customer_id != opportunity.customer_id:
        errors["contact"] = _("The contact is not one of the customer's.")
    if influence not in Influence.values:
        errors["influence"] = _("Choose the influence.")
    if attitude not in Attitude.values:
        errors["attitude"] = _("Choose the attitude.")
    if contact_status not in ContactStatus.values:
        errors["contact_status"] = _("Choose the contact status.")
    if (
        contact is not None
        and role is not None
        and OpportunityContact.objects.filter(
            opportunity=opportunity, contact=contact, role=role
        ).exists()
    ):
        errors["contact"] = _("This contact is mapped in this role already.")
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        if contact is None:
            from crm.normalize import parse_phone

            parsed = parse_phone(contact_phone) if contact_phone else None
            contact = Contact.objects.create(
                tenant=tenant,
                customer=opportunity.customer,
                name=contact_name.strip()[:100],
                title=(contact_title or "").strip()[:100],
                phone=(contact_phone or "").strip()[:32],
                phone_key=parsed.e164 if parsed is not None else "",
                role=role.decision_role,
            )
        member = OpportunityContact.objects.create(
            tenant=tenant,
            opportunity=opportunity,
            contact=contact,
            role=role,
            influence=influence,
            attitude=attitude,
            contact_status=contact_status,
            key_demands=(key_demands or "").strip()[:300],
        )
        _touch(opportunity)
        audit(
            tenant=tenant,
            actor=actor_user(acting_member),
            action="opportunity.chain_add",
            obj=opportunity,
            changes={"contact": str(contact), "role": role.name, "attitude": attitude},
        )
    return member


def chain_member_update(
    *, tenant: Tenant, acting_member: Membership, member: OpportunityContact, changes: dict
) -> OpportunityContact:
    """Change a member's influence, attitude, contact status or key demands."""
    check_tenant(tenant, member)
    _writer(acting_member, member.opportunity)
    allowed = {
        "influence": Influence.values,
        "attitude": Attitude.values,
        "contact_status": ContactStatus.values,
    }
    errors = {
        name: _("Choose one of the list.")
        for name, values in allowed.items()
        if name in changes and changes[name] not in values
    }
    if errors:
        raise ValidationError(errors)
    before = {n: getattr(member, n) for n in changes}
    with transaction.atomic():
        for name, value in changes.items():
            setattr(member, name, value if name != "key_demands" else (value or "")[:300])
        member.save(update_fields=list(changes))
        _touch(member.opportunity)
        audit(
            tenant=tenant,
            actor=actor_user(acting_member),
            action="opportunity.chain_update",
            obj=member.opportunity,
            changes={n: [before[n], getattr(member, n)] for n in changes},
        )
    return member


def chain_member_remove(*, tenant: Tenant, acting_member: Membership, member: OpportunityContact):
    check_tenant(tenant, member)
    _writer(acting_member, member.opportunity)
    with transaction.atomic():
        Opportunity.objects.filter(lost_blocker=member).update(lost_blocker=None)
        audit(
            tenant=tenant,
            actor=actor_user(acting_member),
            action="opportunity.chain_remove",
            obj=member.opportunity,
            changes={"contact": str(member.contact), "role": str(member.role)},
        )
        member.delete()


# -- the validity funnel (F23) --------------------------------------------------------------


def validity_request(
    *, tenant: Tenant, acting_member: Membership, opportunity: Opportunity, now=None
) -> ValidityRequest:
    """Ask a manager to approve the opportunity's validity (one open request at a time)."""
    check_tenant(tenant, opportunity)
    _writer(acting_member, opportunity)
    _open(opportunity)
    now = now or timezone.now()
    if opportunity.approved_at is not None:
        raise ValidationError(_("Its validity is approved already."))
    pending = ValidityRequest.objects.filter(opportunity=opportunity, decided_at__isnull=True)
    if pending.filter(requested_at__gt=now - timedelta(hours=APPROVAL_WINDOW_HOURS)).exists():
        raise ValidationError(_("A request is waiting for a manager already."))
    with transaction.atomic(), _acting(acting_member, Path.FORM):
        request = ValidityRequest.objects.create(
            tenant=tenant, opportunity=opportunity, requested_by=acting_member, requested_at=now
        )
        audit(
            tenant=tenant,
            actor=actor_user(acting_member),
            action="opportunity.validity_request",
            obj=opportunity,
        )
        transaction.on_commit(lambda: _notify_approvers(tenant, opportunity, acting_member))
    return request


def _notify_approvers(tenant: Tenant, opportunity: Opportunity, requester: Membership) -> None:
    from crm.notify import notify

    approvers = Membership.objects.in_tenant(tenant).active().filter(role=Role.MANAGER)
    recipients = [a for a in approvers if a.pk != opportunity.owner_id]
    if recipients:
        from django.urls import reverse

        notify(
            event="opportunity.validity_requested",
            recipients=recipients,
            params={"opportunity": opportunity.name, "requester": requester.display_name},
            link=reverse("opportunities:detail", args=[opportunity.public_id]) + "#validity",
            tenant=tenant,
        )


def validity_decide(
    *,
    tenant: Tenant,
    acting_member: Membership,
    request: ValidityRequest,
    approve: bool,
    note: str = "",
    now: datetime | None = None,
) -> ValidityRequest:
    """A manager's answer: an approval counts within 72 hours of the request and never
    from the opportunity's owner."""
    check_tenant(tenant, request)
    opportunity = request.opportunity
    now = now or timezone.now()
    if acting_member.role not in VALIDITY_APPROVERS:
        raise PermissionDenied(_("Only a sales manager approves an opportunity's validity."))
    if acting_member.pk == opportunity.owner_id:
        raise ValidationError(_("You own this opportunity: another manager must approve it."))
    if request.decided_at is not None:
        raise ValidationError(_("This request has been answered already."))
    if now - request.requested_at > timedelta(hours=APPROVAL_WINDOW_HOURS):
        raise ValidationError(
            _("The request is older than %(hours)d hours: the owner must ask again.")
            % {"hours": APPROVAL_WINDOW_HOURS}
        )
    with transaction.atomic(), _acting(acting_member, Path.FORM):
        request.decided_by = acting_member
        request.decided_at = now
        request.approved = bool(approve)
        request.note = (note or "").strip()[:300]
        request.save(update_fields=["decided_by", "decided_at", "approved", "note"])
        if approve:
            Opportunity.objects.filter(pk=opportunity.pk).update(
                approved_at=now, last_activity_at=now
            )
        audit(
            tenant=tenant,
            actor=actor_user(acting_member),
            action="opportunity.validity_approve" if approve else "opportunity.validity_reject",
            obj=opportunity,
            changes={"note": request.note},
        )
    return request


# -- many at once: bulk edits and imports ---------------------------------------------------


def opportunities_advance_many(
    *,
    tenant: Tenant,
    acting_member: Membership | None,
    opportunities,
    stage: Stage,
    path: str = Path.BULK,
) -> tuple[list[Opportunity], list[RequirementsUnmet]]:
    """Move each opportunity through `opportunity_advance` (never around it): the moved
    ones, and the refusals with their missing items."""
    moved, refused = [], []
    for opportunity in opportunities:
        try:
            moved.append(
                opportunity_advance(
                    tenant=tenant,
                    acting_member=acting_member,
                    opportunity=opportunity,
                    stage=stage,
                    path=path,
                )
            )
        except RequirementsUnmet as exc:
            refused.append(exc)
    return moved, refused


def month_end(month: date) -> date:
    return month.replace(day=calendar.monthrange(month.year, month.month)[1])
