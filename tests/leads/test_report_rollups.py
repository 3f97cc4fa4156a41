"""The lead-quality report's daily roll-ups (leads/reports/rollups.py): read from them, the page
shows exactly what a recount of the rows gives, also right after changes not rolled up
yet, across a change of time zone, with a change still open during a refresh; the
triggers mark what the report counts and nothing else; the jobs and the command."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crm.models import Role, Tenant
from crm.tenancy import tenant_context
from customers.models import Customer, Interaction
from leads.models import (
    Lead,
    QualityDay,
    QualityRepDay,
    ReportChange,
    ReportDay,
    SourceGrade,
    Verification,
)
from leads.reports import rollups
from leads.reports.quality import (
    day_ranges,
    fresh_days,
    lead_quality,
    pack_seconds,
    unpack_seconds,
)
from tests.factories import MembershipFactory
from tests.leads.factories import make_lead
from tests.leads.test_report import (
    END,
    RANGE,
    SHANGHAI,
    START,
    URL,
    Mix,
    assert_figures_match,
    build_mix,
    figures_of,
    local,
    recount,
)

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="the roll-ups and their triggers are PostgreSQL's",
    ),
]

DAYS = {START + timedelta(days=i) for i in range((END - START).days + 1)}


def refresh(tenant, **kwargs) -> int:
    with tenant_context(tenant):
        return rollups.refresh(tenant, **kwargs)


def fresh(tenant, start=START, end=END) -> set:
    tenant = Tenant.objects.get(pk=tenant.pk)  # its time zone as stored now
    with tenant_context(tenant):
        return fresh_days(tenant, start, end)


def marks(tenant) -> list:
    with tenant_context(tenant):
        return sorted(ReportChange.objects.values_list("hour", flat=True))


def page_matches_recount(client, mix, tz=SHANGHAI) -> None:
    response = client.get(URL, RANGE)
    assert response.status_code == 200
    assert_figures_match(figures_of(response), recount(mix, tz=tz))


# -- read from the roll-ups ---------------------------------------------------------------------


def test_after_a_refresh_every_day_is_read_from_the_roll_ups_and_matches_a_recount(world, en):
    mix = build_mix(world)
    client = en(world.a.manager)
    assert fresh(mix.tenant) == set()  # nothing rolled up yet: all counted live
    live_cells = figures_of(client.get(URL, RANGE))

    days = refresh(mix.tenant)
    assert days >= len(DAYS)  # the week and the days just outside it
    assert marks(mix.tenant) == []
    assert fresh(mix.tenant) == DAYS
    with tenant_context(mix.tenant):
        assert QualityDay.objects.filter(day__in=DAYS).exists()
        assert QualityRepDay.objects.filter(day__in=DAYS).exists()
        # The page's figures now come from the roll-ups alone: no lead is read.
        with CaptureQueriesContext(connection) as queries:
            lead_quality(START, END, tenant=mix.tenant)
    assert not [q for q in queries.captured_queries if '"leads_lead"' in q["sql"]]

    cells = figures_of(client.get(URL, RANGE))
    assert cells == live_cells
    assert_figures_match(cells, recount(mix))
    # The other tenant's roll-ups are its own.
    assert fresh(world.b.tenant) == set()


def test_changes_not_rolled_up_yet_are_counted_live_and_then_rolled_up(world, en):
    mix = build_mix(world)
    client = en(world.a.manager)
    refresh(mix.tenant)
    t = mix.tenant
    third, fifth = START + timedelta(days=2), START + timedelta(days=4)
    with tenant_context(t):
        in_range = Lead.objects.filter(day_ranges(DAYS, SHANGHAI)).order_by("pk")
        # Verified now, followed up by the owner within 72 h.
        waiting = in_range.filter(verification="", owner__isnull=False).first()
        waiting.verification, waiting.verified_at = Verification.VALID_VISIT, waiting.created_at
        waiting.save(update_fields=["verification", "verified_at"])
        Interaction.objects.create(
            tenant=t,
            lead=waiting,
            by=waiting.owner,
            at=waiting.created_at + timedelta(hours=1),
            channel="phone",
            next_action=mix.action,
            next_action_due=END + timedelta(days=30),
        )
        # Reassigned, re-graded, flagged by a queryset update, moved to another channel.
        valid = list(in_range.filter(verification__in=[Verification.VALID_VISIT]))
        valid[0].owner = mix.rep2 if valid[0].owner_id != mix.rep2.pk else mix.rep1
        valid[0].save(update_fields=["owner"])
        Lead.objects.filter(pk=valid[1].pk).update(source_grade=SourceGrade.A, is_suspect=True)
        Lead.objects.filter(pk=valid[2].pk).update(channel=mix.quiet)
        # Created on another day (both days change), one deleted, one follow-up deleted.
        Lead.objects.filter(pk=valid[3].pk).update(created_at=local(fifth, 13))
        in_range.exclude(pk__in=[v.pk for v in valid[:4]] + [waiting.pk]).filter(
            owner__isnull=True
        ).first().delete()
        Interaction.objects.filter(lead__in=in_range).order_by("pk").first().delete()
        # New leads in bulk, as an import writes them.
        Lead.objects.bulk_create(
            [
                Lead(
                    tenant=t,
                    channel=mix.web,
                    source_grade=SourceGrade.B,
                    phone=f"+861381234000{i}",
                    created_at=local(third, 20),
                    company=f"导入{i}",
                )
                for i in range(3)
            ]
        )
    assert marks(t), "every change above writes a mark"
    assert fresh(t) < DAYS  # the changed days are counted live…
    page_matches_recount(client, mix)  # …so the page is exact before any refresh

    refresh(t)
    assert marks(t) == [] and fresh(t) == DAYS
    page_matches_recount(client, mix)


def test_changes_the_report_does_not_count_write_no_mark(world):
    mix = Mix(world)
    lead = mix.lead(local(START, 9), owner=mix.rep1)
    refresh(mix.tenant)
    with tenant_context(mix.tenant):
        lead.company, lead.contact_name, lead.last_touch_at = "改名", "李工", local(START, 10)
        lead.touch_count = 2
        lead.save(update_fields=["company", "contact_name", "last_touch_at", "touch_count"])
        # A follow-up on a customer only, and one whose next action is done.
        customer = Customer.objects.create(tenant=mix.tenant, name="客户甲")
        follow_up = Interaction.objects.create(
            tenant=mix.tenant,
            customer=customer,
            by=mix.rep1,
            at=local(START, 11),
            channel="phone",
            next_action=mix.action,
            next_action_due=END,
        )
        follow_up.next_done_at = local(START, 12)
        follow_up.save(update_fields=["next_done_at"])
    assert marks(mix.tenant) == []
    assert fresh(mix.tenant) == {START}


def test_each_counted_change_marks_the_hour_of_the_leads_creation(world):
    mix = Mix(world)
    lead = mix.lead(local(START, 9, 40), owner=mix.rep1)
    refresh(mix.tenant)
    hour = local(START, 9).astimezone(ZoneInfo("UTC"))
    changes = {
        "verification": {"verification": Verification.INVALID_CONTACT},
        "verified_at": {"verified_at": local(START, 10)},
        "invalid_reason": {"invalid_reason": mix.reasons[0]},
        "owner": {"owner": mix.rep2},
        "assigned_at": {"assigned_at": local(START, 10)},
        "first_touch_at": {"first_touch_at": local(START, 11)},
        "is_suspect": {"is_suspect": True},
        "source_grade": {"source_grade": SourceGrade.C},
        "channel": {"channel": mix.douyin},
        "revisit_of": {"revisit_of": mix.lead(local(START, 8))},
    }
    for name, fields in changes.items():
        refresh(mix.tenant)
        with tenant_context(mix.tenant):
            Lead.objects.filter(pk=lead.pk).update(**fields)
        assert marks(mix.tenant) == [hour], name


def test_a_half_hour_zone_reads_an_hour_on_both_days_it_overlaps(world):
    kolkata = ZoneInfo("Asia/Kolkata")
    hour = local(START, 2, 0).astimezone(ZoneInfo("UTC"))  # 18:00 UTC, 23:30 in Kolkata
    assert rollups.hour_days(hour, kolkata) == {START - timedelta(days=1), START}
    assert rollups.hour_days(hour, SHANGHAI) == {START}


def test_a_new_time_zone_is_counted_live_until_the_roll_ups_are_rebuilt_in_it(world, en):
    mix = build_mix(world)
    client = en(world.a.manager)
    refresh(mix.tenant)
    kolkata = ZoneInfo("Asia/Kolkata")
    Tenant.objects.filter(pk=mix.tenant.pk).update(timezone="Asia/Kolkata")
    mix.tenant.refresh_from_db()
    assert fresh(mix.tenant) == set()
    page_matches_recount(client, mix, tz=kolkata)

    assert refresh(mix.tenant) >= len(DAYS)  # every day again, in the new zone
    assert fresh(mix.tenant) == DAYS
    with tenant_context(mix.tenant):
        assert set(ReportDay.objects.values_list("time_zone", flat=True)) == {"Asia/Kolkata"}
    page_matches_recount(client, mix, tz=kolkata)


def test_cover_rolls_up_days_with_leads_but_no_roll_up(world, en):
    mix = build_mix(world)
    with tenant_context(mix.tenant):  # as leads from before the roll-ups existed
        ReportChange.objects.all().delete()
        ReportDay.objects.all().delete()
    assert fresh(mix.tenant) == set()
    with tenant_context(mix.tenant):
        assert rollups.cover(mix.tenant) >= len(DAYS)
        assert rollups.cover(mix.tenant) == 0  # nothing left to cover
        ReportDay.objects.filter(day=START).delete()  # one day lost
        assert rollups.cover(mix.tenant) == 1
    assert fresh(mix.tenant) == DAYS
    page_matches_recount(en(world.a.manager), mix)


def test_a_rebuild_recomputes_every_day(world, en):
    mix = build_mix(world)
    refresh(mix.tenant)
    with tenant_context(mix.tenant):
        QualityDay.objects.update(delivered=999)  # corrupted by hand
    assert refresh(mix.tenant) == 0
    assert refresh(mix.tenant, rebuild=True) >= len(DAYS)
    page_matches_recount(en(world.a.manager), mix)


def test_times_to_first_touch_pack_sorted_and_exact():
    packed = pack_seconds([90.5, 3.25, 7200.0])
    assert list(unpack_seconds(packed)) == [3.25, 90.5, 7200.0]
    assert list(unpack_seconds(pack_seconds([]))) == []


# -- a change still open while a refresh runs -------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_change_still_open_during_a_refresh_stays_marked_and_is_rolled_up_next(world):
    tenant, rep = world.a.tenant, world.a.rep
    lead = make_lead(tenant, created_at=local(START, 9), owner=rep)
    refresh(tenant)
    assert fresh(tenant) == {START}
    written, release = threading.Event(), threading.Event()
    errors = []

    def writer():
        try:
            with tenant_context(tenant):
                Lead.objects.filter(pk=lead.pk).update(
                    verification=Verification.VALID_VISIT, verified_at=local(START, 10)
                )
                written.set()
                assert release.wait(timeout=20)
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=writer)
    thread.start()
    assert written.wait(timeout=20)
    # The writer's mark is not committed: the refresh neither sees nor waits for it.
    assert refresh(tenant) == 0
    release.set()
    thread.join(timeout=30)
    assert not errors, errors

    assert fresh(tenant) == set()  # the committed change is marked: counted live
    with tenant_context(tenant):
        live = lead_quality(START, START, tenant=tenant)
    assert live.total.cell("valid_24h").value == 1
    assert refresh(tenant) == 1
    assert fresh(tenant) == {START}
    with tenant_context(tenant):
        rolled = lead_quality(START, START, tenant=tenant)
    assert rolled.total.cell("valid_24h").value == 1


# -- cost ---------------------------------------------------------------------------------------


def test_the_rolled_up_report_keeps_its_query_count_as_leads_and_days_grow(world, en):
    mix = build_mix(world)
    client = en(world.a.manager)
    refresh(mix.tenant)
    client.get(URL, RANGE)
    with CaptureQueriesContext(connection) as few:
        client.get(URL, RANGE)
    extra = MembershipFactory(tenant=mix.tenant, role=Role.REP, user__first_name="王五")
    for i in range(20):
        lead = mix.lead(local(START + timedelta(days=i % 7), 17), owner=extra)
        mix.assign_and_touch(lead, timedelta(minutes=5), timedelta(minutes=i + 1))
        mix.verify(lead, timedelta(hours=2), Verification.VALID_VISIT)
    refresh(mix.tenant)
    with CaptureQueriesContext(connection) as many:
        client.get(URL, RANGE)
    assert len(many) == len(few), [q["sql"] for q in many.captured_queries]
    # Session, user, seats, the tenant transaction (savepoint, setting, release) and the
    # report's own: fresh days, the two roll-up tables, channels, reason names, reps' names.
    assert len(many) <= 13, [q["sql"][:90] for q in many.captured_queries]


# -- the jobs and the command ------------------------------------------------------------------


def test_the_beat_runs_a_refresh_every_five_minutes_and_a_cover_nightly():
    schedule = settings.CRM_PERIODIC_TASKS
    assert schedule["leads.report_rollup"]["task"] == "leads.report_rollup_all"
    assert schedule["leads.report_rollup"]["schedule"] == 300.0
    assert schedule["leads.report_cover"]["kwargs"] == {"cover": True}


def test_the_task_refreshes_its_tenant(world):
    from leads.tasks import report_rollup

    mix = Mix(world)
    mix.lead(local(START, 9))
    assert report_rollup(mix.tenant.pk) == 1
    assert fresh(mix.tenant) == {START}
    assert report_rollup(mix.tenant.pk, True) == 0


def test_the_command_prints_the_days_per_tenant(world):
    mix = Mix(world)
    mix.lead(local(START, 9))
    out = StringIO()
    call_command("lead_report_rollup", "--tenant", mix.tenant.slug, stdout=out)
    result = json.loads(out.getvalue())
    assert result[mix.tenant.slug]["days"] == 1
    out = StringIO()
    call_command("lead_report_rollup", "--tenant", mix.tenant.slug, "--rebuild", stdout=out)
    assert json.loads(out.getvalue())[mix.tenant.slug]["days"] == 1
