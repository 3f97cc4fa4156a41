"""Shared by the self-test's tests (crm.selftest and each app's selftest module): the day
they run on, its window, and the checks every indicator's test makes.

TODAY is Monday 16 March 2026 in tenant a (Asia/Shanghai): the indicators that count the
last 30 days count 14 February (a Saturday) to 15 March (a Sunday), 20 working days."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from django.utils import timezone

from crm import metrics, selftest
from crm.tenancy import tenant_context
from customers.models import Customer, Interaction, Preset, PresetKind

TODAY = date(2026, 3, 16)
START, END = selftest.window(TODAY)
assert (date(2026, 2, 14), date(2026, 3, 15)) == (START, END)


def local(tenant, *args) -> datetime:
    """An aware datetime in the tenant's time zone: local(t, 2026, 3, 1, 9, 30)."""
    return timezone.make_aware(datetime(*args), tenant.tzinfo)


def outcome(side, key: str, today: date = TODAY) -> selftest.Outcome:
    """The indicator `key` evaluated for `side`'s tenant, and each of its figures proven to
    be its rows (the numerator's, the denominator's and the failing ones)."""
    indicator = selftest.get_indicator(key)
    assert indicator is not None, key
    with tenant_context(side.tenant):
        found = selftest.evaluate(indicator, side.tenant, today)
        result = found.result
        shown = {
            result.numerator: result.numerator_value,
            result.denominator: result.denominator_value,
            result.failing: result.failing_value,
        }
        for metric_key, value in shown.items():
            metric = metrics.get_metric(metric_key)
            assert metric is not None and metric.group == "selftest", metric_key
            rows = metrics.rows_of(metric, tenant=side.tenant, start=result.start, end=result.end)
            assert all(row.tenant_id == side.tenant.pk for row in rows), metric_key
            table = metrics.drill_down(
                metric, tenant=side.tenant, start=result.start, end=result.end
            )
            # (A sum of amounts is recounted in floats.)
            assert metrics.recount(metric, table) == pytest.approx(float(value)), metric_key
    return found


def owners(found: selftest.Outcome) -> list[tuple[str, int]]:
    """The failing rows' owners as (username or "", count)."""
    return [
        (owner.membership.user.username if owner.membership else "", owner.count)
        for owner in found.owners
    ]


def customer(side, name: str, *, owner=None, created_at=None, **fields) -> Customer:
    with tenant_context(side.tenant):
        return Customer.objects.create(
            tenant=side.tenant,
            name=name,
            owner=owner or side.rep,
            created_at=created_at or local(side.tenant, 2026, 1, 5, 10),
            **fields,
        )


def action_preset(side) -> Preset:
    with tenant_context(side.tenant):
        return Preset.objects.get_or_create(
            tenant=side.tenant, kind=PresetKind.ACTION, name="电话回访"
        )[0]


def interaction(side, *, by, at, customer=None, lead=None, due=None, done_at=None, **fields):
    """A follow-up written as it is stored (its next action due `due`, done `done_at`)."""
    with tenant_context(side.tenant):
        return Interaction.objects.create(
            tenant=side.tenant,
            customer=customer,
            lead=lead,
            by=by,
            at=at,
            channel="phone",
            next_action=action_preset(side),
            next_action_due=due or timezone.localdate(at, timezone=side.tenant.tzinfo),
            next_done_at=done_at,
            **fields,
        )
