"""The customer search by name through its gram table: what it finds, the grams the
triggers keep, the index it uses under row-level security, a common term past the cap."""

from __future__ import annotations

import pytest
from django.db import connection

from crm import search
from crm.tenancy import tenant_context
from customers import filters
from customers.models import Customer, CustomerSearchGram
from tests.customers.test_list import LIST, make_customer, names

pytestmark = pytest.mark.django_db


def grams_of(customer) -> set[str]:
    with tenant_context(customer.tenant):
        return set(
            CustomerSearchGram.objects.filter(customer=customer).values_list("gram", flat=True)
        )


@pytest.mark.parametrize(
    ("term", "found"),
    [
        ("华", ["华东医疗设备有限公司"]),  # one character
        ("司", ["华东医疗设备有限公司"]),  # the last one
        ("医疗", ["华东医疗设备有限公司"]),
        ("华东医疗设备有限公司", ["华东医疗设备有限公司"]),  # more grams than MAX_GRAMS
        ("acme", ["ACME Industrial"]),  # Latin: any case
        ("华东设备", []),  # both grams exist, not together
    ],
)
def test_it_finds_a_name_by_any_part_of_it(world, en, term, found):
    make_customer(world.a, "华东医疗设备有限公司")
    make_customer(world.a, "ACME Industrial")
    make_customer(world.b, "华东医疗设备有限公司")  # another tenant's, never found
    assert names(en(world.a.manager).get(LIST, {"q": term})) == found


def test_the_triggers_keep_the_grams_of_the_name(world):
    customer = make_customer(world.a, "华东")
    assert grams_of(customer) == {"华东", "东"}
    with tenant_context(world.a.tenant):
        Customer.objects.filter(pk=customer.pk).update(name="Acme")
    assert grams_of(customer) == {"ac", "cm", "me", "e"}
    with tenant_context(world.a.tenant):
        Customer.objects.filter(pk=customer.pk).delete()
        assert not CustomerSearchGram.objects.exists()


def test_the_name_search_reads_the_gram_index_under_row_level_security(world):
    customer = make_customer(world.a, "华东医疗")
    with tenant_context(world.a.tenant), connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        assert cursor.fetchone()[0] == "crm_app"
        cursor.execute("SET LOCAL enable_seqscan = off")
        sql, params = search.text_candidates(filters.GRAMS, filters.KEY, world.a.tenant.pk, "医疗")
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        assert search.bounded_ids(sql, params, filters.KEY, 10) == [customer.pk]
    assert "customers_searchgram_pkey" in plan and "gram = '医疗'" in plan, plan


def test_a_common_name_term_is_read_in_the_lists_order(world, en, monkeypatch):
    monkeypatch.setattr("crm.search.SEARCH_CAP", 2)
    for i in range(4):
        make_customer(world.a, f"华东{i}号")
    client = en(world.a.manager)
    page = client.get(LIST, {"q": "华东"})
    assert page.context["count_capped"] and not page.context["count_estimated"]
    assert sorted(names(page)) == [f"华东{i}号" for i in range(4)]
    assert "more than 2 customers match" in page.text
    assert client.get(LIST, {"q": "华东", "count": "exact"}).context["count"] == 4
