"""Tracked links: /t/<token> and its pixel (the redirect, the open counted once per
window, the signal in the link's own tenant, HEAD and unknown tokens recording nothing),
the service that sends one, and the customer page's panel and form."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from crm.models import AuditEvent
from crm.tenancy import tenant_context
from customers.models import Contact
from health import links, signals
from health.models import LinkKind, ResolvedBy, Signal, SignalKind, TrackedLink
from health.views_track import PIXEL
from tests.factories import MembershipFactory
from tests.health.helpers import customer

pytestmark = pytest.mark.django_db


def make_link(side, cust=None, kind=LinkKind.QUOTE, url="https://files.example.com/q-17.pdf"):
    cust = cust or customer(side)
    with tenant_context(side.tenant):
        return links.link_create(
            tenant=side.tenant,
            acting_member=side.rep,
            customer=cust,
            kind=kind,
            title="报价单 Q-17",
            target_url=url,
        )


def reread(side, link) -> TrackedLink:
    with tenant_context(side.tenant):
        return TrackedLink.objects.get(pk=link.pk)


def signals_of(side) -> list[Signal]:
    with tenant_context(side.tenant):
        return list(Signal.objects.order_by("id"))


# -- /t/<token> -------------------------------------------------------------------------------


def test_a_link_redirects_and_records_the_open(client, world):
    a = world.a
    link = make_link(a)
    response = client.get(f"/t/{link.token}")
    assert response.status_code == 302
    assert response["Location"] == "https://files.example.com/q-17.pdf"
    assert "no-cache" in response["Cache-Control"]
    [signal] = signals_of(a)
    assert (signal.customer_id, signal.kind, signal.resolved_by, signal.link_id) == (
        link.customer_id,
        SignalKind.QUOTE_OPEN,
        ResolvedBy.TOKEN,
        link.pk,
    )
    opened = reread(a, link)
    assert opened.open_count == 1
    assert opened.first_opened_at == signal.at


def test_a_document_link_records_a_download(client, world):
    link = make_link(world.a, kind=LinkKind.DOCUMENT)
    client.get(f"/t/{link.token}")
    assert [s.kind for s in signals_of(world.a)] == [SignalKind.DOWNLOAD]


def test_opens_count_once_per_window_and_the_first_open_is_kept(world):
    a = world.a
    link = make_link(a)
    start = timezone.now()
    with tenant_context(a.tenant):
        first = signals.link_open(tenant=a.tenant, link=link, now=start)
        burst = signals.link_open(tenant=a.tenant, link=link, now=start + timedelta(seconds=9))
        later = signals.link_open(tenant=a.tenant, link=link, now=start + timedelta(seconds=11))
    assert first is not None and burst is None and later is not None
    opened = reread(a, link)
    assert opened.open_count == 2
    assert opened.first_opened_at == start
    assert len(signals_of(a)) == 2


def test_a_second_click_at_once_is_not_counted(client, world):
    link = make_link(world.a)
    assert client.get(f"/t/{link.token}").status_code == 302
    assert client.get(f"/t/{link.token}").status_code == 302  # still redirected
    assert reread(world.a, link).open_count == 1
    assert len(signals_of(world.a)) == 1


def test_the_pixel_is_a_gif_and_records_the_open(client, world):
    link = make_link(world.a, kind=LinkKind.DOCUMENT)
    response = client.get(f"/t/{link.token}.gif")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/gif"
    assert response.content == PIXEL
    assert PIXEL.startswith(b"GIF89a\x01\x00\x01\x00") and PIXEL.endswith(b";")
    assert "no-store" in response["Cache-Control"]
    assert response["Pragma"] == "no-cache"
    assert [s.kind for s in signals_of(world.a)] == [SignalKind.DOWNLOAD]
    assert reread(world.a, link).open_count == 1


def test_head_requests_record_nothing(client, world):
    link = make_link(world.a)
    assert client.head(f"/t/{link.token}").status_code == 302
    assert client.head(f"/t/{link.token}.gif").status_code == 200
    assert signals_of(world.a) == []
    assert reread(world.a, link).open_count == 0
    assert client.post(f"/t/{link.token}").status_code == 405
    assert signals_of(world.a) == []


@pytest.mark.parametrize("token", ["no-such-token-0000", "bad%00token", "x" * 41])
def test_an_unknown_token_is_404_logged_and_nothing_stored(client, world, token, caplog):
    make_link(world.a)
    with caplog.at_level(logging.WARNING, logger="health.views_track"):
        page = client.get(f"/t/{token}")
        pixel = client.get(f"/t/{token}.gif")
    assert page.status_code == 404
    assert page["Content-Type"].startswith("text/html")
    assert pixel.status_code == 404
    assert pixel.content == b""
    assert caplog.text.count("unknown token") == 2
    assert signals_of(world.a) == [] and signals_of(world.b) == []


def test_a_link_of_an_inactive_tenant_is_404(client, world):
    link = make_link(world.b)
    world.b.tenant.is_active = False
    world.b.tenant.save(update_fields=["is_active"])
    assert client.get(f"/t/{link.token}").status_code == 404
    assert signals_of(world.b) == []


def test_a_link_records_in_its_own_tenant_whoever_opens_it(world, login):
    """Tokens are global: a member of tenant A opening B's link (signed in, inside A's
    context) records the open in B, against B's customer, never in A."""
    b_link = make_link(world.b)
    a_cust = customer(world.a)  # a customer of A with the same primary key range
    client = login(world.a.rep)
    assert client.get(f"/t/{b_link.token}").status_code == 302
    assert signals_of(world.a) == []
    [signal] = signals_of(world.b)
    assert signal.customer_id == b_link.customer_id != a_cust.pk
    assert signal.tenant_id == world.b.tenant.pk


# -- sending a link ---------------------------------------------------------------------------


def test_link_create_audits_and_keeps_who_sent_it(world):
    a = world.a
    link = make_link(a)
    assert link.created_by == a.rep
    with tenant_context(a.tenant):
        event = AuditEvent.objects.get(action="health.link_sent")
    assert event.actor == a.rep.user
    assert event.object_id == str(link.public_id)
    assert len(link.token) >= 32


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"target_url": "javascript:alert(1)"}, "target_url"),
        ({"target_url": "ftp://files.example.com/a.pdf"}, "target_url"),
        ({"target_url": ""}, "target_url"),
        ({"title": " "}, "title"),
        ({"kind": "video"}, "kind"),
    ],
)
def test_link_create_refuses_bad_input(world, fields, error):
    a = world.a
    cust = customer(a)
    args = {"kind": LinkKind.DOCUMENT, "title": "手册", "target_url": "https://x.cn/a.pdf"}
    with tenant_context(a.tenant), pytest.raises(ValidationError) as refused:
        links.link_create(tenant=a.tenant, acting_member=a.rep, customer=cust, **{**args, **fields})
    assert error in refused.value.message_dict
    with tenant_context(a.tenant):
        assert not TrackedLink.objects.exists()


def test_a_rep_sends_only_to_their_own_customers(world):
    a = world.a
    other_rep = MembershipFactory(tenant=a.tenant, role="rep", user__username="alpha-rep2")
    theirs = customer(a, owner=other_rep)
    with tenant_context(a.tenant), pytest.raises(PermissionDenied):
        links.link_create(
            tenant=a.tenant,
            acting_member=a.rep,
            customer=theirs,
            kind=LinkKind.QUOTE,
            title="报价单",
            target_url="https://x.cn/q.pdf",
        )
    with tenant_context(a.tenant):  # a manager sends to any customer
        links.link_create(
            tenant=a.tenant,
            acting_member=a.manager,
            customer=theirs,
            kind=LinkKind.QUOTE,
            title="报价单",
            target_url="https://x.cn/q.pdf",
        )


def test_a_contact_of_another_customer_is_refused(world):
    a = world.a
    cust, other = customer(a), customer(a, name="别家")
    with tenant_context(a.tenant):
        stranger = Contact.objects.create(tenant=a.tenant, customer=other, name="李工")
        with pytest.raises(ValidationError) as refused:
            links.link_create(
                tenant=a.tenant,
                acting_member=a.rep,
                customer=cust,
                kind=LinkKind.QUOTE,
                title="报价单",
                target_url="https://x.cn/q.pdf",
                contact=stranger,
            )
    assert "contact" in refused.value.message_dict


HX = {"HX-Request": "true"}


# -- the customer page's panel and form -------------------------------------------------------


def test_the_customer_page_lists_the_last_five_links_with_their_address(world, en):
    a = world.a
    cust = customer(a)
    made = [make_link(a, cust) for _ in range(6)]
    with tenant_context(a.tenant):
        TrackedLink.objects.filter(pk=made[-1].pk).update(
            open_count=3, first_opened_at=timezone.now()
        )
    response = en(a.rep).get(f"/customers/{cust.public_id}/panels/health_links/", headers=HX)
    assert response.status_code == 200
    page = response.content.decode()
    assert page.count('data-testid="link-row"') == 5
    assert f"http://testserver/t/{made[-1].token}" in page
    assert f"/t/{made[0].token}" not in page  # the oldest is beyond the last five
    assert "Opens: 3, the first" in page
    assert 'data-testid="link-open-form"' in page  # the form is fetched on demand
    assert 'data-testid="link-form"' not in page


def test_the_panel_costs_one_query_whatever_the_links(world, login, django_assert_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    a = world.a
    cust = customer(a)
    client = login(a.rep)
    url = f"/customers/{cust.public_id}/panels/health_links/"
    client.get(url, headers=HX)
    with CaptureQueriesContext(connection) as empty:
        client.get(url, headers=HX)
    for _ in range(7):
        make_link(a, cust)
    with django_assert_num_queries(len(empty.captured_queries)):
        client.get(url, headers=HX)
    links_queries = [q for q in empty.captured_queries if "health_trackedlink" in q["sql"]]
    assert len(links_queries) == 1


def test_the_send_form_opens_on_demand(world, en):
    a = world.a
    cust = customer(a)
    response = en(a.rep).get(
        f"/health/customers/{cust.public_id}/links/", headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert 'data-testid="link-form"' in page
    assert "<html" not in page
    plain = en(a.rep).get(f"/health/customers/{cust.public_id}/links/")
    assert plain.status_code == 200 and "<html" in plain.content.decode()


def test_a_reader_who_may_not_write_sees_the_links_but_no_button(world, en):
    from crm.models import Role

    a = world.a
    cust = customer(a)
    make_link(a, cust)
    marketing = MembershipFactory(
        tenant=a.tenant, role=Role.MARKETING, user__username="alpha-marketing"
    )
    page = (
        en(marketing)
        .get(f"/customers/{cust.public_id}/panels/health_links/", headers=HX)
        .content.decode()
    )
    assert page.count('data-testid="link-row"') == 1
    assert 'data-testid="link-open-form"' not in page


def test_the_form_creates_a_link_and_answers_the_panel(world, en):
    a = world.a
    cust = customer(a)
    with tenant_context(a.tenant):
        contact = Contact.objects.create(tenant=a.tenant, customer=cust, name="王工")
    response = en(a.rep).post(
        f"/health/customers/{cust.public_id}/links/",
        {
            "kind": "document",
            "title": "产品手册",
            "target_url": "https://x.cn/m.pdf",
            "contact": contact.pk,
        },
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    with tenant_context(a.tenant):
        link = TrackedLink.objects.get()
    assert (link.kind, link.title, link.contact_id, link.customer_id) == (
        "document",
        "产品手册",
        contact.pk,
        cust.pk,
    )
    page = response.content.decode()
    assert 'data-testid="link-sent"' in page
    assert f'value="http://testserver/t/{link.token}"' in page


def test_the_form_shows_field_errors(world, en):
    a = world.a
    cust = customer(a)
    client = en(a.rep)
    url = f"/health/customers/{cust.public_id}/links/"
    response = client.post(
        url,
        {"kind": "document", "title": "", "target_url": "javascript:alert(1)"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 422
    page = response.content.decode()
    assert 'data-testid="error-title"' in page
    assert "Give the link a title." in page
    # both fields' errors at once: the address is checked with the title
    assert 'data-testid="error-target_url"' in page
    assert "starting with http:// or https://" in page
    # and the same with a valid title
    response = client.post(
        url, {"kind": "quote", "title": "报价", "target_url": "ftp://x.cn/q"}, follow=False
    )
    assert response.status_code == 422
    assert "starting with http:// or https://" in response.content.decode()
    with tenant_context(a.tenant):
        assert not TrackedLink.objects.exists()


def test_a_plain_post_redirects_to_the_customer(world, login):
    a = world.a
    cust = customer(a)
    response = login(a.rep).post(
        f"/health/customers/{cust.public_id}/links/",
        {"kind": "quote", "title": "报价单", "target_url": "https://x.cn/q.pdf"},
    )
    assert response.status_code == 302
    assert response["Location"] == f"/customers/{cust.public_id}/"


def test_another_tenants_or_another_reps_customer_is_404(world, login):
    b_cust = customer(world.b)
    other_rep = MembershipFactory(tenant=world.a.tenant, role="rep", user__username="alpha-rep3")
    theirs = customer(world.a, owner=other_rep)
    data = {"kind": "quote", "title": "报价单", "target_url": "https://x.cn/q.pdf"}
    client = login(world.a.admin)
    assert client.post(f"/health/customers/{b_cust.public_id}/links/", data).status_code == 404
    client = login(world.a.rep)
    assert client.post(f"/health/customers/{theirs.public_id}/links/", data).status_code == 404
    assert client.get(f"/health/customers/{theirs.public_id}/links/").status_code == 404
    assert client.get(f"/health/customers/{b_cust.public_id}/links/").status_code == 404
    for side in (world.a, world.b):
        with tenant_context(side.tenant):
            assert not TrackedLink.objects.exists()


# -- admin ------------------------------------------------------------------------------------


def test_the_admin_lists_links_and_signals_read_only(client, world, en):
    a = world.a
    link = make_link(a)
    client.get(f"/t/{link.token}")
    admin = en(a.admin)
    listed = admin.get("/admin/health/trackedlink/")
    assert listed.status_code == 200
    assert "报价单 Q-17" in listed.content.decode()
    assert admin.get("/admin/health/signal/").status_code == 200
    assert admin.get("/admin/health/signal/add/").status_code == 403
    with tenant_context(a.tenant):
        signal = Signal.objects.get()
    change = admin.post(f"/admin/health/signal/{signal.pk}/change/", {"kind": "visit"})
    assert change.status_code == 403
    assert admin.post(f"/admin/health/signal/{signal.pk}/delete/", {"post": "yes"}).status_code in (
        403,
    )
    assert signals_of(a)[0].kind == SignalKind.QUOTE_OPEN
