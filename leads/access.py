"""Fetch-one helpers for leads: scoped by tenant, 404 for missing and foreign alike.

Managers, marketing and admins read every lead of the tenant (crm.roles.LEAD_ALL); a rep
reads the leads they own. Changing a lead is for its owner and crm.roles.ASSIGNERS
(`access_lead(..., write=True)`); some actions narrow that further on a lead the member
reads, and answer 403 there: only its owner verifies it, logs its follow-ups and records
its touches (`is_lead_owner`), only an assigner hands it out (crm.roles.ASSIGNERS).
"""

from __future__ import annotations

import re
import uuid

from django.db import connection
from django.http import Http404

from crm.models import Membership, Tenant
from crm.roles import ASSIGNERS, IMPORTERS, LEAD_ALL
from crm.tenancy import tenant_context
from leads.models import Channel, ImportBatch, Lead

# Kept for the modules that still import them (leads.views: both; leads.intake.imports:
# IMPORTERS): crm.roles' sets under their old names.
LEAD_READERS = LEAD_ALL
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
    found = channel_ids_by_key(key)
    if found is None:
        return None
    channel_id, tenant_id = found
    with tenant_context(Tenant(pk=tenant_id)):
        return Channel.objects.select_related("tenant").filter(pk=channel_id).first()


def channel_ids_by_key(key: str) -> tuple[int, int] | None:
    """(channel id, tenant id) of the active channel with this key, or None: the one
    cross-tenant read (`channel_by_key`) alone, one statement outside any transaction. For
    a caller that reads the channel itself in the tenant transaction it opens next (the
    webhook: one transaction per request)."""
    if not _CHANNEL_KEY.fullmatch(key or ""):
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT channel_id, tenant_id FROM leads_channel_by_key(%s)", [key])
        return cursor.fetchone()


def leads_visible_to(membership: Membership):
    """The leads `membership` may read, in its tenant (the scoped manager)."""
    qs = Lead.objects.all()
    if membership.role in LEAD_ALL:
        return qs
    return qs.filter(owner=membership)


def is_lead_owner(membership: Membership, lead: Lead) -> bool:
    """Whether `membership` owns `lead` (a lead in the pool has no owner)."""
    return lead.owner_id is not None and lead.owner_id == membership.pk


def access_lead(membership: Membership, public_id: uuid.UUID | str, *, write: bool = False) -> Lead:
    """A lead of `membership`'s tenant that this member may read, or 404 (another tenant's
    id, an unknown one and another rep's lead alike). `write=True`: one this member may
    also change (its owner, or crm.roles.ASSIGNERS), else 404 as well."""
    lead = (
        leads_visible_to(membership)
        .select_related("channel", "owner__user", "revisit_of")
        .filter(public_id=public_id)
        .first()
    )
    if lead is None or (write and not may_change_lead(membership, lead)):
        raise Http404("No such lead.")
    return lead


def may_change_lead(membership: Membership, lead: Lead) -> bool:
    """Its owner and crm.roles.ASSIGNERS change a lead (each action may narrow it)."""
    return is_lead_owner(membership, lead) or membership.role in ASSIGNERS


def access_import(membership: Membership, public_id: uuid.UUID | str) -> ImportBatch:
    batch = ImportBatch.objects.select_related("channel").filter(public_id=public_id).first()
    if batch is None or membership.role not in IMPORTERS:
        raise Http404("No such import.")
    return batch
