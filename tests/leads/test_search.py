"""The lead search: what it finds, the gram table the triggers keep, the index it uses
under row-level security, and the capped counts of the lead list."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from crm.search import spread, text_grams
from crm.tenancy import tenant_context
from leads import views
from leads.models import Lead, SearchGram
from leads.search import Term
from tests.leads.factories import make_channel, make_lead

pytestmark = pytest.mark.django_db

LIST = reverse("leads:list")


def rows(response) -> list[str]:
    table = response.context["table"]
    with tenant_context(response.wsgi_request.tenant):
        return [row.record.company for row in table.paginated_rows]


def grams_of(lead) -> set[str]:
    with tenant_context(lead.tenant):
        return set(SearchGram.objects.filter(lead=lead).values_list("gram", flat=True))


# -- what the search finds -------------------------------------------------------------------


@pytest.fixture
def two_leads(world):
    channel = make_channel(world.a.tenant)
    hengli = make_lead(
        world.a.tenant,
        channel,
        company="宁波恒力液压科技有限公司",
        contact_name="欧阳工",
        phone="+8613812345678",
    )
    precise = make_lead(
        world.a.tenant,
        channel,
        company="Suzhou Precise Instruments 苏州精密",
        contact_name="李经理",
        phone="+8657188881234",
    )
    return hengli, precise


@pytest.mark.parametrize(
    ("term", "found"),
    [
        ("恒", ["宁波恒力液压科技有限公司"]),  # one character, in the middle
        ("司", ["宁波恒力液压科技有限公司"]),  # one character, the last
        ("欧阳", ["宁波恒力液压科技有限公司"]),  # a two-character surname
        ("恒力液压", ["宁波恒力液压科技有限公司"]),
        ("宁波恒力液压科技有限公司", ["宁波恒力液压科技有限公司"]),  # more grams than MAX_GRAMS
        ("李", ["Suzhou Precise Instruments 苏州精密"]),
        ("precise", ["Suzhou Precise Instruments 苏州精密"]),  # Latin: any case
        ("PRECISE INSTR", ["Suzhou Precise Instruments 苏州精密"]),
        ("5678", ["宁波恒力液压科技有限公司"]),
        ("678", ["宁波恒力液压科技有限公司"]),  # a phone from three digits on
        ("78", []),  # two digits: company and contact only
        ("138 1234 5678", ["宁波恒力液压科技有限公司"]),  # as people type it
        ("0571-8888 1234", ["Suzhou Precise Instruments 苏州精密"]),  # parses to +86571…
        ("恒力仪器", []),  # both grams exist, in no one field together
        ("A5678", []),  # not a phone: its digits are not looked up in phones
        ("力液压x", []),
        ("nothing like it", []),
    ],
)
def test_it_finds_a_term_in_the_company_the_contact_or_the_phone(
    two_leads, world, login, term, found
):
    client = login(world.a.manager)
    assert rows(client.get(LIST, {"q": term})) == found


def test_the_term_grams_are_spread_over_the_term():
    assert text_grams("恒力液压") == ["恒力", "力液", "液压"]
    assert text_grams("aaaa") == ["aa"]
    assert spread(list("abcdefg"), 4) == ["a", "c", "e", "g"]
    sql, params = Term("宁波恒力液压科技有限公司").candidates(7)
    assert sql.count("JOIN") == 3  # four grams, the first and the last among them
    assert params == ["力液", "技有", "公司", 7, "宁波"]


def test_another_tenants_leads_are_never_found(world, login):
    make_lead(world.a.tenant, company="阿尔法恒力")
    make_lead(world.b.tenant, company="贝塔恒力", contact_name="赵工")
    client = login(world.a.manager)
    assert rows(client.get(LIST, {"q": "恒力"})) == ["阿尔法恒力"]
    assert rows(client.get(LIST, {"q": "贝塔"})) == []
    # The table itself is under the tenant policy.
    with tenant_context(world.a.tenant):
        tenants = set(SearchGram.objects.values_list("tenant_id", flat=True))
    assert tenants == {world.a.tenant.pk}


# -- the gram table, kept by triggers --------------------------------------------------------


def test_the_triggers_keep_the_grams_on_insert_update_bulk_load_and_delete(world):
    lead = make_lead(world.a.tenant, company="恒力", contact_name="王工", phone="+8613812345678")
    assert grams_of(lead) == {
        "恒力", "力", "王工", "工",
        "#861", "#613", "#138", "#381", "#812", "#123", "#234", "#345", "#456", "#567", "#678",
    }  # fmt: skip
    with tenant_context(world.a.tenant):
        Lead.objects.filter(pk=lead.pk).update(company="Acme", phone="")
    assert grams_of(lead) == {"ac", "cm", "me", "e", "王工", "工"}
    with tenant_context(world.a.tenant):
        Lead.objects.filter(pk=lead.pk).update(status="valid")  # not a searched column
    assert grams_of(lead) == {"ac", "cm", "me", "e", "王工", "工"}
    with tenant_context(world.a.tenant):
        channel = make_channel(world.a.tenant)
        loaded = Lead.objects.bulk_create(
            [Lead(tenant=world.a.tenant, channel=channel, company=f"批{i}") for i in range(3)]
        )
    assert grams_of(loaded[2]) == {"批2", "2"}
    with tenant_context(world.a.tenant):
        Lead.objects.filter(pk__in=[lead.pk, loaded[0].pk]).delete()
        left = set(SearchGram.objects.values_list("lead_id", flat=True))
    assert left == {loaded[1].pk, loaded[2].pk}


def test_the_search_reads_the_gram_index_under_row_level_security(world):
    """The app role, under the tenant policy: the gram condition is an index condition
    (leakproof equality), where a LIKE could only filter rows already read."""
    lead = make_lead(world.a.tenant)
    term = Term("恒力液压")
    with tenant_context(world.a.tenant), connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        assert cursor.fetchone()[0] == "crm_app"  # not the owner, not a superuser
        cursor.execute("SET LOCAL enable_seqscan = off")
        sql, params = term.candidates(world.a.tenant.pk)
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        assert term.candidate_ids(world.a.tenant.pk, 10) == [lead.pk]
        assert Term("恒").candidate_ids(world.a.tenant.pk, 10) == [lead.pk]
        assert Term("恒").candidate_ids(world.a.tenant.pk, 0) is None  # over the cap
    assert "leads_searchgram_pkey" in plan, plan
    assert "Index Cond: ((tenant_id = " in plan and "gram = '恒力'" in plan, plan


# -- counts that do not walk the tenant ------------------------------------------------------


def test_a_list_past_the_cap_shows_an_estimate_and_counts_exactly_on_demand(
    world, login, monkeypatch
):
    monkeypatch.setattr(views, "COUNT_CAP", 5)
    channel = make_channel(world.a.tenant)
    for i in range(8):
        make_lead(world.a.tenant, channel, company=f"Firm {i}")
    client = login(world.a.manager)
    page = client.get(LIST)
    assert page.context["count_capped"] and page.context["count_estimated"]
    assert page.context["count"] >= 6  # the planner's estimate, never below the cap
    assert 'data-testid="exact-count"' in page.text
    exact = client.get(LIST, {"count": "exact"})
    assert exact.context["count"] == 8 and not exact.context["count_capped"]
    assert "8 leads" in exact.text or "8 条" in exact.text


def test_a_capped_list_keeps_its_query_count_and_finds_its_real_last_page(
    world, login, monkeypatch
):
    channel = make_channel(world.a.tenant)
    for i in range(55):
        make_lead(world.a.tenant, channel, company=f"Firm {i:02d}")
    client = login(world.a.manager)
    client.get(LIST)  # warm-up
    with CaptureQueriesContext(connection) as below:
        client.get(LIST)
    monkeypatch.setattr(views, "COUNT_CAP", 5)
    with CaptureQueriesContext(connection) as above:
        page = client.get(LIST)
    assert page.context["count_capped"]
    assert len(above) == len(below)  # the estimate rides on the count query
    # However far the estimate overshoots, a page past the end shows the real last one.
    last = client.get(LIST, {"page": 999})
    assert len(rows(last)) == 5 and last.context["count"] == 55


def test_a_common_term_is_read_in_the_lists_order_and_a_rare_one_from_the_index(
    world, login, monkeypatch
):
    monkeypatch.setattr("crm.search.SEARCH_CAP", 3)
    channel = make_channel(world.a.tenant)
    for i in range(6):
        make_lead(world.a.tenant, channel, company=f"王氏{i}", contact_name="李工")
    make_lead(world.a.tenant, channel, company="欧阳", contact_name="李工")
    client = login(world.a.manager)
    common = client.get(LIST, {"q": "王"})
    assert common.context["count_capped"] and not common.context["count_estimated"]
    assert rows(common) == [f"王氏{i}" for i in reversed(range(6))]
    assert "more than 3 leads match" in common.text or "超过 3 条" in common.text
    rare = client.get(LIST, {"q": "欧阳"})
    assert not rare.context["count_capped"] and rows(rare) == ["欧阳"]
