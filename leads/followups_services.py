"""A follow-up on a lead (F17): the customers app logs it, the lead records what it did.

`customers.services.interaction_log` writes the follow-up (an Interaction on the lead, its
customer and contact) and its audit row; `lead_follow_up` wraps it in one transaction with
the lead's side: the touch (leads.assignment.zones.lead_record_touch) and the timeline's
FOLLOW_UP entry.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

from django.db import transaction

from crm.models import Membership, Tenant
from crm.services import actor_user, check_tenant
from customers.models import Interaction
from customers.services import follow_up_data, interaction_log
from leads.models import Lead, LeadEvent, LeadEventKind


def lead_follow_up(
    *,
    tenant: Tenant,
    acting_member: Membership,
    lead: Lead,
    channel: str,
    talk_tags: Iterable = (),
    pains: Iterable = (),
    roles: Iterable = (),
    note: str = "",
    next_action,
    next_action_due: date | None,
    at: datetime | None = None,
) -> Interaction:
    """Log `acting_member`'s follow-up on `lead` (and its customer and contact) and record
    it on the lead: a touch and the timeline's FOLLOW_UP entry, at the follow-up's time.
    Raises ValidationError with field errors, nothing written, as interaction_log does.
    """
    from leads.assignment.zones import lead_record_touch

    check_tenant(tenant, acting_member, lead)
    with transaction.atomic():
        interaction = interaction_log(
            tenant=tenant,
            acting_member=acting_member,
            lead=lead,
            channel=channel,
            talk_tags=talk_tags,
            pains=pains,
            roles=roles,
            note=note,
            next_action=next_action,
            next_action_due=next_action_due,
            at=at,
        )
        lead_record_touch(
            tenant=tenant,
            acting_member=acting_member,
            lead=lead,
            channel=channel,
            at=interaction.at,
        )
        LeadEvent.objects.create(
            tenant=tenant,
            lead=lead,
            kind=LeadEventKind.FOLLOW_UP,
            at=interaction.at,
            actor=actor_user(acting_member),
            data=follow_up_data(interaction),
        )
    return interaction
