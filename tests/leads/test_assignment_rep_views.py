"""Assignment on the rep's side (F10, F12, F13): recording a contact, "why didn't I get
it", my profile with the open load, and the observation zone's training card.

The lead's page ("why this rep", reassign, return to pool): test_assignment_lead_page.py."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from crm.tenancy import tenant_context
from leads.assignment.engine import AT_CAPACITY, OK, LeadFacts, Params, eligibility
from leads.assignment.policy import policy_active, policy_draft, policy_publish
from leads.assignment.reps import open_loads, rep_load, rep_states
from leads.models import Lead, LeadEvent, LeadEventKind, LeadStatus, RepLedgerDay, RepProfile, Zone
from tests.leads.assignment_view_helpers import (
    channel_fixture,  # noqa: F401 (the channel fixture)
    dispatched,
    intake,
    reload,
    url,
)
from tests.leads.factories import make_channel, make_lead, make_rep

pytestmark = pytest.mark.django_db

HOME = reverse("home")
WHY_NOT = reverse("leads:why_not")
MY_PROFILE = reverse("leads:my_profile")
TRAINING_ACK = reverse("leads:training_ack")


# -- record a contact ----------------------------------------------------------------------------


def test_the_owner_records_a_contact_with_htmx(world, login, channel):
    lead = dispatched(world.a.tenant, channel)
    response = login(world.a.rep).post(
        url("touch", lead),
        {"channel": "wechat", "note": "加了微信，约周三电话"},
        headers={"HX-Request": "true", "HX-Target": "touch-card"},
    )
    assert response.status_code == 200
    text = response.text
    assert "<html" not in text
    assert text.lstrip().startswith('<div class="card mb-3" id="touch-card"')
    assert 'data-testid="touch-count">1<' in text
    assert 'id="timeline"' in text and 'hx-swap-oob="true"' in text
    assert "加了微信，约周三电话" in text  # the new timeline entry
    lead = reload(lead)
    assert lead.touch_count == 1 and lead.first_touch_at is not None
    assert lead.first_touch_late is False
    with tenant_context(lead.tenant):
        event = LeadEvent.objects.get(lead=lead, kind=LeadEventKind.TOUCH)
    assert event.data["channel"] == "wechat" and event.actor == world.a.rep.user


def test_a_plain_post_records_the_contact_and_returns_to_the_page(world, login, channel):
    lead = dispatched(world.a.tenant, channel)
    client = login(world.a.rep)
    response = client.post(url("touch", lead), {"channel": "phone"})
    assert response.status_code == 302 and response.url == url("detail", lead)
    client.post(url("touch", lead), {"channel": "visit", "note": ""})
    lead = reload(lead)
    assert lead.touch_count == 2 and lead.last_touch_at >= lead.first_touch_at


def test_an_unknown_touch_channel_is_a_field_error(world, login, channel):
    lead = dispatched(world.a.tenant, channel)
    response = login(world.a.rep).post(
        url("touch", lead), {"channel": "pigeon"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200 and "invalid-feedback" in response.text
    assert reload(lead).touch_count == 0


def test_only_the_owner_records_contacts(world, login, channel):
    lead = dispatched(world.a.tenant, channel)
    other = make_rep(world.a.tenant, "other-rep", is_available=False)
    assert login(other).post(url("touch", lead), {"channel": "phone"}).status_code == 404
    assert login(world.a.manager).post(url("touch", lead), {"channel": "phone"}).status_code == 403
    assert reload(lead).touch_count == 0


# -- why didn't I get it -------------------------------------------------------------------------


def test_a_rep_sees_their_own_verdict_and_never_who_got_it(world, en):
    t = world.a.tenant
    expert = make_rep(t, "expert", industries=["manufacturing"])
    lead = intake(t, make_channel(t, name="展会名片"), phone="13912345678", industry="制造业")
    assert reload(lead).owner == expert
    response = en(world.a.rep).get(WHY_NOT, {"q": "139 1234 5678"})
    assert response.status_code == 200
    text = response.text
    assert 'data-testid="why-not-result"' in text
    assert "Another rep" in text and "It went to another rep" in text
    assert "Your score 60 was below the best band" in text
    assert "the chosen rep scored 85" in text
    assert "展会名片" in text  # its channel
    assert expert.display_name not in text
    assert "宁波恒力液压科技有限公司" not in text and "王工" not in text


def test_why_not_searches_by_company_name(world, en, channel):
    t = world.a.tenant
    other = make_rep(t, "other")
    with tenant_context(t):
        RepProfile.objects.create(tenant=t, membership=world.a.rep, is_available=False)
    intake(t, channel, company="杭州远景能源有限公司", phone="13712345678")
    text = en(world.a.rep).get(WHY_NOT, {"q": "远景能源"}).text
    assert "You were marked unavailable (leave or away) when it was dispatched." in text
    assert other.display_name not in text
    assert "杭州" not in text  # nothing beyond what the rep typed


def test_why_not_shows_the_reps_own_lead_as_theirs(world, en, channel):
    lead = intake(world.a.tenant, channel, phone="13612345678")
    text = en(world.a.rep).get(WHY_NOT, {"q": "13612345678"}).text
    assert "It went to you" in text and url("detail", lead) in text


def test_why_not_has_an_empty_state_and_a_30_day_window(world, en, channel):
    lead = intake(world.a.tenant, channel, phone="13512345678")
    with tenant_context(world.a.tenant):
        Lead.objects.filter(pk=lead.pk).update(created_at=timezone.now() - timedelta(days=31))
    client = en(world.a.rep)
    assert 'data-testid="why-not-empty"' in client.get(WHY_NOT, {"q": "13512345678"}).text
    assert 'data-testid="why-not-empty"' in client.get(WHY_NOT, {"q": "不存在的公司"}).text
    blank = client.get(WHY_NOT)
    assert blank.status_code == 200 and "why-not-empty" not in blank.text
    short = client.get(WHY_NOT, {"q": "有限公司"})  # nothing left of the name
    assert "at least two characters of the company name" in short.text


def test_why_not_stays_in_the_tenant_and_is_for_reps(world, en, login):
    intake(world.b.tenant, make_channel(world.b.tenant), phone="13412345678")
    text = en(world.a.rep).get(WHY_NOT, {"q": "13412345678"}).text
    assert 'data-testid="why-not-empty"' in text
    assert login(world.a.manager).get(WHY_NOT).status_code == 403


# -- my profile ----------------------------------------------------------------------------------


def test_a_rep_reads_their_own_profile(world, en, channel):
    t = world.a.tenant
    rep = make_rep(
        t,
        "profiled",
        industries=["energy"],
        provinces=["浙江省"],
        product_lines=["DR", "CT"],
        capacity=5,
        response_tier="fast",
    )
    with tenant_context(t):
        RepProfile.objects.create(tenant=t, membership=world.a.rep, is_available=False)
    lead = dispatched(t, channel)
    assert lead.owner == rep
    response = en(rep).get(MY_PROFILE)
    assert response.status_code == 200
    text = response.text
    for shown in ("Energy", "浙江省", "DR, CT", "Responds within 15 minutes", "1 of 5"):
        assert shown in text, shown
    assert "Available" in text
    assert "you received 1 leads" in text and "was 1." in text
    with tenant_context(t):
        assert RepLedgerDay.objects.filter(membership=rep).exists()


def test_the_open_load_is_one_number_for_the_engine_the_profile_why_not_and_the_board(
    world, en, channel
):
    """Open load = leads the rep owns that wait for a verdict. A lead verified valid that
    stayed "assigned" (as a return to the pool used to leave it), a valid lead and an
    invalid one do not count; the three unverified ones do, against a cap of 3."""
    t = world.a.tenant
    rep = make_rep(t, "loaded", capacity=3)
    now = timezone.now()
    for i in range(3):
        make_lead(
            t,
            channel,
            company=f"待验证{i}",
            phone=f"+86139000000{i}",
            owner=rep,
            status=LeadStatus.ASSIGNED,
            assigned_at=now - timedelta(hours=2),
        )
    make_lead(
        t,
        channel,
        company="已验证仍为已分配",
        owner=rep,
        status=LeadStatus.ASSIGNED,
        verification="valid_more_info",
        assigned_at=now - timedelta(hours=2),
    )
    make_lead(
        t, channel, company="有效", owner=rep, status=LeadStatus.VALID, verification="valid_visit"
    )
    make_lead(
        t,
        channel,
        company="无效",
        owner=rep,
        status=LeadStatus.INVALID,
        verification="invalid_contact",
    )
    with tenant_context(t):
        assert Lead.objects.open_load().filter(owner=rep).count() == 3
        assert open_loads([rep.pk]) == {rep.pk: 3}
        policy = policy_active()
        params = Params.of(policy)
        state = next(s for s in rep_states(params, now) if s.membership_id == rep.pk)
        assert state.open_count == 3
        assert (
            eligibility(state, LeadFacts(id=0, created_at=now), params, (), frozenset())
            == AT_CAPACITY
        )
        load = rep_load(rep)
        assert (load.open, load.cap, load.verdict) == (3, 3, AT_CAPACITY)

    client = en(rep)
    profile = client.get(MY_PROFILE).text
    assert "3 of 3" in profile
    assert 'data-testid="profile-intake" data-verdict="at_capacity"' in profile
    assert "At capacity: 3 open unverified leads of 3." in profile
    why = client.get(WHY_NOT).text
    assert 'data-testid="why-not-load" data-verdict="at_capacity"' in why
    assert "Right now: 3 open unverified leads of 3." in why
    board = client.get(reverse("board:board")).text
    assert 'data-testid="count-verify">3<' in board
    assert 'data-testid="board-load" data-verdict="at_capacity"' in board
    assert "Open 3 / 3" in board

    # One verified: room again, everywhere at once.
    with tenant_context(t):
        Lead.objects.filter(company="待验证0").update(
            status=LeadStatus.INVALID, verification="invalid_contact"
        )
        assert rep_load(rep).verdict == OK
    profile = client.get(MY_PROFILE).text
    assert "2 of 3" in profile and 'data-verdict="ok"' in profile
    assert "1 more before the cap of 3" in profile
    assert 'data-verdict="ok"' in client.get(WHY_NOT).text
    assert "Open 2 / 3" in client.get(reverse("board:board")).text


def test_my_profile_lists_each_region_once(world, en):
    rep = make_rep(
        world.a.tenant,
        "shanghai",
        provinces=["上海市", "江苏省"],
        cities=["上海市", "南京市", "苏州"],
    )
    text = en(rep).get(MY_PROFILE).text
    assert "上海市, 江苏省, 南京市, 苏州" in text
    assert text.count("上海市") == 1


def test_my_profile_without_a_profile_shows_the_defaults(world, en):
    text = en(world.a.rep).get(MY_PROFILE).text
    assert 'data-testid="profile-defaults"' in text
    assert "0 of 8" in text
    with tenant_context(world.a.tenant):
        assert not RepProfile.objects.exists()  # a page view writes nothing


def test_my_profile_is_for_reps_and_in_their_menu(world, en, login):
    assert login(world.a.manager).get(MY_PROFILE).status_code == 403
    home = en(world.a.rep).get(HOME, follow=True).text
    assert MY_PROFILE in home and WHY_NOT in home
    assert MY_PROFILE not in en(world.a.manager).get(HOME, follow=True).text


# -- the training card (F10) ---------------------------------------------------------------------


def pause(membership, streak=3):
    with tenant_context(membership.tenant):
        RepProfile.objects.update_or_create(
            membership=membership,
            defaults={
                "tenant": membership.tenant,
                "zone": Zone.OBSERVATION,
                "zone_since": timezone.now(),
                "late_streak": streak,
            },
        )


def test_a_paused_rep_sees_the_training_card_and_acknowledges_it(world, en):
    pause(world.a.rep)
    client = en(world.a.rep)
    home = client.get(HOME, follow=True).text
    assert 'data-testid="training-card"' in home
    assert "your first touches came late on 3 leads in a row" in home
    assert "within 24 hours of the lead being assigned to you" in home
    assert home.count("<li>", home.index('data-testid="training-tips"')) >= 4
    assert 'data-testid="training-ack"' in home
    response = client.post(TRAINING_ACK)
    assert response.status_code == 302 and response.url == HOME
    with tenant_context(world.a.tenant):
        profile = RepProfile.objects.get(membership=world.a.rep)
    assert profile.zone == Zone.PROBATION and profile.training_acknowledged_at is not None
    home = client.get(HOME, follow=True).text
    assert "You are back on dispatch, on probation" in home
    assert "5 more on-time first touches in a row end the probation." in home
    assert 'data-testid="training-ack"' not in home


def test_probation_counts_down_from_the_active_policy(world, en):
    with tenant_context(world.a.tenant):
        draft = policy_draft(tenant=world.a.tenant, acting_member=None)
        draft.observation_recovery = 3
        draft.save()
        policy_publish(tenant=world.a.tenant, acting_member=None, draft=draft)
        RepProfile.objects.create(
            tenant=world.a.tenant, membership=world.a.rep, zone=Zone.PROBATION, on_time_streak=1
        )
    home = en(world.a.rep).get(HOME, follow=True).text
    assert "2 more on-time first touches in a row end the probation." in home


def test_the_training_card_is_for_paused_reps_only(world, en):
    client = en(world.a.rep)
    assert 'data-testid="training-card"' not in client.get(HOME, follow=True).text
    # Acknowledging without being paused changes nothing.
    assert client.post(TRAINING_ACK).status_code == 302
    with tenant_context(world.a.tenant):
        assert not RepProfile.objects.filter(zone=Zone.PROBATION).exists()
    pause(world.a.manager)  # even with a profile, a manager gets no card
    client = en(world.a.manager)
    assert 'data-testid="training-card"' not in client.get(HOME, follow=True).text
    assert client.post(TRAINING_ACK).status_code == 403


def test_a_paused_rep_gets_no_new_leads_until_the_ack(world, login, channel):
    pause(world.a.rep)
    other = make_rep(world.a.tenant, "other")
    assert dispatched(world.a.tenant, channel, phone="+8613900000011").owner == other
    login(world.a.rep).post(TRAINING_ACK)
    with tenant_context(world.a.tenant):
        RepProfile.objects.filter(membership=other).update(is_available=False)
    assert dispatched(world.a.tenant, channel, phone="+8613900000012").owner == world.a.rep
