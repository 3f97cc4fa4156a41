"""The navbar: the apps' items in order, the reports in one menu where the first of them
would stand, for each role only what it may open."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from crm import navigation
from crm.navigation import REPORTS, NavGroup, NavItem

pytestmark = pytest.mark.django_db


def _menu(html: str) -> list[str]:
    """The links in the reports menu."""
    found = re.search(r'data-testid="nav-group-reports".*?</ul>', html, re.S)
    assert found, "no reports menu"
    return re.findall(r'class="dropdown-item[^"]*" href="([^"]+)"', found.group(0))


def test_the_manager_finds_the_reports_in_one_menu(world, login):
    html = login(world.a.manager).get(reverse("home"), follow=True).text
    menu = _menu(html)
    for name in (
        "lead_reports:lead_quality",
        "levels",
        "process_report",
        "metrics",
        "board:summaries",
    ):
        assert reverse(name) in menu, name
    # Not twice: the menu's links are not also on the bar.
    bar = re.findall(r'<a class="nav-link[^"]*" href="([^"]+)"', html)
    assert not set(bar) & set(menu)


def test_the_rep_menu_holds_only_what_a_rep_may_open(world, login):
    html = login(world.a.rep).get(reverse("board:board")).text
    menu = _menu(html)
    assert reverse("levels") in menu
    assert reverse("lead_reports:lead_quality") not in menu
    assert reverse("board:summaries") not in menu


def test_a_menu_of_one_item_is_that_item(rf, world, monkeypatch):
    """Grouping by the registry: items in order, a group where its first item stands, a
    group with one item for this role shown as the item itself."""
    monkeypatch.setattr(navigation, "_registry", {})
    monkeypatch.setitem(navigation.GROUPS, "solo", ("Solo", "x"))
    for item in (
        NavItem("a", "A", "home", "house", order=1),
        NavItem("r1", "R1", "metrics", "x", order=2, group=REPORTS),
        NavItem("b", "B", "home", "house", order=3),
        NavItem("r2", "R2", "levels", "x", order=4, group=REPORTS),
        NavItem("s", "S", "self_test", "x", order=5, group="solo"),
    ):
        navigation.register(item)
    request = rf.get(reverse("levels"))
    request.user, request.membership = world.a.manager.user, world.a.manager
    entries = navigation.navbar_for(request)
    assert [e.key for e in entries] == ["a", REPORTS, "b", "s"]
    group = entries[1]
    assert isinstance(group, NavGroup) and [i.key for i in group.items] == ["r1", "r2"]
    assert group.active  # the request is on r2's page
    assert isinstance(entries[3], NavItem)
