"""The lead-quality report (F36): the range it covers and refuses, who may see it, and a
query budget that does not grow with the leads (the report's and the lead list's)."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from crm.models import Role
from leads.models import SourceGrade, Verification
from tests.factories import MembershipFactory
from tests.leads.factories import make_channel, make_lead
from tests.leads.report_helpers import (
    INVALID,
    LIST,
    RANGE,
    SHANGHAI,
    START,
    URL,
    VALID,
    build_mix,
    figures_of,
    local,
)

pytestmark = pytest.mark.django_db


# -- the range -------------------------------------------------------------------------------


def test_it_defaults_to_the_last_30_days_up_to_today_in_the_tenants_zone(world, en):
    today = timezone.localdate(timezone=SHANGHAI)
    channel = make_channel(world.a.tenant)
    make_lead(world.a.tenant, channel, created_at=local(today, 0, 1))
    make_lead(world.a.tenant, channel, created_at=local(today - timedelta(days=29), 0, 1))
    make_lead(world.a.tenant, channel, created_at=local(today - timedelta(days=30), 23, 59))
    response = en(world.a.manager).get(URL)
    assert response.status_code == 200
    report = response.context["report"]
    assert (report.start, report.end) == (today - timedelta(days=29), today)
    assert f'value="{report.start:%Y-%m-%d}"' in response.text
    assert figures_of(response)["total:delivered"][0] == "2"
    assert "30 days" in response.text


def test_it_refuses_a_backwards_or_too_long_range_with_field_errors(world, en):
    client = en(world.a.manager)
    response = client.get(URL, {"created_from": "2026-03-08", "created_to": "2026-03-02"})
    assert response.status_code == 400
    assert response.context["report"] is None
    assert "The end date is before the start date." in response.text
    assert 'data-testid="error-created_to"' in response.text

    response = client.get(URL, {"created_from": "2025-03-01", "created_to": "2026-03-02"})
    assert response.status_code == 400
    assert 'data-testid="error-created_from"' in response.text
    assert "longer than 366 days" in response.text

    response = client.get(URL, {"created_from": "2026-02-30"})
    assert response.status_code == 400
    assert 'data-testid="error-created_from"' in response.text

    # 366 days exactly is allowed; so is one day.
    ok = client.get(URL, {"created_from": "2025-03-02", "created_to": "2026-03-02"})
    assert ok.status_code == 200 and ok.context["report"].days == 366
    one_day = client.get(URL, {"created_from": "2026-03-02", "created_to": "2026-03-02"})
    assert one_day.status_code == 200 and one_day.context["report"].days == 1

    csv_bad = client.get(
        URL, {"created_from": "2026-03-08", "created_to": "2026-03-02", "_export": "csv"}
    )
    assert csv_bad.status_code == 400


# -- who sees it ------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.MARKETING, Role.MANAGER, Role.ADMIN])
def test_marketing_managers_and_admins_see_it_and_find_it_in_the_menu(world, login, role):
    member = MembershipFactory(tenant=world.a.tenant, role=role)
    client = login(member)
    assert client.get(URL).status_code == 200
    assert f'href="{URL}"' in client.get(reverse("home"), follow=True).text


@pytest.mark.parametrize("role", [Role.REP, Role.SERVICE])
def test_reps_and_service_are_refused(world, login, role):
    member = MembershipFactory(tenant=world.a.tenant, role=role)
    client = login(member)
    assert client.get(URL).status_code == 403
    assert client.get(URL, {"_export": "csv", "table": "rep"}).status_code == 403
    assert f'href="{URL}"' not in client.get(reverse("home"), follow=True).text


def test_it_counts_only_the_tenants_own_leads(world, en):
    build_mix(world)
    cells = figures_of(en(world.b.manager).get(URL, RANGE))
    assert cells["total:delivered"][0] == "1"


# -- cost ---------------------------------------------------------------------------------------


def test_the_query_count_does_not_grow_with_the_leads(world, en):
    mix = build_mix(world)
    client = en(world.a.manager)
    client.get(URL, RANGE)  # warm-up (session, caches)
    with CaptureQueriesContext(connection) as few:
        client.get(URL, RANGE)
    rng = random.Random(7)
    extra_rep = MembershipFactory(tenant=mix.tenant, role=Role.REP, user__first_name="王五")
    for i in range(30):
        lead = mix.lead(
            local(START + timedelta(days=i % 7), 15),
            channel=rng.choice([mix.web, mix.douyin]),
            grade=rng.choice(SourceGrade.values),
            owner=rng.choice([mix.rep1, mix.rep2, extra_rep]),
            is_suspect=bool(i % 2),
        )
        mix.assign_and_touch(lead, timedelta(minutes=5), timedelta(minutes=i + 1))
        outcome = rng.choice(Verification.values)
        reason = rng.choice(mix.reasons) if outcome in INVALID else None
        mix.verify(lead, timedelta(hours=3), outcome, reason)
        if outcome in VALID:
            mix.follow_up(lead, lead.owner, timedelta(hours=5))
    with CaptureQueriesContext(connection) as many:
        client.get(URL, RANGE)
    assert len(many) == len(few), [q["sql"] for q in many.captured_queries]
    # Session, user, seats, the tenant transaction (savepoint, setting, release) and the
    # report's own: channels × grades, channels, reasons, reps, follow-ups, names.
    assert len(many) <= 14, [q["sql"][:90] for q in many.captured_queries]


def test_the_lead_list_keeps_its_query_count_with_the_report_filters(world, en):
    mix = build_mix(world)
    client = en(world.a.manager)
    params = {
        **RANGE,
        "verification": "valid",
        "followed_up": "yes",
        "owner": mix.rep1.pk,
        "source_grade": "A",
    }
    client.get(LIST, params)
    with CaptureQueriesContext(connection) as few:
        client.get(LIST, params)
    for i in range(10):
        lead = mix.lead(local(START, 16), owner=mix.rep1, grade=SourceGrade.A, company=f"x{i}")
        mix.verify(lead, timedelta(hours=1), Verification.VALID_VISIT)
        mix.follow_up(lead, mix.rep1, timedelta(hours=1))
    with CaptureQueriesContext(connection) as many:
        response = client.get(LIST, params)
    assert response.context["count"] >= 10
    assert len(many) == len(few), [q["sql"] for q in many.captured_queries]
