import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def _attempt(client, password):
    return client.post(reverse("login"), {"username": "alpha-rep", "password": password})


def test_it_locks_the_account_after_five_failures(client, world):
    for _ in range(5):
        response = _attempt(client, "wrong")
        assert response.status_code in (200, 429)
    response = _attempt(client, "demo-pass-2026")  # even the right password is refused now
    assert response.status_code == 429
    assert "登录失败次数过多" in response.text


def test_four_failures_do_not_lock(client, world):
    for _ in range(4):
        assert _attempt(client, "wrong").status_code == 200
    response = _attempt(client, "demo-pass-2026")
    assert response.status_code == 302


def test_a_wrong_password_shows_a_form_error(client, world):
    response = _attempt(client, "wrong")
    assert response.status_code == 200
    assert "alert-danger" in response.text
