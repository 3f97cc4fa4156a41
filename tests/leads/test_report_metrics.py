"""The leads metrics in the kernel's registry (leads/reports/metrics.py, crm.metrics): for a
seeded tenant, every registered metric's figure equals the count (or sum) of its rows
recomputed in Python, and the lead figures equal a recount of the leads that shares no
code with them, and the lead-quality report's totals for the same range."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from crm import metrics
from crm.metrics import COUNT, SUM
from crm.tenancy import tenant_context
from leads.models import DailySummary
from leads.reports.quality import lead_quality
from tests.leads.test_report import END, START, build_mix, recount

pytestmark = pytest.mark.django_db

LEAD_FIGURES = ("delivered", "verified_24h", "valid_24h", "invalid", "duplicates", "suspect")
# The figures the seed below gives something to count (the activity index's are counted
# by hand in tests/leads/test_activity_board.py).
SEEDED = {*(f"leads.{name}" for name in LEAD_FIGURES), "leads.contacts_made"}


def close_days(mix) -> int:
    """Day summaries in the range, and around it and in the other tenant (not counted).
    Returns the contacts made in the range, added up here."""
    rows = [
        (mix.rep1, START, 7),
        (mix.rep2, START, 3),
        (mix.rep1, START + timedelta(days=3), 11),
        (mix.rep2, END, 5),
        (mix.rep1, START - timedelta(days=1), 100),  # before
        (mix.rep2, END + timedelta(days=1), 1000),  # after
    ]
    with tenant_context(mix.tenant):
        for member, day, contacts in rows:
            DailySummary.objects.create(
                tenant=mix.tenant, membership=member, day=day, contacts=contacts
            )
    other = mix.world.b
    with tenant_context(other.tenant):
        DailySummary.objects.create(
            tenant=other.tenant, membership=other.rep, day=START, contacts=10000
        )
    return sum(contacts for _member, day, contacts in rows if START <= day <= END)


def plan_steps(mix) -> None:
    """Next steps due in the range (the process figures' action completion): one done on
    its day, one done a day late."""
    from customers.models import Interaction
    from tests.leads.report_helpers import local

    with tenant_context(mix.tenant):
        for due, done in ((START, local(START, 18)), (END, local(END + timedelta(days=1), 9))):
            Interaction.objects.create(
                tenant=mix.tenant,
                by=mix.rep1,
                at=local(START - timedelta(days=1), 9),
                channel="phone",
                next_action=mix.action,
                next_action_due=due,
                next_done_at=done,
            )


def figure(key, mix, start=START, end=END):
    with tenant_context(mix.tenant):
        return metrics.value(metrics.get_metric(key), tenant=mix.tenant, start=start, end=end)


def test_every_registered_metric_is_the_count_or_sum_of_its_rows(world):
    mix = build_mix(world)
    close_days(mix)
    plan_steps(mix)
    registered = metrics.metrics()
    assert registered
    for metric in registered:
        with tenant_context(mix.tenant):
            shown = metrics.value(metric, tenant=mix.tenant, start=START, end=END)
            rows = list(metrics.rows_of(metric, tenant=mix.tenant, start=START, end=END))
            table = metrics.drill_down(metric, tenant=mix.tenant, start=START, end=END)
        assert all(row.tenant_id == mix.tenant.pk for row in rows), metric.key
        assert len(table) == len(rows), metric.key
        if metric.aggregate == COUNT:
            assert shown == len(rows), metric.key
        elif metric.aggregate == SUM:
            assert shown == sum(getattr(row, metric.of) or 0 for row in rows), metric.key
            assert shown == metrics.recount(metric, table), metric.key
        else:
            assert shown == metrics.recount(metric, table), metric.key
        if metric.key in SEEDED:
            assert shown, f"{metric.key}: the seed gives every lead figure something to count"


def test_the_lead_figures_match_a_recount_and_the_report(world):
    mix = build_mix(world)
    expected = recount(mix)["total"]
    with tenant_context(mix.tenant):
        report = lead_quality(START, END, tenant=mix.tenant)
    for name in LEAD_FIGURES:
        assert figure(f"leads.{name}", mix) == expected[name], name
        assert report.total.cell(name).value == expected[name], name


def test_the_contacts_made_add_up_the_closed_days_of_the_range(world):
    mix = build_mix(world)
    contacts = close_days(mix)
    assert figure("leads.contacts_made", mix) == contacts
    assert (
        figure("leads.contacts_made", mix, START - timedelta(days=30), START - timedelta(days=2))
        == 0
    )


def test_a_range_without_leads_counts_zero(world):
    mix = build_mix(world)
    for name in LEAD_FIGURES:
        assert figure(f"leads.{name}", mix, date(2025, 1, 1), date(2025, 1, 31)) == 0
