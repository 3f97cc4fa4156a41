"""A section's bare address opens its first page rather than a 404 (/service/, /health/)."""

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("path", "target"),
    [("/service/", "/service/tickets/"), ("/health/", "/health/risk/")],
)
def test_a_section_root_opens_its_first_page(world, login, path, target):
    client = login(world.a.manager)
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"] == target
    assert client.get(target).status_code == 200


def test_a_section_root_still_asks_for_a_login(client):
    response = client.get("/service/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
