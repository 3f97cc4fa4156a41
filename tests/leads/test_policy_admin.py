"""Assignment administration (F8, F9, F14, F45): the draft policy and its score rules, the
publish step, rep profiles, the SLA policy, decisions, and the replay pages."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.urls import reverse

from crm.models import AuditEvent, Role
from crm.tenancy import tenant_context
from leads.assignment.dispatch import dispatch
from leads.assignment.policy import policy_active, policy_draft
from leads.models import (
    AssignmentDecision,
    AssignmentPolicy,
    PolicyStatus,
    ReplayRun,
    ReplayStatus,
    RepProfile,
    ScoreRule,
    SlaPolicy,
    Zone,
)
from tests.conftest import wait_for
from tests.factories import MembershipFactory
from tests.leads.factories import make_channel, make_lead, make_tag

pytestmark = pytest.mark.usefixtures("english")


def form_data(response) -> dict:
    """The POST a browser would send back from an admin change page, unchanged."""
    data = {}

    def add(form):
        for bound in form:
            value = bound.value()
            if value is None:
                continue
            if isinstance(value, bool):
                if value:
                    data[bound.html_name] = "on"
            elif isinstance(value, list | tuple):
                data[bound.html_name] = [str(v) for v in value]
            else:
                data[bound.html_name] = value

    add(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        add(formset.management_form)
        for form in formset.forms:
            add(form)
    return data


def draft_url(policy) -> str:
    return reverse("admin:leads_assignmentpolicy_change", args=[policy.pk])


def in_english(client):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return client


@pytest.fixture
def admin_client(world, login):
    return in_english(login(world.a.admin))


@pytest.fixture
def draft(world):
    make_channel(world.a.tenant, name="官网表单")
    with tenant_context(world.a.tenant):
        return policy_draft(tenant=world.a.tenant, acting_member=world.a.admin)


def add_rule(data: dict, **rule) -> dict:
    """Fill the extra (empty) rule form of the inline with `rule`."""
    index = int(data["rules-INITIAL_FORMS"])
    for name, value in rule.items():
        data[f"rules-{index}-{name}"] = value
    data.setdefault(f"rules-{index}-position", 9)
    return data


# --- score rules (F8) -----------------------------------------------------------------------


def test_the_rule_inline_offers_the_fields_with_a_blank(admin_client, draft):
    response = admin_client.get(draft_url(draft))
    assert response.status_code == 200
    form = response.context["inline_admin_formsets"][0].formset.forms[0]
    choices = dict(form.fields["field"].choices)
    assert choices[""] == "---------"
    assert "budget" in choices and "tag" in choices


@pytest.mark.parametrize(
    ("rule", "field", "message"),
    [
        ({"operator": "gt", "value": "5", "points": 5}, "field", "Choose the field"),
        (
            {"field": "message", "operator": "gt", "value": "5", "points": 5},
            "operator",
            "does not apply",
        ),
        (
            {"field": "budget", "operator": "gt", "value": "lots", "points": 5},
            "value",
            "is not a number",
        ),
        (
            {"field": "budget", "operator": "grade_is", "value": "A", "points": 5},
            "field",
            "needs no field",
        ),
        ({"operator": "grade_is", "value": "D", "points": 5}, "value", "Source grades"),
        ({"field": "tag", "operator": "eq", "value": "不存在", "points": 5}, "value", "No tag"),
        ({"operator": "channel_is", "value": "没有的渠道", "points": 5}, "value", "No channel"),
        (
            {"field": "industry", "operator": "eq", "value": "mining", "points": 5},
            "value",
            "is not one of",
        ),
        (
            {"field": "in_tender", "operator": "eq", "value": "maybe", "points": 5},
            "value",
            "yes or no",
        ),
        ({"operator": "late_first_response", "value": "soon", "points": -5}, "value", "minutes"),
        ({"field": "budget", "operator": "eq", "value": "1,2", "points": 5}, "value", "One value"),
        ({"field": "budget", "operator": "gt", "value": "1", "points": 500}, "points", "100"),
    ],
)
def test_a_bad_rule_is_a_field_error(admin_client, draft, rule, field, message):
    data = form_data(admin_client.get(draft_url(draft)))
    rules_before = ScoreRule.unscoped.filter(policy=draft).count()
    add_rule(data, **rule)
    response = admin_client.post(draft_url(draft), {**data, "_continue": "Save draft"})
    assert response.status_code == 200  # the page again, with the error
    formset = response.context["inline_admin_formsets"][0].formset
    errors = formset.forms[int(data["rules-INITIAL_FORMS"])].errors
    assert field in errors, errors
    assert message in " ".join(errors[field])
    assert ScoreRule.unscoped.filter(policy=draft).count() == rules_before


def test_a_good_rule_saves_on_the_draft(admin_client, draft, world):
    make_tag(world.a.tenant, "CT")
    data = form_data(admin_client.get(draft_url(draft)))
    add_rule(data, label="CT 设备", field="tag", operator="in", value="CT", points=12)
    data["weight_region"] = "0.9"
    response = admin_client.post(draft_url(draft), {**data, "_continue": "Save draft"})
    assert response.status_code == 302, response.context and response.context["errors"]
    with tenant_context(world.a.tenant):
        draft.refresh_from_db()
        assert draft.weight_region == 0.9
        rule = draft.rules.get(label="CT 设备")
        assert (rule.field, rule.operator, rule.value, rule.points) == ("tag", "in", "CT", 12)
        assert rule.tenant_id == world.a.tenant.pk
        assert AuditEvent.objects.filter(
            action="admin.change", object_id=str(draft.public_id)
        ).exists()


def test_a_rule_change_is_audited_with_the_lines_before_and_after(admin_client, draft, world):
    data = form_data(admin_client.get(draft_url(draft)))
    add_rule(data, label="大预算", field="budget", operator="gt", value="100000", points=7)
    response = admin_client.post(draft_url(draft), {**data, "_continue": "Save draft"})
    assert response.status_code == 302, response.context and response.context["errors"]
    with tenant_context(world.a.tenant):
        [event] = AuditEvent.objects.filter(
            action="admin.change", object_id=str(draft.public_id), changes__has_key="rules"
        )
    before, after = event.changes["rules"]
    assert [line for line in after if line not in before] == ["大预算 +7"]
    assert len(after) == len(before) + 1
    assert event.actor == world.a.admin.user


def test_published_versions_are_read_only(admin_client, draft, world):
    with tenant_context(world.a.tenant):
        active = policy_active()
    response = admin_client.get(draft_url(active))
    assert response.status_code == 200
    assert not response.context["has_change_permission"]
    data = form_data(admin_client.get(draft_url(draft)))
    data["base_score"] = "1"
    assert admin_client.post(draft_url(active), data).status_code == 403
    assert admin_client.get(reverse("admin:leads_assignmentpolicy_add")).status_code == 403


def test_the_changelist_lists_versions_and_the_draft_link_makes_one(admin_client, world):
    make_channel(world.a.tenant, name="官网表单")
    changelist = admin_client.get(reverse("admin:leads_assignmentpolicy_changelist"))
    assert changelist.status_code == 200
    assert reverse("admin:leads_assignmentpolicy_draft").encode() in changelist.content
    response = admin_client.get(reverse("admin:leads_assignmentpolicy_draft"))
    with tenant_context(world.a.tenant):
        draft = AssignmentPolicy.objects.get(status=PolicyStatus.DRAFT)
        assert draft.rules.count() == policy_active().rules.count() > 0
    assert response.status_code == 302 and response["Location"] == draft_url(draft)
    # A second click opens the same draft.
    assert admin_client.get(reverse("admin:leads_assignmentpolicy_draft"))["Location"] == (
        draft_url(draft)
    )
    listed = admin_client.get(reverse("admin:leads_assignmentpolicy_changelist"))
    assert "Version 1" in listed.content.decode() and "Draft" in listed.content.decode()


# --- publish (F8) and the version on decisions ------------------------------------------------


def test_publish_makes_the_next_version_with_the_rules_and_an_audit_event(
    admin_client, draft, world
):
    data = form_data(admin_client.get(draft_url(draft)))
    data["weight_industry"] = "0.8"
    data["note"] = "行业权重提高"
    add_rule(data, label="大预算", field="budget", operator="gt", value="800000", points=15)
    response = admin_client.post(draft_url(draft), {**data, "_publish": "Publish"}, follow=True)
    assert response.status_code == 200
    assert "Published as version 2" in response.content.decode()
    with tenant_context(world.a.tenant):
        published = AssignmentPolicy.objects.get(version=2)
        assert published.status == PolicyStatus.PUBLISHED
        assert published.weight_industry == 0.8
        assert published.note == "行业权重提高"
        assert published.created_by == world.a.admin.user
        lines = sorted(
            (r.label, r.field, r.operator, r.value, r.points) for r in published.rules.all()
        )
        draft_lines = sorted(
            (r.label, r.field, r.operator, r.value, r.points) for r in draft.rules.all()
        )
        assert lines == draft_lines and ("大预算", "budget", "gt", "800000", 15) in lines
        event = AuditEvent.objects.get(action="assignment.policy_published")
        assert event.object_id == str(published.public_id)
        assert event.changes["weight_industry"] == [0.5, 0.8]
        assert policy_active() == published
        # The draft stays for the next round of edits.
        assert AssignmentPolicy.objects.filter(status=PolicyStatus.DRAFT).count() == 1


def test_an_unchanged_draft_is_not_published(admin_client, draft, world):
    data = form_data(admin_client.get(draft_url(draft)))
    response = admin_client.post(draft_url(draft), {**data, "_publish": "Publish"}, follow=True)
    assert "nothing to publish" in response.content.decode()
    with tenant_context(world.a.tenant):
        assert not AssignmentPolicy.objects.filter(version=2).exists()


def test_decisions_record_the_version_that_made_them(world, draft):
    tenant = world.a.tenant
    with tenant_context(tenant):
        from leads.assignment.policy import policy_publish

        first = make_lead(tenant)
        decision = dispatch(first)
        assert decision.policy.version == 1
        draft.weight_region = 0.7
        draft.save()
        policy_publish(tenant=tenant, acting_member=world.a.admin, draft=draft)
        second = make_lead(tenant, phone="+8613900000000")
        assert dispatch(second).policy.version == 2
        assert AssignmentDecision.objects.get(lead=first).policy.version == 1


# --- rep profiles (F9) ----------------------------------------------------------------------


def profile_form(**overrides):
    data = {
        "industries": ["energy", "manufacturing"],
        "provinces": "浙江省，江苏省\n上海市",
        "cities": "宁波, 苏州",
        "product_lines": "DR\nCT、影像设备",
        "response_tier": "fast",
        "cycle_preference": "long",
        "capacity": "",
        "share_weight": "1.5",
        "is_available": "on",
        "unavailable_until": "",
    }
    data.update(overrides)
    return data


def test_a_rep_profile_is_created_from_text_lists(admin_client, world):
    url = reverse("admin:leads_repprofile_add")
    response = admin_client.post(url, profile_form(membership=world.a.rep.pk))
    assert response.status_code == 302, response.context and response.context["errors"]
    with tenant_context(world.a.tenant):
        profile = RepProfile.objects.get(membership=world.a.rep)
    assert profile.industries == ["energy", "manufacturing"]
    assert profile.provinces == ["浙江省", "江苏省", "上海市"]
    assert profile.cities == ["宁波", "苏州"]
    assert profile.product_lines == ["DR", "CT", "影像设备"]
    assert profile.capacity is None  # blank: the policy's default
    assert profile.tenant_id == world.a.tenant.pk
    page = admin_client.get(reverse("admin:leads_repprofile_change", args=[profile.pk]))
    assert "浙江省\n江苏省\n上海市" in page.content.decode()


def test_a_negative_capacity_is_a_field_error(admin_client, world):
    url = reverse("admin:leads_repprofile_add")
    response = admin_client.post(url, profile_form(membership=world.a.rep.pk, capacity="-1"))
    assert response.status_code == 200
    assert "capacity" in response.context["adminform"].form.errors
    with tenant_context(world.a.tenant):
        assert not RepProfile.objects.exists()


def test_only_the_tenants_reps_can_be_chosen(admin_client, world):
    response = admin_client.get(reverse("admin:leads_repprofile_add"))
    with tenant_context(world.a.tenant):  # the choices are a queryset, read here
        choices = {
            int(value.value) if hasattr(value, "value") else value
            for value, _label in response.context["adminform"].form.fields["membership"].choices
            if value
        }
    assert choices == {world.a.rep.pk}
    response = admin_client.post(
        reverse("admin:leads_repprofile_add"), profile_form(membership=world.b.rep.pk)
    )
    assert "membership" in response.context["adminform"].form.errors
    response = admin_client.post(
        reverse("admin:leads_repprofile_add"), profile_form(membership=world.a.manager.pk)
    )
    assert "membership" in response.context["adminform"].form.errors


def test_profiles_for_all_reps_in_one_click(admin_client, world):
    second = MembershipFactory(tenant=world.a.tenant, role=Role.REP, user__username="a-rep2")
    response = admin_client.post(reverse("admin:leads_repprofile_create_all"), follow=True)
    assert "2 rep profiles created" in response.content.decode()
    with tenant_context(world.a.tenant):
        assert set(RepProfile.objects.values_list("membership_id", flat=True)) == {
            world.a.rep.pk,
            second.pk,
        }
    with tenant_context(world.b.tenant):
        assert not RepProfile.objects.exists()
    again = admin_client.post(reverse("admin:leads_repprofile_create_all"), follow=True)
    assert "Every rep already has a profile" in again.content.decode()


def test_lifting_the_observation_zone(admin_client, world):
    with tenant_context(world.a.tenant):
        profile = RepProfile.objects.create(
            tenant=world.a.tenant, membership=world.a.rep, zone=Zone.OBSERVATION, late_streak=3
        )
    response = admin_client.post(
        reverse("admin:leads_repprofile_changelist"),
        {"action": "lift_zone", "_selected_action": [profile.pk]},
        follow=True,
    )
    assert "1 rep is back to normal dispatch" in response.content.decode()
    with tenant_context(world.a.tenant):
        profile.refresh_from_db()
        assert profile.zone == Zone.NORMAL and profile.late_streak == 0
        assert AuditEvent.objects.filter(action="rep.zone_lifted").exists()


def test_zone_and_streaks_are_read_only(admin_client, world):
    with tenant_context(world.a.tenant):
        profile = RepProfile.objects.create(
            tenant=world.a.tenant, membership=world.a.rep, zone=Zone.OBSERVATION, late_streak=3
        )
    url = reverse("admin:leads_repprofile_change", args=[profile.pk])
    form = admin_client.get(url).context["adminform"].form
    assert "zone" not in form.fields and "late_streak" not in form.fields
    admin_client.post(url, {**profile_form(), "zone": "", "late_streak": "0"})
    with tenant_context(world.a.tenant):
        profile.refresh_from_db()
        assert profile.zone == Zone.OBSERVATION and profile.late_streak == 3


# --- SLA policy and decisions ---------------------------------------------------------------


def test_one_sla_policy_per_tenant(admin_client, world):
    add = reverse("admin:leads_slapolicy_add")
    assert admin_client.get(add).status_code == 200
    response = admin_client.post(
        add,
        {
            "a_unassigned_minutes": 20,
            "unassigned_minutes": 90,
            "unverified_hours": 24,
            "unverified_escalation_hours": 8,
            "no_followup_hours": 72,
            "second_touch_hours": 72,
            "is_active": "on",
            "sales_model": "b2c",  # the response-time water level's target
        },
    )
    assert response.status_code == 302
    with tenant_context(world.a.tenant):
        assert SlaPolicy.objects.get().a_unassigned_minutes == 20
        assert SlaPolicy.objects.get().sales_model == "b2c"
    assert admin_client.get(add).status_code == 403
    listing = admin_client.get(reverse("admin:leads_slapolicy_changelist"))
    assert listing.context["cl"].result_count == 1
    assert not listing.context["has_add_permission"]


def test_decisions_are_listed_read_only_with_a_candidates_table(admin_client, world):
    tenant = world.a.tenant
    with tenant_context(tenant):
        decision = dispatch(make_lead(tenant))
    listing = admin_client.get(reverse("admin:leads_assignmentdecision_changelist"))
    assert listing.status_code == 200 and listing.context["cl"].result_count == 1
    page = admin_client.get(
        reverse("admin:leads_assignmentdecision_change", args=[decision.pk])
    ).content.decode()
    assert 'class="decision-candidates"' in page
    assert world.a.rep.display_name in page
    assert admin_client.get(reverse("admin:leads_assignmentdecision_add")).status_code == 403


ASSIGNMENT_PAGES = (
    "admin:leads_assignmentpolicy_changelist",
    "admin:leads_repprofile_changelist",
    "admin:leads_slapolicy_changelist",
    "admin:leads_assignmentdecision_changelist",
)


def test_assignment_admin_is_for_tenant_admins_and_sales_managers(world, login):
    for membership in (world.a.admin, world.a.manager):
        client = login(membership)
        for name in ASSIGNMENT_PAGES:
            assert client.get(reverse(name)).status_code == 200, (membership, name)
        # The draft link creates the draft and opens it.
        assert client.get(reverse("admin:leads_assignmentpolicy_draft")).status_code == 302
    client = login(world.a.rep)
    for name in (*ASSIGNMENT_PAGES, "admin:leads_assignmentpolicy_draft"):
        assert client.get(reverse(name)).status_code == 403, name


# --- the replay pages (F14) -----------------------------------------------------------------


def replay_of(tenant, draft, **fields):
    from leads.assignment.replay_runs import policy_snapshot

    with tenant_context(tenant):
        return ReplayRun.objects.create(
            tenant=tenant,
            policy=draft,
            baseline=policy_active(),
            days=30,
            parameters=policy_snapshot(draft),
            **fields,
        )


def replay_url(draft, run) -> str:
    return reverse("admin:leads_assignmentpolicy_replay", args=[draft.pk, run.public_id])


def test_another_tenants_draft_or_replay_is_not_found(admin_client, world, draft):
    own = replay_of(world.a.tenant, draft)
    with tenant_context(world.b.tenant):
        foreign_draft = policy_draft(tenant=world.b.tenant, acting_member=None)
    foreign = replay_of(world.b.tenant, foreign_draft)
    assert admin_client.get(replay_url(draft, own)).status_code == 200
    assert admin_client.get(replay_url(foreign_draft, foreign)).status_code == 404
    assert admin_client.get(replay_url(draft, foreign)).status_code == 404
    assert admin_client.post(replay_url(foreign_draft, foreign)).status_code == 404
    assert admin_client.get(draft_url(foreign_draft)).status_code == 404


def test_a_pending_replay_polls_and_a_failed_one_shows_its_error(admin_client, world, draft):
    run = replay_of(world.a.tenant, draft)
    page = admin_client.get(replay_url(draft, run)).content.decode()
    assert 'hx-trigger="every 1s"' in page and "vendor/htmx/htmx.min.js" in page
    partial = admin_client.get(replay_url(draft, run), headers={"HX-Request": "true"})
    assert partial.content.decode().lstrip().startswith('<div id="replay-result"')
    with tenant_context(world.a.tenant):
        ReplayRun.objects.filter(pk=run.pk).update(
            status=ReplayStatus.FAILED, error="TypeError: boom"
        )
    page = admin_client.get(replay_url(draft, run)).content.decode()
    assert "The replay failed" in page and "TypeError: boom" in page
    assert "every 1s" not in page


def test_apply_is_refused_when_the_draft_changed_after_the_replay(admin_client, world, draft):
    run = replay_of(world.a.tenant, draft, status=ReplayStatus.DONE, result={"leads": 0})
    with tenant_context(world.a.tenant):
        draft.weight_cycle = 0.9
        draft.save()
    page = admin_client.get(replay_url(draft, run)).content.decode()
    assert "simulate it again" in page
    response = admin_client.post(replay_url(draft, run), follow=True)
    assert "simulate it again" in response.content.decode()
    with tenant_context(world.a.tenant):
        assert not AssignmentPolicy.objects.filter(version=2).exists()


@pytest.mark.django_db(transaction=True)
def test_draft_simulate_replay_apply_through_a_real_worker(world, login, celery_worker_thread):
    """The whole admin flow, with the replay run by a real Celery worker."""
    tenant = world.a.tenant
    with tenant_context(tenant):
        RepProfile.objects.create(tenant=tenant, membership=world.a.rep, capacity=50)
    energy = MembershipFactory(tenant=tenant, role=Role.REP, user__username="a-energy")
    with tenant_context(tenant):
        RepProfile.objects.create(
            tenant=tenant, membership=energy, industries=["energy"], capacity=50
        )
    channel = make_channel(tenant, name="官网表单")
    for i in range(6):
        make_lead(tenant, channel=channel, industry="energy", phone=f"+861380000000{i}")

    client = in_english(login(world.a.admin))
    opened = client.get(reverse("admin:leads_assignmentpolicy_draft"), follow=True)
    assert opened.status_code == 200
    with tenant_context(tenant):
        draft = AssignmentPolicy.objects.get(status=PolicyStatus.DRAFT)
    data = form_data(opened)
    data.update(weight_industry="0", best_band="0", replay_days="7", note="不看行业")
    simulated = client.post(draft_url(draft), {**data, "_simulate": "Simulate"})
    assert simulated.status_code == 302
    with tenant_context(tenant):
        run = ReplayRun.objects.get(policy=draft)
    assert simulated["Location"] == replay_url(draft, run)
    assert run.days == 7 and run.parameters["params"]["weight_industry"] == 0

    def done():
        with tenant_context(tenant):
            return ReplayRun.objects.get(pk=run.pk).status == ReplayStatus.DONE

    assert wait_for(done, timeout=30)
    page = client.get(replay_url(draft, run))
    text = page.content.decode()
    assert 'data-testid="replay-done"' in text and "every 1s" not in text
    assert "only the policy differs" in text or "the only difference is the policy" in text
    result = page.context["result"]
    assert result["leads"] == 6
    assert {r["name"] for r in result["reps"]} == {world.a.rep.display_name, energy.display_name}
    assert "Apply this draft" in text

    applied = client.post(replay_url(draft, run), {"note": "不看行业"}, follow=True)
    assert "Published as version 2" in applied.content.decode()
    with tenant_context(tenant):
        version = AssignmentPolicy.objects.get(version=2)
        assert version.weight_industry == 0 and version.note == "不看行业"
        assert policy_active() == version
    # Applied once: the page says so, and a second press makes no version 3.
    again = client.get(replay_url(draft, run)).content.decode()
    assert 'data-testid="already-active"' in again and "Apply this draft" not in again
    client.post(replay_url(draft, run))
    with tenant_context(tenant):
        assert not AssignmentPolicy.objects.filter(version=3).exists()
