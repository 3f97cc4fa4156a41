"""Health settings and the playbook in the tenant admin: weights that do not sum to 100
and bad bands refused on their fields, the back-test preview that saves nothing, save
after preview, recompute now, the one active step per dimension, and another tenant's
ids answering 404."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse

from crm.models import AuditEvent
from crm.tenancy import tenant_context
from health import compute
from health.forms import bands_text
from health.models import DEFAULT_BANDS, HealthSettings, HealthSnapshot, PlaybookStep
from tests.health.helpers import customer, interaction

pytestmark = pytest.mark.django_db


def settings_of(side) -> HealthSettings:
    with tenant_context(side.tenant):
        return HealthSettings.for_tenant(side.tenant)


def change_url(obj) -> str:
    return reverse("admin:health_healthsettings_change", args=[obj.pk])


def form_data(obj: HealthSettings, **changes) -> dict:
    table = obj.band_table()
    data = {f"weight_{d}": w for d, w in obj.weights().items()}
    data.update({f"bands_{d}": bands_text(table[d]) for d in compute.DIMENSIONS})
    data.update(
        risk_score_below=obj.risk_score_below,
        risk_quiet_days=obj.risk_quiet_days,
        competitor_keywords=obj.competitor_keywords,
    )
    data.update(changes)
    return data


def audits(side, action) -> list[AuditEvent]:
    with tenant_context(side.tenant):
        return list(AuditEvent.objects.filter(action=action).order_by("pk"))


def test_the_list_opens_the_tenants_one_row(world, en):
    response = en(world.a.admin).get(reverse("admin:health_healthsettings_changelist"))
    obj = settings_of(world.a)
    assert response.status_code == 302 and response.url == change_url(obj)
    page = en(world.a.admin).get(change_url(obj)).content.decode()
    assert "7: 100\n14: 85" in page and "else: 0" in page
    assert obj.track_key in page
    assert "Preview: back-test the draft" in page and "Recompute now" in page


def test_a_rep_cannot_open_it(world, login):
    obj = settings_of(world.a)
    assert login(world.a.rep).get(change_url(obj)).status_code == 403


def test_weights_not_summing_to_100_are_refused_on_the_field(world, en):
    obj = settings_of(world.a)
    response = en(world.a.admin).post(change_url(obj), form_data(obj, weight_recency=20))
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert form.errors["weight_recency"] == ["The six weights must sum to 100 (they sum to 95)."]
    assert settings_of(world.a).weight_recency == 25


def test_bad_bands_are_refused_on_their_dimension(world, en):
    obj = settings_of(world.a)
    data = form_data(
        obj,
        bands_recency="30: 100\n7: 50\nelse: 0",  # less is better: thresholds must rise
        bands_quotes="80 100\nhalf: 50\nelse: 0",  # a line that is not two numbers
        bands_service="95: 100",  # no else line
        bands_downloads="5: 120\nelse: 30",  # a score above 100
    )
    response = en(world.a.admin).post(change_url(obj), data)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["bands_recency"] == ["thresholds must rise (less is better here)"]
    assert errors["bands_quotes"] == ["line 2: write “threshold: score” or “else: score”"]
    assert errors["bands_service"] == ["add an “else: score” line"]
    assert errors["bands_downloads"] == ["a score is a whole number from 0 to 100"]
    assert "bands_frequency" not in errors and "bands_competitor" not in errors
    assert settings_of(world.a).bands == {}


def _history(side):
    """Twenty customers scored 120 days ago: ten heard from since, ten gone quiet. By
    recency the quiet ones are the worst; by frequency they look the best."""
    day = compute.local_today(side.tenant) - timedelta(days=120)
    start = compute.as_of(side.tenant, day)
    for i in range(20):
        cust = customer(side, f"客户{i}")
        gone_quiet = i < 10
        with tenant_context(side.tenant):
            HealthSnapshot.objects.create(
                tenant=side.tenant,
                customer=cust,
                day=day,
                recency_value=100 + i if gone_quiet else i,
                frequency_value=20 if gone_quiet else i % 3,
            )
        if not gone_quiet:
            interaction(side, cust, start + timedelta(days=10))
    return day


def test_preview_shows_the_back_test_and_saves_nothing(world, en):
    _history(world.a)
    obj = settings_of(world.a)
    client = en(world.a.admin)
    # Saved: frequency only. The draft: recency only.
    client.post(
        change_url(obj),
        form_data(
            obj, **{**{f"weight_{d}": 0 for d in compute.DIMENSIONS}, "weight_frequency": 100}
        ),
    )
    saved = settings_of(world.a)
    assert saved.weight_frequency == 100
    draft = form_data(
        saved, weight_frequency=0, weight_recency=100, bands_recency="7: 100\n30: 50\nelse: 0"
    )
    response = client.post(change_url(saved), {**draft, "_preview": "1"})
    assert response.status_code == 200
    result = response.context["backtest"]
    # Ten quiet among twenty: the bottom decile (two) holds two of them with the draft
    # (20 %), none with the saved settings (the quiet ones have the most interactions).
    assert result.enough and result.customers == 20
    assert (result.quiet.now_count, result.quiet.now_share) == (10, 0.0)
    assert (result.quiet.draft_count, result.quiet.draft_share) == (10, 20.0)
    page = response.content.decode()
    assert 'data-testid="backtest-table"' in page and "20.0%" in page
    assert "customers have no lost flag in this product" in page
    # The draft is still in the form; nothing saved, nothing audited.
    assert response.context["adminform"].form["weight_recency"].value() == "100"
    again = settings_of(world.a)
    assert (again.weight_recency, again.weight_frequency, again.bands) == (0, 100, {})
    assert len(audits(world.a, "health.settings")) == 1

    # Save after the preview: the same draft.
    response = client.post(change_url(saved), {**draft, "_continue": "1"})
    assert response.status_code == 302
    final = settings_of(world.a)
    assert (final.weight_recency, final.weight_frequency) == (100, 0)
    assert final.bands == {"recency": {"bands": [[7, 100], [30, 50]], "else": 0}}
    assert final.band_table()["frequency"] == DEFAULT_BANDS["frequency"]
    last = audits(world.a, "health.settings")[-1]
    assert last.changes["weight_recency"] == [0, 100]
    assert last.changes["bands.recency"][1] == {"bands": [[7, 100], [30, 50]], "else": 0}


def test_preview_without_history_says_so(world, en):
    obj = settings_of(world.a)
    response = en(world.a.admin).post(change_url(obj), {**form_data(obj), "_preview": "1"})
    assert response.status_code == 200
    assert 'data-testid="backtest-not-enough"' in response.content.decode()


def test_preview_of_an_invalid_draft_shows_the_errors_only(world, en):
    obj = settings_of(world.a)
    response = en(world.a.admin).post(
        change_url(obj), {**form_data(obj, weight_quotes=99), "_preview": "1"}
    )
    assert response.status_code == 200
    assert response.context["backtest"] is None
    assert "weight_recency" in response.context["adminform"].form.errors


def test_recompute_now_scores_the_tenant_and_is_audited(world, en):
    for i in range(3):
        customer(world.a, f"客户{i}")
    customer(world.b, "别家客户")
    obj = settings_of(world.a)
    client = en(world.a.admin)
    url = reverse("admin:health_healthsettings_recompute", args=[obj.pk])
    assert client.get(url).status_code == 302  # a GET changes nothing
    assert not audits(world.a, "health.recompute")
    response = client.post(url, follow=True)
    assert "Recomputed: 3 customers scored" in response.content.decode()
    with tenant_context(world.a.tenant):
        assert HealthSnapshot.objects.count() == 3
    (event,) = audits(world.a, "health.recompute")
    assert event.changes["scored"] == 3
    with tenant_context(world.b.tenant):
        assert HealthSnapshot.objects.count() == 0


def test_rotate_the_tracking_secret(world, en):
    obj = settings_of(world.a)
    url = reverse("admin:health_healthsettings_rotate", args=[obj.pk])
    en(world.a.admin).post(url)
    fresh = settings_of(world.a)
    assert fresh.track_secret != obj.track_secret and fresh.track_key == obj.track_key
    assert audits(world.a, "health.settings")[-1].changes == {"track_secret": ["…", "rotated"]}


def test_another_tenants_settings_are_not_found(world, en):
    theirs = settings_of(world.b)
    client = en(world.a.admin)
    assert client.get(change_url(theirs)).status_code == 404
    assert (
        client.post(change_url(theirs), {**form_data(theirs), "_preview": "1"}).status_code == 404
    )
    for name in ("recompute", "rotate"):
        url = reverse(f"admin:health_healthsettings_{name}", args=[theirs.pk])
        assert client.post(url).status_code == 404
    assert settings_of(world.b).track_secret == theirs.track_secret


# -- the playbook ---------------------------------------------------------------------------


def steps(side, *rows) -> list[PlaybookStep]:
    with tenant_context(side.tenant):
        return [
            PlaybookStep.objects.create(
                tenant=side.tenant, dimension=d, action=action, is_active=active
            )
            for d, action, active in rows
        ]


def list_data(rows) -> dict:
    data = {
        "form-TOTAL_FORMS": str(len(rows)),
        "form-INITIAL_FORMS": str(len(rows)),
        "form-MIN_NUM_FORMS": "0",
        "form-MAX_NUM_FORMS": "1000",
        "_save": "Save",
    }
    for i, (step, dimension, action, active) in enumerate(rows):
        data[f"form-{i}-id"] = str(step.pk)
        data[f"form-{i}-dimension"] = dimension
        data[f"form-{i}-action"] = action
        if active:
            data[f"form-{i}-is_active"] = "on"
    return data


def test_one_active_step_per_dimension_in_the_list(world, en):
    first, second = steps(world.a, ("recency", "上门拜访", True), ("recency", "电话回访", False))
    client = en(world.a.admin)
    url = reverse("admin:health_playbookstep_changelist")
    # Both active: refused on the rows, nothing saved.
    response = client.post(
        url,
        list_data([(first, "recency", "上门拜访", True), (second, "recency", "电话回访", True)]),
    )
    assert response.status_code == 200
    assert "Only one active step per weakest dimension" in response.content.decode()
    with tenant_context(world.a.tenant):
        assert PlaybookStep.objects.filter(is_active=True).count() == 1
    # A swap in one submit (the second listed first would clash for a moment): saved.
    response = client.post(
        url,
        list_data([(second, "recency", "电话回访", True), (first, "recency", "上门拜访", False)]),
    )
    assert response.status_code == 302
    with tenant_context(world.a.tenant):
        assert list(PlaybookStep.objects.filter(is_active=True)) == [second]


def test_one_active_step_per_dimension_on_the_change_form(world, en):
    _, second = steps(world.a, ("", "默认", True), ("", "备用", False))
    url = reverse("admin:health_playbookstep_change", args=[second.pk])
    response = en(world.a.admin).post(url, {"dimension": "", "action": "备用", "is_active": "on"})
    assert response.status_code == 200
    assert "This tenant already has a playbook step" in response.content.decode()


def test_another_tenants_playbook_step_is_not_found(world, en):
    (theirs,) = steps(world.b, ("quotes", "报价跟进", True))
    client = en(world.a.admin)
    url = reverse("admin:health_playbookstep_change", args=[theirs.pk])
    assert client.get(url).status_code == 404
    steps(world.a, ("quotes", "报价跟进", True))  # mine, of the same dimension
    # Their id slipped into my list's formset is not mine to edit.
    response = client.post(
        reverse("admin:health_playbookstep_changelist"),
        list_data([(theirs, "quotes", "改掉", False)]),
    )
    with tenant_context(world.b.tenant):
        assert PlaybookStep.objects.get(pk=theirs.pk).action == "报价跟进"
    assert response.status_code in (200, 302)


def test_recompute_now_of_a_large_tenant_is_queued(world, en, monkeypatch):
    from health import settings_services

    monkeypatch.setattr(settings_services, "INLINE_CUSTOMERS", 1)
    for i in range(2):
        customer(world.a, f"客户{i}")
    obj = settings_of(world.a)
    url = reverse("admin:health_healthsettings_recompute", args=[obj.pk])
    response = en(world.a.admin).post(url, follow=True)
    assert "The tenant has 2 customers: the recompute is queued" in response.content.decode()
    (event,) = audits(world.a, "health.recompute")
    assert event.changes == {"queued": True, "customers": 2}
    with tenant_context(world.a.tenant):
        assert HealthSnapshot.objects.count() == 0
    assert settings_of(world.a).computed_on is None
