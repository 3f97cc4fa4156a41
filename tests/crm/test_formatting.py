"""Times people read are in the tenant's time zone and formatted one way everywhere
(crm.formatting, the crm_format filters, Django's formats for the admin); phones are
shown in the national format."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from crm.formatting import format_date, format_datetime, format_phone, format_time
from crm.models import Heartbeat
from crm.tenancy import tenant_context
from tests.conftest import platform_db
from tests.leads.factories import make_event, make_lead

pytestmark = pytest.mark.django_db

# 23:40:01 UTC on 1 December is 07:40 on 2 December in Shanghai.
MOMENT = datetime(2026, 12, 1, 23, 40, 1, tzinfo=UTC)
LOCAL = "2026-12-02 07:40"


def test_the_helpers_show_the_tenants_local_time(world):
    with tenant_context(world.a.tenant):
        assert format_datetime(MOMENT) == LOCAL
        assert format_date(MOMENT) == "2026-12-02"
        assert format_time(MOMENT) == "07:40"
        assert format_date(date(2026, 3, 9)) == "2026-03-09"
        assert format_datetime(None) == ""
        # Stored ISO text (the audit trail's values) reads the same way.
        assert format_datetime(MOMENT.isoformat()) == LOCAL
    world.a.tenant.timezone = "Europe/Berlin"
    world.a.tenant.save()
    with tenant_context(world.a.tenant):
        assert format_datetime(MOMENT) == "2026-12-02 00:40"


def test_phones_read_in_the_national_format():
    assert format_phone("+8613800138000") == "138 0013 8000"
    assert format_phone("+861065529988") == "010 6552 9988"
    assert format_phone("+16502530000") == "+1 650-253-0000"
    assert format_phone("not a phone") == "not a phone"
    assert format_phone("") == format_phone(None) == ""


def test_the_admins_system_status_shows_the_heartbeat_in_the_tenants_time(world, login):
    Heartbeat.objects.create(name="beat", last_seen=MOMENT)
    page = login(world.a.admin).get("/", follow=True).text  # the admin's dashboard
    status = page[page.index('data-testid="system-status"') :]
    assert LOCAL in status
    assert "2026-12-01T23:40" not in page and "23:40" not in status
    # /healthz stays machine-readable: ISO 8601 with its offset.
    beat = login(world.a.admin).get(reverse("healthz")).json()["beat"]
    assert datetime.fromisoformat(beat["last_run"]) == MOMENT


def test_a_failed_events_title_and_received_time_agree(world, login):
    event = make_event(
        world.a.tenant, status="failed", error="company_size 需要整数", received_at=MOMENT
    )
    with tenant_context(world.a.tenant):
        assert LOCAL in str(event)
    url = reverse("admin:leads_inboundevent_change", args=[event.pk])
    page = login(world.a.admin).get(url).text
    title = re.search(r"<h2>(.*?)</h2>", page, re.S) or re.search(r"<title>(.*?)</title>", page)
    assert LOCAL in title.group(1)
    assert page.count(LOCAL) >= 2  # the title and the read-only "received at" field
    assert "23:40" not in page


def test_the_admin_lists_times_as_the_pages_do(world, login):
    lead = make_lead(world.a.tenant, created_at=MOMENT)
    page = login(world.a.admin).get(reverse("admin:leads_lead_changelist")).text
    assert LOCAL in page
    assert "2026年12月2日" not in page
    lead_page = login(world.a.manager).get(reverse("leads:detail", args=[lead.public_id])).text
    assert LOCAL in lead_page


def test_model_titles_use_the_tenants_time(world):
    from customers.services import presets
    from leads.models import LeadEvent, LeadEventKind

    lead = make_lead(world.a.tenant)
    with tenant_context(world.a.tenant):
        event = LeadEvent.objects.create(
            tenant=world.a.tenant, lead=lead, kind=LeadEventKind.INTAKE, at=MOMENT
        )
        assert LOCAL in str(event)
        assert "intake" not in str(event)  # the kind's label, not its code
        from customers.models import Interaction

        interaction = Interaction(
            tenant=world.a.tenant,
            lead=lead,
            by=world.a.rep,
            at=MOMENT,
            channel="phone",
            next_action=presets("action").first(),
            next_action_due=date(2026, 12, 3),
        )
        assert "2026-12-02" in str(interaction) and "phone" not in str(interaction)
    assert "2026-12-02 07:40" in str(Heartbeat(name="beat", last_seen=MOMENT))


TEMPLATES = Path(settings.BASE_DIR) / "templates"
# `|date:'c'` (ISO 8601: the `datetime` attribute of <time>, a date input's value) is for
# machines; `|date:"l"` is the weekday's name.
EXPLICIT_FORMAT = re.compile(r"\|(?:date|time):(?!['\"][cl]['\"])")


def test_templates_format_times_through_the_kernels_filters():
    offenders = [
        f"{path.relative_to(TEMPLATES)}: {line.strip()[:80]}"
        for path in TEMPLATES.rglob("*.html")
        for line in path.read_text().splitlines()
        if EXPLICIT_FORMAT.search(line) or "isoformat" in line
    ]
    assert not offenders, "use local_datetime / local_date / local_time:\n" + "\n".join(offenders)


@platform_db
def test_the_platform_superuser_reads_an_object_in_its_tenants_time(world, login):
    from tests.factories import UserFactory

    world.a.tenant.timezone = "Europe/Berlin"
    world.a.tenant.save()
    event = make_event(world.a.tenant, status="failed", error="x", received_at=MOMENT)
    root = UserFactory(username="root", is_superuser=True, is_staff=True)
    url = reverse("admin:leads_inboundevent_change", args=[event.pk])
    page = login(root).get(url).text
    assert page.count("2026-12-02 00:40") >= 2 and LOCAL not in page
