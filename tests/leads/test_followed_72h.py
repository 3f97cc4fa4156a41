"""A lead's `followed_up_72h` (kept by the triggers of leads migration 0023), which the
process report's 72 h follow-up counts: true exactly while its owner has a follow-up on
it within 72 h of the assignment, whatever inserts, moves or deletes the follow-ups, hands
the lead over or saves a stale copy of it; checked against an EXISTS per lead. Tenant b's
follow-ups never flag tenant a's leads."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from crm.tenancy import tenant_context
from customers.models import Interaction, Preset, PresetKind
from leads.models import Lead
from tests.leads.factories import make_lead

pytestmark = pytest.mark.django_db


def followed(tenant) -> dict[int, bool]:
    with tenant_context(tenant):
        return dict(Lead.objects.values_list("pk", "followed_up_72h"))


def followed_recomputed(tenant) -> dict[int, bool]:
    """An EXISTS per lead, as the 72 h follow-up was counted before the flag."""
    h72 = timedelta(hours=72)
    with tenant_context(tenant):
        out = {}
        for lead in Lead.objects.all():
            out[lead.pk] = bool(
                lead.owner_id
                and lead.assigned_at
                and Interaction.objects.filter(
                    lead=lead,
                    by_id=lead.owner_id,
                    at__gte=lead.assigned_at,
                    at__lte=lead.assigned_at + h72,
                ).exists()
            )
        return out


def follow_up(side, lead, by, at):
    with tenant_context(side.tenant):
        action = Preset.objects.get_or_create(
            tenant=side.tenant, kind=PresetKind.ACTION, defaults={"name": "发送资料"}
        )[0]
        return Interaction.objects.create(
            tenant=side.tenant,
            lead=lead,
            by=by,
            at=at,
            channel="phone",
            next_action=action,
            next_action_due=at.date(),
        )


def test_the_72h_follow_up_flag_follows_follow_ups_and_hand_overs(world):
    a, t = world.a, world.a.tenant
    assigned = timezone.now() - timedelta(days=10)
    lead = make_lead(t, owner=a.rep, assigned_at=assigned)
    other = make_lead(t, owner=a.rep, assigned_at=assigned)
    with tenant_context(t):
        stale = Lead.objects.get(pk=lead.pk)
    late = follow_up(a, lead, a.rep, assigned + timedelta(hours=72, seconds=1))
    assert followed(t) == {lead.pk: False, other.pk: False}
    edge = follow_up(a, lead, a.rep, assigned + timedelta(hours=72))  # the last instant
    assert followed(t) == {lead.pk: True, other.pk: False} == followed_recomputed(t)
    stale.company = "宁波恒力液压股份有限公司"
    with tenant_context(t):
        stale.save()  # its copy says False
    assert followed(t)[lead.pk] is True
    with tenant_context(t):
        # Handed to the manager: the rep's follow-ups are not the new owner's.
        Lead.objects.filter(pk=lead.pk).update(owner=a.manager)
    assert followed(t)[lead.pk] is False
    with tenant_context(t):
        Lead.objects.filter(pk=lead.pk).update(owner=a.rep)
        Interaction.objects.filter(pk=edge.pk).update(lead=other)
    assert followed(t) == {lead.pk: False, other.pk: True} == followed_recomputed(t)
    with tenant_context(t):
        Interaction.objects.filter(pk=late.pk).update(at=assigned + timedelta(hours=1))
        Interaction.objects.filter(pk=edge.pk).delete()
    assert followed(t) == {lead.pk: True, other.pk: False} == followed_recomputed(t)
    # Tenant b's follow-up never flags anything of a's.
    b_lead = make_lead(world.b.tenant, owner=world.b.rep, assigned_at=assigned)
    follow_up(world.b, b_lead, world.b.rep, assigned + timedelta(hours=1))
    assert followed(world.b.tenant) == {b_lead.pk: True}
    assert followed(t) == followed_recomputed(t)
