"""The customers app's self-test indicators (customers/selftest.py): customer profiles
refreshed within 90 days, and next actions done by their due day. Each is passed and
failed by rows built here, recounted by hand, and shown as no data when the tenant has
none; tenant b's rows are never counted.

The day is TODAY (Monday 16 March 2026) of tenant a: the window ends on 15 March, so a
profile is fresh when refreshed from 16 December 2025 00:00 (90 days before 16 March
00:00) on."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from crm import selftest
from crm.audit import audit
from crm.models import AuditEvent
from crm.tenancy import tenant_context
from customers.models import Contact
from tests.crm.selftest_helpers import customer, interaction, local, outcome
from tests.crm.selftest_helpers import owners as owners_of

pytestmark = pytest.mark.django_db

LONG_AGO = (2025, 6, 1, 9)


# -- 3. customer profiles refreshed within 90 days --------------------------------------------


def contact(side, cust, at):
    with tenant_context(side.tenant):
        Contact.objects.create(tenant=side.tenant, customer=cust, name="王工", created_at=at)


def changed(side, cust, at):
    with tenant_context(side.tenant):
        event = audit(tenant=side.tenant, actor=None, action="customer.updated_from_lead", obj=cust)
        type(event).objects.filter(pk=event.pk).update(at=at)


def build_profiles(world, *, followed_up_lately: bool):
    """Fresh: created in January; followed up in February; given a contact exactly 90 days
    before the window's end; changed in March; and, with `followed_up_lately`, one more
    followed up in March. Stale: given a contact 90 days and a minute before, and a
    follow-up long ago. A customer created today and tenant b's are not counted."""
    a, t = world.a, world.a.tenant
    customer(a, "一月客户", created_at=local(t, 2026, 1, 5, 10))
    old = customer(a, "二月跟进", created_at=local(t, *LONG_AGO))
    interaction(a, by=a.rep, customer=old, at=local(t, 2026, 2, 1, 10))
    edge = customer(a, "边界联系人", created_at=local(t, *LONG_AGO))
    contact(a, edge, local(t, 2025, 12, 16, 0, 0))
    edited = customer(a, "三月修改", created_at=local(t, *LONG_AGO))
    changed(a, edited, local(t, 2026, 3, 1, 10))
    if followed_up_lately:
        late = customer(a, "三月跟进", created_at=local(t, *LONG_AGO))
        interaction(a, by=a.rep, customer=late, at=local(t, 2026, 3, 10, 10))
    stale = customer(a, "久未更新", owner=a.manager, created_at=local(t, *LONG_AGO))
    contact(a, stale, local(t, 2025, 12, 15, 23, 59))
    interaction(a, by=a.manager, customer=stale, at=local(t, 2025, 9, 1, 10))
    customer(a, "今天的客户", created_at=local(t, 2026, 3, 16, 8))
    b = world.b
    customer(b, "乙方久未更新", created_at=local(b.tenant, *LONG_AGO))


def test_freshness_passes_above_80_percent(world):
    build_profiles(world, followed_up_lately=True)
    found = outcome(world.a, "freshness")
    assert (found.result.numerator_value, found.result.denominator_value) == (5, 6)
    assert found.status == selftest.PASSED


def test_freshness_fails_at_80_percent_and_names_the_owners(world):
    build_profiles(world, followed_up_lately=False)
    found = outcome(world.a, "freshness")
    assert (found.result.numerator_value, found.result.denominator_value) == (4, 5)
    assert found.result.value == 0.8
    assert found.status == selftest.FAILED  # the target is above 80 %
    assert owners_of(found) == [(world.a.manager.user.username, 1)]


def test_freshness_without_customers_has_no_data(world):
    customer(world.b, "乙方客户")
    assert outcome(world.a, "freshness").status == selftest.NO_DATA


def test_profile_touched_at_follows_contacts_and_audit_events(world):
    """The triggers keep a customer's latest contact or change (customers migration 0008)
    whatever writes them: added, moved back in time, deleted; another tenant's audit event
    on the same object id touches nothing."""
    a, t = world.a, world.a.tenant
    cust = customer(a, "触达客户", created_at=local(t, *LONG_AGO))

    def touched():
        with tenant_context(t):
            cust.refresh_from_db()
            return cust.profile_touched_at

    assert touched() is None
    contact(a, cust, local(t, 2026, 2, 1, 10))
    assert touched() == local(t, 2026, 2, 1, 10)
    changed(a, cust, local(t, 2026, 3, 1, 10))
    assert touched() == local(t, 2026, 3, 1, 10)
    with tenant_context(t):
        events = AuditEvent.objects.filter(object_id=str(cust.public_id))
        events.update(at=local(t, 2026, 1, 1, 10))
        assert touched() == local(t, 2026, 2, 1, 10)
        events.delete()
        Contact.objects.filter(customer=cust).update(created_at=local(t, 2025, 12, 1, 10))
        assert touched() == local(t, 2025, 12, 1, 10)
        Contact.objects.filter(customer=cust).delete()
    assert touched() is None
    with tenant_context(world.b.tenant):
        event = audit(tenant=world.b.tenant, actor=None, action="customer.updated", obj=cust)
        assert event.object_id == str(cust.public_id)
    assert touched() is None


# -- 8. next actions done by their due day ------------------------------------------------------


def build_actions(world, *, missed: int):
    """20 next actions due on 5 March: done by then (one at 23:59 that day), except
    `missed` ones (one done at 00:00 the next day, the others never). Due outside the
    window, and tenant b's, are not counted."""
    a, t = world.a, world.a.tenant
    due = date(2026, 3, 5)
    cust = customer(a, "恒力液压")
    set_at = local(t, 2026, 3, 1, 10)
    for i in range(20):
        by = a.manager if i % 2 else a.rep
        if i < missed:
            done = local(t, 2026, 3, 6, 0, 0) if i == 0 else None
        elif i == missed:
            done = local(t, 2026, 3, 5, 23, 59)
        else:
            done = local(t, 2026, 3, 3, 15)
        interaction(a, by=by, customer=cust, at=set_at, due=due, done_at=done)
    for outside in (date(2026, 2, 13), date(2026, 3, 16)):
        interaction(a, by=a.rep, customer=cust, at=set_at - timedelta(days=20), due=outside)
    b = world.b
    interaction(b, by=b.rep, customer=customer(b, "乙方"), at=set_at, due=due)


def test_tasks_pass_at_85_percent_done_by_their_due_day(world):
    build_actions(world, missed=3)
    found = outcome(world.a, "tasks")
    assert (found.result.numerator_value, found.result.denominator_value) == (17, 20)
    assert found.status == selftest.PASSED


def test_tasks_fail_below_85_percent_and_name_the_owners(world):
    build_actions(world, missed=4)
    found = outcome(world.a, "tasks")
    assert (found.result.numerator_value, found.result.denominator_value) == (16, 20)
    assert found.status == selftest.FAILED
    assert sorted(owners_of(found)) == [
        (world.a.manager.user.username, 2),
        (world.a.rep.user.username, 2),
    ]


def test_tasks_without_actions_due_have_no_data(world):
    assert outcome(world.a, "tasks").status == selftest.NO_DATA
