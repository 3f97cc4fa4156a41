"""A lead's `has_opportunity` (kept by the triggers of opportunities migration 0007): true
exactly while an opportunity has the lead as its origin, whatever opens, moves or deletes
it, and whatever a stale copy of the lead saves; the cycle's valid leads
(`opportunities.cycle_valid`) equal their recount with an EXISTS over the opportunities;
tenant b's opportunities never flag tenant a's leads."""

from __future__ import annotations

import pytest
from django.db.models import Exists, OuterRef, Q

from crm import metrics
from crm.tenancy import tenant_context
from leads.models import Lead, Verification
from opportunities import cycle_metrics as cm
from opportunities.models import Opportunity
from tests.leads.factories import make_lead
from tests.opportunities.test_forecast import opportunity

pytestmark = pytest.mark.django_db


def flags(tenant) -> dict[int, bool]:
    with tenant_context(tenant):
        return dict(Lead.objects.values_list("pk", "has_opportunity"))


def recomputed(tenant) -> dict[int, bool]:
    with tenant_context(tenant):
        opened = Opportunity.objects.filter(origin_lead=OuterRef("pk"))
        return dict(Lead.objects.annotate(o=Exists(opened)).values_list("pk", "o"))


def test_the_flag_follows_the_opportunities_opened_moved_and_deleted(world):
    a, t = world.a, world.a.tenant
    first, second = make_lead(t), make_lead(t)
    assert flags(t) == {first.pk: False, second.pk: False}
    opp = opportunity(a, a.rep, origin_lead=first)
    other = opportunity(a, a.rep, origin_lead=first)
    assert flags(t) == {first.pk: True, second.pk: False} == recomputed(t)
    with tenant_context(t):
        Opportunity.objects.filter(pk=opp.pk).update(origin_lead=second)
    assert flags(t) == {first.pk: True, second.pk: True}  # `other` is still from first
    with tenant_context(t):
        Opportunity.objects.filter(pk=other.pk).delete()
    assert flags(t) == {first.pk: False, second.pk: True} == recomputed(t)
    with tenant_context(t):
        Opportunity.objects.filter(pk=opp.pk).update(origin_lead=None)
    assert flags(t) == {first.pk: False, second.pk: False} == recomputed(t)


def test_a_stale_copy_of_the_lead_saved_keeps_the_flag(world):
    a, t = world.a, world.a.tenant
    lead = make_lead(t)
    with tenant_context(t):
        stale = Lead.objects.get(pk=lead.pk)  # loaded before its opportunity
    opportunity(a, a.rep, origin_lead=lead)
    with tenant_context(t):
        stale.company = "宁波恒力液压股份有限公司"
        stale.save()
        # Nor can a write set it without an opportunity.
        Lead.objects.filter(pk=make_lead(t).pk).update(has_opportunity=True)
    assert flags(t) == recomputed(t)
    assert flags(t)[lead.pk] is True


def test_cycle_valid_is_its_rows_recounted_with_an_exists(world):
    a, t = world.a, world.a.tenant
    verified = make_lead(t, verification=Verification.VALID_VISIT)
    opened = make_lead(t)
    neither = make_lead(t)
    opportunity(a, a.rep, origin_lead=opened)
    # Tenant b's lead, opened there: counted in b only.
    b_lead = make_lead(world.b.tenant)
    opportunity(world.b, world.b.rep, origin_lead=b_lead)
    metric = metrics.get_metric(cm.VALID)
    with tenant_context(t):
        created = [x.created_at for x in Lead.objects.all()]
        start = min(c.astimezone(t.tzinfo).date() for c in created)
        end = max(c.astimezone(t.tzinfo).date() for c in created)
        figure = metrics.value(metric, tenant=t, start=start, end=end)
        rows = set(
            metrics.rows_of(metric, tenant=t, start=start, end=end).values_list("pk", flat=True)
        )
        valid = Q(verification__in=list(Verification.valid())) | Q(
            Exists(Opportunity.objects.filter(origin_lead=OuterRef("pk")))
        )
        by_exists = set(Lead.objects.filter(valid).values_list("pk", flat=True))
    assert figure == len(rows) == 2
    assert rows == by_exists == {verified.pk, opened.pk}
    assert neither.pk not in rows
    assert flags(world.b.tenant) == {b_lead.pk: True}
    assert flags(t)[neither.pk] is False
