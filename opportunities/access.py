"""Who sees which opportunities: scoped by tenant, role-checked, 404 for missing and
foreign alike (as customers.access).

Managers, marketing, service agents and admins read every opportunity of the tenant
(crm.roles.OPPORTUNITY_ALL; service agents without amounts or contracts); a rep reads
the ones they own. Writing (advancing, editing, closing, adding evidence) is for the
owner and crm.roles.OPPORTUNITY_WRITERS (opportunities.services.can_write).
"""

from __future__ import annotations

import uuid

from django.http import Http404

from crm.models import Membership
from crm.roles import AMOUNT_HIDDEN, OPPORTUNITY_ALL, OPPORTUNITY_LIST
from opportunities.models import Attachment, Opportunity
from opportunities.services import can_write


def opportunities_visible_to(membership: Membership):
    """The opportunities `membership` may read, in its tenant (the scoped manager)."""
    qs = Opportunity.objects.all()
    if membership.role in OPPORTUNITY_ALL:
        return qs
    if membership.role in OPPORTUNITY_LIST:
        return qs.filter(owner=membership)
    return qs.none()


def access_opportunity(
    membership: Membership, public_id: uuid.UUID | str, *, write: bool = False
) -> Opportunity:
    """An opportunity of `membership`'s tenant that this member may read (and with
    `write`, work on), or 404 for every other id alike."""
    opportunity = (
        opportunities_visible_to(membership)
        .select_related("customer", "owner__user", "stage", "contact", "origin_lead")
        .filter(public_id=public_id)
        .first()
    )
    if opportunity is None or (write and not can_write(membership, opportunity)):
        raise Http404("No such opportunity.")
    return opportunity


def sees_amounts(membership: Membership) -> bool:
    return membership.role not in AMOUNT_HIDDEN


def access_attachment(
    membership: Membership, opportunity: Opportunity, public_id: uuid.UUID | str
) -> Attachment:
    """An attachment of `opportunity` the member may download, or 404 (service agents
    never download signed contracts)."""
    attachment = (
        Attachment.objects.select_related("kind")
        .filter(opportunity=opportunity, public_id=public_id)
        .first()
    )
    if attachment is None or (attachment.kind.is_contract and not sees_amounts(membership)):
        raise Http404("No such attachment.")
    return attachment
