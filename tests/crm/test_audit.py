import datetime
import decimal
import uuid

import pytest
from django import forms
from django.http import Http404

from crm.access import access_membership, access_own_membership
from crm.audit import audit, diff, form_changes, jsonable, snapshot
from crm.models import AuditEvent, Membership
from crm.tenancy import tenant_context


def test_diff_keeps_only_changed_fields():
    assert diff({"a": 1, "b": 2}, {"a": 1, "b": 3, "c": 4}) == {"b": [2, 3], "c": [None, 4]}
    assert diff({"a": 1}, {"a": 1}) == {}


def test_jsonable_renders_values_readably():
    value = {
        "when": datetime.date(2026, 11, 22),
        "amount": decimal.Decimal("500000.00"),
        "id": uuid.UUID(int=1),
        "tags": ("紧急", "招标"),
    }
    assert jsonable(value) == {
        "when": "2026-11-22",
        "amount": "500000.00",
        "id": "00000000-0000-0000-0000-000000000001",
        "tags": ["紧急", "招标"],
    }


class _RoleForm(forms.ModelForm):
    class Meta:
        model = Membership
        fields = ["role", "is_active"]


@pytest.mark.django_db
def test_form_changes_lists_the_edited_fields(world):
    form = _RoleForm({"role": "manager", "is_active": "on"}, instance=world.a.rep)
    assert form.is_valid()
    assert form_changes(form) == {"role": ["rep", "manager"]}


@pytest.mark.django_db
def test_audit_records_actor_object_and_diff(world):
    before = snapshot(world.a.rep, ["role", "is_active"])
    world.a.rep.role = "manager"
    after = snapshot(world.a.rep, ["role", "is_active"])
    with tenant_context(world.a.tenant):
        event = audit(
            tenant=world.a.tenant,
            actor=world.a.admin.user,
            action="membership.role",
            obj=world.a.rep,
            changes=diff(before, after),
        )
        assert AuditEvent.objects.get(pk=event.pk).changes == {"role": ["rep", "manager"]}
    assert event.object_type == "crm.membership"
    assert event.object_id == str(world.a.rep.public_id)
    assert event.actor == world.a.admin.user


@pytest.mark.django_db
def test_system_actions_have_no_actor(world):
    with tenant_context(world.a.tenant):
        event = audit(
            tenant=world.a.tenant, actor=None, action="sla.sweep", object_type="lead", object_id="x"
        )
    assert event.actor is None


@pytest.mark.django_db
def test_access_membership_hides_other_tenants(world):
    with tenant_context(world.a.tenant):
        assert access_membership(world.a.manager, world.a.rep.public_id) == world.a.rep
        with pytest.raises(Http404):
            access_membership(world.a.manager, world.b.rep.public_id)


@pytest.mark.django_db
def test_access_own_membership_is_404_for_tenants_without_a_seat(world):
    assert access_own_membership(world.a.rep.user, "alpha") == world.a.rep
    with pytest.raises(Http404):
        access_own_membership(world.a.rep.user, "beta")
