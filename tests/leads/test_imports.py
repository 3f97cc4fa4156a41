"""F1 import: upload a CSV/Excel list, preview it, confirm once, follow the report."""

from __future__ import annotations

import csv
import io

import openpyxl
import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from crm.models import Role
from crm.tenancy import tenant_context
from leads.intake import imports
from leads.intake.services import inbound_event_process
from leads.models import (
    Channel,
    ChannelType,
    EventSource,
    EventStatus,
    ImportBatch,
    ImportStatus,
    InboundEvent,
    Lead,
    SourceGrade,
)
from tests.factories import MembershipFactory
from tests.leads.factories import make_channel

UPLOAD_URL = reverse("leads:import")

GOOD_ROWS = [
    ["宁波恒力液压科技有限公司", "王工", "13812345678", "制造业", "wang@example.com"],
    ["杭州海能电气有限公司", "李经理", "13912345678", "能源", ""],
    ["宁波恒力液压科技有限公司", "王工", "138 1234 5678", "制造业", ""],  # same phone: revisit
]
BAD_ROW = ["苏州某某公司", "赵总", "12345", "其他", ""]  # the phone does not parse


@pytest.fixture
def en(client):
    """The tests read English text (the Chinese catalogue is filled in separately)."""
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return client


def xlsx_file(rows, name="leads.xlsx") -> SimpleUploadedFile:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return SimpleUploadedFile(
        name,
        buffer.getvalue(),
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )


def csv_file(rows, name="leads.csv", encoding="utf-8-sig") -> SimpleUploadedFile:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return SimpleUploadedFile(name, buffer.getvalue().encode(encoding), content_type="text/csv")


def upload(client, file, **data):
    return client.post(UPLOAD_URL, {"file": file, **data})


def batch_of(response) -> ImportBatch:
    """The batch an upload redirected to (read in the uploader's tenant)."""
    assert response.status_code == 302, response.context["form"].errors
    public_id = response["Location"].rstrip("/").rsplit("/", 1)[-1]
    with tenant_context(response.wsgi_request.tenant):
        return ImportBatch.objects.select_related("channel").get(public_id=public_id)


def process_all(tenant, batch) -> None:
    """What the worker does after commit (on_commit never fires in a test transaction)."""
    with tenant_context(tenant):
        for event_id in batch.events.order_by("pk").values_list("pk", flat=True):
            inbound_event_process(event_id=event_id)


def phone_rows(count: int) -> list[list[str]]:
    return [["公司名称", "手机"]] + [[f"公司{i}", f"1381234{i:04d}"] for i in range(count)]


def test_it_imports_an_xlsx_from_preview_to_report(world, login, en):
    client = login(world.a.manager)
    header = ["公司名称", "联系人", "手机", "行业", "邮箱", "微信号"]
    rows = [header] + [[*r, "wx"] for r in GOOD_ROWS[:2]] + [[*BAD_ROW, "wx"], GOOD_ROWS[2]]
    batch = batch_of(upload(client, xlsx_file(rows)))
    assert batch.tenant == world.a.tenant and batch.status == ImportStatus.PREVIEW

    page = client.get(reverse("leads:import_batch", args=[batch.public_id]))
    preview = page.context["preview"]
    assert (preview["valid"], preview["invalid"]) == (3, 1)
    assert preview["ignored"] == ["微信号"]
    bad = [r for r in preview["page_rows"] if r["errors"]]
    assert [r["line"] for r in bad] == [4]
    assert "Phone number not recognised: 12345" in bad[0]["errors"]
    assert 'class="table-danger"' in page.text and "微信号" in page.text
    assert "Confirm import of 3 valid rows" in page.text

    confirmed = client.post(reverse("leads:import_batch", args=[batch.public_id]))
    assert confirmed.status_code == 302
    assert confirmed["Location"] == reverse("leads:import_batch", args=[batch.public_id])
    with tenant_context(world.a.tenant):
        events = list(InboundEvent.objects.filter(batch=batch).order_by("pk"))
        assert len(events) == 3
        assert {e.source for e in events} == {EventSource.IMPORT}
        assert [e.headers["import_line"] for e in events] == [2, 3, 5]
        assert events[0].payload == {
            "company": "宁波恒力液压科技有限公司",
            "contact_name": "王工",
            "phone": "13812345678",
            "industry": "制造业",
            "email": "wang@example.com",
        }
        batch.refresh_from_db()
        assert batch.status == ImportStatus.CONFIRMED and batch.confirmed_at is not None

    pending = client.get(reverse("leads:import_batch", args=[batch.public_id]))
    assert pending.context["report"]["pending"] == 3
    assert 'hx-trigger="every 2s"' in pending.text and 'hx-select="#import-report"' in pending.text

    process_all(world.a.tenant, batch)
    report_page = client.get(reverse("leads:import_batch", args=[batch.public_id]))
    report = report_page.context["report"]
    assert (report["created"], report["duplicates"], report["failed"], report["pending"]) == (
        2,
        1,
        0,
        0,
    )
    assert report["not_imported"] == 1
    assert 'hx-trigger="every 2s"' not in report_page.text  # nothing left to wait for
    with tenant_context(world.a.tenant):
        assert Lead.objects.count() == 3
        assert Lead.objects.revisits().count() == 1


def test_it_reads_a_gbk_csv_with_chinese_headers(world, login, en):
    client = login(world.a.admin)
    rows = [
        ["公司", "姓名", "手机号", "需求描述", "公司规模", "来源", "职位"],
        ["上海电力设备有限公司", "陈工", "13712345678", "需要报价", "51-200人", "展会", "采购"],
        ["深圳某厂", "周工", "13612345678", "", "很大", "", ""],
    ]
    batch = batch_of(upload(client, csv_file(rows, encoding="gbk")))
    data = batch.rows
    assert data[0]["values"] == {
        "company": "上海电力设备有限公司",
        "contact_name": "陈工",
        "phone": "13712345678",
        "message": "需要报价",
        "company_size": "2",
        "utm_source": "展会",
        "title": "采购",
    }
    assert data[0]["errors"] == []
    assert data[1]["errors"] and "Company size" in data[1]["errors"][0]


def test_it_reads_utf8_csv_with_english_and_field_name_headers(world, login):
    client = login(world.a.manager)
    rows = [
        ["Company", "contact_name", "E-mail", "Phone"],
        ["ACME", "Ann", "ann@example.com", ""],
        ["ACME", "Bob", "not-an-email", ""],
        ["", "", "", ""],  # blank lines are skipped, not errors
        ["ACME", "Cy", "", ""],
    ]
    batch = batch_of(upload(client, csv_file(rows, encoding="utf-8")))
    data = batch.rows
    assert [(r["line"], bool(r["errors"])) for r in data] == [(2, False), (3, True), (5, True)]
    assert data[0]["values"] == {
        "company": "ACME",
        "contact_name": "Ann",
        "email": "ann@example.com",
    }


def test_it_needs_a_phone_or_email_column(world, login, en):
    client = login(world.a.manager)
    response = upload(client, csv_file([["公司名称", "联系人"], ["某公司", "王工"]]))
    assert response.status_code == 200
    assert "No phone or e-mail column" in str(response.context["form"].errors["file"])
    with tenant_context(world.a.tenant):
        assert not ImportBatch.objects.exists()


def test_it_refuses_files_too_big_or_too_long(world, login, en, monkeypatch):
    client = login(world.a.manager)
    monkeypatch.setattr(imports, "MAX_ROWS", 2)
    response = upload(client, csv_file(phone_rows(3)))
    assert "more than 2 rows" in str(response.context["form"].errors["file"])
    assert upload(client, csv_file(phone_rows(2))).status_code == 302

    monkeypatch.setattr(imports, "MAX_UPLOAD_BYTES", 100)
    response = upload(client, xlsx_file(phone_rows(2)))
    assert "too big" in str(response.context["form"].errors["file"])


def test_it_refuses_unreadable_files(world, login, en):
    client = login(world.a.manager)
    response = upload(client, SimpleUploadedFile("old.xls", b"\xd0\xcf\x11\xe0junk"))
    assert ".xls" in str(response.context["form"].errors["file"])
    response = upload(client, SimpleUploadedFile("broken.xlsx", b"PK\x03\x04not a zip"))
    assert "Excel file could not be read" in str(response.context["form"].errors["file"])
    response = upload(client, SimpleUploadedFile("empty.csv", b"\n\n"))
    assert "empty" in str(response.context["form"].errors["file"])


def test_it_creates_the_import_channel_on_first_upload(world, login, en):
    client = login(world.a.manager)
    page = client.get(UPLOAD_URL)
    assert page.status_code == 200
    assert 'data-testid="auto-channel"' in page.text and "Excel/CSV 导入" in page.text

    batch = batch_of(upload(client, csv_file(phone_rows(1))))
    batch_of(upload(client, csv_file(phone_rows(1))))
    with tenant_context(world.a.tenant):
        channel = Channel.objects.get(type=ChannelType.IMPORT)  # one, reused
        assert channel.name == "Excel/CSV 导入" and channel.default_grade == SourceGrade.C
        assert batch.channel_id == channel.pk and batch.uploaded_by == world.a.manager.user


def test_it_imports_into_the_chosen_import_channel(world, login):
    client = login(world.a.manager)
    make_channel(world.a.tenant, name="旧客服系统", type=ChannelType.IMPORT)
    chosen = make_channel(world.a.tenant, name="微信导出", type=ChannelType.IMPORT)
    web = make_channel(world.a.tenant, name="官网")  # not an import channel
    foreign = make_channel(world.b.tenant, name="别人的导入", type=ChannelType.IMPORT)

    page = client.get(UPLOAD_URL)
    assert "微信导出" in page.text and "官网" not in page.text and "别人的导入" not in page.text
    for wrong in ("", web.pk, foreign.pk):
        response = upload(client, csv_file(phone_rows(1)), channel=wrong)
        assert response.status_code == 200 and "channel" in response.context["form"].errors
    batch = batch_of(upload(client, csv_file(phone_rows(1)), channel=chosen.pk))
    assert batch.channel_id == chosen.pk


def test_it_confirms_a_batch_only_once(world, login):
    client = login(world.a.manager)
    batch = batch_of(upload(client, csv_file(phone_rows(3))))
    url = reverse("leads:import_batch", args=[batch.public_id])
    assert client.post(url).status_code == 302
    assert client.post(url).status_code == 302
    # A stale copy (a second tab, a double click in flight) loses the conditional claim.
    with tenant_context(world.a.tenant):
        assert (
            imports.import_batch_confirm(tenant=batch.tenant, acting_member=None, batch=batch)
            is None
        )
        assert batch.events.count() == 3


def test_it_lets_marketing_import_but_not_reps(world, login):
    marketing = MembershipFactory(tenant=world.a.tenant, role=Role.MARKETING)
    assert login(marketing).get(UPLOAD_URL).status_code == 200

    client = login(world.a.rep)
    assert client.get(UPLOAD_URL).status_code == 403
    assert upload(client, csv_file(phone_rows(1))).status_code == 403
    with tenant_context(world.a.tenant):
        assert not ImportBatch.objects.exists()


def test_it_hides_other_tenants_batches(world, login):
    channel = make_channel(world.b.tenant, name="导入", type=ChannelType.IMPORT)
    with tenant_context(world.b.tenant):
        theirs = ImportBatch.objects.create(
            tenant=world.b.tenant,
            channel=channel,
            filename="b.csv",
            rows=[{"line": 2, "values": {"phone": "13812345678"}, "errors": []}],
        )
    client = login(world.a.admin)
    url = reverse("leads:import_batch", args=[theirs.public_id])
    assert client.get(url).status_code == 404
    assert client.post(url).status_code == 404
    with tenant_context(world.b.tenant):
        theirs.refresh_from_db()
        assert theirs.status == ImportStatus.PREVIEW
        assert not theirs.events.exists()


def test_it_lists_failed_rows_with_their_line(world, login, en):
    client = login(world.a.manager)
    batch = batch_of(upload(client, csv_file(phone_rows(3))))
    client.post(reverse("leads:import_batch", args=[batch.public_id]))
    with tenant_context(world.a.tenant):
        failing = batch.events.get(headers__import_line=3)
        InboundEvent.objects.filter(pk=failing.pk).update(
            status=EventStatus.FAILED, error="The channel's mapping is broken."
        )
    process_all(world.a.tenant, batch)

    page = client.get(reverse("leads:import_batch", args=[batch.public_id]))
    report = page.context["report"]
    assert (report["created"], report["failed"], report["pending"]) == (2, 1, 0)
    assert report["failed_rows"] == [{"line": 3, "error": "The channel's mapping is broken."}]
    assert 'data-testid="failed-rows"' in page.text
    assert "The channel&#x27;s mapping is broken." in page.text


def test_it_paginates_the_preview(world, login, monkeypatch):
    monkeypatch.setattr(imports, "PAGE_SIZE", 10)
    client = login(world.a.manager)
    batch = batch_of(upload(client, csv_file(phone_rows(25))))
    url = reverse("leads:import_batch", args=[batch.public_id])
    first = client.get(url).context["preview"]
    assert [r["line"] for r in first["page_rows"]][:2] == [2, 3] and len(first["page_rows"]) == 10
    last = client.get(url, {"page": 3}).context["preview"]
    assert [r["line"] for r in last["page_rows"]] == list(range(22, 27))
    assert last["valid"] == 25


def _report_queries(client, tenant, rows: int) -> int:
    batch = batch_of(upload(client, csv_file(phone_rows(rows))))
    url = reverse("leads:import_batch", args=[batch.public_id])
    client.post(url)
    with tenant_context(tenant):
        first = batch.events.order_by("pk").first()
        InboundEvent.objects.filter(pk=first.pk).update(status=EventStatus.FAILED, error="x")
    process_all(tenant, batch)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.context["report"]["created"] + response.context["report"]["failed"] == rows
    return len(queries)


def test_it_reports_in_constant_queries(world, login):
    client = login(world.a.manager)
    small = _report_queries(client, world.a.tenant, 3)
    with tenant_context(world.a.tenant):
        Lead.objects.all().delete()  # the second file's phones would be revisits otherwise
    large = _report_queries(client, world.a.tenant, 30)
    assert large == small
