"""Importing legacy lists (F1 import): a CSV or Excel file → a preview → inbound events.

Upload: the file is read (CSV in UTF-8, UTF-8 with BOM or GBK/GB18030; XLSX), its header
row matched to lead fields, every row validated, and the lot kept in an `ImportBatch`
for the preview. Nothing reaches the inbox yet.

Confirm: each valid row becomes one inbound event of the batch (source `import`, its file
line in the event's headers as `import_line`); the worker turns them into leads exactly
like webhook payloads, so de-duplication, tagging and suspect checks all apply.

`ImportBatch.rows` is a list of `{"line": n, "values": {field: text}, "errors": [...]}`,
one per non-blank data row; `ImportBatch.columns` is
`[{"header": "公司名称", "field": "company"}, …]` (field null for an ignored column), so the
preview can show how each column was read.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import os
import re
import unicodedata
import zipfile
from dataclasses import dataclass, field

from django import forms
from django.contrib import messages
from django.core.exceptions import FieldDoesNotExist, PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_http_methods

from crm import normalize
from crm.audit import audit
from crm.models import Membership, Tenant
from crm.services import actor_user, check_tenant
from leads.access import IMPORTERS, access_import
from leads.intake import mapping
from leads.intake.services import UTM_LABELS, inbound_event_receive
from leads.messages import intake_text
from leads.models import (
    Channel,
    ChannelType,
    EventSource,
    EventStatus,
    ImportBatch,
    ImportStatus,
    Lead,
    SourceGrade,
)

# Module constants (tests monkeypatch them): read at call time, never bound as defaults.
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
MAX_ROWS = 5000
MAX_COLUMNS = 100  # columns beyond this are not read at all
PAGE_SIZE = 100  # preview rows per page
FAILED_SHOWN = 200  # failed rows listed in the report; the count covers them all
IMPORT_CHANNEL_NAME = "Excel/CSV 导入"
IMPORT_CHANNEL_GRADE = SourceGrade.C

# Header aliases: data, kept in Chinese and English as people write them. Every lead
# field also matches by its own name (`company`, `contact_name` …). Matching ignores
# case, spaces, "_", "-", "*" and colons (full-width forms included).
HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    "company": ("公司名称", "公司", "公司名", "企业名称", "单位名称", "company", "company name"),
    "contact_name": ("联系人", "姓名", "客户姓名", "联系人姓名", "contact", "contact name"),
    "phone": (
        "手机",
        "电话",
        "手机号",
        "手机号码",
        "电话号码",
        "联系电话",
        "phone",
        "mobile",
        "phone number",
        "tel",
        "telephone",
    ),
    "industry": ("行业", "所属行业", "industry"),
    "message": ("需求", "需求描述", "留言", "咨询内容", "message"),
    "email": ("邮箱", "电子邮箱", "邮件", "email", "e-mail", "mail"),
    "title": ("职位", "职务", "job title", "title"),
    "province": ("省份", "省", "province"),
    "city": ("城市", "市", "city"),
    "industry_remark": ("行业备注", "industry remark"),
    "company_size": ("公司规模", "企业规模", "company size"),
    "budget": ("预算", "budget"),
    "utm_source": ("来源", "utm_source", "source"),
    "utm_campaign": ("活动", "活动名称", "utm_campaign", "campaign"),
    "in_tender": ("是否招标", "in tender"),
    "sample_provided": ("是否提供样品", "sample provided"),
}
CONTACT_FIELDS = ("phone", "email")

_HEADER_NOISE = re.compile(r"[\s_\-*:]+")


def normalize_header(text: str) -> str:
    """'公司名称 ' → '公司名称'; 'Contact Name' and 'contact_name' → 'contactname'."""
    return _HEADER_NOISE.sub("", unicodedata.normalize("NFKC", str(text)).casefold())


def _alias_index() -> dict[str, str]:
    index: dict[str, str] = {}
    for name in mapping.FIELDS:
        index[normalize_header(name)] = name
    for name, aliases in HEADER_ALIASES.items():
        for alias in aliases:
            key = normalize_header(alias)
            if index.setdefault(key, name) != name:
                raise ValueError(f"header alias {alias!r} names both {index[key]} and {name}")
    return index


_ALIASES = _alias_index()


class ImportFileError(ValueError):
    """The file cannot be read as a list; the message is shown on the form."""


# ---------------------------------------------------------------------------------------
# Reading the file


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float) and value.is_integer():
        text = str(int(value))  # Excel keeps phone numbers typed as numbers as floats
    elif isinstance(value, datetime.datetime):
        text = value.date().isoformat() if value.time() == datetime.time() else value.isoformat()
    elif isinstance(value, datetime.date | datetime.time):
        text = value.isoformat()
    else:
        text = str(value)
    # PostgreSQL's jsonb refuses NUL characters; no list needs them.
    return text.replace("\x00", "").strip()


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ImportFileError(
        _("The file's text encoding was not recognised: save it as CSV UTF-8 or as Excel.")
    )


def _csv_records(data: bytes):
    text = _decode(data)
    first_line = text.split("\n", 1)[0]
    delimiter = max(",\t;", key=first_line.count) if first_line else ","
    if first_line.count(delimiter) == 0:
        delimiter = ","
    try:
        for record in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter):
            yield record[:MAX_COLUMNS]
    except csv.Error as exc:
        raise ImportFileError(
            _("The CSV file could not be read: %(error)s") % {"error": exc}
        ) from None


def _xlsx_records(uploaded_file):
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    # A damaged workbook can fail on opening or only when a sheet's XML is parsed.
    broken = (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError, SyntaxError)
    unreadable = _("The Excel file could not be read: save it again as .xlsx or as CSV.")
    try:
        workbook = openpyxl.load_workbook(uploaded_file, read_only=True, data_only=True)
    except broken:
        raise ImportFileError(unreadable) from None
    try:
        sheet = workbook.active
        if sheet is None:
            return
        yield from sheet.iter_rows(max_col=MAX_COLUMNS, values_only=True)
    except broken:
        raise ImportFileError(unreadable) from None
    finally:
        workbook.close()


def _is_xlsx(uploaded_file) -> bool:
    uploaded_file.seek(0)
    magic = uploaded_file.read(4)
    uploaded_file.seek(0)
    return magic == b"PK\x03\x04"


def read_rows(uploaded_file) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """(headers, [(line, cells), …]) of a CSV or XLSX upload.

    The first non-blank row is the header; blank rows are skipped but keep their line
    numbers, so a line here is the row number the user sees in Excel. Raises
    ImportFileError for a file too big, too long, unreadable or without a header."""
    size = getattr(uploaded_file, "size", None)
    if size is not None and size > MAX_UPLOAD_BYTES:
        raise ImportFileError(
            _("The file is too big (%(size)s MB): the limit is %(limit)s MB.")
            % {
                "size": f"{size / 1024 / 1024:.1f}",
                "limit": f"{MAX_UPLOAD_BYTES / 1024 / 1024:g}",
            }
        )
    name = (getattr(uploaded_file, "name", "") or "").lower()
    if name.endswith(".xls"):
        raise ImportFileError(
            _("Old .xls files are not supported: save the sheet as .xlsx or as CSV.")
        )
    if _is_xlsx(uploaded_file):
        records = _xlsx_records(uploaded_file)
    else:
        data = uploaded_file.read(MAX_UPLOAD_BYTES + 1)
        if len(data) > MAX_UPLOAD_BYTES:
            raise ImportFileError(
                _("The file is too big: the limit is %(limit)s MB.")
                % {"limit": f"{MAX_UPLOAD_BYTES / 1024 / 1024:g}"}
            )
        records = _csv_records(data)

    headers: list[str] | None = None
    rows: list[tuple[int, list[str]]] = []
    for line, record in enumerate(records, start=1):
        cells = [_cell_text(v) for v in record]
        if not any(cells):
            continue
        if headers is None:
            headers = cells
            continue
        if len(rows) >= MAX_ROWS:
            raise ImportFileError(
                _("The file has more than %(limit)s rows: split it into smaller files.")
                % {"limit": MAX_ROWS}
            )
        rows.append((line, cells))
    if headers is None:
        raise ImportFileError(_("The file is empty."))
    return headers, rows


# ---------------------------------------------------------------------------------------
# Headers and rows


def match_headers(headers: list[str]) -> list[str | None]:
    """The lead field each column feeds, or None for a column that is ignored."""
    return [_ALIASES.get(normalize_header(h)) if h else None for h in headers]


def row_values(fields: list[str | None], cells: list[str]) -> dict[str, str]:
    """{field: text} of one row; of two columns feeding one field, the first non-empty
    value wins (a list with both 手机 and 电话)."""
    values: dict[str, str] = {}
    for name, cell in zip(fields, cells, strict=False):
        if name and cell and name not in values:
            values[name] = cell
    return values


def validate_row(values: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """(values as they will be imported, errors). Company sizes written as the form's
    classes ("1-50人") become their class number."""
    values = dict(values)
    errors: list[str] = []
    if not any(values.get(f) for f in CONTACT_FIELDS):
        errors.append(_("A phone number or an e-mail address is needed."))
    phone = values.get("phone")
    if phone and normalize.parse_phone(phone) is None:
        errors.append(_("Phone number not recognised: %(phone)s") % {"phone": phone})
    email = values.get("email")
    if email and not normalize.is_valid_email(email):
        errors.append(_("E-mail address is malformed: %(email)s") % {"email": email})
    size = values.get("company_size")
    if size:
        if mapping.company_size_class(size) is not None:
            values["company_size"] = str(mapping.company_size_class(size))
        elif not (size.isdigit() and int(size) <= 32767):
            errors.append(
                _("Company size must be a whole number or one of %(choices)s, not %(value)s")
                % {"choices": "、".join(mapping.COMPANY_SIZE_MAP), "value": size}
            )
    for name in ("in_tender", "sample_provided"):
        if values.get(name):
            try:
                mapping.convert(name, values[name])
            except mapping.MappingError as exc:
                errors.append(str(exc))
    return values, errors


@dataclass
class ParsedFile:
    filename: str
    columns: list[dict] = field(default_factory=list)  # [{"header", "field"}]
    rows: list[dict] = field(default_factory=list)  # [{"line", "values", "errors"}]
    header_line: int = 1


def parse_file(uploaded_file) -> ParsedFile:
    """Read, match and validate a whole upload. Raises ImportFileError."""
    headers, records = read_rows(uploaded_file)
    fields = match_headers(headers)
    if not any(f in CONTACT_FIELDS for f in fields):
        raise ImportFileError(
            _(
                "No phone or e-mail column found in the header row (%(headers)s): name one "
                "column 手机 / phone or 邮箱 / email."
            )
            % {"headers": "、".join(h for h in headers if h) or "—"}
        )
    parsed = ParsedFile(
        filename=os.path.basename(getattr(uploaded_file, "name", "") or "")[:200],
        columns=[{"header": h, "field": f} for h, f in zip(headers, fields, strict=True) if h],
    )
    for line, cells in records:
        values, errors = validate_row(row_values(fields, cells))
        parsed.rows.append({"line": line, "values": values, "errors": errors})
    return parsed


def field_label(name: str) -> str:
    try:
        return str(Lead._meta.get_field(name).verbose_name)
    except FieldDoesNotExist:
        return str(UTM_LABELS.get(name, name))


# ---------------------------------------------------------------------------------------
# Writes


def import_channel_default(*, tenant: Tenant, acting_member: Membership | None) -> Channel:
    """The tenant's first active import channel, created (audited) on first use."""
    check_tenant(tenant, acting_member)
    channel = (
        Channel.objects.filter(type=ChannelType.IMPORT, is_active=True)
        .order_by("created_at", "pk")
        .first()
    )
    if channel is None:
        channel = Channel.objects.create(
            tenant=tenant,
            name=IMPORT_CHANNEL_NAME,
            type=ChannelType.IMPORT,
            default_grade=IMPORT_CHANNEL_GRADE,
        )
        audit(tenant=tenant, actor=actor_user(acting_member), action="channel.create", obj=channel)
    return channel


def import_batch_create(
    *,
    tenant: Tenant,
    acting_member: Membership | None,
    channel: Channel | None,
    parsed: ParsedFile,
) -> ImportBatch:
    """A previewed batch of `parsed`'s rows, into `channel` (else the import channel)."""
    check_tenant(tenant, acting_member, channel)
    with transaction.atomic():
        channel = channel or import_channel_default(tenant=tenant, acting_member=acting_member)
        return ImportBatch.objects.create(
            tenant=tenant,
            channel=channel,
            uploaded_by=actor_user(acting_member),
            filename=parsed.filename or "import",
            columns=parsed.columns,
            rows=parsed.rows,
            status=ImportStatus.PREVIEW,
        )


def import_batch_confirm(
    *, tenant: Tenant, acting_member: Membership | None, batch: ImportBatch
) -> int | None:
    """Queue every valid row of a previewed batch; the number queued, or None if the
    batch was already confirmed (by a double click or a colleague): claimed by one
    conditional UPDATE, so a batch is imported once."""
    check_tenant(tenant, acting_member, batch)
    with transaction.atomic():
        return _confirm(tenant, acting_member, batch)


def _confirm(tenant: Tenant, acting_member: Membership | None, batch: ImportBatch) -> int | None:
    now = timezone.now()
    claimed = ImportBatch.objects.filter(pk=batch.pk, status=ImportStatus.PREVIEW).update(
        status=ImportStatus.CONFIRMED, confirmed_at=now
    )
    if claimed != 1:
        return None
    batch.status, batch.confirmed_at = ImportStatus.CONFIRMED, now
    rows = batch.rows
    queued = 0
    for row in rows:
        if row["errors"]:
            continue
        values = row["values"]
        inbound_event_receive(
            channel=batch.channel,
            raw_body=json.dumps(values, ensure_ascii=False).encode(),
            source=EventSource.IMPORT,
            payload=values,
            headers={"import_line": row["line"]},
            # Belt and braces: the inbox's unique key makes a second event per line
            # impossible even if the claim above were ever bypassed.
            idempotency_key=f"import:{batch.public_id}:{row['line']}",
            batch=batch,
        )
        queued += 1
    audit(
        tenant=tenant,
        actor=actor_user(acting_member),
        action="import.confirm",
        obj=batch,
        changes={"rows": queued},
    )
    return queued


# ---------------------------------------------------------------------------------------
# Reads


def import_report(batch: ImportBatch) -> dict:
    """Where the batch's events stand; two queries whatever the batch's size."""
    counts = batch.events.order_by().aggregate(
        total=Count("pk"),
        created=Count("pk", filter=Q(status=EventStatus.PROCESSED, lead__revisit_of__isnull=True)),
        duplicates=Count(
            "pk", filter=Q(status=EventStatus.PROCESSED, lead__revisit_of__isnull=False)
        ),
        failed=Count("pk", filter=Q(status=EventStatus.FAILED)),
        pending=Count("pk", filter=Q(status=EventStatus.RECEIVED)),
    )
    failed_rows = []
    if counts["failed"]:
        failed_rows = [
            {
                "line": (headers or {}).get("import_line"),
                "error": intake_text(detail) if detail else error,
            }
            for headers, error, detail in batch.events.filter(status=EventStatus.FAILED)
            .order_by("pk")
            .values_list("headers", "error", "error_detail")[:FAILED_SHOWN]
        ]
    rows = batch.rows
    counts["not_imported"] = sum(1 for r in rows if r["errors"])
    counts["failed_rows"] = failed_rows
    counts["failed_more"] = counts["failed"] - len(failed_rows)
    return counts


def import_preview(batch: ImportBatch, page_number) -> dict:
    columns, rows = batch.columns, batch.rows
    if columns:
        fields = list(dict.fromkeys(c["field"] for c in columns if c["field"]))
    else:  # a batch without a header record: the fields its rows carry
        present = {f for r in rows for f in r["values"]}
        fields = [f for f in mapping.FIELDS if f in present]
    page = Paginator(rows, PAGE_SIZE).get_page(page_number)
    invalid = sum(1 for r in rows if r["errors"])
    return {
        "columns": columns,
        "ignored": [c["header"] for c in columns if not c["field"]],
        "headings": [field_label(f) for f in fields],
        "page": page,
        "page_rows": [
            {
                "line": r["line"],
                "cells": [r["values"].get(f, "") for f in fields],
                "errors": r["errors"],
            }
            for r in page.object_list
        ],
        "total": len(rows),
        "valid": len(rows) - invalid,
        "invalid": invalid,
    }


# ---------------------------------------------------------------------------------------
# Form and views


class ImportUploadForm(forms.Form):
    file = forms.FileField(
        label=gettext_lazy("File"),
        help_text=gettext_lazy("CSV (UTF-8 or GBK) or Excel .xlsx; the first row is the header."),
        widget=forms.FileInput(attrs={"accept": ".csv,.txt,.xlsx"}),
    )
    channel = forms.ModelChoiceField(
        label=gettext_lazy("Channel"),
        queryset=Channel.objects.none(),
        required=False,
        empty_label=None,
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        queryset = Channel.objects.filter(type=ChannelType.IMPORT, is_active=True).order_by(
            "name", "pk"
        )
        self.channels = list(queryset)
        self.fields["channel"].queryset = queryset
        # With one import channel (or none yet, see import_channel_default) it is implied.
        self.fields["channel"].required = len(self.channels) > 1
        self.parsed: ParsedFile | None = None

    def clean_file(self):
        uploaded = self.cleaned_data["file"]
        try:
            self.parsed = parse_file(uploaded)
        except ImportFileError as exc:
            raise ValidationError(str(exc)) from None
        return uploaded


def _require_importer(request: HttpRequest) -> None:
    if not request.membership or request.membership.role not in IMPORTERS:
        raise PermissionDenied(_("Importing leads is for managers, marketing and admins."))


@require_http_methods(["GET", "POST"])
def import_upload(request: HttpRequest) -> HttpResponse:
    _require_importer(request)
    if request.method == "POST":
        form = ImportUploadForm(request.POST, request.FILES)
        if form.is_valid():
            batch = import_batch_create(
                tenant=request.tenant,
                acting_member=request.membership,
                channel=form.cleaned_data["channel"],
                parsed=form.parsed,
            )
            return redirect("leads:import_batch", public_id=batch.public_id)
    else:
        form = ImportUploadForm()
    recent = ImportBatch.objects.select_related("channel", "uploaded_by").order_by(
        "-created_at", "-pk"
    )[:10]
    context = {
        "form": form,
        "recent": recent,
        "max_mb": f"{MAX_UPLOAD_BYTES / 1024 / 1024:g}",
        "max_rows": MAX_ROWS,
        "channel_name": IMPORT_CHANNEL_NAME,
        "channel_grade": IMPORT_CHANNEL_GRADE.value,
        "aliases": [(field_label(f), a) for f, a in HEADER_ALIASES.items()],
        "size_classes": list(mapping.COMPANY_SIZE_MAP),
    }
    return TemplateResponse(request, "leads/import_upload.html", context)


@require_http_methods(["GET", "POST"])
def import_batch(request: HttpRequest, public_id) -> HttpResponse:
    batch = access_import(request.membership, public_id)
    if request.method == "POST":
        queued = None
        if batch.status == ImportStatus.PREVIEW:
            queued = import_batch_confirm(
                tenant=request.tenant, acting_member=request.membership, batch=batch
            )
        if queued is None:
            messages.info(request, _("This import was already confirmed."))
        else:
            messages.success(
                request,
                ngettext(
                    "%(count)s row queued for import: the report below tracks it.",
                    "%(count)s rows queued for import: the report below tracks them.",
                    queued,
                )
                % {"count": queued},
            )
        return redirect("leads:import_batch", public_id=batch.public_id)
    context = {"batch": batch}
    if batch.status == ImportStatus.PREVIEW:
        context["preview"] = import_preview(batch, request.GET.get("page"))
    else:
        context["report"] = import_report(batch)
    return TemplateResponse(request, "leads/import_batch.html", context)
