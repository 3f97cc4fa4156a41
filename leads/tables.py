"""The lead list (django-tables2). Cells are rendered in Python, not per-cell templates:
a 50-row page has some 600 cells."""

from __future__ import annotations

from collections import defaultdict

import django_tables2 as tables
from django.db.models import F
from django.utils.encoding import force_str
from django.utils.html import conditional_escape, format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crm.formatting import format_datetime, format_phone
from crm.models import Membership
from crm.tables import EXPORT_CHUNK, chunks, detail_url_maker, spreadsheet_safe
from leads.models import Channel, Lead, LeadStatus

_STATUS_LABELS = dict(LeadStatus.choices)  # get_status_display() costs more per call


def _column(label, **kwargs):
    # Plain columns whose render_* method takes the record and handles empty values:
    # django-tables2 never substitutes its default, and body_rows() can call them as is.
    kwargs.setdefault("orderable", "order_by" in kwargs)
    return tables.Column(verbose_name=label, empty_values=(), **kwargs)


class LeadTable(tables.Table):
    """Every sort key ends with the id, so pages are stable. Created-at, status and channel
    sorts follow the model's indexes (channel by id: grouped, not alphabetical, since a
    sort on the joined name would read the whole tenant); company, contact and grade
    sorts have no index yet (see bench/README.md, "Leads list")."""

    # Rendered in Python: DateTimeColumn compiles a template per cell.
    created_at = _column(_("created at"), order_by=("created_at", "id"))
    company = _column(_("company"), order_by=("company", "id"))
    contact_name = _column(_("contact"), order_by=("contact_name", "id"))
    phone = _column(_("phone"))
    channel = _column(_("channel"), order_by=("channel_id", "-created_at", "-id"))
    source_grade = _column(_("source grade"), order_by=("source_grade", "-created_at", "-id"))
    # Highest first when descending, unscored (not dispatched yet) last: see order_score.
    score = _column(_("lead score"), orderable=True)
    status = _column(_("status"), order_by=("status", "-created_at", "-id"))
    owner = _column(_("owner"))
    tags = _column(_("tags"))
    flags = _column(_("flags"), accessor="is_suspect")
    region = _column(_("province/city"), accessor="province")

    class Meta:
        model = Lead
        fields = []  # the columns above, in that order
        attrs = {"class": "table table-hover table-sm align-middle mb-0"}
        empty_text = _("No lead matches these filters.")
        # Column names, not ORM paths: django-tables2 silently drops anything else.
        order_by = ("-created_at",)
        per_page = 50

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._detail_url = detail_url_maker("leads:detail")

    def order_score(self, queryset, is_descending):
        """By score with the unscored at the end of a descending sort (PostgreSQL would
        put NULLs first), then by id: both directions are one scan of the index
        `lead_score` (tenant, score DESC NULLS LAST, id DESC), forwards or backwards."""
        if is_descending:
            keys = (F("score").desc(nulls_last=True), F("id").desc())
        else:
            keys = (F("score").asc(nulls_first=True), F("id").asc())
        return queryset.order_by(*keys), True

    # -- HTML cells ----------------------------------------------------------------------
    # Every render_* takes the record alone (all columns have empty_values=()), so the
    # page body can call them directly: see body_rows().

    def body_rows(self):
        """The page's <tr> elements, rendered in one pass.

        django-tables2's own row rendering costs about 0.1 ms per cell (an
        inspect.signature() and an accessor walk per cell, a template node per cell and
        per attribute): some 55 ms for 50 rows of 11 columns. The same render_* methods
        called directly cost a tenth of that. Headers, sorting, pagination and TableExport
        remain django-tables2's.
        """
        renderers = [getattr(self, f"render_{column.name}") for column in self.columns]
        rows = []
        for row in self.paginated_rows:
            record = row.record
            cells = "".join(
                f"<td>{conditional_escape(render(record))}</td>" for render in renderers
            )
            rows.append(mark_safe(f"<tr>{cells}</tr>"))  # noqa: S308 (cells escaped above)
        return rows

    def render_created_at(self, record):
        return format_datetime(record.created_at)

    def render_company(self, record):
        return format_html(
            '<a href="{}">{}</a>',
            self._detail_url(record.public_id),
            record.company
            or record.contact_name
            or format_phone(record.phone)
            or record.email
            or gettext("(no name)"),
        )

    def render_contact_name(self, record):
        return record.contact_name or "—"

    def render_phone(self, record):
        return format_phone(record.phone) or "—"

    def render_channel(self, record):
        return record.channel.name

    def render_source_grade(self, record):
        return record.source_grade or "—"

    def render_score(self, record):
        return "—" if record.score is None else str(record.score)

    def render_status(self, record):
        return _STATUS_LABELS.get(record.status, record.status)

    def render_owner(self, record):
        return record.owner.display_name if record.owner_id else "—"

    def render_tags(self, record):
        tags = record.tags.all()  # prefetched
        if not tags:
            return "—"
        return format_html_join(
            " ",
            '<span class="badge text-bg-{}">{}</span>',
            ((t.color or "secondary", t.name) for t in tags),
        )

    def render_flags(self, record):
        parts = []
        if record.revisit_of_id:
            parts.append(
                format_html(
                    '<span class="badge text-bg-info" title="{}">↩</span>',
                    gettext("Revisit of %(lead)s") % {"lead": record.revisit_of},
                )
            )
        if record.is_suspect:
            parts.append(
                format_html(
                    '<span class="badge text-bg-warning" title="{}">⚠</span>',
                    "\n".join(record.suspect_reason_texts()) or gettext("Flagged as suspect"),
                )
            )
        return mark_safe(" ".join(parts))  # noqa: S308 (built by format_html)

    def render_region(self, record):
        return self.value_region(record) or "—"

    # -- plain values (CSV export) -------------------------------------------------------

    def value_created_at(self, record):
        return self.render_created_at(record)

    def value_company(self, record):
        return record.company

    def value_contact_name(self, record):
        return record.contact_name

    def value_phone(self, record):
        return record.phone

    def value_source_grade(self, record):
        return record.source_grade

    def value_score(self, record):
        return "" if record.score is None else record.score

    def value_owner(self, record):
        return record.owner.display_name if record.owner_id else ""

    def value_tags(self, record):
        names = getattr(record, "tag_names", None)  # set by the export
        return ", ".join(names if names is not None else (t.name for t in record.tags.all()))

    def value_flags(self, record):
        flags = []
        if record.revisit_of_id:
            flags.append(gettext("revisit"))
        if record.is_suspect:
            reasons = "; ".join(record.suspect_reason_texts())
            flags.append(gettext("suspect") + (f": {reasons}" if reasons else ""))
        return " | ".join(flags)

    def value_region(self, record):
        if record.province and record.province == record.city:
            return record.city  # municipalities: 北京市 / 北京市
        return " ".join(p for p in (record.province, record.city) if p)

    def as_values(self, exclude_columns=None):
        """The export's rows (streamed by crm.tables.streamed_csv): the header, then every
        record's value_* (else render_*) per column, safe to open in a spreadsheet.

        Like body_rows(), this calls the methods directly. The records are not model
        instances: one values_list() read in chunks of EXPORT_CHUNK fills an ExportRow
        with the fields the columns read (building 100,000 leads with their seven JSON
        fields, their channel, owner and revisit took most of the export's time), and
        each chunk reads its tags, and the owners and channels not seen yet, in one
        query each.
        """
        exclude = set(exclude_columns or ())
        columns = [
            column
            for column in self.columns.iterall()
            if not (column.column.exclude_from_export or column.name in exclude)
        ]
        yield [force_str(column.header) for column in columns]
        getters = [
            getattr(self, f"value_{column.name}", None) or getattr(self, f"render_{column.name}")
            for column in columns
        ]
        records = (
            self.data.data.select_related(None)
            .prefetch_related(None)
            .values_list(*ExportRow.FIELDS)
            .iterator(chunk_size=EXPORT_CHUNK)
        )
        channels: dict[int, Channel] = {}
        owners: dict[int, Membership] = {}
        for chunk in chunks(records, EXPORT_CHUNK):
            rows = [ExportRow(values) for values in chunk]
            _attach_related(rows, channels, owners)
            _attach_tag_names(rows)
            for record in rows:
                values = (get(record) for get in getters)
                yield [spreadsheet_safe(v if type(v) is str else force_str(v)) for v in values]


class ExportRow:
    """A lead as the export's columns read it (LeadTable.value_* and render_*)."""

    FIELDS = (
        "pk",
        "created_at",
        "company",
        "contact_name",
        "phone",
        "channel_id",
        "source_grade",
        "score",
        "status",
        "owner_id",
        "revisit_of_id",
        "is_suspect",
        "suspect_reasons",
        "province",
        "city",
    )
    __slots__ = (*FIELDS, "channel", "owner", "tag_names")

    def __init__(self, values) -> None:
        for name, value in zip(self.FIELDS, values, strict=True):
            setattr(self, name, value)

    suspect_reason_texts = Lead.suspect_reason_texts


def _attach_related(rows, channels: dict, owners: dict) -> None:
    """Each row's channel and owner, reading only those the export has not met yet."""
    missing = {r.channel_id for r in rows} - channels.keys()
    if missing:
        channels.update((c.pk, c) for c in Channel.objects.filter(pk__in=missing).only("name"))
    missing = {r.owner_id for r in rows if r.owner_id} - owners.keys()
    if missing:
        found = Membership.objects.select_related("user").filter(pk__in=missing)
        owners.update((m.pk, m) for m in found)
    for row in rows:
        row.channel = channels[row.channel_id]
        row.owner = owners.get(row.owner_id)


def _attach_tag_names(records) -> None:
    """record.tag_names for a chunk of the export, in one query: prefetch_related builds
    a manager and a queryset per record, which at 100,000 records costs seconds."""
    names = defaultdict(list)
    links = (
        Lead.tags.through.objects.filter(lead_id__in=[r.pk for r in records])
        .order_by("tag__name")
        .values_list("lead_id", "tag__name")
    )
    for lead_id, name in links:
        names[lead_id].append(name)
    for record in records:
        record.tag_names = names[record.pk]
