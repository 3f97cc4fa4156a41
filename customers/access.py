"""Who sees which customers: scoped by tenant, role-checked, 404 for missing and foreign
alike.

Managers, marketing, service agents and admins read every customer of the tenant (service
agents for the sales context of the people they help: crm.roles.CUSTOMER_ALL); a rep
reads the customers they own, as with leads (leads.access.leads_visible_to), and on its
page the customer of a lead they own. Writing on a customer (logging a follow-up) is for
its owner and crm.roles.CUSTOMER_WRITERS.
"""

from __future__ import annotations

import uuid

from django.http import Http404

from crm.models import Membership
from crm.roles import CUSTOMER_ALL, CUSTOMER_WRITERS, OWNERS
from customers.models import Customer


def customers_visible_to(membership: Membership):
    """The customers `membership` may read, in its tenant (the scoped manager)."""
    qs = Customer.objects.all()
    if membership.role in CUSTOMER_ALL:
        return qs
    return qs.filter(owner=membership)


def access_customer(
    membership: Membership, public_id: uuid.UUID | str, *, write: bool = False
) -> Customer:
    """A customer of `membership`'s tenant that this member may read, or 404 (another
    tenant's id, an unknown one and another rep's customer alike). `write=True`: one this
    member may also write on (`can_write_customer`), else 404 as well."""
    customers = Customer.objects.select_related("owner__user", "source_lead")
    customer = (
        customers_visible_to(membership)
        .select_related("owner__user", "source_lead")
        .filter(public_id=public_id)
        .first()
    )
    if customer is None and membership.role in OWNERS:
        # A rep also reads the customer of a lead they own (a verified lead handed to
        # them from the pool or by a manager), so the new owner can follow it up. The
        # reverse relation of leads.Lead.customer: no import of the leads app.
        customer = customers.filter(public_id=public_id, leads__owner=membership).first()
    if customer is None or (write and not can_write_customer(membership, customer)):
        raise Http404("No such customer.")
    return customer


def can_write_customer(membership: Membership, customer: Customer) -> bool:
    """Its owner and crm.roles.CUSTOMER_WRITERS log follow-ups on a customer."""
    return customer.owner_id == membership.pk or membership.role in CUSTOMER_WRITERS
