"""Fetch-one helpers for leads: scoped by tenant, 404 for missing and foreign alike."""

from __future__ import annotations

import re
import uuid

from django.db import connection
from django.http import Http404

from crm.models import Membership, Role, Tenant
from crm.tenancy import tenant_context
from leads.models import Channel, ImportBatch, Lead

# Who may see every lead of the tenant; reps see their own (and unassigned ones in the pool
# once assignment exists).
LEAD_READERS = (Role.MANAGER, Role.MARKETING, Role.ADMIN)
IMPORTERS = (Role.MANAGER, Role.MARKETING, Role.ADMIN)
# Channel keys are URL-safe Base64 (secrets.token_urlsafe); anything else (a NUL byte,
# which PostgreSQL refuses in a query) names no channel.
_CHANNEL_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")


def channel_by_key(key: str) -> Channel | None:
    """The active channel with this key, whichever tenant owns it.

    The one cross-tenant read of the webhook and form paths: the unguessable key is what
    identifies the tenant (its HMAC secret then proves the sender). The database function
    `leads_channel_by_key` (SECURITY DEFINER, leads/apps.py) answers only the channel's and
    its tenant's ids; the channel itself is then read inside that tenant. The caller
    enters `tenant_context(channel.tenant)` before anything else.
    """
    if not _CHANNEL_KEY.fullmatch(key or ""):
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT channel_id, tenant_id FROM leads_channel_by_key(%s)", [key])
        found = cursor.fetchone()
    if found is None:
        return None
    channel_id, tenant_id = found
    with tenant_context(Tenant(pk=tenant_id)):
        return Channel.objects.select_related("tenant").filter(pk=channel_id).first()


def leads_visible_to(membership: Membership):
    qs = Lead.objects.all()
    if membership.role in LEAD_READERS:
        return qs
    return qs.filter(owner=membership)


def access_lead(membership: Membership, public_id: uuid.UUID | str) -> Lead:
    """A lead of `membership`'s tenant that this member may see, or 404."""
    lead = (
        leads_visible_to(membership)
        .select_related("channel", "owner__user", "revisit_of")
        .filter(public_id=public_id)
        .first()
    )
    if lead is None:
        raise Http404("No such lead.")
    return lead


def access_import(membership: Membership, public_id: uuid.UUID | str) -> ImportBatch:
    batch = ImportBatch.objects.select_related("channel").filter(public_id=public_id).first()
    if batch is None or membership.role not in IMPORTERS:
        raise Http404("No such import.")
    return batch
