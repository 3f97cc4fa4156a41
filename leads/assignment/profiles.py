"""Rep profiles' writes besides editing one in the admin (crm.services' contract)."""

from __future__ import annotations

from django.db import transaction

from crm.audit import audit
from crm.models import Membership, Tenant
from crm.roles import OWNERS
from crm.services import actor_user, check_tenant
from leads.models import RepProfile


def rep_profiles_create_missing(*, tenant: Tenant, acting_member: Membership | None) -> int:
    """A profile with the defaults for every active rep of `tenant` without one, each
    audited. Returns how many were created."""
    check_tenant(tenant, acting_member)
    with transaction.atomic():
        reps = (
            Membership.objects.in_tenant(tenant)
            .active()
            .filter(role__in=OWNERS, rep_profile__isnull=True)
            .select_related("user")
        )
        created = 0
        for membership in reps:
            profile, made = RepProfile.objects.get_or_create(
                membership=membership, defaults={"tenant": tenant}
            )
            if made:
                created += 1
                audit(
                    tenant=tenant, actor=actor_user(acting_member), action="admin.add", obj=profile
                )
    return created
