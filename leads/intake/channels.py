"""A lead channel's writes besides editing it in the admin (crm.services' contract)."""

from __future__ import annotations

from django.db import transaction

from crm.audit import audit
from crm.models import Membership, Tenant
from crm.services import actor_user, check_tenant
from leads.models import Channel


def channel_rotate_secret(
    *, tenant: Tenant, acting_member: Membership | None, channel: Channel
) -> str:
    """A new secret for `channel`; the old one stops working at once. Returns the new
    secret (shown this once)."""
    check_tenant(tenant, acting_member, channel)
    with transaction.atomic():
        channel.rotate_secret()
        channel.save(update_fields=["secret"])
        audit(
            tenant=tenant,
            actor=actor_user(acting_member),
            action="channel.rotate_secret",
            obj=channel,
        )
    return channel.secret
