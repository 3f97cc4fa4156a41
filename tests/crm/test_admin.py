"""Tenant-aware admin (F45)."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from crm.models import AuditEvent, Membership, Role
from crm.tenancy import tenant_context
from tests.conftest import platform_db

pytestmark = pytest.mark.django_db


def test_a_tenant_admin_sees_only_their_tenants_rows(world, login):
    client = login(world.a.admin)
    text = client.get(reverse("admin:crm_membership_changelist")).text
    assert "alpha-rep" in text and "beta-rep" not in text
    text = client.get(reverse("admin:crm_auditevent_changelist")).text
    assert str(world.a.audit_event.object_id) in text
    assert str(world.b.audit_event.object_id) not in text


def test_reps_are_kept_out_of_the_admin(world, login):
    for membership in (world.a.rep, world.b.rep):
        assert login(membership).get(reverse("admin:index")).status_code == 403


def test_managers_see_only_the_models_opened_to_them(world, login):
    """Sales managers tune assignment in the admin (docs/assignment.md); the tenant's
    members, audit log, channels and notification channels stay the tenant admin's."""
    client = login(world.a.manager)
    index = client.get(reverse("admin:index"))
    assert index.status_code == 200
    assert reverse("admin:leads_assignmentpolicy_changelist") in index.text
    for name in (
        "admin:crm_membership_changelist",
        "admin:crm_auditevent_changelist",
        "admin:crm_outlet_changelist",
        "admin:leads_channel_changelist",
        "admin:leads_inboundevent_changelist",
    ):
        assert reverse(name) not in index.text, name
        assert client.get(reverse(name)).status_code == 403, name


def test_platform_models_are_superuser_only(world, login):
    client = login(world.a.admin)
    assert client.get(reverse("admin:crm_tenant_changelist")).status_code == 403
    assert client.get(reverse("admin:auth_user_changelist")).status_code == 403
    index = client.get(reverse("admin:index")).text
    assert reverse("admin:crm_tenant_changelist") not in index


def test_a_tenant_admin_changes_a_role_and_it_is_audited(world, login):
    client = login(world.a.admin)
    url = reverse("admin:crm_membership_change", args=[world.a.rep.pk])
    response = client.post(url, {"role": Role.MANAGER, "is_active": "on"})
    assert response.status_code == 302, response.content
    with tenant_context(world.a.tenant):
        world.a.rep.refresh_from_db()
    assert world.a.rep.role == Role.MANAGER
    assert world.a.rep.tenant == world.a.tenant  # not changeable by a tenant admin
    with tenant_context(world.a.tenant):
        event = AuditEvent.objects.get(action="admin.change")
    assert event.actor == world.a.admin.user
    assert event.object_type == "crm.membership"
    assert event.object_id == str(world.a.rep.public_id)
    assert event.changes == {"role": ["rep", "manager"]}


def test_a_tenant_admin_cannot_move_a_seat_to_another_tenant(world, login):
    client = login(world.a.admin)
    url = reverse("admin:crm_membership_change", args=[world.a.rep.pk])
    client.post(url, {"role": Role.REP, "is_active": "on", "tenant": world.b.tenant.pk})
    with tenant_context(world.a.tenant):
        world.a.rep.refresh_from_db()
    assert world.a.rep.tenant == world.a.tenant


def test_a_tenant_admin_cannot_open_another_tenants_row(world, login):
    client = login(world.a.admin)
    url = reverse("admin:crm_membership_change", args=[world.b.rep.pk])
    assert client.get(url).status_code == 404
    assert client.post(url, {"role": Role.ADMIN, "is_active": "on"}).status_code == 404
    with tenant_context(world.b.tenant):
        world.b.rep.refresh_from_db()
    assert world.b.rep.role == Role.REP


def test_the_audit_log_is_read_only(world, login):
    client = login(world.a.admin)
    url = reverse("admin:crm_auditevent_change", args=[world.a.audit_event.pk])
    assert client.get(url).status_code == 200
    assert client.post(url, {"action": "forged"}).status_code == 403
    assert client.get(reverse("admin:crm_auditevent_add")).status_code == 403


@platform_db
def test_the_superuser_sees_every_tenant(world, client):
    root = get_user_model().objects.create_superuser("root", "root@x.invalid", "pw")
    client.force_login(root, backend="django.contrib.auth.backends.ModelBackend")
    text = client.get(reverse("admin:crm_auditevent_changelist")).text
    assert str(world.a.audit_event.object_id) in text
    assert str(world.b.audit_event.object_id) in text
    text = client.get(reverse("admin:crm_membership_changelist")).text
    assert "alpha-rep" in text and "beta-rep" in text


@platform_db
def test_the_superuser_places_a_new_seat_in_a_chosen_tenant(world, client):
    root = get_user_model().objects.create_superuser("root", "root@x.invalid", "pw")
    client.force_login(root, backend="django.contrib.auth.backends.ModelBackend")
    response = client.post(
        reverse("admin:crm_membership_add"),
        {
            "tenant": world.b.tenant.pk,
            "user": world.a.rep.user.pk,
            "role": Role.REP,
            "is_active": "on",
        },
    )
    assert response.status_code == 302, response.content
    with tenant_context(world.b.tenant):
        seat = Membership.objects.get(tenant=world.b.tenant, user=world.a.rep.user)
        assert AuditEvent.objects.filter(action="admin.add", object_id=str(seat.public_id)).exists()


def test_an_admin_signing_in_from_the_admin_lands_in_the_admin(world, client):
    response = client.get(reverse("admin:index"), follow=True)
    login_url = response.redirect_chain[-1][0]
    assert login_url.startswith(reverse("login"))
    response = client.post(
        login_url, {"username": "alpha-admin", "password": "demo-pass-2026"}, follow=True
    )
    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == reverse("admin:index")
    assert "CRM 管理后台" in response.text


def test_the_admin_login_page_sends_a_signed_in_admin_on(world, login):
    response = login(world.a.admin).get(reverse("admin:login"), {"next": "/admin/crm/"})
    assert response.status_code == 302
    assert response["Location"] == "/admin/crm/"


def test_foreign_key_choices_are_limited_to_the_tenant(world, login):
    from leads.models import TaggingRule
    from tests.leads.factories import make_tag

    own, foreign = make_tag(world.a.tenant, "本租户标签"), make_tag(world.b.tenant, "他租户标签")
    client = login(world.a.admin)
    page = client.get(reverse("admin:leads_taggingrule_add")).text
    assert "本租户标签" in page and "他租户标签" not in page
    page = client.get(reverse("admin:leads_channel_add")).text  # the tags M2M
    assert "本租户标签" in page and "他租户标签" not in page
    # and a forged post with the other tenant's tag is refused
    response = client.post(
        reverse("admin:leads_taggingrule_add"),
        {"tag": foreign.pk, "keywords": "急需", "is_active": "on"},
    )
    assert response.status_code == 200 and "errorlist" in response.text
    response = client.post(
        reverse("admin:leads_taggingrule_add"),
        {"tag": own.pk, "keywords": "急需", "is_active": "on"},
    )
    assert response.status_code == 302
    with tenant_context(world.a.tenant):
        rule = TaggingRule.objects.get()
        assert rule.tenant == world.a.tenant
        assert AuditEvent.objects.filter(action="admin.add", object_id=str(rule.public_id)).exists()


def test_channel_mapping_rules_are_validated_in_the_admin(world, login):
    client = login(world.a.admin)
    response = client.post(
        reverse("admin:leads_channel_add"),
        {
            "name": "抖音",
            "type": "douyin",
            "default_grade": "B",
            "is_active": "on",
            "preset": "douyin",
            "mapping": '[{"field": "colour", "path": "x"}]',
        },
    )
    assert response.status_code == 200
    assert "colour" in response.text  # the rule's problem is shown on the field
    response = client.post(
        reverse("admin:leads_channel_add"),
        {
            "name": "抖音",
            "type": "douyin",
            "default_grade": "B",
            "is_active": "on",
            "preset": "douyin",
            "mapping": '[{"field": "company", "path": "form_data.单位"}]',
        },
        follow=True,
    )
    assert response.status_code == 200
    assert "/hooks/" in response.text  # the webhook URL and the secret, shown once
