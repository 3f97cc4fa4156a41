"""/reports/metrics/ (crm.metric_catalogue): every registered metric and rate with its
definition and this month's figure linked to its rows, recomputed here from rows built by
hand; one query per family of metrics; what each role reads; the menu entry."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.db.models import Q
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from crm import metrics
from crm.metrics import REP, SUM, Dimension, Metric, Rate
from crm.models import Role
from crm.roles import EVERYONE
from tests.crm.test_metrics_kernel import days_in, lead, leads_in
from tests.factories import MembershipFactory
from tests.opportunities.test_forecast import opportunity
from tests.service_feedback.helpers import upsert

pytestmark = pytest.mark.django_db

URL = "/reports/metrics/"


def month(tenant):
    end = timezone.localdate(timezone=tenant.tzinfo)
    return end.replace(day=1), end


def seed(world):
    """This month in tenant a: 3 leads (2 the rep's, 1 suspect), an opportunity won for
    120,000 (the rep's) and one opened by the manager, 2 tickets; and b's rows."""
    a, b = world.a, world.b
    now = timezone.now()
    lead(a, now, province="江苏", owner=a.rep)
    lead(a, now, province="浙江", owner=a.rep, suspect=True)
    lead(a, now, province="", owner=a.manager)
    lead(b, now, province="江苏", owner=b.rep)
    lead(b, now, province="江苏", owner=b.rep)
    opportunity(a, a.rep, amount="120000", probability=100, status="won", won_at=now)
    opportunity(a, a.manager, amount="5000")
    opportunity(b, b.rep, amount="999", probability=100, status="won", won_at=now)
    upsert(a, "T-1", opened_at=now - timedelta(seconds=30))
    upsert(a, "T-2", opened_at=now - timedelta(seconds=20))
    upsert(b, "T-9", opened_at=now - timedelta(seconds=10))


class Page:
    """The catalogue as answered: its sections (the context) and its HTML."""

    def __init__(self, response):
        assert response.status_code == 200
        self.sections = response.context["sections"]
        self.html = response.content.decode()
        self.metrics = {e.metric.key: e for s in self.sections for e in s.metrics}
        self.rates = {e.rate.key: e for s in self.sections for e in s.rates}

    def link(self, testid: str) -> tuple[str, str] | None:
        """(href, text) of the link marked `testid`, as the browser reads them."""
        found = re.search(
            rf'<a href="([^"]*)" data-testid="{re.escape(testid)}"[^>]*>([^<]*)</a>', self.html
        )
        return (html.unescape(found[1]), html.unescape(found[2])) if found else None

    def figure(self, key: str) -> tuple[str, str] | None:
        return self.link(f"figure-{key}")

    def section_of(self, key: str) -> str:
        return next(s.title for s in self.sections if key in {e.metric.key for e in s.metrics})


def page(client) -> Page:
    return Page(client.get(URL))


def test_a_manager_reads_every_metric_with_this_months_figure_and_its_rows(world, en):
    seed(world)
    tenant = world.a.tenant
    start, end = month(tenant)
    shown = page(en(world.a.manager))
    listed = re.findall(r'data-metric="([^"]+)"', shown.html)
    assert sorted(listed) == [m.key for m in metrics.metrics()]
    expected = {
        "leads.delivered": ("3", 3),
        "leads.suspect": ("1", 1),
        "opportunities.created": ("2", 2),
        "opportunities.won": ("1", 1),
        "opportunities.won_amount": ("¥120,000", 120000),
        "service.tickets": ("2", 2),
    }
    for key, (text, value) in expected.items():
        href, shown_text = shown.figure(key)
        assert shown_text == text, key
        assert Decimal(shown.metrics[key].figure.value) == value, key
        assert href == metrics.drill_url(key, start, end)
        assert urlsplit(href).path == f"/reports/metrics/{key}/"
        assert parse_qs(urlsplit(href).query) == {
            "start": [start.isoformat()],
            "end": [end.isoformat()],
        }
    # Each figure's definition, how it is computed, its unit and breakdowns.
    won = shown.metrics["opportunities.won_amount"]
    assert str(won.metric.label) == "Amount signed" and str(won.metric.definition) in shown.html
    assert won.how == "sum of Amount (CNY)"  # its column's heading
    assert (won.unit, won.dimensions) == ("amount (CNY)", ["region", "rep"])
    assert shown.metrics["leads.delivered"].how == "count of the rows"
    assert "sum of Amount (CNY)" in shown.html and "count of the rows" in shown.html
    # Grouped by section, in the order met.
    titles = [s.title for s in shown.sections]
    apps_sections = [t for t in titles if t in ("Leads", "Opportunities", "Service")]
    assert apps_sections == ["Leads", "Opportunities", "Service"]
    assert shown.section_of("opportunities.won") == "Opportunities"


def test_a_median_says_of_what_and_prints_its_unit(world, en, monkeypatch):
    median = Metric(
        "zz.median_contacts",
        "Median contacts",
        "The median day.",
        days_in,
        aggregate="median",
        of="contacts",
        unit="minutes",
        section="Tests",
    )
    monkeypatch.setitem(metrics._registry, median.key, median)
    a = world.a
    shown = page(en(a.manager))
    entry = shown.metrics[median.key]
    assert (entry.how, entry.unit) == ("median of contacts made", "minutes")
    assert shown.figure(median.key)[1] == "—"  # no closed day this month
    from tests.crm.test_metrics_kernel import summary

    today = timezone.localdate(timezone=a.tenant.tzinfo)
    summary(a, a.rep, today, 3)
    summary(a, a.manager, today, 6)
    assert page(en(a.manager)).figure(median.key)[1] == "4.5 min"


def test_one_query_per_family_of_metrics(world, en, monkeypatch):
    seed(world)
    client = en(world.a.manager)
    client.get(URL)  # warm: the session, the translations' first loads

    def count():
        with CaptureQueriesContext(connection) as queries:
            assert client.get(URL).status_code == 200
        return len(queries)

    before = count()
    # Two more metrics of the leads' family: the same query computes them.
    family = metrics.get_metric("leads.delivered").rows
    for name in ("a", "b"):
        extra = Metric(
            f"zz.leads_{name}",
            name,
            name,
            family,
            where=Q(province="江苏"),
            dimensions=(Dimension(REP, "owner"),),
        )
        monkeypatch.setitem(metrics._registry, extra.key, extra)
    assert count() == before
    # A family of its own: one query more.
    own = Metric("zz.days", "d", "d", days_in, aggregate=SUM, of="contacts")
    monkeypatch.setitem(metrics._registry, own.key, own)
    assert count() == before + 1


def test_a_rep_reads_the_figures_of_their_own_rows(world, en, monkeypatch):
    seed(world)
    a = world.a
    start, end = month(a.tenant)
    unbroken = Metric("zz.no_rep", "No rep", "Not broken down by rep.", leads_in)
    monkeypatch.setitem(metrics._registry, unbroken.key, unbroken)
    shown = page(en(a.rep))
    assert 'data-testid="own-rows-only"' in shown.html
    assert shown.figure("leads.delivered")[1] == "2"  # not the manager's third
    assert shown.figure("opportunities.won_amount")[1] == "¥120,000"
    assert shown.figure("opportunities.created")[1] == "1"
    href = shown.figure("leads.delivered")[0]
    assert href == metrics.drill_url("leads.delivered", start, end, {REP: a.rep.pk})
    assert parse_qs(urlsplit(href).query)["rep"] == [str(a.rep.pk)]
    # Listed, but no figure: it cannot be narrowed to the rep's rows.
    assert unbroken.key in shown.metrics and shown.metrics[unbroken.key].figure is None
    assert shown.figure(unbroken.key) is None
    # The catalogue is the same list as the manager's.
    assert set(shown.metrics) == {m.key for m in metrics.metrics()}


def test_a_service_agent_reads_only_the_service_figures_and_never_an_amount(world, en, monkeypatch):
    seed(world)
    agent = MembershipFactory(tenant=world.a.tenant, role=Role.SERVICE)
    amount = Metric(
        "service.zz_refunds",
        "Refunds",
        "Amounts refunded.",
        leads_in,
        aggregate=SUM,
        of="score",
        unit="amount",
        roles=EVERYONE,
    )
    monkeypatch.setitem(metrics._registry, amount.key, amount)
    shown = page(en(agent))
    service = {m.key for m in metrics.metrics() if m.key.startswith("service.")}
    assert set(shown.metrics) == service - {amount.key}
    assert shown.figure("service.tickets")[1] == "2"
    assert "opportunities." not in shown.html and "¥" not in shown.html
    assert "leads." not in shown.html


def test_a_rate_shows_both_numbers_the_share_and_the_target(world, en, monkeypatch):
    seed(world)
    start, end = month(world.a.tenant)
    rate = Rate(
        "leads.zz_suspect_share",
        "Suspect share",
        "Suspect leads among the delivered.",
        numerator="leads.suspect",
        denominator="leads.delivered",
        target=0.15,
        higher_is_better=False,
    )
    monkeypatch.setitem(metrics._rates, rate.key, rate)
    shown = page(en(world.a.manager))
    entry = shown.rates[rate.key]
    numerator = shown.link(f"rate-{rate.key}-numerator")
    denominator = shown.link(f"rate-{rate.key}-denominator")
    assert numerator == (metrics.drill_url("leads.suspect", start, end), "1")
    assert denominator == (metrics.drill_url("leads.delivered", start, end), "3")
    assert entry.share == pytest.approx(1 / 3) and entry.meets is False  # 1 / 3 > 15 %
    share = re.search(rf'data-testid="share-{rate.key}">(.*?)</td>', shown.html, re.S)[1]
    assert "33.3 %" in share and "target missed" in share
    assert f'data-testid="target-{rate.key}">≤ 15 %</td>' in shown.html
    # In the section of its metrics.
    assert next(s.title for s in shown.sections if rate.key in {r.rate.key for r in s.rates}) == (
        "Leads"
    )


def test_a_rep_reads_a_rate_of_their_own_rows(world, en, monkeypatch):
    seed(world)
    rate = Rate("leads.zz_share", "Share", "Share.", "leads.suspect", "leads.delivered")
    monkeypatch.setitem(metrics._rates, rate.key, rate)
    entry = page(en(world.a.rep)).rates[rate.key]
    assert (entry.numerator.figure.value, entry.denominator.figure.value) == (1, 2)
    assert entry.share_text == "50.0 %" and entry.target_text == "" and entry.meets is None


def test_the_menu_offers_it_to_managers_admins_and_marketing(world, login):
    marketing = MembershipFactory(tenant=world.a.tenant, role=Role.MARKETING)
    agent = MembershipFactory(tenant=world.a.tenant, role=Role.SERVICE)
    for member, offered in (
        (world.a.manager, True),
        (world.a.admin, True),
        (marketing, True),
        (world.a.rep, False),
        (agent, False),
    ):
        # The navigation bar (the page's own links go to /reports/metrics/<key>/…); whoever
        # is not offered it may still open it, for their role's reading.
        response = login(member).get(URL)
        assert response.status_code == 200
        assert (f'href="{URL}"' in response.content.decode()) is offered, member.role
        home = login(member).get(reverse("home"), follow=True).content.decode()
        assert (f'href="{URL}"' in home) is offered, member.role


def test_the_other_tenants_rows_are_never_counted(world, en):
    seed(world)
    shown = page(en(world.b.manager))
    assert shown.figure("leads.delivered")[1] == "2"
    assert shown.figure("opportunities.won_amount")[1] == "¥999"
    assert shown.figure("service.tickets")[1] == "1"


def test_it_answers_only_get(world, login):
    assert login(world.a.manager).post(URL).status_code == 405
