import pytest
from django.urls import reverse
from django.utils import timezone

from crm.celery import app
from crm.models import Heartbeat

pytestmark = pytest.mark.django_db


def test_it_reports_db_and_broker_ok(client):
    response = client.get(reverse("healthz"))
    assert response.status_code == 200
    body = response.json()
    assert body["db"] == "ok"
    assert body["broker"] == "ok"
    assert body["beat"] == {"status": "never", "last_run": None}
    # No REPORTS_DATABASE_URL: reports read the primary, there is no replica to lag.
    assert body["replica"] == {"status": "none"}


def test_it_shows_the_last_heartbeat(client):
    Heartbeat.objects.create(name="beat", last_seen=timezone.now())
    beat = client.get(reverse("healthz")).json()["beat"]
    assert beat["status"] == "ok"
    assert beat["last_run"]


def test_a_stale_heartbeat_is_reported_but_does_not_fail_the_check(client):
    Heartbeat.objects.create(name="beat", last_seen=timezone.now() - timezone.timedelta(hours=1))
    response = client.get(reverse("healthz"))
    assert response.status_code == 200
    assert response.json()["beat"]["status"] == "stale"


def test_it_answers_503_naming_the_broker_when_it_is_down(client):
    # The raw setting (None: "the broker_url"), not the property, which resolves it: putting
    # the resolved URL back would pin the write URL for every later test.
    saved = app.conf.get("broker_write_url")
    app.conf.broker_write_url = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    try:
        response = client.get(reverse("healthz"))
    finally:
        app.conf.broker_write_url = saved
    assert response.status_code == 503
    body = response.json()
    assert body["db"] == "ok"
    assert body["broker"].startswith("error")


def test_it_needs_no_login(client):
    assert client.get(reverse("healthz")).status_code == 200
