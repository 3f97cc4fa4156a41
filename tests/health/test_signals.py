"""POST /track/<key>/ (docs/tracking.md): the signature, each event type, the competitor
keywords, each way of finding the customer and their order, the refusals (nothing stored
against the wrong customer), and signals being append-only."""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from crm.tenancy import tenant_context
from customers.models import Contact
from health.models import HealthSettings, LinkKind, ResolvedBy, Signal, SignalKind, TrackedLink
from health.signals import competitor_in
from leads.intake.hooks import sign
from tests.health.helpers import customer, link

pytestmark = pytest.mark.django_db


def settings_of(side) -> HealthSettings:
    with tenant_context(side.tenant):
        return HealthSettings.for_tenant(side.tenant)


def post(client, settings, payload, *, secret=None, timestamp=None, raw=None, key=None):
    body = raw if raw is not None else json.dumps(payload, ensure_ascii=False).encode()
    ts = str(int(time.time()) if timestamp is None else timestamp)
    headers = {
        "X-CRM-Timestamp": ts,
        "X-CRM-Signature": sign(secret or settings.track_secret, ts, body),
    }
    return client.post(
        f"/track/{key or settings.track_key}/",
        data=body,
        content_type="application/json",
        headers=headers,
    )


def signals(side) -> list[Signal]:
    with tenant_context(side.tenant):
        return list(Signal.objects.order_by("id"))


@pytest.fixture
def a(world):
    side = world.a
    side.settings = settings_of(side)
    side.cust = customer(side)
    with tenant_context(side.tenant):
        side.cust.code = "C-001"
        side.cust.save(update_fields=["code"])
        side.contact = Contact.objects.create(
            tenant=side.tenant,
            customer=side.cust,
            name="王工",
            email="Wang@Henli.cn",
            phone="13812345678",
            phone_key="+8613812345678",
        )
    return side


# -- the signature ----------------------------------------------------------------------------


def test_a_signed_event_is_stored(client, a):
    response = post(client, a.settings, {"type": "visit", "customer_code": "C-001", "url": "/p"})
    assert response.status_code == 200, response.content
    assert response.json() == {"stored": 1, "refused": []}
    [signal] = signals(a)
    assert (signal.customer_id, signal.kind, signal.resolved_by, signal.url) == (
        a.cust.pk,
        SignalKind.VISIT,
        ResolvedBy.CODE,
        "/p",
    )


def test_an_unsigned_request_is_401(client, a):
    response = client.post(
        f"/track/{a.settings.track_key}/",
        data=json.dumps({"type": "visit", "customer_code": "C-001"}),
        content_type="application/json",
    )
    assert response.status_code == 401
    assert response.json() == {"error": "X-CRM-Timestamp and X-CRM-Signature are required"}
    assert signals(a) == []


def test_a_wrong_secret_is_401(client, a):
    response = post(client, a.settings, {"type": "visit", "customer_code": "C-001"}, secret="x")
    assert response.status_code == 401
    assert response.json()["error"] == "signature does not match"
    assert signals(a) == []


def test_another_tenants_secret_is_401(client, a, world):
    other = settings_of(world.b)
    payload = {"type": "visit", "customer_code": "C-001"}
    assert post(client, a.settings, payload, secret=other.track_secret).status_code == 401


def test_a_stale_timestamp_is_401(client, a):
    payload = {"type": "visit", "customer_code": "C-001"}
    response = post(client, a.settings, payload, timestamp=int(time.time()) - 301)
    assert response.status_code == 401
    assert "away from now" in response.json()["error"]
    assert post(client, a.settings, payload, timestamp=int(time.time()) - 250).status_code == 200


def test_an_unknown_key_is_404(client, a):
    response = post(client, a.settings, {"type": "visit"}, key="no-such-key-000000000000")
    assert response.status_code == 404
    assert response.json() == {"error": "unknown key"}
    # a key of the wrong shape never reaches the database
    assert client.post("/track/bad%00key/", data=b"{}", content_type="x").status_code == 404


def test_get_is_405(client, a):
    assert client.get(f"/track/{a.settings.track_key}/").status_code == 405


def test_a_body_that_is_not_json_is_400(client, a):
    response = post(client, a.settings, None, raw=b"not json")
    assert response.status_code == 400
    assert signals(a) == []


# -- events -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "kind"),
    [
        ({"type": "download", "url": "https://x.cn/a.pdf"}, SignalKind.DOWNLOAD),
        ({"type": "quote_open"}, SignalKind.QUOTE_OPEN),
        ({"type": "visit", "url": "https://x.cn/"}, SignalKind.VISIT),
        ({"type": "search", "query": "液压泵 价格"}, SignalKind.SEARCH),
    ],
)
def test_each_event_type(client, a, event, kind):
    response = post(client, a.settings, {**event, "customer_code": "C-001"})
    assert response.status_code == 200
    [signal] = signals(a)
    assert signal.kind == kind
    assert signal.competitor == ""


def test_a_search_naming_a_competitor_is_a_competitor_search(client, a):
    with tenant_context(a.tenant):
        a.settings.competitor_keywords = "西门子\nABB\n"
        a.settings.save(update_fields=["competitor_keywords"])
    events = [
        {"type": "search", "query": "abb 变频器 选型", "customer_code": "C-001"},
        {"type": "search", "query": "西门子PLC", "customer_code": "C-001"},
        {"type": "search", "query": "恒力 液压", "customer_code": "C-001"},
        {"type": "visit", "query": "ABB", "customer_code": "C-001"},
    ]
    assert post(client, a.settings, {"events": events}).status_code == 200
    found = [(s.kind, s.competitor) for s in signals(a)]
    assert found == [
        (SignalKind.COMPETITOR_SEARCH, "ABB"),
        (SignalKind.COMPETITOR_SEARCH, "西门子"),
        (SignalKind.SEARCH, ""),
        (SignalKind.VISIT, ""),  # only a search is matched against the keywords
    ]


def test_competitor_in_takes_the_one_named_first():
    assert competitor_in("ABB or Siemens", ["Siemens", "ABB"]) == "ABB"
    assert competitor_in("nothing", ["ABB"]) == ""
    assert competitor_in("anything", []) == ""


def test_at_iso_unix_default_and_future(client, a):
    now = timezone.now()
    unix = int((now - timedelta(days=3)).timestamp())
    events = [
        {"type": "visit", "customer_code": "C-001", "at": "2026-11-01T09:30:00+08:00"},
        {"type": "visit", "customer_code": "C-001", "at": "2026-11-01T09:30:00"},  # tenant zone
        {"type": "visit", "customer_code": "C-001", "at": unix},
        {"type": "visit", "customer_code": "C-001"},
    ]
    assert post(client, a.settings, {"events": events}).status_code == 200
    at = [s.at for s in signals(a)]
    assert at[0] == datetime(2026, 11, 1, 1, 30, tzinfo=UTC)
    assert at[1] == timezone.make_aware(datetime(2026, 11, 1, 9, 30), a.tenant.tzinfo)
    assert at[2] == datetime.fromtimestamp(unix, tz=UTC)
    assert abs((at[3] - now).total_seconds()) < 60

    ahead = int((now + timedelta(minutes=6)).timestamp())
    response = post(client, a.settings, {"type": "visit", "customer_code": "C-001", "at": ahead})
    assert response.status_code == 400
    assert response.json()["errors"] == [{"index": 0, "message": "at is more than 5 min ahead"}]
    assert len(signals(a)) == 4


def test_malformed_events_are_400_with_each_error_and_nothing_stored(client, a):
    events = [
        {"type": "visit", "customer_code": "C-001"},
        {"type": "nap", "customer_code": "C-001"},
        {"type": "visit"},
        "not an object",
        {"type": "search", "customer_code": "C-001"},
        {"type": "visit", "email": "nobody", "at": "yesterday"},
        {"type": "visit", "phone": "12", "url": 5},
    ]
    response = post(client, a.settings, {"events": events})
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert {e["index"] for e in errors} == {1, 2, 3, 4, 5, 6}
    assert {"index": 2, "message": "name the customer: token, customer_code, email or phone"} in (
        errors
    )
    assert {"index": 6, "message": "url must be a string"} in errors
    assert signals(a) == []


@pytest.mark.parametrize(
    "payload",
    [[], {"events": []}, {"events": {}}, {"events": [{"type": "visit"}] * 101}, "visit", 5],
)
def test_a_body_of_the_wrong_shape_is_400(client, a, payload):
    response = post(client, a.settings, payload)
    assert response.status_code == 400
    assert response.json()["errors"][0]["index"] == -1


# -- finding the customer ---------------------------------------------------------------------


def test_each_way_of_finding_the_customer(client, a):
    sent = link(a, a.cust, LinkKind.DOCUMENT, timezone.now() - timedelta(days=1))
    events = [
        {"type": "visit", "token": sent.token},
        {"type": "visit", "customer_code": "C-001"},
        {"type": "visit", "email": "wang@henli.CN"},
        {"type": "visit", "phone": "138 1234 5678"},
    ]
    assert post(client, a.settings, {"events": events}).status_code == 200
    rows = [(s.customer_id, s.resolved_by, s.contact_id, s.link_id) for s in signals(a)]
    assert rows == [
        (a.cust.pk, ResolvedBy.TOKEN, None, sent.pk),
        (a.cust.pk, ResolvedBy.CODE, None, None),
        (a.cust.pk, ResolvedBy.EMAIL, a.contact.pk, None),
        (a.cust.pk, ResolvedBy.PHONE, a.contact.pk, None),
    ]


def test_the_order_is_token_code_email_phone(client, a):
    other = customer(a, name="别家")
    with tenant_context(a.tenant):
        other.code = "C-002"
        other.save(update_fields=["code"])
        Contact.objects.create(
            tenant=a.tenant, customer=other, email="li@other.cn", phone_key="+8613900000000"
        )
    sent = link(a, other, LinkKind.QUOTE, timezone.now())
    both = {"customer_code": "C-001", "email": "li@other.cn", "phone": "13900000000"}
    events = [
        {"type": "visit", "token": sent.token, **both},  # the token wins
        {"type": "visit", **both},  # then the code
        {"type": "visit", "email": "wang@henli.cn", "phone": "13900000000"},  # then e-mail
        {"type": "visit", "customer_code": "C-404", "phone": "13900000000"},  # code misses
    ]
    assert post(client, a.settings, {"events": events}).status_code == 200
    rows = [(s.customer_id, s.resolved_by) for s in signals(a)]
    assert rows == [
        (other.pk, ResolvedBy.TOKEN),
        (a.cust.pk, ResolvedBy.CODE),
        (a.cust.pk, ResolvedBy.EMAIL),
        (other.pk, ResolvedBy.PHONE),
    ]


def test_an_unknown_token_is_404_logged_and_nothing_stored(client, a, caplog):
    payload = {"type": "download", "token": "no-such-token", "customer_code": "C-001"}
    with caplog.at_level(logging.WARNING, logger="health.signals"):
        response = post(client, a.settings, payload)
    assert response.status_code == 404
    assert response.json() == {
        "error": "no event matched a customer: nothing stored",
        "stored": 0,
        "refused": [{"index": 0, "message": "unknown token"}],
    }
    assert signals(a) == []  # the code is not tried: a token decides alone
    assert "unknown token" in caplog.text


def test_a_batch_stores_the_matched_and_lists_the_refused_with_207(client, a):
    events = [
        {"type": "visit", "customer_code": "C-001"},
        {"type": "visit", "customer_code": "C-404"},
        {"type": "visit", "email": "stranger@nowhere.cn"},
    ]
    response = post(client, a.settings, {"events": events})
    assert response.status_code == 207
    assert response.json() == {
        "stored": 1,
        "refused": [
            {"index": 1, "message": "no customer matches"},
            {"index": 2, "message": "no customer matches"},
        ],
    }
    assert len(signals(a)) == 1


def test_an_email_two_customers_share_matches_neither(client, a):
    other = customer(a, name="别家")
    with tenant_context(a.tenant):
        Contact.objects.create(tenant=a.tenant, customer=other, email="wang@henli.cn")
    response = post(client, a.settings, {"type": "visit", "email": "wang@henli.cn"})
    assert response.status_code == 404
    assert signals(a) == []


def test_another_tenants_token_code_and_contact_never_resolve(client, a, world):
    b = world.b
    theirs = customer(b, name="乙方客户")
    with tenant_context(b.tenant):
        theirs.code = "B-001"
        theirs.save(update_fields=["code"])
        Contact.objects.create(tenant=b.tenant, customer=theirs, email="b@b.cn")
    sent = link(b, theirs, LinkKind.QUOTE, timezone.now())
    events = [
        {"type": "quote_open", "token": sent.token},
        {"type": "visit", "customer_code": "B-001"},
        {"type": "visit", "email": "b@b.cn"},
    ]
    assert post(client, a.settings, {"events": events}).status_code == 404
    assert signals(a) == [] and signals(b) == []
    with tenant_context(b.tenant):
        assert TrackedLink.objects.get(pk=sent.pk).open_count == 0


def test_a_token_event_of_its_links_kind_counts_an_open(client, a):
    sent = link(a, a.cust, LinkKind.QUOTE, timezone.now() - timedelta(days=2))
    at = timezone.now() - timedelta(days=1)
    events = [
        {"type": "quote_open", "token": sent.token, "at": at.isoformat()},
        {"type": "visit", "token": sent.token},  # another kind: no open
    ]
    assert post(client, a.settings, {"events": events}).status_code == 200
    with tenant_context(a.tenant):
        sent.refresh_from_db()
    assert (sent.open_count, sent.first_opened_at) == (1, at)


# -- append-only ------------------------------------------------------------------------------


def test_signals_are_append_only(a):
    post_one = Signal(
        tenant=a.tenant, customer=a.cust, kind=SignalKind.VISIT, resolved_by=ResolvedBy.CODE
    )
    with tenant_context(a.tenant):
        post_one.save()
        for change in ({"kind": SignalKind.DOWNLOAD}, {"at": timezone.now()}, {"url": "/x"}):
            with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
                Signal.objects.filter(pk=post_one.pk).update(**change)
        with (
            pytest.raises(IntegrityError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute("UPDATE health_signal SET query = 'x' WHERE id = %s", [post_one.pk])
        assert Signal.objects.get(pk=post_one.pk).kind == SignalKind.VISIT


def test_deleting_a_contact_or_link_still_nulls_it_on_the_signal(a):
    sent = link(a, a.cust, LinkKind.DOCUMENT, timezone.now())
    with tenant_context(a.tenant):
        one = Signal.objects.create(
            tenant=a.tenant,
            customer=a.cust,
            contact=a.contact,
            link=sent,
            kind=SignalKind.DOWNLOAD,
            resolved_by=ResolvedBy.TOKEN,
        )
        a.contact.delete()
        sent.delete()
        one.refresh_from_db()
        assert (one.contact_id, one.link_id, one.kind) == (None, None, SignalKind.DOWNLOAD)
        # and a signal still goes with its customer
        a.cust.delete()
        assert not Signal.objects.filter(pk=one.pk).exists()


# -- the documented example -------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_documented_curl_example_runs(live_server, world):
    """docs/tracking.md's shell example, run as written against a live server."""
    import re
    import subprocess
    from pathlib import Path

    a = world.a
    settings = settings_of(a)
    cust = customer(a)
    with tenant_context(a.tenant):
        cust.code = "C-001"
        cust.save(update_fields=["code"])
        Contact.objects.create(tenant=a.tenant, customer=cust, email="wang@henli.cn")
    doc = (Path(__file__).parents[2] / "docs" / "tracking.md").read_text()
    script = re.search(r"### Example\n\n```sh\n(.*?)```", doc, re.S).group(1)
    script = (
        script.replace("KEY=…", f"KEY={settings.track_key}")
        .replace("SECRET=…", f"SECRET={settings.track_secret}")
        .replace("https://crm.example.com", live_server.url)
    )
    done = subprocess.run(["/bin/bash", "-c", script], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"stored": 2, "refused": []}
    assert [(s.kind, s.competitor) for s in signals(a)] == [
        (SignalKind.DOWNLOAD, ""),
        (SignalKind.COMPETITOR_SEARCH, "西门子"),
    ]


def test_a_batch_costs_the_same_queries_whatever_its_size(client, a):
    from django.db import connection as db
    from django.test.utils import CaptureQueriesContext

    def batch(n):
        events = [
            {"type": "visit", "customer_code": "C-001"},
            {"type": "visit", "email": "wang@henli.cn"},
            {"type": "visit", "phone": "13812345678"},
            {"type": "search", "query": "ABB", "email": "nobody@x.cn"},
        ]
        return {"events": (events * 25)[:n]}

    with CaptureQueriesContext(db) as small:
        assert post(client, a.settings, batch(4)).status_code == 207
    with CaptureQueriesContext(db) as large:
        started = time.perf_counter()
        assert post(client, a.settings, batch(100)).status_code == 207
        elapsed = time.perf_counter() - started
    assert len(large.captured_queries) == len(small.captured_queries)
    assert len(signals(a)) == 3 + 75
    assert elapsed < 2.0
