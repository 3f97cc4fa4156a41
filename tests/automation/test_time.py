"""Time conditions (a clock row in PostgreSQL, the beat sweep) and the presets."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from automation.engine import sweep_due
from automation.forms import RuleForm
from automation.models import Due, Rule
from automation.presets import presets_add
from crm.models import Notification
from crm.tenancy import tenant_context
from customers import services as customer_services
from customers.models import PresetKind
from tests.automation.helpers import drain, outcomes, rule
from tests.leads.assignment_view_helpers import intake
from tests.leads.factories import make_channel
from tests.leads.test_dispatch import add_reps

pytestmark = pytest.mark.django_db


def a_class_lead(side):
    add_reps(side.tenant, 1)
    with tenant_context(side.tenant):
        channel = make_channel(side.tenant, name="官网 A", default_grade="A")
    return intake(side.tenant, channel)


def sweep(side, hours):
    with tenant_context(side.tenant):
        return sweep_due(now=timezone.now() + timedelta(hours=hours))


def told(side, member):
    with tenant_context(side.tenant):
        return Notification.objects.filter(recipient=member, event="automation.rule_fired").count()


def follow_up(side, lead):
    with tenant_context(side.tenant):
        customer_services.interaction_log(
            tenant=side.tenant,
            acting_member=lead.owner,
            lead=lead,
            channel="phone",
            next_action=customer_services.presets(PresetKind.ACTION).first(),
            next_action_due=timezone.localdate() + timedelta(days=3),
        )


def test_an_a_class_lead_unverified_after_12_hours_tells_the_manager(world):
    a = world.a
    r = rule(
        a,
        trigger="lead.assigned",
        condition='source_grade == "A"',
        wait_hours=12,
        unless_kind="lead.verified",
        to_role="manager",
    )
    a_class_lead(a)
    drain(a)
    assert outcomes(a, r) == ["waiting"]
    assert sweep(a, 11) == 0  # not due yet
    assert told(a, a.manager) == 0
    assert sweep(a, 13) == 1
    assert outcomes(a, r) == ["waiting", "fired"]
    assert told(a, a.manager) == 1
    assert sweep(a, 14) == 0  # handled once
    with tenant_context(a.tenant):
        assert Due.objects.get(rule=r).done_at is not None


def test_the_awaited_event_cancels_the_clock(world):
    a = world.a
    r = rule(
        a,
        trigger="lead.assigned",
        wait_hours=72,
        unless_kind="followup.logged",
        action="task",
        to_owner=True,
    )
    lead = a_class_lead(a)
    drain(a)
    follow_up(a, lead)
    drain(a)
    assert sweep(a, 73) == 1
    assert outcomes(a, r) == ["waiting", "cancelled"]


def test_another_tenants_clocks_are_not_swept(world):
    b = world.b
    rule(b, trigger="lead.assigned", wait_hours=1, to_role="manager")
    a_class_lead(b)
    drain(b)
    assert sweep(world.a, 2) == 0
    assert sweep(b, 2) == 1


def test_the_presets_are_added_once_switched_off_and_valid(world, en):
    a = world.a
    with tenant_context(a.tenant):
        # The risk preset is on from the start (every new tenant's); the others are added.
        assert Rule.objects.filter(action="retention_task", is_active=True).count() == 1
        added = presets_add(tenant=a.tenant, acting_member=a.admin)
        assert len(added) == 4 and not any(r.is_active for r in added)
        assert presets_add(tenant=a.tenant, acting_member=a.admin) == []
        for preset in [*added, Rule.objects.get(action="retention_task")]:
            data = {f: getattr(preset, f) for f in RuleForm.Meta.fields}
            data["to_member"] = None
            form = RuleForm(data={k: v for k, v in data.items() if v not in (None, False)})
            assert form.is_valid(), (preset.name, form.errors)
    response = en(world.b.admin).post(reverse("admin:automation_rule_presets"))
    assert response.status_code == 302
    with tenant_context(world.b.tenant):
        assert Rule.objects.count() == 5
