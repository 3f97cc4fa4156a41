"""Role hiding (issue 15, item 8): a service agent opens every page they can reach — from
the menu and the home page on, following the links of each page — and the ticket, customer
and opportunity pages named here, and never sees an opportunity's amount, cost or margin;
the CSVs they can download carry no amount."""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest
from django.urls import reverse

from crm.models import Role
from tests.customers.test_list import follow_up
from tests.factories import MembershipFactory
from tests.opportunities.helpers import make_opportunity
from tests.service_feedback.helpers import customer_with_contact, upsert

pytestmark = pytest.mark.django_db

# The amounts the opportunities carry, as any page or file would write them.
AMOUNT_TEXTS = ("480,000", "480000", "1,234,567", "1234567")
MONEY = re.compile(r"[¥￥]\s*\d")
WORDS = re.compile(r"\b(amounts?|costs?|margins?|weighted)\b", re.IGNORECASE)
# Words that name an amount without showing one: a stage's required action ("Amount
# filled", done or not) on the opportunity page.
ALLOWED = re.compile(r"\bAmount filled\b")
# Pages a crawl must not follow: writes behind GET links, log-out, the admin, files.
SKIP = ("/accounts/logout/", "/admin/", "/i18n/", "/static/", "/media/", "/hooks/", "/f/")
MAX_PAGES = 120


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[str] = []
        self.text: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1
        href = dict(attrs).get("href") if tag == "a" else None
        if href:
            self.links.append(href)

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.text.append(data)


def parse(body: str) -> tuple[list[str], str]:
    parser = _Links()
    parser.feed(body)
    return parser.links, " ".join(parser.text)


def leaks(text: str) -> list[str]:
    found = [m.group(0) for m in MONEY.finditer(text)]
    found += [a for a in AMOUNT_TEXTS if a in text]
    found += [m.group(0) for m in WORDS.finditer(ALLOWED.sub("", text))]
    return found


def csv_leaks(content: str) -> tuple[list[str], list[str]]:
    """(amounts in the rows, names of amount-like columns) of a CSV file."""
    rows = list(csv.reader(io.StringIO(content.lstrip("\ufeff"))))
    if not rows:
        return [], []
    columns = [h for h in rows[0] if WORDS.search(h)]
    values = [a for row in rows[1:] for a in AMOUNT_TEXTS if any(a in cell for cell in row)]
    return values, columns


@pytest.fixture
def agent(world):
    return MembershipFactory(tenant=world.a.tenant, role=Role.SERVICE)


@pytest.fixture
def sales_world(world):
    """A customer in contact with sales, two opportunities with amounts, tickets matched
    and not."""
    from django.utils import timezone

    customer = customer_with_contact(world.a, "恒力液压", phone="13800138000", code="C-1")
    follow_up(world.a, customer, timezone.now())
    big = make_opportunity(world.a, customer=customer, name="二期扩容", amount=Decimal("480000"))
    odd = make_opportunity(world.a, customer=customer, name="备件包", amount=Decimal("1234567.89"))
    matched, _, _ = upsert(world.a, "T-1", subject="液压泵漏油", customer_code="C-1", text="想增购")
    waiting, _, _ = upsert(world.a, "T-2", subject="陌生来电", phone="13911112222")
    return {"customer": customer, "opportunities": [big, odd], "tickets": [matched, waiting]}


def named_pages(data) -> list[str]:
    customer, (big, odd), (matched, waiting) = (
        data["customer"],
        data["opportunities"],
        data["tickets"],
    )
    return [
        "/",
        reverse("service_feedback:tickets"),
        reverse("service_feedback:tickets") + "?_export=csv",
        reverse("service_feedback:unmatched"),
        reverse("service_feedback:ticket", args=[matched.public_id]),
        reverse("service_feedback:ticket", args=[waiting.public_id]),
        reverse("customers:list"),
        reverse("customers:list") + "?_export=csv",
        reverse("customers:detail", args=[customer.public_id]),
        reverse("opportunities:kanban"),
        reverse("opportunities:list"),
        reverse("opportunities:detail", args=[big.public_id]),
        reverse("opportunities:detail", args=[odd.public_id]),
        reverse("board:board"),
        reverse("opportunities:forecast"),
    ]


def crawl(client, start: list[str]) -> dict[str, object]:
    """Every page reachable from `start` by following links (GET, same site)."""
    seen: dict[str, object] = {}
    queue = list(start)
    while queue and len(seen) < MAX_PAGES:
        url = queue.pop(0)
        if url in seen:
            continue
        response = client.get(url)
        seen[url] = response
        if response.status_code != 200 or "html" not in response.get("Content-Type", ""):
            continue
        links, _ = parse(response.content.decode())
        for href in links:
            target = urljoin(url, href)
            parts = urlsplit(target)
            if parts.netloc and parts.netloc != "testserver":
                continue
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            if not parts.path.startswith("/") or parts.path.startswith(SKIP):
                continue
            if "sort=" in parts.query or "page=" in parts.query:
                continue  # the same rows in another order or page
            if path not in seen and path not in queue:
                queue.append(path)
    return seen


def url_path(url: str) -> str:
    return urlsplit(url).path


def body_of(response) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode("utf-8")
    return response.content.decode()


# A CSV whose amount column stays, empty, for them (reported, not fixed here): the
# opportunity table's (opportunities/exports.py).
KNOWN_COLUMNS = {reverse("opportunities:list"): ["amount"]}


def test_a_service_agent_never_sees_amounts_costs_or_margins(world, en, agent, sales_world):
    client = en(agent)
    pages = crawl(client, named_pages(sales_world))
    opened = [u for u, r in pages.items() if r.status_code == 200]
    # The walk reached the pages that matter.
    for must in (
        reverse("service_feedback:tickets"),
        reverse("customers:detail", args=[sales_world["customer"].public_id]),
        reverse("opportunities:detail", args=[sales_world["opportunities"][0].public_id]),
        reverse("opportunities:kanban"),
    ):
        assert must in opened, must
    # Sales' board and the forecast (all amounts) are closed to them.
    assert pages[reverse("board:board")].status_code in (403, 404)
    assert pages[reverse("opportunities:forecast")].status_code in (403, 404)
    found = {}
    for url in opened:
        response = pages[url]
        kind = response.get("Content-Type", "")
        if "csv" in kind:
            values, columns = csv_leaks(body_of(response))
            problems = values + [
                c for c in columns if c not in KNOWN_COLUMNS.get(url_path(url), [])
            ]
        elif "html" in kind:
            problems = leaks(parse(body_of(response))[1])
        else:
            continue
        if problems:
            found[url] = problems
    assert not found, found
    assert len(opened) >= 10, opened


def test_the_opportunity_csv_they_download_has_no_amount_column(world, en, agent, sales_world):
    response = en(agent).get(reverse("opportunities:list"), {"_export": "csv"})
    content = body_of(response)
    header = next(csv.reader(io.StringIO(content.lstrip("\ufeff"))))
    assert all(a not in content for a in AMOUNT_TEXTS)
    assert "amount" not in header


def test_the_same_walk_shows_amounts_to_a_manager(world, en, sales_world):
    """The check finds amounts where they are: the manager's opportunity page shows them."""
    big = sales_world["opportunities"][0]
    body = en(world.a.manager).get(reverse("opportunities:detail", args=[big.public_id]))
    assert leaks(parse(body.content.decode())[1])
