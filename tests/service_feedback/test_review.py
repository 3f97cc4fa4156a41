"""The service review card (F28): the last tickets against the tenant's targets, the
sentiment, the hints of the tenant's rules, the read receipt and the manager's view."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from crm.models import AuditEvent
from crm.tenancy import tenant_context
from service_feedback import review
from service_feedback.models import ReviewHint, ReviewRead, ServiceSettings
from tests.customers.panels import customer_360
from tests.service_feedback.helpers import customer_with_contact, upsert

pytestmark = pytest.mark.django_db

PHONE = "13800138000"


def ticket(side, external_id, *, hours_ago, response=None, resolution=None, **fields):
    opened = timezone.now() - timedelta(hours=hours_ago)
    return upsert(
        side,
        external_id,
        phone=PHONE,
        opened_at=opened,
        first_response_at=opened + timedelta(minutes=response) if response is not None else None,
        resolved_at=opened + timedelta(hours=resolution) if resolution is not None else None,
        **fields,
    )[0]


def card(side, customer, member=None):
    with tenant_context(side.tenant):
        return review.card(customer, member or side.rep)


def read_url(customer):
    return reverse("service_feedback:review_read", args=[customer.public_id])


def test_the_card_weighs_each_ticket_against_the_targets(world, english):
    customer = customer_with_contact(world.a)
    ticket(world.a, "T-1", hours_ago=50, response=10, resolution=5, satisfaction=5, sentiment=60)
    ticket(world.a, "T-2", hours_ago=40, response=40, resolution=30, satisfaction=2, sentiment=-50)
    ticket(world.a, "T-3", hours_ago=2, subject="仍在处理")
    ticket(world.a, "OLD", hours_ago=24 * 200, response=1, resolution=1)  # beyond 180 days
    found = card(world.a, customer)
    assert [r.ticket.external_id for r in found.rows] == ["T-3", "T-2", "T-1"]
    t3, t2, t1 = found.rows
    assert (t1.response_ok, t1.resolution_ok, t1.sentiment) == (True, True, "positive")
    assert (t2.response_ok, t2.resolution_ok, t2.sentiment) == (False, False, "negative")
    assert (t3.response_ok, t3.resolution_ok) == (None, None)
    s = found.summary
    assert (s.count, s.responded, s.responded_on_time, s.resolved, s.resolved_on_time) == (
        3,
        2,
        1,
        2,
        1,
    )
    assert s.satisfaction == 3.5 and s.sentiment == 5.0 and s.sentiment_label == "neutral"


def test_the_targets_are_the_tenants(world):
    customer = customer_with_contact(world.a)
    with tenant_context(world.a.tenant):
        ServiceSettings.objects.create(
            tenant=world.a.tenant, first_response_minutes=60, resolution_hours=48
        )
    ticket(world.a, "T-1", hours_ago=50, response=40, resolution=30)
    (row,) = card(world.a, customer).rows
    assert row.response_ok and row.resolution_ok


def test_the_card_shows_the_last_five(world):
    customer = customer_with_contact(world.a)
    for n in range(7):
        ticket(world.a, f"T-{n}", hours_ago=10 + n)
    assert [r.ticket.external_id for r in card(world.a, customer).rows] == [
        f"T-{n}" for n in range(5)
    ]


def test_hints_need_every_word_the_default_rule_made_on_first_use(world):
    customer = customer_with_contact(world.a)
    ticket(world.a, "T-1", hours_ago=5, subject="升级到 V2.0 后", text="和旧 PLC 不兼容")
    assert card(world.a, customer).summary.hints == ["带上兼容性白皮书"]
    with tenant_context(world.a.tenant):
        assert ReviewHint.objects.count() == 1
        ReviewHint.objects.create(
            tenant=world.a.tenant, words=["漏油", "密封"], hint="带密封件样品"
        )
    assert card(world.a, customer).summary.hints == ["带上兼容性白皮书"]  # 密封 missing
    ticket(world.a, "T-2", hours_ago=4, text="油缸漏油，密封圈老化")
    assert card(world.a, customer).summary.hints == ["带上兼容性白皮书", "带密封件样品"]
    other = customer_with_contact(world.a, "别家", phone="13700137000")
    upsert(world.a, "T-9", phone="13700137000", text="V2.0 没问题")
    assert card(world.a, other).summary.hints == []


def test_the_customer_page_shows_the_card_with_hints(world, en):
    customer = customer_with_contact(world.a)
    ticket(world.a, "T-1", hours_ago=5, subject="V2.0 兼容问题", response=5, resolution=2)
    html = customer_360(en(world.a.rep), customer)
    assert 'data-testid="service-review"' in html
    assert "带上兼容性白皮书" in html and 'data-testid="response-ok"' in html
    assert 'data-testid="review-mark-read"' in html
    assert 'data-testid="review-reads"' not in html  # a rep does not see who read it


def test_no_card_without_recent_tickets(world, en):
    customer = customer_with_contact(world.a)
    html = customer_360(en(world.a.rep), customer)
    assert 'data-testid="service-review"' not in html
    response = en(world.a.rep).post(read_url(customer))
    assert response.status_code == 409


def test_marking_read_is_recorded_audited_and_shown_to_the_manager(world, en):
    customer = customer_with_contact(world.a)
    latest = ticket(world.a, "T-2", hours_ago=5)
    ticket(world.a, "T-1", hours_ago=9)
    client = en(world.a.rep)
    response = client.post(read_url(customer), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert 'data-testid="review-read"' in response.content.decode()
    with tenant_context(world.a.tenant):
        read = ReviewRead.objects.get()
        assert (read.member_id, read.last_ticket_id) == (world.a.rep.pk, latest.pk)
        assert AuditEvent.objects.filter(
            action="service_review.read", actor=world.a.rep.user
        ).exists()
    assert card(world.a, customer).read == read
    assert card(world.a, customer, world.a.manager).read is None  # the manager's own: not read
    html = customer_360(en(world.a.manager), customer)
    assert 'data-testid="review-read-row"' in html and world.a.rep.user.get_full_name() in html
    # A newer ticket: the card is unread again, the old read stays on record.
    ticket(world.a, "T-3", hours_ago=1)
    assert card(world.a, customer).read is None
    assert len(card(world.a, customer, world.a.manager).reads) == 1


def test_a_plain_post_redirects_to_the_customer(world, en):
    customer = customer_with_contact(world.a)
    ticket(world.a, "T-1", hours_ago=5)
    response = en(world.a.rep).post(read_url(customer))
    assert response.status_code == 302
    assert response["Location"] == reverse("customers:detail", args=[customer.public_id])


def test_another_tenants_or_another_reps_customer_is_404(world, en):
    theirs = customer_with_contact(world.b)
    ticket(world.b, "T-1", hours_ago=5)
    assert en(world.a.rep).post(read_url(theirs)).status_code == 404
    assert en(world.a.manager).post(read_url(theirs)).status_code == 404
    with tenant_context(world.a.tenant):
        from customers.models import Customer

        others = Customer.objects.create(
            tenant=world.a.tenant, name="别人的", owner=world.a.manager
        )
    assert en(world.a.rep).post(read_url(others)).status_code == 404
    assert en(world.a.rep).get(read_url(theirs)).status_code == 405
