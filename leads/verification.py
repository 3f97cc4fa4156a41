"""Two-track verification of a lead (F16): the owner's verdict.

Four outcomes (`leads.models.Verification`): two valid ones, which turn the lead into a
customer with a contact (`customers.services.customer_for_lead`) and set its next step,
and two invalid ones, which need one of the tenant's preset invalid reasons. The next
step keeps a valid lead on the rep's board and out of the pool: "valid · visit booked"
takes the visit's date (the step is the visit, `customers.services.visit_action`),
"valid · needs more information" a next action and its due date; it is stored as the
lead's first open next step (`customers.services.interaction_schedule`), shown on the
board as a follow-up on its day. Only the owner verifies, once: anyone else gets 403, an
already verified lead 409, and nothing changes. A verification counts as a touch (the
first one decides on time or late).

The verdict's page (`leads:verify`) is leads.followups.lead_verify_view.
"""

from __future__ import annotations

from datetime import date, datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.audit import audit
from crm.models import Membership, Tenant
from crm.services import actor_user, check_tenant
from crm.tenancy import NoTenantError, current_tenant
from customers.services import (
    customer_for_lead,
    interaction_schedule,
    next_step_errors,
    visit_action,
)
from leads import events as lead_events
from leads.access import is_lead_owner
from leads.models import (
    ContactMethod,
    InvalidReason,
    Lead,
    LeadEvent,
    LeadEventKind,
    LeadStatus,
    Verification,
)

DEFAULT_INVALID_REASONS = (
    "空号/停机",
    "号码错误",
    "无人接听多次",
    "非决策人且无法转介",
    "同行/竞争对手",
    "个人用户非企业",
    "已有供应商不考虑",
    "无预算",
    "地区不在服务范围",
    "重复咨询",
    "测试/恶意提交",
    "其他",
)


class VerificationError(Exception):
    """A verdict that may not be given: `status` 403 (not the owner) or 409 (verified)."""

    def __init__(self, message: str, *, status: int):
        super().__init__(message)
        self.message = message
        self.status = status


def invalid_reasons():
    """The tenant's active invalid reasons, in order; the ~12 defaults are created the
    first time a tenant's list is read."""
    tenant = current_tenant()
    if tenant is None:
        raise NoTenantError("invalid_reasons() needs a tenant: run it in tenant_context()")
    active = InvalidReason.objects.filter(is_active=True).order_by("position", "id")
    if active:  # read once: the answer keeps the rows, so iterating it costs no query
        return active
    if not InvalidReason.objects.exists():
        InvalidReason.objects.bulk_create(
            [
                InvalidReason(tenant=tenant, name=name, position=i * 10)
                for i, name in enumerate(DEFAULT_INVALID_REASONS, start=1)
            ],
            ignore_conflicts=True,  # a concurrent first use created them already
        )
    return active.all()


def lead_verify(
    *,
    tenant: Tenant,
    acting_member: Membership,
    lead: Lead,
    outcome: str,
    invalid_reason: InvalidReason | None = None,
    visit_date: date | None = None,
    next_action=None,
    next_action_due: date | None = None,
    now: datetime | None = None,
) -> Lead:
    """Record the owner's verdict on `lead` and return it (updated in place).

    A valid verdict needs its next step: `visit_date` for "visit booked"; `next_action` (a
    `customers.Preset` of the action library) and `next_action_due` for "needs more
    information". Raises VerificationError (403: `acting_member` is not the owner; 409:
    already verified) or ValidationError with field errors (unknown outcome; an invalid
    verdict without one of the tenant's active reasons; a valid one without its next step,
    or with a date in the past). Nothing is written when it raises.
    """
    from leads.assignment.zones import lead_record_touch

    check_tenant(tenant, acting_member, lead)
    now = now or timezone.now()
    with transaction.atomic():
        # Lock the row and read it fresh: a double click or a concurrent verdict waits
        # here and then sees the first one's result (409).
        Lead.objects.select_for_update(of=("self",)).filter(pk=lead.pk).values_list("pk").get()
        lead.refresh_from_db()
        if not is_lead_owner(acting_member, lead):
            raise VerificationError(_("Only the lead's owner can verify it."), status=403)
        if lead.verification:
            raise VerificationError(
                _("This lead was already verified (%(outcome)s).")
                % {"outcome": lead.get_verification_display()},
                status=409,
            )
        if outcome not in Verification.values:
            raise ValidationError({"outcome": [_("Choose one of the four outcomes.")]})
        valid = outcome in Verification.valid()
        errors = {}
        if outcome == Verification.VALID_VISIT:
            next_action, next_action_due = visit_action(), visit_date
            errors = next_step_errors(next_action, visit_date, at=now, due_field="visit_date")
        elif valid:
            errors = next_step_errors(next_action, next_action_due, at=now)
        if valid:
            invalid_reason = None
            if errors:
                raise ValidationError(errors)
        elif invalid_reason is None:
            raise ValidationError(
                {"invalid_reason": [_("An invalid verdict needs a reason: choose one.")]}
            )
        elif invalid_reason.tenant_id != lead.tenant_id or not invalid_reason.is_active:
            raise ValidationError({"invalid_reason": [_("Choose a reason from the list.")]})

        lead_record_touch(
            tenant=tenant,
            acting_member=acting_member,
            lead=lead,
            channel=ContactMethod.PHONE,
            at=now,
        )
        data = {"outcome": outcome}
        fields = ["verification", "verified_at", "verified_by", "invalid_reason", "status"]
        lead.verification = outcome
        lead.verified_at = now
        lead.verified_by = acting_member
        lead.invalid_reason = invalid_reason
        lead.status = LeadStatus.VALID if valid else LeadStatus.INVALID
        if valid:
            customer, contact, created = customer_for_lead(
                tenant=tenant, acting_member=acting_member, lead=lead
            )
            lead.customer, lead.contact = customer, contact
            fields += ["customer", "contact"]
            data.update(
                customer=str(customer.public_id),
                customer_name=customer.name,
                customer_created=created,
                next_action=next_action.name,
                next_action_due=next_action_due.isoformat(),
            )
        else:
            data.update(reason=invalid_reason.name, reason_id=invalid_reason.pk)
        lead.save(update_fields=fields)
        if valid:
            step = interaction_schedule(
                tenant=tenant,
                acting_member=acting_member,
                lead=lead,
                next_action=next_action,
                next_action_due=next_action_due,
                at=now,
            )
            data["interaction"] = str(step.public_id)
        LeadEvent.objects.create(
            tenant=tenant,
            lead=lead,
            kind=LeadEventKind.VERIFIED,
            at=now,
            actor=acting_member.user,
            data=data,
        )
        audit(
            tenant=tenant,
            actor=actor_user(acting_member),
            action="lead.verified",
            obj=lead,
            changes={
                "verification": [None, outcome],
                **({"invalid_reason": [None, invalid_reason.name]} if invalid_reason else {}),
            },
        )
        lead_events.emit_lead(lead_events.VERIFIED, lead)
    return lead
