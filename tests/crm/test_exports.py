"""Background exports (crm.exports): the lists' button above the threshold, the worker's
file (the streamed CSV's bytes exactly), its progress and failures, who sees and downloads
what, and the clean-up."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.urls import reverse
from django.utils import timezone

from crm import exports
from crm.exports import ExportSource, cleanup, run_export
from crm.models import Export, ExportStatus, Notification, Role
from crm.roles import EVERYONE
from crm.tenancy import tenant_context
from customers.models import Customer
from leads.models import LeadStatus
from tests.conftest import wait_for
from tests.factories import MembershipFactory
from tests.leads.factories import make_channel, make_lead, make_tag

pytestmark = pytest.mark.django_db

LEADS = reverse("leads:list")
CUSTOMERS = reverse("customers:list")
EXPORTS = reverse("exports")
CREATE = reverse("export_create")


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def download_url(job) -> str:
    return reverse("export_download", args=[job.public_id])


def jobs(tenant) -> list[Export]:
    with tenant_context(tenant):
        return list(Export.objects.order_by("-created_at", "-id"))


def job_of(tenant, job) -> Export:
    with tenant_context(tenant):
        return Export.objects.get(pk=job.pk)


def some_leads(side, count=3):
    channel = make_channel(side.tenant, name="官网")
    tag = make_tag(side.tenant, "紧急", color="danger")
    made = []
    for i in range(count):
        lead = make_lead(
            side.tenant,
            channel,
            company=f"=Firm {i:02d}",  # a formula: the export neutralises it
            phone=f"+86138000000{i:02d}",
            owner=side.rep if i % 2 else None,
            status=LeadStatus.VALID if i % 3 else LeadStatus.NEW,
        )
        with tenant_context(side.tenant):
            lead.tags.add(tag)
        made.append(lead)
    return made


def request_export(client, kind, query, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(CREATE, {"kind": kind, "query": query})
    assert response.status_code == 302
    assert response["Location"] == EXPORTS
    assert len(callbacks) == 1  # the worker is sent for once the request commits
    return response


def stored_bytes(job) -> bytes:
    return Path(default_storage.path(job.file.name)).read_bytes()


# -- the file is the streamed CSV ----------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    ["", "status=valid&sort=company", "sort=-company&owner={rep}", "q=Firm"],
)
def test_the_background_file_is_the_lead_lists_streamed_csv(
    world, login, query, django_capture_on_commit_callbacks
):
    some_leads(world.a, 7)
    some_leads(world.b, 2)
    query = query.format(rep=world.a.rep.pk)
    client = login(world.a.manager)
    request_export(client, "leads", query, django_capture_on_commit_callbacks)
    [job] = jobs(world.a.tenant)
    assert job.status == ExportStatus.QUEUED and job.kind == "leads"
    assert job.query == query

    assert run_export(world.a.tenant.pk, job.pk) == ExportStatus.DONE

    streamed = client.get(f"{LEADS}?{query}&_export=csv")
    body = streamed.getvalue()
    job = job_of(world.a.tenant, job)
    assert stored_bytes(job) == body
    assert body.startswith("\ufeff".encode())
    assert b"'=Firm" in body  # spreadsheet-safe, as streamed
    download = client.get(download_url(job))
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == body
    assert download["Content-Type"] == "text/csv; charset=utf-8"
    assert download["Content-Disposition"] == streamed["Content-Disposition"]
    assert job.rows_written == body.count(b"\r\n") - 1


def test_the_background_file_is_the_customer_lists_streamed_csv(
    world, en, django_capture_on_commit_callbacks
):
    with tenant_context(world.a.tenant):
        for i in range(5):
            Customer.objects.create(
                tenant=world.a.tenant,
                name=f"+客户 {i}",
                owner=world.a.rep,
                level="A" if i % 2 else "C",
            )
    client = en(world.a.manager)
    request_export(client, "customers", "level=A&sort=name", django_capture_on_commit_callbacks)
    [job] = jobs(world.a.tenant)
    assert job.language == "en"
    run_export(world.a.tenant.pk, job.pk)
    body = client.get(f"{CUSTOMERS}?level=A&sort=name&_export=csv").getvalue()
    job = job_of(world.a.tenant, job)
    assert stored_bytes(job) == body
    assert job.rows_written == 2
    assert body.decode("utf-8-sig").startswith("Name,Level,")  # the requester's language


def test_a_done_export_records_its_progress_and_tells_the_requester(
    world, login, django_capture_on_commit_callbacks
):
    some_leads(world.a, 4)
    request_export(login(world.a.rep), "leads", "", django_capture_on_commit_callbacks)
    [job] = jobs(world.a.tenant)
    assert job.rows_expected == 2  # the rep's own leads, counted when asked
    assert job.requested_by_id == world.a.rep.pk
    run_export(world.a.tenant.pk, job.pk)
    job = job_of(world.a.tenant, job)
    assert job.status == ExportStatus.DONE
    assert job.rows_written == 2 and job.percent == 100
    assert job.started_at and job.finished_at and job.started_at <= job.finished_at
    assert job.filename.startswith("leads-") and job.filename.endswith(".csv")
    assert job.file.name.startswith(f"exports/{world.a.tenant.pk}/")
    assert len(Path(job.file.name).stem) >= 32  # unguessable
    with tenant_context(world.a.tenant):
        [note] = Notification.objects.filter(recipient=world.a.rep)
    assert note.event == exports.EXPORT_DONE
    assert note.link == EXPORTS


def test_a_message_delivered_twice_writes_the_file_once(
    world, login, django_capture_on_commit_callbacks
):
    some_leads(world.a, 2)
    request_export(login(world.a.manager), "leads", "", django_capture_on_commit_callbacks)
    [job] = jobs(world.a.tenant)
    run_export(world.a.tenant.pk, job.pk)
    first = job_of(world.a.tenant, job)
    assert run_export(world.a.tenant.pk, job.pk) is None
    again = job_of(world.a.tenant, job)
    assert again.file.name == first.file.name and again.finished_at == first.finished_at
    # One running on another worker is not started a second time either.
    with tenant_context(world.a.tenant):
        Export.objects.filter(pk=job.pk).update(status=ExportStatus.RUNNING)
    assert run_export(world.a.tenant.pk, job.pk) is None


# -- failures ---------------------------------------------------------------------------------


@pytest.fixture
def source(monkeypatch):
    """register(rows) → a test source "test" whose rows are `rows` (an iterable)."""

    def register(rows):
        monkeypatch.setitem(
            exports._registry,
            "test",
            ExportSource(
                name="test", label="Test", rows=lambda m, q: ("test", rows()), roles=EVERYONE
            ),
        )

    return register


def make_job(side, kind="test", **fields) -> Export:
    with tenant_context(side.tenant):
        return Export.objects.create(
            tenant=side.tenant, kind=kind, requested_by=fields.pop("by", side.rep), **fields
        )


def test_a_failure_is_stored_with_its_error_and_leaves_no_file(world, source, media):
    def rows():
        yield ["a", "b"]
        yield ["1", "2"]
        raise RuntimeError("the disk is on fire")

    source(rows)
    job = make_job(world.a)
    assert run_export(world.a.tenant.pk, job.pk) == ExportStatus.FAILED
    job = job_of(world.a.tenant, job)
    assert job.status == ExportStatus.FAILED
    assert job.error == "the disk is on fire"
    assert not job.file and job.finished_at
    assert not any(p.is_file() for p in media.rglob("*"))  # the partial file removed
    with tenant_context(world.a.tenant):
        [note] = Notification.objects.filter(recipient=world.a.rep)
    assert note.event == exports.EXPORT_FAILED


def test_a_list_no_longer_registered_or_no_longer_allowed_fails_clearly(world, en):
    gone = make_job(world.a, kind="no-such-list", language="en")
    run_export(world.a.tenant.pk, gone.pk)
    assert job_of(world.a.tenant, gone).error == "This list can no longer be exported."
    service = MembershipFactory(tenant=world.a.tenant, role=Role.SERVICE)
    refused = make_job(world.a, kind="leads", by=service, language="en")
    run_export(world.a.tenant.pk, refused.pk)
    refused = job_of(world.a.tenant, refused)
    assert refused.status == ExportStatus.FAILED
    assert "may no longer export" in refused.error


def test_the_page_shows_the_error_of_a_failed_export(world, en):
    make_job(world.a, status=ExportStatus.FAILED, error="the disk is on fire")
    page = en(world.a.rep).get(EXPORTS)
    assert 'data-testid="export-error">the disk is on fire<' in page.text
    assert "every 2s" not in page.text  # nothing pending: no polling
    assert 'data-testid="export-download"' not in page.text


# -- progress -----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_progress_is_committed_while_the_rows_are_still_read(world, source, monkeypatch):
    """The rows are read in one long transaction; rows_written is committed beside it, so
    /exports/ sees it move."""
    monkeypatch.setattr("crm.tables.STREAM_PIECE", 1)  # a piece per row
    monkeypatch.setattr(exports, "PROGRESS_EVERY", 10)
    seen = []

    def committed_rows_written():
        # What another request sees now: a connection of its own (another thread's).
        def read():
            from django.db import connections

            with tenant_context(world.a.tenant):
                seen.append(Export.objects.get(pk=job.pk).rows_written)
            connections.close_all()

        reader = threading.Thread(target=read)
        reader.start()
        reader.join()
        return seen[-1]

    def rows():
        yield ["n"]
        for i in range(1, 61):
            yield [str(i)]
            if i == 40:
                assert wait_for(lambda: committed_rows_written() >= 30, timeout=10)

    source(rows)
    job = make_job(world.a, rows_expected=60)
    assert run_export(world.a.tenant.pk, job.pk) == ExportStatus.DONE
    assert 30 <= seen[-1] < 60
    job = job_of(world.a.tenant, job)
    assert job.rows_written == 60 and job.status == ExportStatus.DONE


# -- who sees what ------------------------------------------------------------------------------


def test_reps_see_their_own_exports_and_managers_the_tenants(world, en):
    other_rep = MembershipFactory(tenant=world.a.tenant, role=Role.REP)
    mine = make_job(world.a, status=ExportStatus.DONE, filename="mine.csv")
    theirs = make_job(world.a, by=other_rep, status=ExportStatus.DONE, filename="theirs.csv")
    for job in (mine, theirs):
        default_storage.save(f"exports/{world.a.tenant.pk}/{job.pk}.csv", _content("a,b\r\n"))
        with tenant_context(world.a.tenant):
            Export.objects.filter(pk=job.pk).update(
                file=f"exports/{world.a.tenant.pk}/{job.pk}.csv"
            )
    rep = en(world.a.rep)
    page = rep.get(EXPORTS)
    assert page.text.count('data-testid="export"') == 1
    assert download_url(mine) in page.text and download_url(theirs) not in page.text
    assert rep.get(download_url(mine)).status_code == 200
    assert rep.get(download_url(theirs)).status_code == 404
    manager = en(world.a.manager)
    page = manager.get(EXPORTS)
    assert page.text.count('data-testid="export"') == 2
    assert manager.get(download_url(theirs)).status_code == 200
    admin = en(world.a.admin)
    assert admin.get(download_url(mine)).status_code == 200
    # Another tenant's admin: not found.
    assert en(world.b.admin).get(download_url(mine)).status_code == 404


def _content(text):
    from django.core.files.base import ContentFile

    return ContentFile(text.encode())


def test_another_tenants_export_is_not_found(world, login):
    job = make_job(world.b, status=ExportStatus.DONE, file="exports/x/y.csv", filename="y.csv")
    assert login(world.a.admin).get(download_url(job)).status_code == 404
    assert login(world.a.manager).get(download_url(job)).status_code == 404


def test_an_export_not_done_or_without_its_file_is_not_found(world, login):
    queued = make_job(world.a)
    lost = make_job(world.a, status=ExportStatus.DONE, file="exports/gone.csv", filename="x.csv")
    client = login(world.a.rep)
    assert client.get(download_url(queued)).status_code == 404
    assert client.get(download_url(lost)).status_code == 404


def test_only_the_lists_readers_may_export_it(world, login, django_capture_on_commit_callbacks):
    service = MembershipFactory(tenant=world.a.tenant, role=Role.SERVICE)
    client = login(service)
    assert client.post(CREATE, {"kind": "leads", "query": ""}).status_code == 403
    assert client.post(CREATE, {"kind": "no-such-list"}).status_code == 404
    assert client.get(CREATE).status_code == 405
    assert not jobs(world.a.tenant)
    # The customer list is open to service agents.
    request_export(client, "customers", "", django_capture_on_commit_callbacks)


def test_a_member_has_at_most_a_few_exports_in_progress(world, en):
    for _ in range(exports.MAX_PENDING):
        make_job(world.a, kind="leads")
    page = en(world.a.rep).post(CREATE, {"kind": "leads", "query": ""}, follow=True)
    assert f"You have {exports.MAX_PENDING} exports in progress" in page.text
    assert len(jobs(world.a.tenant)) == exports.MAX_PENDING


def test_the_query_keeps_the_filters_and_sort_only(
    world, login, django_capture_on_commit_callbacks
):
    request_export(
        login(world.a.manager),
        "leads",
        "status=valid&page=3&_export=csv&count=exact&sort=company",
        django_capture_on_commit_callbacks,
    )
    [job] = jobs(world.a.tenant)
    assert job.query == "status=valid&sort=company"


# -- the screens --------------------------------------------------------------------------------


def test_the_exports_page_polls_while_one_is_in_progress(world, en):
    assert 'data-testid="exports-empty"' in en(world.a.rep).get(EXPORTS).text
    make_job(
        world.a, kind="leads", status=ExportStatus.RUNNING, rows_written=5_000, rows_expected=20_000
    )
    client = en(world.a.rep)
    page = client.get(EXPORTS)
    assert 'hx-trigger="every 2s"' in page.text
    assert '<progress class="w-100" value="5000" max="20000"' in page.text
    assert "5,000 rows written" in page.text and "about 20,000 expected" in page.text
    fragment = client.get(EXPORTS, headers={"HX-Request": "true"})
    assert fragment.text.lstrip().startswith('<div id="exports"')
    assert "<html" not in fragment.text


def test_the_list_button_queues_a_background_export_above_the_threshold(world, en, monkeypatch):
    some_leads(world.a, 3)
    client = en(world.a.manager)
    page = client.get(LEADS, {"status": "valid", "page": 1})
    assert 'data-testid="export-csv"' in page.text
    assert 'data-testid="export-background"' not in page.text

    monkeypatch.setattr(exports, "BACKGROUND_THRESHOLD", 2)
    page = client.get(LEADS, {"sort": "company"})
    assert 'data-testid="export-csv"' not in page.text
    assert f'action="{CREATE}"' in page.text and "csrfmiddlewaretoken" in page.text
    assert 'name="kind" value="leads"' in page.text
    assert 'name="query" value="sort=company"' in page.text
    assert "Export in the background" in page.text
    # Customers too.
    with tenant_context(world.a.tenant):
        for i in range(3):
            Customer.objects.create(tenant=world.a.tenant, name=f"客户{i}", owner=world.a.rep)
    page = client.get(CUSTOMERS)
    assert 'name="kind" value="customers"' in page.text


def test_a_capped_list_exports_in_the_background(world, en, monkeypatch):
    some_leads(world.a, 4)
    monkeypatch.setattr("leads.views.COUNT_CAP", 2)
    page = en(world.a.manager).get(LEADS)
    assert page.context["count_capped"]
    assert 'data-testid="export-background"' in page.text


def test_the_button_is_in_chinese(world, login, monkeypatch):
    some_leads(world.a, 3)
    monkeypatch.setattr(exports, "BACKGROUND_THRESHOLD", 1)
    assert "后台导出" in login(world.a.manager).get(LEADS).text


# -- clean-up -----------------------------------------------------------------------------------


def test_the_clean_up_deletes_week_old_exports_and_fails_lost_ones(world, media):
    now = timezone.now()
    old = make_job(world.a, status=ExportStatus.DONE, created_at=now - timedelta(days=8))
    name = default_storage.save(f"exports/{world.a.tenant.pk}/old.csv", _content("x\r\n"))
    with tenant_context(world.a.tenant):
        Export.objects.filter(pk=old.pk).update(file=name)
    recent = make_job(world.a, status=ExportStatus.DONE, created_at=now - timedelta(days=6))
    lost = make_job(
        world.a, status=ExportStatus.RUNNING, created_at=now - timedelta(hours=2), started_at=now
    )
    running = make_job(world.a, status=ExportStatus.RUNNING, created_at=now - timedelta(minutes=5))
    other = make_job(world.b, status=ExportStatus.DONE, created_at=now - timedelta(days=8))
    with tenant_context(world.a.tenant):
        assert cleanup() == 1
    assert not default_storage.exists(name)
    left = {j.pk: j for j in jobs(world.a.tenant)}
    assert set(left) == {recent.pk, lost.pk, running.pk}
    assert left[lost.pk].status == ExportStatus.FAILED and left[lost.pk].error
    assert left[running.pk].status == ExportStatus.RUNNING
    assert [j.pk for j in jobs(world.b.tenant)] == [other.pk]  # its own tenant's turn


def test_the_clean_up_runs_in_every_active_tenant(world, django_capture_on_commit_callbacks):
    from crm.exports import exports_cleanup

    old = make_job(world.b, created_at=timezone.now() - timedelta(days=8))
    assert exports_cleanup(world.b.tenant.pk) == 1
    assert not jobs(world.b.tenant)
    assert old.pk


# -- on a real worker ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_button_to_the_download_on_a_real_worker(world, login, celery_worker_thread):
    some_leads(world.a, 5)
    client = login(world.a.manager)
    assert client.post(CREATE, {"kind": "leads", "query": "sort=company"}).status_code == 302
    [job] = jobs(world.a.tenant)
    assert wait_for(lambda: job_of(world.a.tenant, job).status == ExportStatus.DONE)
    job = job_of(world.a.tenant, job)
    assert job.rows_written == 5
    download = client.get(download_url(job))
    assert b"".join(download.streaming_content) == (
        client.get(LEADS, {"sort": "company", "_export": "csv"}).getvalue()
    )


def test_tenant_admins_read_their_tenants_exports_in_the_admin(world, login):
    mine = make_job(world.a, kind="leads", filename="leads-20261202.csv")
    make_job(world.b, kind="leads", filename="beta-only.csv")
    client = login(world.a.admin)
    changelist = client.get(reverse("admin:crm_export_changelist"))
    assert changelist.status_code == 200
    assert "beta-only.csv" not in changelist.text
    change = client.get(reverse("admin:crm_export_change", args=[mine.pk]))
    assert change.status_code == 200 and "leads-20261202.csv" in change.text
    assert client.get(reverse("admin:crm_export_add")).status_code == 403
    assert login(world.a.rep).get(reverse("admin:crm_export_changelist")).status_code in (302, 403)


def test_every_member_reaches_their_exports_from_the_user_menu(world, login):
    for member in (world.a.rep, world.a.manager):
        page = login(member).get(reverse("leads:list"))
        assert page.status_code == 200
        assert f'href="{reverse("exports")}" data-testid="menu-exports"' in page.text
