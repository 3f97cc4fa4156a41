"""The activity index where it is read: the board's "Leads to rescue" section (which
leads, what each lacks, in what order, the link to all of them, one query), the lead
page's badge, and the figures of group "activity" recomputed from hand-built rows."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation

from crm import metrics
from crm.normalize import person_key
from crm.tenancy import tenant_context
from customers.models import DecisionRole
from leads.activity import compute, rescue
from leads.models import LeadStatus
from tests.leads import activity_helpers as h
from tests.leads.factories import make_rep
from tests.metric_links import parse, rows_behind

pytestmark = pytest.mark.django_db

DAY = h.DAY
BOARD = reverse("board:board")


def seed(world):
    """Tenant a's rep: four leads, two below 75; another rep's lead below 75 too."""
    t, rep = world.a.tenant, world.a.rep
    cust = h.customer(t, owner=rep)
    buyer = h.contact(cust, DecisionRole.PURCHASING)
    leads = {}
    # 0 + 0 + 0: updated 8 days before, nothing else.
    leads["stale"] = h.lead(t, rep)
    h.event(leads["stale"], days_before=8)
    # 40 + 11.7 + 12.5 = 64.2: fresh, one follow-up, one role.
    leads["thin"] = h.lead(t, rep, customer=cust)
    h.follow_up(rep, lead=leads["thin"], days_before=1, contact=buyer)
    # 40 + 23.3 + 12.5 = 75.8: above the line.
    leads["fine"] = h.lead(t, rep, customer=cust)
    for days in (1, 2):
        h.follow_up(rep, lead=leads["fine"], days_before=days)
    # 40 + 35 + 0 = 75: on the line, not below it.
    leads["line"] = h.lead(t, rep)
    for days in (1, 2, 3):
        h.follow_up(rep, lead=leads["line"], days_before=days)
    other = make_rep(t, "activity-other")
    leads["theirs"] = h.lead(t, other)
    with tenant_context(t):
        compute.compute(t, day=DAY)
    return leads, other


def test_the_rescue_list_says_what_each_lead_lacks(world):
    leads, _other = seed(world)
    with translation.override("en"), tenant_context(world.a.tenant):
        items = rescue.rescue_items(world.a.rep, DAY)
    # The lowest score first.
    assert [i.lead.pk for i in items] == [leads["stale"].pk, leads["thin"].pk]
    stale, thin = items
    assert thin.row.score == Decimal("64.2")
    assert [(s.component, s.missing, s.text) for s in thin.suggestions] == [
        (
            "density",
            Decimal("23.3"),
            "Fewer than 3 follow-ups in 30 days (1): log the next one",
        ),
        (
            "coverage",
            Decimal("12.5"),
            "Only 1 decision-chain role reached: find the purchasing or technical lead",
        ),
    ]
    assert [(s.component, s.text) for s in stale.suggestions] == [
        ("freshness", "8 days without an update: contact them today"),
        ("density", "Fewer than 3 follow-ups in 30 days (0): log the next one"),
        ("coverage", "No decision-chain role reached yet: find the purchasing or technical lead"),
    ]
    assert thin.total == 2
    # The link to all of them: the metric's rows of the day, the rep's.
    key, start, end, filters = parse(thin.all_url)
    assert (key, start, end, filters) == ("leads.activity_below", DAY, DAY, {"rep": world.a.rep.pk})
    assert {str(row[-1]) for row in rows_behind(thin.all_url, world.a.tenant)} == {
        str(leads["thin"].public_id),
        str(leads["stale"].public_id),
    }


def test_a_lead_that_left_the_rep_or_closed_leaves_the_list(world):
    leads, other = seed(world)
    t = world.a.tenant
    with tenant_context(t):
        type(leads["thin"]).objects.filter(pk=leads["thin"].pk).update(owner=other)
        type(leads["stale"]).objects.filter(pk=leads["stale"].pk).update(status=LeadStatus.INVALID)
        assert rescue.rescue_items(world.a.rep, DAY) == []
        # Yesterday's run still serves today until today's is done; older ones do not.
        assert [i.lead.pk for i in rescue.rescue_items(other, DAY)] == [leads["theirs"].pk]
        assert len(rescue.rescue_items(other, DAY.replace(day=11))) == 1
        assert rescue.rescue_items(other, DAY.replace(day=12)) == []


def test_one_item_per_person_however_many_of_their_leads_are_below_the_line(world):
    """Three leads of one contact of a customer (enquiries months apart) are one item,
    the lowest-scored, saying how many more; a lead of another contact of the same
    customer is an item of its own. The count and the link still cover every lead."""
    t, rep = world.a.tenant, world.a.rep
    cust = h.customer(t, owner=rep)
    # The keys intake stores (leads.intake.services): the person's, the phone's.
    li, wang = ({"contact_name": n, "contact_key": person_key(n)} for n in ("李主任", "王工"))
    same = [h.lead(t, rep, customer=cust, **li) for _ in range(3)]
    h.event(same[1], days_before=2)  # fresh: 40 points, above the others
    other = h.lead(t, rep, customer=cust, **wang)
    with tenant_context(t):
        compute.compute(t, day=DAY)
        items = rescue.rescue_items(rep, DAY)
    assert len(items) == 2
    by_lead = {i.lead.pk: i for i in items}
    first = next(i for i in items if i.lead.pk != other.pk)
    assert first.lead.pk in {same[0].pk, same[2].pk}  # a lowest-scored one
    assert sorted(r.lead_id for r in first.others) == sorted(
        lead.pk for lead in same if lead.pk != first.lead.pk
    )
    assert by_lead[other.pk].others == []
    assert first.total == 4


def test_leads_entered_without_intake_keys_are_grouped_by_the_contact_name(world):
    """A lead made otherwise than by intake (an import, a migration) has no name key: the
    contact's name makes it."""
    t, rep = world.a.tenant, world.a.rep
    cust = h.customer(t, owner=rep)
    for _ in range(3):
        h.lead(t, rep, customer=cust, contact_name="李主任", contact_key="", phone_key="")
    with tenant_context(t):
        compute.compute(t, day=DAY)
        items = rescue.rescue_items(rep, DAY)
    assert len(items) == 1 and len(items[0].others) == 2


def test_the_section_takes_one_query_for_2_and_12_leads(world, django_assert_num_queries):
    t, rep = world.a.tenant, world.a.rep
    for _ in range(2):
        h.lead(t, rep)
    with tenant_context(t):
        compute.compute(t, day=DAY)
        with django_assert_num_queries(1):
            assert len(rescue.rescue_items(rep, DAY)) == 2
    for _ in range(10):
        h.lead(t, rep)
    with tenant_context(t):
        compute.compute(t, day=DAY)
        with django_assert_num_queries(1):
            items = rescue.rescue_items(rep, DAY)
    assert len(items) == 10 and items[0].total == 12


def test_the_board_shows_the_section_with_a_steady_query_count(
    world, en, django_assert_max_num_queries
):
    t, rep = world.a.tenant, world.a.rep
    today = timezone.localdate(timezone=t.tzinfo)
    client = en(rep)
    for _ in range(2):
        h.lead(t, rep)
    with tenant_context(t):
        compute.compute(t, day=today)
    assert client.get(BOARD).status_code == 200  # warm up: the board's defaults exist now
    with CaptureQueriesContext(connection) as two:
        response = client.get(BOARD)
    body = response.content.decode()
    assert body.count('data-testid="rescue-lead"') == 2
    assert 'data-testid="rescue-freshness"' in body and "All 2 leads below 75" in body
    for _ in range(10):
        h.lead(t, rep)
    with tenant_context(t):
        compute.compute(t, day=today)
    with django_assert_max_num_queries(len(two)):
        response = client.get(BOARD)
    assert response.content.decode().count('data-testid="rescue-lead"') == rescue.BOARD_LIMIT


def test_the_lead_page_shows_its_latest_score(world, en):
    t, rep = world.a.tenant, world.a.rep
    lead = h.lead(t, rep)
    h.event(lead, days_before=2)
    h.follow_up(rep, lead=lead, days_before=3)
    page = reverse("leads:detail", args=[lead.public_id])
    client = en(rep)
    assert 'data-testid="activity-badge"' not in client.get(page).content.decode()
    with tenant_context(t):
        compute.compute(t, day=DAY.replace(day=9))
        compute.compute(t, day=DAY)
    body = client.get(page).content.decode()
    assert 'data-testid="activity-badge"' in body
    # 40 + 11.7 + 0, the day of the latest run.
    assert "Activity 51.7" in body
    assert body.count('data-testid="activity-part"') == 3
    assert "freshness 40.0/40" in body and "action density 11.7/35" in body
    assert "role coverage 0.0/25" in body


def test_the_activity_figures_match_a_hand_count(world):
    seed(world)
    t = world.a.tenant
    found = {m.key: m for m in metrics.metrics() if m.group == "activity"}
    assert set(found) == {
        "leads.activity_scored",
        "leads.activity_below",
        "leads.activity_stale",
        "leads.activity_thin",
        "leads.activity_narrow",
        "leads.activity_median_score",
        "leads.activity_rep_average",
    }
    # Scores: stale 0, thin 64.2, fine 75.8, line 75 (the rep's); theirs 0.
    want = {
        "leads.activity_scored": 5,
        "leads.activity_below": 3,
        "leads.activity_stale": 2,
        "leads.activity_thin": 4,
        "leads.activity_narrow": 5,
        "leads.activity_median_score": 64.2,
        # The rep's average (0 + 64.2 + 75.8 + 75) / 4 = 53.75 → 53.8; the other's 0.
        "leads.activity_rep_average": (53.8 + 0) / 2,
    }
    with tenant_context(t):
        for key, metric in found.items():
            value = metrics.value(metric, tenant=t, start=DAY, end=DAY)
            assert float(value) == pytest.approx(want[key]), key
            table = metrics.drill_down(metric, tenant=t, start=DAY, end=DAY)
            assert metrics.recount(metric, table) == pytest.approx(float(value)), key
        mine = {"rep": world.a.rep.pk}
        assert (
            metrics.value(found["leads.activity_below"], tenant=t, start=DAY, end=DAY, filters=mine)
            == 2
        )
        average = metrics.value(
            found["leads.activity_rep_average"], tenant=t, start=DAY, end=DAY, filters=mine
        )
        assert average == pytest.approx(53.8)
        # A range reads its last day: nothing was computed for the day after.
        assert (
            metrics.value(
                found["leads.activity_scored"], tenant=t, start=DAY, end=DAY.replace(day=11)
            )
            == 0
        )
        rate = metrics.get_rate("leads.activity_below_share")
        assert (rate.numerator, rate.denominator) == (
            "leads.activity_below",
            "leads.activity_scored",
        )
    # Tenant b sees none of it.
    with tenant_context(world.b.tenant):
        assert (
            metrics.value(found["leads.activity_scored"], tenant=world.b.tenant, start=DAY, end=DAY)
            == 0
        )
