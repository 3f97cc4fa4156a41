"""What the demo must show on the sales process report and the diagnoses (checked on the
one seed of tests/leads/test_demo.py, which runs `seed_demo` once for the whole story)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from crm import metrics, process
from crm.models import Membership, Role, WeeklyDiagnosis
from crm.tenancy import tenant_context


def assert_process_story(demo) -> None:
    with tenant_context(demo):
        today = timezone.localdate(timezone=demo.tzinfo)
        start, end = process.default_period(today)
        rates = process.process_rates()
        assert len(rates) == 4
        found = metrics.values_of(
            [metrics.get_metric(k) for r in rates for k in (r.numerator, r.denominator)],
            tenant=demo,
            start=start,
            end=end,
        )
        # Every rate of the default period has rows, and every numerator is not nothing.
        for rate in rates:
            assert found[rate.denominator] > 0, rate.key
            assert 0 < found[rate.numerator] <= found[rate.denominator], rate.key
        median = metrics.get_metric("leads.process_first_touch_median")
        assert metrics.value(median, tenant=demo, start=start, end=end) is not None
        # Last week's diagnoses: one per active rep.
        last_monday = today - timedelta(days=today.weekday() + 7)
        reps = Membership.objects.in_tenant(demo).active().filter(role=Role.REP).count()
        assert WeeklyDiagnosis.objects.filter(week=last_monday).count() == reps
