"""The colleague's practice of the weekly diagnosis (leads/reports/practice.py): the rep
with the best conversion on a comparable lead mix (channel × source grade, weighted by the
diagnosed rep's mix), and their follow-up pattern beside the rep's, on a hand-built mix.

All leads are assigned on 2 March 2026 (tenant a), inside the 90 days that end on the
diagnosis's Friday, 13 March:

| rep | 官网表单 · A      | 抖音 · C          | raw valid share |
| --- | ----------------- | ----------------- | --------------- |
| R   | 8 (2 valid: 25 %) | 2 (0 valid)       | 20 %            |
| X   | –                 | 20 (15 valid)     | 75 %            |
| Y   | 12 (6 valid: 50 %)| –                 | 50 %            |
| Z   | 10 (3 valid: 30 %)| 5 (1 valid: 20 %) | 26.7 %          |

For R: X covers only 20 % of R's mix (below 60 %); Y covers 80 % and converts 50 % there
against R's 25 %; Z covers all of it at 0.8 × 30 % + 0.2 × 20 % = 28 % against R's 20 %.
So Y, although X converts more of their own leads.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from crm import process
from crm.models import Role
from crm.tenancy import tenant_context
from customers.models import Interaction, Preset, PresetKind
from leads.models import ChannelType, LeadEvent, LeadEventKind, SourceGrade, Verification
from leads.reports import practice
from tests.factories import MembershipFactory
from tests.leads.factories import make_assigned_lead, make_channel

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
ASSIGNED = datetime(2026, 3, 2, 9, 0, tzinfo=SHANGHAI)
FRIDAY = date(2026, 3, 13)


class Mix:
    def __init__(self, world):
        t = self.tenant = world.a.tenant
        self.r = world.a.rep
        self.x, self.y, self.z = (
            MembershipFactory(tenant=t, role=Role.REP, user__username=f"alpha-{n}") for n in "xyz"
        )
        self.web = make_channel(t, name="官网表单")
        self.douyin = make_channel(t, name="抖音线索", type=ChannelType.DOUYIN)
        with tenant_context(t):
            self.action = Preset.objects.create(tenant=t, kind=PresetKind.ACTION, name="发送资料")
        self.leads: dict = {}

    def leads_of(self, owner, channel, grade, n, valid, touch_minutes=None):
        made = []
        for i in range(n):
            minutes = touch_minutes[i] if touch_minutes else None
            made.append(
                make_assigned_lead(
                    self.tenant,
                    owner,
                    ASSIGNED,
                    channel=channel,
                    source_grade=grade,
                    verification=Verification.VALID_MORE_INFO if i < valid else "",
                    first_touch_at=ASSIGNED + timedelta(minutes=minutes) if minutes else None,
                )
            )
        self.leads.setdefault(owner.pk, []).extend(made)
        return made

    def follow_up(self, lead, by, after: timedelta):
        with tenant_context(self.tenant):
            Interaction.objects.create(
                tenant=self.tenant,
                lead=lead,
                by=by,
                at=lead.assigned_at + after,
                channel="phone",
                next_action=self.action,
                next_action_due=date(2026, 4, 30),
            )

    def touch(self, lead, by, channel):
        with tenant_context(self.tenant):
            LeadEvent.objects.create(
                tenant=self.tenant,
                lead=lead,
                kind=LeadEventKind.TOUCH,
                at=lead.assigned_at + timedelta(hours=1),
                actor=by.user,
                data={"channel": channel, "first": False},
            )


def build(world) -> Mix:
    mix = Mix(world)
    a, c = SourceGrade.A, SourceGrade.C
    r = mix.leads_of(mix.r, mix.web, a, 8, 2, touch_minutes=[60] * 8)
    r += mix.leads_of(mix.r, mix.douyin, c, 2, 0, touch_minutes=[60, 60])
    mix.leads_of(mix.x, mix.douyin, c, 20, 15)
    y = mix.leads_of(mix.y, mix.web, a, 12, 6, touch_minutes=[20] * 6 + [40] * 6)
    mix.leads_of(mix.z, mix.web, a, 10, 3)
    mix.leads_of(mix.z, mix.douyin, c, 5, 1)
    # Y: 18 follow-ups in their leads' first 7 days (1.5 a lead), one on day 8 (not
    # counted), and one by R on Y's lead (not Y's); touches 6 phone, 3 WeChat, 3 visits.
    for i in range(18):
        mix.follow_up(y[i % 12], mix.y, timedelta(days=i % 7, hours=1))
    mix.follow_up(y[0], mix.y, timedelta(days=7, minutes=1))
    mix.follow_up(y[1], mix.r, timedelta(hours=2))
    for lead, channel in zip(y, ["phone"] * 6 + ["wechat"] * 3 + ["visit"] * 3, strict=True):
        mix.touch(lead, mix.y, channel)
    mix.touch(y[0], mix.r, "email")  # someone else's touch on Y's lead
    # R: 5 follow-ups in the first 7 days (0.5 a lead), every touch by phone.
    for lead in r[:5]:
        mix.follow_up(lead, mix.r, timedelta(days=2))
    for lead in r:
        mix.touch(lead, mix.r, "phone")
    return mix


def test_the_colleague_is_the_best_on_the_reps_mix_not_on_their_own(world):
    mix = build(world)
    ids = [mix.r.pk, mix.x.pk, mix.y.pk, mix.z.pk]
    with tenant_context(mix.tenant):
        found = practice.find(mix.tenant, FRIDAY - timedelta(days=6), FRIDAY, ids)
    # Y for R and for Z; nobody converts better than Y on Y's mix, nor than X on X's
    # (Z's 5 抖音 leads are too few, R's too).
    assert {rep: data["colleague_id"] for rep, data in found.items()} == {
        mix.r.pk: mix.y.pk,
        mix.z.pk: mix.y.pk,
    }
    mine = found[mix.r.pk]
    assert mine["their_conversion"] == pytest.approx(0.5)
    assert mine["my_conversion"] == pytest.approx(0.25)
    assert mine["coverage"] == pytest.approx(0.8)
    assert (mine["their_leads"], mine["my_leads"]) == (12, 10)
    assert mine["colleague"] == mix.y.display_name
    assert mine["theirs"] == {
        "first_touch_minutes": pytest.approx(30.0),
        "follow_ups_7d": pytest.approx(1.5),
        "channels": {"phone": 0.5, "visit": 0.25, "wechat": 0.25},
    }
    assert mine["mine"] == {
        "first_touch_minutes": pytest.approx(60.0),
        "follow_ups_7d": pytest.approx(0.5),
        "channels": {"phone": 1.0},
    }
    # Z's comparison: Y covers 官网 (2/3 of Z's leads) at 50 % against Z's 30 % there.
    assert found[mix.z.pk]["my_conversion"] == pytest.approx(0.3)
    assert found[mix.z.pk]["coverage"] == pytest.approx(2 / 3)


def test_the_choice_recounted_by_hand_from_the_cells():
    r = {("web", "A"): (8, 2), ("douyin", "C"): (2, 0)}
    z = {("web", "A"): (10, 3), ("douyin", "C"): (5, 1)}
    assert practice.standardised(r, z) == pytest.approx((0.28, 0.2, 1.0, 15))
    assert practice.standardised(r, {("other", "B"): (5, 5)}) is None
    # A colleague who does no better than the rep is never chosen.
    found = {1: r, 2: {("web", "A"): (40, 10), ("douyin", "C"): (10, 0)}}
    assert practice.choose(1, found, [1, 2]) is None


def test_the_practice_is_worded_for_the_reader(world, english):
    mix = build(world)
    with tenant_context(mix.tenant):
        found = practice.find(mix.tenant, FRIDAY - timedelta(days=6), FRIDAY, [mix.r.pk])
    shown = practice.describe(found[mix.r.pk])
    assert shown["colleague"] == mix.y.display_name
    assert "50.0%" in shown["summary"] and "25.0%" in shown["summary"]
    assert "80.0%" in shown["summary"]
    rows = {label: (theirs, mine) for label, theirs, mine in shown["rows"]}
    assert rows["Median time from assignment to first touch"] == ("30 min", "1 h 0 min")
    assert rows["Follow-ups logged in a lead's first 7 days"] == ("1.5", "0.5")
    assert rows["Touches by Phone"] == ("50.0%", "100.0%")
    assert rows["Touches by WeChat"] == ("25.0%", "0.0%")
    assert "2025-12-14" in shown["method"] and "2026-03-13" in shown["method"]


def test_the_diagnosis_carries_the_practice_and_its_page_shows_it(world, login):
    mix = build(world)
    with tenant_context(mix.tenant):
        written = process.generate(mix.tenant, now=datetime(2026, 3, 13, 9, tzinfo=UTC))
    diagnosis = next(d for d in written if d.membership == mix.r)
    assert diagnosis.data["practice"]["source"] == practice.KEY
    assert diagnosis.data["practice"]["data"]["colleague_id"] == mix.y.pk
    response = login(mix.r).get(f"/reports/process/diagnosis/{diagnosis.public_id}/")
    assert response.status_code == 200
    assert response.context["practice"]["colleague"] == mix.y.display_name
    assert mix.y.display_name in response.content.decode()
    other = next(d for d in written if d.membership == mix.x)
    assert other.data["practice"] is None
