"""What the demo's CRM health self-test must show (checked on the one seed of
tests/leads/test_demo.py): `assert_selftest_story(demo, acme)`.

The demo tenant passes some indicators and fails others, each failing one with its
owners; the training card of the rep in the observation zone (周婷) is the training
indicator's one record, not acknowledged. The second demo tenant, acme, has no records:
every indicator shows no data there."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.utils import timezone

from crm import metrics, selftest
from crm.tenancy import tenant_context


def assert_selftest_story(demo, acme) -> None:
    today = timezone.localdate(timezone=demo.tzinfo)
    with tenant_context(demo):
        outcomes = {o.indicator.key: o for o in selftest.run(demo, today)}
        assert len(outcomes) == 10
        statuses = {o.status for o in outcomes.values()}
        assert {selftest.PASSED, selftest.FAILED} <= statuses, statuses
        for outcome in outcomes.values():
            result = outcome.result
            for key, shown in (
                (result.numerator, result.numerator_value),
                (result.denominator, result.denominator_value),
                (result.failing, result.failing_value),
            ):
                metric = metrics.get_metric(key)
                table = metrics.drill_down(metric, tenant=demo, start=result.start, end=result.end)
                # (A sum of amounts is recounted in floats.)
                assert metrics.recount(metric, table) == pytest.approx(float(shown)), key
            if outcome.status == selftest.FAILED:
                assert result.failing_value and outcome.owners, outcome.indicator.key
        training = outcomes["training"]
        assert training.status == selftest.FAILED
        assert [o.membership.user.username for o in training.owners] == ["rep5"]
        passing = sum(1 for o in outcomes.values() if o.status == selftest.PASSED)
        with_data = sum(1 for o in outcomes.values() if o.has_data)
        expected = (Decimal(passing * 10) / with_data).quantize(Decimal("0.1"), ROUND_HALF_UP)
        assert selftest.score(list(outcomes.values())) == expected
    with tenant_context(acme):
        empty = selftest.run(acme, timezone.localdate(timezone=acme.tzinfo))
        assert {o.status for o in empty} == {selftest.NO_DATA}
        assert selftest.score(empty) is None
