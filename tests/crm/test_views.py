"""Shell: login, tenant scoping of requests, switching, home per role, language."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from crm.models import Role
from tests.conftest import platform_db
from tests.factories import MembershipFactory, TenantFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_anonymous_is_sent_to_log_in(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_login_page_is_in_chinese_by_default_whatever_the_browser_says(client):
    response = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")
    assert response.status_code == 200
    assert 'lang="zh-hans"' in response.text
    assert "登录" in response.text


def test_english_is_one_choice_away(client):
    response = client.post(reverse("set_language"), {"language": "en", "next": "/accounts/login/"})
    assert response.status_code == 302
    response = client.get(reverse("login"))
    assert 'lang="en"' in response.text
    assert "Log in" in response.text


def test_a_user_logs_in_with_username_and_password(client, world):
    response = client.post(
        reverse("login"), {"username": "alpha-rep", "password": "demo-pass-2026"}, follow=True
    )
    # A rep's home is their board (docs/board.md): the log-in lands there.
    assert [url for url, _status in response.redirect_chain] == [reverse("home"), "/board/"]
    assert response.status_code == 200
    assert response.context["user"].username == "alpha-rep"


def test_home_runs_in_the_users_tenant(world, login):
    response = login(world.a.rep).get("/", follow=True)
    assert response.status_code == 200
    assert response.wsgi_request.tenant == world.a.tenant
    assert response.wsgi_request.membership == world.a.rep
    assert world.a.tenant.name in response.text


def test_home_offers_the_admin_only_to_admins(world, login):
    rep_response = login(world.a.rep).get("/", follow=True)
    assert rep_response.redirect_chain[-1][0] == "/board/"  # where the rep really lands
    rep_page = rep_response.text
    assert reverse("admin:index") not in rep_page
    assert reverse("team") not in rep_page
    admin_page = login(world.a.admin).get("/", follow=True).text  # the admin's dashboard
    assert reverse("admin:index") in admin_page
    assert reverse("team") in admin_page
    assert 'data-testid="system-status"' in admin_page


def test_a_user_without_membership_gets_a_clear_page_not_an_error(client):
    user = UserFactory(username="orphan")
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    response = client.get("/")
    assert response.status_code == 403
    assert "尚未加入任何租户" in response.text
    # and can still log out
    assert client.post(reverse("logout")).status_code == 302


def test_inactive_tenant_seat_is_ignored(world, login):
    world.a.tenant.is_active = False
    world.a.tenant.save()
    response = login(world.a.rep).get("/")
    assert response.status_code == 403


def test_switching_tenant_changes_the_scope(world, login):
    both = world.a.admin.user
    MembershipFactory(tenant=world.b.tenant, user=both, role=Role.MANAGER)
    client = login(world.a.admin)
    response = client.post(reverse("tenant_switch", args=[world.b.tenant.slug]), {"next": "/"})
    assert response.status_code == 302
    response = client.get("/")
    assert response.wsgi_request.tenant == world.b.tenant
    assert response.wsgi_request.membership.role == Role.MANAGER


def test_switching_to_a_tenant_without_a_seat_is_404(world, login):
    client = login(world.a.admin)
    assert client.post(reverse("tenant_switch", args=[world.b.tenant.slug])).status_code == 404
    assert client.post(reverse("tenant_switch", args=["no-such-tenant"])).status_code == 404
    assert client.get("/").wsgi_request.tenant == world.a.tenant


def test_switch_refuses_an_offsite_next(world, login):
    client = login(world.a.admin)
    response = client.post(
        reverse("tenant_switch", args=[world.a.tenant.slug]), {"next": "https://evil.example/"}
    )
    assert response["Location"] == reverse("home")


def test_unknown_page_is_a_clear_404(world, login):
    response = login(world.a.rep).get("/no/such/page/")
    assert response.status_code == 404
    assert "不存在" in response.text


def test_team_lists_only_this_tenants_members(world, login, django_assert_max_num_queries):
    client = login(world.a.manager)
    with django_assert_max_num_queries(12):
        response = client.get(reverse("team"))
    assert response.status_code == 200
    assert "alpha-rep" in response.text
    assert "beta-rep" not in response.text


def test_team_query_count_does_not_grow_with_members(world, login, django_assert_num_queries):
    client = login(world.a.manager)
    client.get(reverse("team"))  # warm up the session
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as few:
        client.get(reverse("team"))
    tenant = world.a.tenant
    for i in range(30):
        MembershipFactory(tenant=tenant, user__username=f"extra{i}")
    with CaptureQueriesContext(connection) as many:
        client.get(reverse("team"))
    assert len(many) == len(few)


def test_team_is_for_managers_and_admins(world, login):
    assert login(world.a.rep).get(reverse("team")).status_code == 403


def test_team_filters_by_role_and_search(world, login):
    client = login(world.a.admin)
    text = client.get(reverse("team"), {"role": "rep"}).text
    assert "alpha-rep" in text and "alpha-mgr" not in text
    text = client.get(reverse("team"), {"q": "mgr"}).text
    assert "alpha-mgr" in text and "alpha-rep" not in text


def test_password_change_page_works(world, login):
    assert login(world.a.rep).get(reverse("password_change")).status_code == 200


@platform_db
def test_a_superuser_without_seat_reaches_the_admin(client):
    admin_user = get_user_model().objects.create_superuser("root", "root@x.invalid", "pw")
    TenantFactory(slug="gamma")
    client.force_login(admin_user, backend="django.contrib.auth.backends.ModelBackend")
    assert client.get(reverse("admin:index")).status_code == 200
    assert client.get("/").status_code == 200


def test_team_is_ordered_by_username_by_default_and_on_request(world, login):
    for name in ("zz-last", "aa-first", "mm-middle"):
        MembershipFactory(tenant=world.a.tenant, user__username=name)
    client = login(world.a.manager)
    text = client.get(reverse("team")).text
    assert text.index("aa-first") < text.index("mm-middle") < text.index("zz-last")
    text = client.get(reverse("team"), {"sort": "-username"}).text
    assert text.index("zz-last") < text.index("mm-middle") < text.index("aa-first")


def test_pages_use_the_tenants_time_zone(world, login):
    world.a.tenant.timezone = "Asia/Urumqi"
    world.a.tenant.save()
    from django.utils import timezone

    response = login(world.a.rep).get("/", follow=True)
    assert response.status_code == 200
    assert response.context["TIME_ZONE"] == "Asia/Urumqi"
    assert timezone.get_current_timezone_name() != "Asia/Urumqi"  # reset after the request


def test_the_favicon_is_linked_from_every_page_and_served_for_favicon_ico(client):
    from django.contrib.staticfiles import finders

    assert finders.find("crm/favicon.svg")
    response = client.get("/favicon.ico")  # signed out, as a browser asks for it
    assert response.status_code == 301
    assert response["Location"].endswith("crm/favicon.svg")
    login_page = client.get(reverse("login")).content.decode()
    assert 'rel="icon"' in login_page and "crm/favicon.svg" in login_page
