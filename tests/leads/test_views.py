"""The lead list (filters, sorting, paging, CSV export) and the lead's page."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from crm.models import Role
from crm.tenancy import tenant_context
from leads.models import Lead, LeadEvent, LeadEventKind, LeadStatus
from tests.factories import MembershipFactory
from tests.leads.factories import make_channel, make_event, make_lead, make_tag

pytestmark = pytest.mark.django_db

LIST = reverse("leads:list")
SHANGHAI = ZoneInfo("Asia/Shanghai")


def detail_url(lead) -> str:
    return reverse("leads:detail", args=[lead.public_id])


def tag_lead(lead, *tags):
    with tenant_context(lead.tenant):
        lead.tags.add(*tags)


def rows(response) -> list[str]:
    """Company names of the table's rows, in order."""
    table = response.context["table"]
    with tenant_context(response.wsgi_request.tenant):  # an empty page is never rendered
        return [row.record.company for row in table.paginated_rows]


def csv_text(response) -> str:
    """The export's whole text: a streamed body can be read once, so it is kept."""
    if not hasattr(response, "csv_text"):
        assert response.streaming  # sent while it is read, never built in memory first
        response.csv_text = response.getvalue().decode("utf-8")
    return response.csv_text


def csv_rows(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(csv_text(response).lstrip("\ufeff"))))


# -- who sees what ---------------------------------------------------------------------------


def test_it_lists_the_tenants_leads_and_not_the_other_tenants(world, login):
    make_lead(world.a.tenant, company="阿尔法机械有限公司")
    make_lead(world.b.tenant, company="贝塔化工有限公司")
    response = login(world.a.manager).get(LIST)
    assert response.status_code == 200
    assert rows(response) == ["阿尔法机械有限公司"]
    assert "阿尔法机械有限公司" in response.text
    assert "贝塔化工有限公司" not in response.text


def test_it_shows_a_rep_only_own_leads(world, login):
    channel = make_channel(world.a.tenant)
    make_lead(world.a.tenant, channel, company="Mine Ltd", owner=world.a.rep)
    make_lead(world.a.tenant, channel, company="Other rep Ltd", owner=world.a.manager)
    make_lead(world.a.tenant, channel, company="Pool Ltd")
    response = login(world.a.rep).get(LIST)
    assert rows(response) == ["Mine Ltd"]
    # Reps get no owner filter: there is only one owner in their list.
    assert 'name="owner"' not in response.text
    assert 'name="owner"' in login(world.a.manager).get(LIST).text


@pytest.mark.parametrize("role", [Role.MARKETING, Role.ADMIN, Role.MANAGER])
def test_it_shows_readers_every_lead_of_the_tenant(world, login, role):
    member = MembershipFactory(tenant=world.a.tenant, role=role)
    make_lead(world.a.tenant, company="Someone's Ltd", owner=world.a.rep)
    assert rows(login(member).get(LIST)) == ["Someone's Ltd"]


def test_it_refuses_the_service_role(world, login):
    agent = MembershipFactory(tenant=world.a.tenant, role=Role.SERVICE)
    lead = make_lead(world.a.tenant, owner=agent)
    client = login(agent)
    assert client.get(LIST).status_code == 403
    assert client.get(LIST, {"_export": "csv"}).status_code == 403
    assert client.get(detail_url(lead)).status_code == 403


# -- filters ---------------------------------------------------------------------------------


def test_it_filters_by_status(world, login):
    channel = make_channel(world.a.tenant)
    make_lead(world.a.tenant, channel, company="New Ltd")
    make_lead(world.a.tenant, channel, company="Valid Ltd", status=LeadStatus.VALID)
    client = login(world.a.manager)
    assert rows(client.get(LIST, {"status": "valid"})) == ["Valid Ltd"]
    assert rows(client.get(LIST, {"status": "new"})) == ["New Ltd"]


def test_it_filters_by_channel(world, login):
    web = make_channel(world.a.tenant, name="官网")
    sms = make_channel(world.a.tenant, name="短信")
    make_lead(world.a.tenant, web, company="Web Ltd")
    make_lead(world.a.tenant, sms, company="Sms Ltd")
    client = login(world.a.manager)
    response = client.get(LIST, {"channel": sms.pk})
    assert rows(response) == ["Sms Ltd"]
    # The choices are the tenant's channels only.
    other = make_channel(world.b.tenant, name="别家渠道")
    response = client.get(LIST)
    assert "短信" in response.text
    assert "别家渠道" not in response.text
    assert rows(client.get(LIST, {"channel": other.pk})) == ["Sms Ltd", "Web Ltd"]  # ignored


def test_it_filters_by_tag_and_shows_tags_as_coloured_badges(world, login):
    channel = make_channel(world.a.tenant)
    urgent = make_tag(world.a.tenant, "紧急", color="danger")
    tagged = make_lead(world.a.tenant, channel, company="Tagged Ltd")
    make_lead(world.a.tenant, channel, company="Plain Ltd")
    tag_lead(tagged, urgent)
    client = login(world.a.manager)
    assert rows(client.get(LIST, {"tag": urgent.pk})) == ["Tagged Ltd"]
    assert '<span class="badge text-bg-danger">紧急</span>' in client.get(LIST).text


def test_it_filters_by_owner_and_unassigned(world, login):
    channel = make_channel(world.a.tenant)
    make_lead(world.a.tenant, channel, company="Rep's Ltd", owner=world.a.rep)
    make_lead(world.a.tenant, channel, company="Pool Ltd")
    client = login(world.a.manager)
    assert rows(client.get(LIST, {"owner": world.a.rep.pk})) == ["Rep's Ltd"]
    assert rows(client.get(LIST, {"owner": "null"})) == ["Pool Ltd"]
    # Another tenant's member is no valid choice (and not offered).
    response = client.get(LIST, {"owner": world.b.rep.pk})
    assert len(rows(response)) == 2
    options = response.context["filter"].owner_options
    assert str(world.a.rep.pk) in [value for value, _, _ in options]
    assert str(world.b.rep.pk) not in [value for value, _, _ in options]


def test_it_drops_the_owner_select_when_there_are_too_many_people(world, login, monkeypatch):
    monkeypatch.setattr("leads.filters.OWNER_OPTIONS_MAX", 1)  # world.a has a rep and a manager
    make_lead(world.a.tenant, company="Rep's Ltd", owner=world.a.rep)
    make_lead(world.a.tenant, company="Pool Ltd")
    client = login(world.a.manager)
    assert 'name="owner"' not in client.get(LIST).text
    assert rows(client.get(LIST, {"owner": world.a.rep.pk})) == ["Rep's Ltd"]


def test_it_filters_by_date_range_in_local_days(world, login):
    channel = make_channel(world.a.tenant)
    # 23:30 in Shanghai on 1 March is still 1 March (15:30 UTC).
    make_lead(
        world.a.tenant,
        channel,
        company="March 1 Ltd",
        created_at=datetime(2026, 3, 1, 23, 30, tzinfo=SHANGHAI),
    )
    make_lead(
        world.a.tenant,
        channel,
        company="March 5 Ltd",
        created_at=datetime(2026, 3, 5, 9, 0, tzinfo=SHANGHAI),
    )
    client = login(world.a.manager)
    assert rows(client.get(LIST, {"created_from": "2026-03-02"})) == ["March 5 Ltd"]
    assert rows(client.get(LIST, {"created_to": "2026-03-01"})) == ["March 1 Ltd"]
    both = {"created_from": "2026-03-01", "created_to": "2026-03-05"}
    assert rows(client.get(LIST, both)) == ["March 5 Ltd", "March 1 Ltd"]
    assert rows(client.get(LIST, {"created_from": "2026-03-06"})) == []


def test_it_filters_revisits_and_shows_the_revisit_badge(world, login):
    channel = make_channel(world.a.tenant)
    original = make_lead(world.a.tenant, channel, company="Original Ltd")
    make_lead(world.a.tenant, channel, company="Revisit Ltd", revisit_of=original)
    client = login(world.a.manager)
    assert rows(client.get(LIST, {"revisit": "yes"})) == ["Revisit Ltd"]
    assert rows(client.get(LIST, {"revisit": "no"})) == ["Original Ltd"]
    assert "↩" in client.get(LIST).text


def test_it_filters_suspects_and_shows_the_reasons_in_a_tooltip(world, login):
    channel = make_channel(world.a.tenant)
    make_lead(
        world.a.tenant,
        channel,
        company="Fishy Ltd",
        is_suspect=True,
        suspect_reasons=["Looks like a test entry"],
    )
    make_lead(world.a.tenant, channel, company="Fine Ltd")
    client = login(world.a.manager)
    assert rows(client.get(LIST, {"suspect": "yes"})) == ["Fishy Ltd"]
    assert rows(client.get(LIST, {"suspect": "no"})) == ["Fine Ltd"]
    assert 'title="Looks like a test entry">⚠</span>' in client.get(LIST).text


def test_it_searches_company_contact_and_phone(world, login):
    channel = make_channel(world.a.tenant)
    make_lead(
        world.a.tenant,
        channel,
        company="宁波恒力液压科技有限公司",
        contact_name="王工",
        phone="+8613812345678",
    )
    make_lead(
        world.a.tenant,
        channel,
        company="苏州精密仪器有限公司",
        contact_name="李经理",
        phone="+8613900001111",
    )
    client = login(world.a.manager)
    assert rows(client.get(LIST, {"q": "恒力"})) == ["宁波恒力液压科技有限公司"]
    assert rows(client.get(LIST, {"q": "李经"})) == ["苏州精密仪器有限公司"]
    assert rows(client.get(LIST, {"q": "00001111"})) == ["苏州精密仪器有限公司"]
    # Typed as people write it: the E.164 form matches.
    assert rows(client.get(LIST, {"q": "138 1234 5678"})) == ["宁波恒力液压科技有限公司"]
    assert rows(client.get(LIST, {"q": "nothing like it"})) == []


# -- sorting and paging ----------------------------------------------------------------------


def test_it_sorts_newest_first_by_default_and_by_company_on_request(world, login):
    channel = make_channel(world.a.tenant)
    for day, company in ((1, "B Ltd"), (2, "C Ltd"), (3, "A Ltd")):
        make_lead(
            world.a.tenant,
            channel,
            company=company,
            created_at=datetime(2026, 3, day, tzinfo=SHANGHAI),
        )
    client = login(world.a.manager)
    assert rows(client.get(LIST)) == ["A Ltd", "C Ltd", "B Ltd"]
    assert rows(client.get(LIST, {"sort": "company"})) == ["A Ltd", "B Ltd", "C Ltd"]
    assert rows(client.get(LIST, {"sort": "-company"})) == ["C Ltd", "B Ltd", "A Ltd"]
    assert rows(client.get(LIST, {"sort": "created_at"})) == ["B Ltd", "C Ltd", "A Ltd"]


def test_it_sorts_by_score_with_the_unscored_last_when_descending(world, login):
    channel = make_channel(world.a.tenant)
    for company, score in (("Low", 10), ("None", None), ("High", 90), ("Mid", 50), ("Mid2", 50)):
        make_lead(world.a.tenant, channel, company=company, score=score)
    client = login(world.a.manager)
    page = client.get(LIST)
    assert "?sort=score" in page.text  # the header links to the sort
    # Ties by id, in the sort's direction: both directions are one index scan.
    assert rows(client.get(LIST, {"sort": "-score"})) == ["High", "Mid2", "Mid", "Low", "None"]
    assert rows(client.get(LIST, {"sort": "score"})) == ["None", "Low", "Mid", "Mid2", "High"]


def test_the_score_sort_is_read_from_its_index(world):
    from leads.tables import LeadTable

    with tenant_context(world.a.tenant), connection.cursor() as cursor:
        # A tiny table: ask for a plain index scan, as a tenant's thousands of rows get.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        # With the planner's estimate of a handful of rows, sorting them is cheaper than any
        # index: forbid the sort, so the plan shows whether an index gives this order.
        cursor.execute("SET LOCAL enable_sort = off")
        for descending in (True, False):
            queryset, _done = LeadTable([]).order_score(Lead.objects.all(), descending)
            plan = queryset[:50].explain()
            assert "lead_score" in plan and "Sort" not in plan, plan


def test_it_pages_by_fifty(world, login):
    channel = make_channel(world.a.tenant)
    for i in range(60):
        make_lead(world.a.tenant, channel, company=f"Firm {i:02d}")
    client = login(world.a.manager)
    first = client.get(LIST)
    assert first.context["table"].paginator.num_pages == 2
    assert len(rows(first)) == 50
    second = rows(client.get(LIST, {"page": 2}))
    assert len(second) == 10
    assert set(second).isdisjoint(rows(first))
    assert "60" in first.text  # the count in the header


def test_it_pages_search_results_with_as_many_queries_as_the_plain_list(world, login):
    channel = make_channel(world.a.tenant)
    for i in range(60):
        make_lead(world.a.tenant, channel, company=f"Firm {i:02d}")
    for i in range(5):
        make_lead(world.a.tenant, channel, company=f"Other {i}")
    client = login(world.a.manager)
    plain = client.get(LIST)  # also a warm-up
    with CaptureQueriesContext(connection) as plain_queries:
        client.get(LIST)
    with CaptureQueriesContext(connection) as search_queries:
        first = client.get(LIST, {"q": "firm"})
    assert first.context["count"] == 60
    assert first.context["table"].paginator.num_pages == 2
    assert len(search_queries) == len(plain_queries)
    assert plain.context["count"] == 65
    second = rows(client.get(LIST, {"q": "firm", "page": 2}))
    assert len(second) == 10
    assert all(company.startswith("Firm") for company in second)
    # Past the end: django-tables2 shows the last page.
    assert rows(client.get(LIST, {"q": "firm", "page": 9})) == second


def test_it_keeps_the_query_count_constant_whatever_the_row_count(world, login):
    channel = make_channel(world.a.tenant)
    tags = [make_tag(world.a.tenant, f"tag{i}") for i in range(3)]

    def add(n):
        for i in range(n):
            original = make_lead(world.a.tenant, channel, company=f"Co {i}", owner=world.a.rep)
            tag_lead(original, *tags[: i % 3 + 1])
            make_lead(
                world.a.tenant,
                channel,
                company=f"Co {i} again",
                revisit_of=original,
                is_suspect=True,
                suspect_reasons=["x"],
            )

    client = login(world.a.manager)
    add(2)
    client.get(LIST)  # warm-up (session, caches)
    with CaptureQueriesContext(connection) as few:
        assert len(rows(client.get(LIST))) == 4
    add(28)
    with CaptureQueriesContext(connection) as many:
        assert len(rows(client.get(LIST))) == 50
    assert len(many) == len(few), [q["sql"] for q in many.captured_queries]


def test_it_keeps_the_query_count_constant_whatever_the_number_of_reps(world, login):
    """The owner select lists every active rep: one query, however many there are, also
    with a deactivated owner selected (opened from the report)."""
    channel = make_channel(world.a.tenant)
    former = MembershipFactory(tenant=world.a.tenant, role=Role.REP, is_active=False)
    make_lead(world.a.tenant, channel, company="Kept", owner=former)
    client = login(world.a.manager)
    params = {"owner": former.pk}
    client.get(LIST, params)  # warm-up (session, caches)
    with CaptureQueriesContext(connection) as few:
        response = client.get(LIST, params)
    assert rows(response) == ["Kept"]
    for _i in range(15):
        MembershipFactory(tenant=world.a.tenant, role=Role.REP)
    with CaptureQueriesContext(connection) as many:
        response = client.get(LIST, params)
    assert rows(response) == ["Kept"]
    assert len(many) == len(few), [q["sql"][:160] for q in many.captured_queries]
    assert "(inactive)" in response.text or "已停用" in response.text


# -- CSV export ------------------------------------------------------------------------------


def test_it_exports_the_tenants_rows_as_csv(world, login):
    channel = make_channel(world.a.tenant, name="官网")
    lead = make_lead(world.a.tenant, channel, company="Alpha Export Ltd", owner=world.a.rep)
    tag_lead(lead, make_tag(world.a.tenant, "紧急", color="danger"))
    make_lead(world.b.tenant, company="Beta Export Ltd")
    response = login(world.a.manager).get(LIST, {"_export": "csv"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="leads-')
    assert response["Content-Disposition"].endswith('.csv"')
    header, *data = csv_rows(response)
    assert len(header) == 12  # … the lead score among them
    assert len(data) == 1
    assert "Alpha Export Ltd" in data[0]
    assert "紧急" in data[0]  # tags as plain text
    assert "官网" in data[0]
    assert world.a.rep.display_name in data[0]  # the owner, by name
    assert "<" not in csv_text(response)
    assert "Beta Export Ltd" not in csv_text(response)


def test_it_exports_every_matching_row_not_one_page(world, login):
    channel = make_channel(world.a.tenant)
    for i in range(60):
        make_lead(world.a.tenant, channel, company=f"Firm {i:02d}")
    _, *data = csv_rows(login(world.a.manager).get(LIST, {"_export": "csv", "page": 2}))
    assert len(data) == 60


def test_it_exports_only_what_the_filters_keep(world, login):
    channel = make_channel(world.a.tenant)
    make_lead(world.a.tenant, channel, company="Kept Ltd", status=LeadStatus.VALID)
    make_lead(world.a.tenant, channel, company="Dropped Ltd")
    response = login(world.a.manager).get(LIST, {"_export": "csv", "status": "valid"})
    _, *data = csv_rows(response)
    assert [r[1] for r in data] == ["Kept Ltd"]


def test_it_exports_a_reps_own_rows_only(world, login):
    channel = make_channel(world.a.tenant)
    make_lead(world.a.tenant, channel, company="Rep Row Ltd", owner=world.a.rep)
    make_lead(world.a.tenant, channel, company="Manager Row Ltd", owner=world.a.manager)
    _, *data = csv_rows(login(world.a.rep).get(LIST, {"_export": "csv"}))
    assert [r[1] for r in data] == ["Rep Row Ltd"]


def test_it_neutralises_formulas_in_exported_cells(world, login):
    make_lead(world.a.tenant, company='=HYPERLINK("http://x.invalid","click")')
    _, *data = csv_rows(login(world.a.manager).get(LIST, {"_export": "csv"}))
    assert data[0][1].startswith("'=")
    assert data[0][3] == "+8613812345678"  # a phone number stays as it is


# -- the lead's page -------------------------------------------------------------------------


def test_it_shows_a_lead_with_everything_known_about_it(world, en):
    channel = make_channel(world.a.tenant, name="抖音线索")
    lead = make_lead(
        world.a.tenant,
        channel,
        company="宁波恒力液压科技有限公司",
        email="wang@example.invalid",
        budget="50万",
        owner=world.a.rep,
        utm={"utm_source": "baidu", "utm_campaign": "spring-2026"},
        is_suspect=True,
        suspect_reasons=["Placeholder-like phone number: +8613800000000"],
        registry_status="verified",
    )
    tag_lead(lead, make_tag(world.a.tenant, "液压", color="info"))
    make_event(
        world.a.tenant, channel, payload={"clue_id": "dy-42", "tel": "13812345678"}, lead=lead
    )
    with tenant_context(world.a.tenant):
        LeadEvent.objects.create(
            tenant=world.a.tenant,
            lead=lead,
            kind=LeadEventKind.INTAKE,
            message="Received from 抖音线索",
            actor=world.a.manager.user,
        )
    response = en(world.a.manager).get(detail_url(lead))
    assert response.status_code == 200
    text = response.text
    for shown in (
        "宁波恒力液压科技有限公司",
        "wang@example.invalid",
        "50万",
        "抖音线索",
        "B class",
    ):
        assert shown in text
    assert "Verified" in text  # the registry status
    assert world.a.rep.display_name in text
    assert "text-bg-info" in text and "液压" in text
    assert "utm_source" in text and "baidu" in text and "spring-2026" in text
    assert "Placeholder-like phone number: +8613800000000" in text
    # The payload, pretty-printed and collapsed.
    assert "&quot;clue_id&quot;: &quot;dy-42&quot;" in text
    assert 'class="collapse mt-2"' in text
    # The timeline.
    assert "Received from 抖音线索" in text
    assert world.a.manager.user.get_full_name() in text


def test_it_links_a_revisit_and_its_original_both_ways(world, login):
    channel = make_channel(world.a.tenant)
    original = make_lead(world.a.tenant, channel, company="First Ltd")
    revisit = make_lead(world.a.tenant, channel, company="First Ltd", revisit_of=original)
    with tenant_context(world.a.tenant):
        LeadEvent.objects.create(
            tenant=world.a.tenant,
            lead=revisit,
            kind=LeadEventKind.REVISIT,
            data={"original": str(original.public_id)},
        )
    client = login(world.a.manager)
    page = client.get(detail_url(revisit)).text
    assert page.count(f'href="{detail_url(original)}"') == 2  # the banner and the timeline
    assert f'href="{detail_url(revisit)}"' in client.get(detail_url(original)).text


def test_it_pages_the_timeline_by_twenty_and_serves_it_alone_to_htmx(world, login):
    lead = make_lead(world.a.tenant)
    with tenant_context(world.a.tenant):
        LeadEvent.objects.bulk_create(
            LeadEvent(tenant=world.a.tenant, lead=lead, kind="tagged", message=f"event {i:02d}")
            for i in range(25)
        )
    client = login(world.a.manager)
    first = client.get(detail_url(lead))
    assert len(first.context["timeline"]) == 20
    assert "event 24" in first.text and "event 04" not in first.text
    second = client.get(
        detail_url(lead), {"page": 2}, headers={"HX-Request": "true", "HX-Target": "timeline"}
    )
    assert "event 04" in second.text and "event 24" not in second.text
    assert "<html" not in second.text  # the partial only
    assert second.text.lstrip().startswith('<div id="timeline"')


def test_it_hides_other_tenants_leads(world, login):
    foreign = make_lead(world.b.tenant)
    assert login(world.a.admin).get(detail_url(foreign)).status_code == 404


def test_it_hides_other_peoples_leads_from_a_rep(world, login):
    channel = make_channel(world.a.tenant)
    theirs = make_lead(world.a.tenant, channel, owner=world.a.manager)
    mine = make_lead(world.a.tenant, channel, owner=world.a.rep)
    client = login(world.a.rep)
    assert client.get(detail_url(theirs)).status_code == 404
    assert client.get(detail_url(mine)).status_code == 200


# -- empty states ----------------------------------------------------------------------------


def test_it_tells_an_admin_where_leads_come_from(world, en):
    response = en(world.a.admin).get(LIST)
    assert response.status_code == 200
    assert 'data-testid="no-leads"' in response.text
    assert reverse("admin:leads_channel_changelist") in response.text
    assert reverse("leads:import") in response.text
    assert 'data-testid="lead-filters"' not in response.text


def test_it_offers_a_rep_no_admin_or_import_links_when_empty(world, en):
    make_lead(world.a.tenant, owner=world.a.manager)  # someone else's
    response = en(world.a.rep).get(LIST)
    assert 'data-testid="no-leads"' in response.text
    assert reverse("admin:leads_channel_changelist") not in response.text
    assert reverse("leads:import") not in response.text


def test_it_says_when_filters_match_nothing(world, en):
    make_lead(world.a.tenant, company="Something Ltd")
    response = en(world.a.manager).get(LIST, {"q": "nothing like it"})
    assert 'data-testid="no-match"' in response.text
    assert 'data-testid="no-leads"' not in response.text
    assert f'href="{LIST}"' in response.text  # clear filters
