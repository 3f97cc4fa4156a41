"""Fetch-one helpers for kernel objects: scoped, role-checked, 404 for missing and foreign."""

from __future__ import annotations

import uuid

from django.http import Http404

from crm.models import Membership, active_memberships_of


def access_own_membership(user, tenant_slug: str) -> Membership:
    """The user's active seat in the tenant with `tenant_slug`.

    404 when the tenant does not exist, is inactive, or the user holds no seat there: the
    answer is the same, so a user cannot probe which tenants exist.
    """
    membership = next(
        (m for m in active_memberships_of(user) if m.tenant.slug == tenant_slug), None
    )
    if membership is None:
        raise Http404("No such tenant for this user.")
    return membership


def access_membership(membership: Membership, public_id: uuid.UUID | str) -> Membership:
    """A colleague's membership in `membership`'s tenant (404 for any other tenant's)."""
    found = (
        Membership.objects.in_tenant(membership.tenant)
        .select_related("user", "tenant")
        .filter(public_id=public_id)
        .first()
    )
    if found is None:
        raise Http404("No such member in this tenant.")
    return found
