"""What the admin and the pages show is words in the reader's language, never codes: audit
actions and object types by their labels, notification events by theirs, Django's own
widgets translated, lead fields by their names."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from crm.audit import action_label, audit, object_type_label, registered_actions
from crm.tenancy import tenant_context
from tests.leads.factories import make_channel, make_lead

pytestmark = pytest.mark.django_db


def visible(html: str) -> str:
    """The page's text without its markup (codes may stay in links' query strings)."""
    return re.sub(r"<[^>]*>", " ", html)


APPS = ("crm", "customers", "leads", "opportunities", "service_feedback", "health")
AUDITED = re.compile(r"""action=["']([a-z_]+\.[a-z_.]+)["']""")


def test_every_audited_action_has_a_label():
    """Each action code passed to audit() in the apps is in the kernel's registry."""
    codes = {
        code
        for app in APPS
        for path in (Path(settings.BASE_DIR) / app).rglob("*.py")
        if "migrations" not in path.parts
        for code in AUDITED.findall(path.read_text())
    }
    assert "lead.reassigned" in codes and "admin.change" in codes
    missing = sorted(codes - set(registered_actions()))
    assert not missing, f"register labels for {missing} (crm.audit.register_actions)"


def test_labels_follow_the_readers_language(english):
    assert action_label("lead.reassigned") == "Lead reassigned"
    assert object_type_label("leads.lead") == "Lead"
    assert action_label("unknown.code") == "unknown.code"  # never an error
    assert object_type_label("nope.nothing") == "nope.nothing"


def test_the_audit_list_shows_labels_not_codes(world, login):
    lead = make_lead(world.a.tenant)
    with tenant_context(world.a.tenant):
        event = audit(
            tenant=world.a.tenant,
            actor=world.a.manager.user,
            action="lead.reassigned",
            obj=lead,
            changes={"owner": ["甲", "乙"], "status": ["new", "assigned"]},
        )
    client = login(world.a.admin)
    listing = client.get(reverse("admin:crm_auditevent_changelist")).text
    assert "重新分配线索" in listing and "线索" in listing
    text = visible(listing)
    assert "lead.reassigned" not in text and "leads.lead" not in text
    # The filter offers the labels too.
    assert ">重新分配线索<" in listing
    page = client.get(reverse("admin:crm_auditevent_change", args=[event.pk])).text
    assert "lead.reassigned" not in page and "leads.lead" not in page
    title = re.search(r"<title>(.*?)</title>", page).group(1)
    assert "重新分配线索" in title
    # The changes as a table: field names and values as people read them.
    assert "负责人" in page and "已分配" in page
    assert '"status"' not in page


def test_notification_events_are_shown_by_their_labels(world, login):
    from crm.notify import notify

    with tenant_context(world.a.tenant):
        notify(event="notify.channel_paused", recipients=[world.a.admin], params={})
    listing = login(world.a.admin).get(reverse("admin:crm_notification_changelist")).text
    assert "notify.channel_paused" not in visible(listing)
    assert listing.count(">通知渠道已熔断暂停<") >= 2  # the row and the filter


def test_the_tag_pickers_help_is_translated(world, login):
    """Django's admin widgets (filter_horizontal) read the JavaScript catalogue: the
    strings Django's own Chinese catalogue lacks are in ours."""
    make_channel(world.a.tenant)
    catalogue = login(world.a.admin).get(reverse("admin:jsi18n")).text
    for msgid in (
        'Choose %s by selecting them and then select the \\"Choose\\" arrow button.',
        'Remove %s by selecting them and then select the \\"Remove\\" arrow button.',
        "Choose all %s",
        "Choose selected %s",
        "Remove selected %s",
        "Remove all %s",
    ):
        match = re.search(re.escape(f'"{msgid}": ') + r'("[^"]*")', catalogue)
        assert match, msgid
        text = json.loads(match.group(1))
        assert "%s" in text and not re.search(r"[A-Za-z]{3}", text), (msgid, text)


def test_the_import_page_names_the_utm_fields(world, login):
    page = login(world.a.manager).get(reverse("leads:import")).text
    assert "Utm_source" not in page and "Utm_campaign" not in page
    lead = make_lead(world.a.tenant, utm={"utm_source": "douyin", "utm_campaign": "春季"})
    page = login(world.a.manager).get(reverse("leads:detail", args=[lead.public_id])).text
    assert "来源渠道" in page and "douyin" in page


def test_published_score_rules_name_their_fields(world, login):
    from leads.assignment.policy import policy_draft, policy_publish

    with tenant_context(world.a.tenant):
        draft = policy_draft(tenant=world.a.tenant, acting_member=None)
        version = policy_publish(tenant=world.a.tenant, acting_member=world.a.admin, draft=draft)
    url = reverse("admin:leads_assignmentpolicy_change", args=[version.pk])
    page = login(world.a.admin).get(url).text
    readonly = re.findall(r'<td class="field-field">\s*<p>(.*?)</p>', page, re.S)
    assert readonly and "budget" not in readonly and "message" not in readonly


def test_the_lead_admin_words_reasons_utm_and_phones(world, login):
    lead = make_lead(
        world.a.tenant,
        phone="+8613800138000",
        is_suspect=True,
        suspect_reasons=[{"code": "test_entry"}],
        utm={"utm_source": "douyin"},
    )
    client = login(world.a.admin)
    listing = visible(client.get(reverse("admin:leads_lead_changelist")).text)
    assert "138 0013 8000" in listing and "+8613800138000" not in listing
    from leads.models import LeadEvent, LeadEventKind

    with tenant_context(world.a.tenant):
        LeadEvent.objects.create(tenant=world.a.tenant, lead=lead, kind=LeadEventKind.INTAKE)
    page = client.get(reverse("admin:leads_lead_change", args=[lead.pk])).text
    assert "疑似测试数据" in page and "test_entry" not in page
    assert ">intake<" not in page.replace("<p>", "").replace("</p>", "<")
    assert str(LeadEventKind.INTAKE.label) in page
    assert "来源渠道: douyin" in page and "utm_source" not in page


def test_tag_colours_are_named_not_coded(world, login):
    from tests.leads.factories import make_tag

    make_tag(world.a.tenant, "紧急", color="danger")
    listing = visible(login(world.a.admin).get(reverse("admin:leads_tag_changelist")).text)
    assert "红色" in listing and "danger" not in listing
