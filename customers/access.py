"""Who sees which customers: scoped by tenant, role-checked, 404 for missing and foreign
alike.

Managers, marketing, service agents and admins read every customer of the tenant (service
agents for the sales context of the people they help); a rep reads the customers they
own, as with leads (leads.access.leads_visible_to), and on its page the customer of a
lead they own. Logging a follow-up on a customer is
for its owner, managers and admins.
"""

from __future__ import annotations

import uuid

from django.http import Http404

from crm.models import Membership, Role
from customers.models import Customer

CUSTOMER_READERS = (Role.MANAGER, Role.MARKETING, Role.SERVICE, Role.ADMIN)
# Who may log a follow-up on a customer besides its owner.
CUSTOMER_WRITERS = (Role.MANAGER, Role.ADMIN)
# Everyone with a seat reads customers: the readers all of them, reps their own.
CUSTOMER_ROLES = (*CUSTOMER_READERS, Role.REP)


def customers_visible_to(membership: Membership):
    """The customers `membership` may read, in its tenant (the scoped manager)."""
    qs = Customer.objects.all()
    if membership.role in CUSTOMER_READERS:
        return qs
    return qs.filter(owner=membership)


def access_customer(membership: Membership, public_id: uuid.UUID | str) -> Customer:
    """A customer of `membership`'s tenant that this member may read, or 404 (another
    tenant's id, an unknown one and another rep's customer alike)."""
    customers = Customer.objects.select_related("owner__user", "source_lead")
    customer = (
        customers_visible_to(membership)
        .select_related("owner__user", "source_lead")
        .filter(public_id=public_id)
        .first()
    )
    if customer is None and membership.role == Role.REP:
        # A rep also reads the customer of a lead they own (a verified lead handed to
        # them from the pool or by a manager), so the new owner can follow it up.
        customer = customers.filter(public_id=public_id, leads__owner=membership).first()
    if customer is None:
        raise Http404("No such customer.")
    return customer


def can_log_on_customer(membership: Membership, customer: Customer) -> bool:
    return customer.owner_id == membership.pk or membership.role in CUSTOMER_WRITERS
