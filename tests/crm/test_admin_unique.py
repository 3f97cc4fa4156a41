"""The admin answers a tenant-scoped duplicate with a form error, not an IntegrityError
(issue 11 item 10): TenantModelAdmin checks the constraints Django's own form skips."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from crm.normalize import company_key
from crm.tenancy import tenant_context
from customers.models import Customer, Preset
from leads.models import Tag
from tests.conftest import platform_db

pytestmark = pytest.mark.django_db

NAME = "宁波恒力液压科技有限公司"


def _customer(tenant, name=NAME):
    with tenant_context(tenant):
        return Customer.objects.create(tenant=tenant, name=name, name_key=company_key(name))


def _customer_post(name):
    return {"name": name, "level": "C", "industry": "", "province": "", "city": "", "owner": ""}


def _inline_management(prefix="contacts"):
    return {
        f"{prefix}-TOTAL_FORMS": "0",
        f"{prefix}-INITIAL_FORMS": "0",
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }


def _customer_count(tenant):
    with tenant_context(tenant):
        return Customer.objects.count()


def test_adding_a_customer_with_a_taken_name_is_a_field_error(world, login):
    _customer(world.a.tenant)
    client = login(world.a.admin)
    # The same company, spelt with its legal form in brackets: the same normalised name.
    response = client.post(
        reverse("admin:customers_customer_add"), _customer_post("宁波恒力液压科技（有限公司）")
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["name"]
    assert errors["name"] == ["本租户已有名称相同的客户。"]
    assert "本租户已有名称相同的客户。" in response.text
    assert _customer_count(world.a.tenant) == 1


def test_renaming_a_customer_to_a_taken_name_is_a_field_error(world, login):
    _customer(world.a.tenant)
    other = _customer(world.a.tenant, "杭州西子电梯有限公司")
    client = login(world.a.admin)
    url = reverse("admin:customers_customer_change", args=[other.pk])
    response = client.post(url, {**_customer_post(NAME), **_inline_management()})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["name"] == ["本租户已有名称相同的客户。"]
    with tenant_context(world.a.tenant):
        other.refresh_from_db()
    assert other.name == "杭州西子电梯有限公司"

    # Saving it under its own name is no clash with itself.
    response = client.post(url, {**_customer_post("杭州西子电梯有限公司"), **_inline_management()})
    assert response.status_code == 302


def test_the_same_customer_name_in_another_tenant_is_fine(world, login):
    _customer(world.b.tenant)
    response = login(world.a.admin).post(
        reverse("admin:customers_customer_add"), _customer_post(NAME)
    )
    assert response.status_code == 302
    with tenant_context(world.a.tenant):
        assert Customer.objects.get().name_key == company_key(NAME)


def test_a_duplicate_tag_is_a_field_error_and_another_tenants_is_not(world, login):
    with tenant_context(world.b.tenant):
        Tag.objects.create(tenant=world.b.tenant, name="紧急")
    client = login(world.a.admin)
    add = reverse("admin:leads_tag_add")
    assert client.post(add, {"name": "紧急", "color": "danger"}).status_code == 302
    response = client.post(add, {"name": "紧急", "color": "info"})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["name"] == ["本租户已有名称相同的标签。"]


def test_a_duplicate_over_two_fields_is_a_form_error(world, login, english):
    with tenant_context(world.a.tenant):
        Preset.objects.create(tenant=world.a.tenant, kind="pain", name="预算不足")
    client = login(world.a.admin)
    client.cookies["django_language"] = "en"
    add = reverse("admin:customers_preset_add")
    post = {"kind": "pain", "name": "预算不足", "position": "0", "is_active": "on"}
    response = client.post(add, post)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["__all__"] == [
        "This tenant already has a follow-up preset with this list and name."
    ]
    # The same name in another list is another preset.
    assert client.post(add, {**post, "kind": "talk_tag"}).status_code == 302


@platform_db
def test_the_superuser_gets_the_error_in_the_objects_tenant(world, client):
    _customer(world.a.tenant)
    _customer(world.a.tenant, "杭州西子电梯有限公司")
    root = get_user_model().objects.create_superuser("root", "root@x.invalid", "pw")
    client.force_login(root, backend="django.contrib.auth.backends.ModelBackend")
    with tenant_context(world.a.tenant):
        other = Customer.objects.get(name="杭州西子电梯有限公司")
    response = client.post(
        reverse("admin:customers_customer_change", args=[other.pk]),
        {**_customer_post(NAME), **_inline_management()},
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["name"] == ["本租户已有名称相同的客户。"]
