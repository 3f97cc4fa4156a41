"""The customer list (django-tables2), built like the lead list (leads/tables.py): cells
rendered in Python in one pass, headers, sorting and pagination django-tables2's, pages
fetched ids first (crm.tables.IdsFirstPaginator), the CSV export read in chunks."""

from __future__ import annotations

import django_tables2 as tables
from django.db.models import Count, F, IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils.encoding import force_str
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import mark_safe
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from crm.formatting import format_datetime
from crm.tables import EXPORT_CHUNK, chunks, detail_url_maker, spreadsheet_safe
from customers.models import Customer, CustomerLevel, Industry

_LEVEL_LABELS = dict(CustomerLevel.choices)
_INDUSTRY_LABELS = dict(Industry.choices)


def with_lead_counts(queryset):
    """Each customer with `lead_count`, the leads that became it (a correlated count per
    row: the list pages fetch 50 rows at a time, so it runs for those only). Read through
    the reverse relation `leads` (leads.Lead.customer), without importing the leads app."""
    leads = Customer.leads.field.model.objects
    counts = (
        leads.filter(customer=OuterRef("pk"))
        .order_by()
        .values("customer")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return queryset.annotate(
        lead_count=Coalesce(Subquery(counts, output_field=IntegerField()), Value(0))
    )


def industry_label(code: str) -> str:
    """A customer's industry as people read it (it holds the lead's Industry code)."""
    return str(_INDUSTRY_LABELS.get(code, code))


def _column(label, **kwargs):
    # Plain columns whose render_* method takes the record and handles empty values, so
    # that body_rows() and as_values() can call them directly.
    kwargs.setdefault("orderable", "order_by" in kwargs)
    return tables.Column(verbose_name=label, empty_values=(), **kwargs)


class CustomerTable(tables.Table):
    """Every sort key ends with the id, so pages are stable, and each sort is read from
    an index of customers.Customer: last contact (the default, newest first, never
    contacted last), name, level and owner (by owner id: grouped, not alphabetical, since
    a sort on the joined name would read the whole tenant), the last three within them
    by last contact."""

    name = _column(_("name"), order_by=("name", "id"))
    level = _column(_("level"), orderable=True)
    owner = _column(_("owner"), orderable=True)
    region = _column(_("province/city"), accessor="province")
    industry = _column(_("industry"))
    last_contact = _column(_("last contact"), accessor="last_contact_at", orderable=True)
    leads = _column(_("leads"), accessor="lead_count")

    class Meta:
        model = Customer
        fields = []  # the columns above, in that order
        # One line per customer; on a phone the table scrolls sideways.
        attrs = {"class": "table table-hover table-sm align-middle text-nowrap mb-0"}
        empty_text = _("No customer matches these filters.")
        order_by = ("-last_contact",)
        per_page = 50

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._detail_url = detail_url_maker("customers:detail")

    def order_last_contact(self, queryset, is_descending):
        return queryset.order_by_last_contact(descending=is_descending), True

    def order_level(self, queryset, is_descending):
        # Within a level, most recently contacted first: the index customer_level_contact.
        if is_descending:
            keys = (F("level").desc(), F("last_contact_at").asc(nulls_first=True), F("id").asc())
        else:
            keys = (F("level").asc(), F("last_contact_at").desc(nulls_last=True), F("id").desc())
        return queryset.order_by(*keys), True

    def order_owner(self, queryset, is_descending):
        if is_descending:
            keys = (F("owner_id").desc(), F("last_contact_at").asc(nulls_first=True), F("id").asc())
        else:
            keys = (F("owner_id").asc(), F("last_contact_at").desc(nulls_last=True), F("id").desc())
        return queryset.order_by(*keys), True

    def body_rows(self):
        """The page's <tr> elements in one pass (see leads.tables.LeadTable.body_rows)."""
        renderers = [getattr(self, f"render_{column.name}") for column in self.columns]
        rows = []
        for row in self.paginated_rows:
            record = row.record
            cells = "".join(
                f"<td>{conditional_escape(render(record))}</td>" for render in renderers
            )
            rows.append(mark_safe(f"<tr>{cells}</tr>"))  # noqa: S308 (cells escaped above)
        return rows

    # -- HTML cells ----------------------------------------------------------------------

    def render_name(self, record):
        return format_html(
            '<a href="{}" data-testid="customer-link">{}</a>',
            self._detail_url(record.public_id),
            record.name or "—",
        )

    def render_level(self, record):
        return format_html(
            '<span class="badge text-bg-{}" title="{}">{}</span>',
            {"A": "primary", "B": "info"}.get(record.level, "secondary"),
            _LEVEL_LABELS.get(record.level, record.level),
            record.level,
        )

    def render_owner(self, record):
        return record.owner.display_name if record.owner_id else "—"

    def render_region(self, record):
        return self.value_region(record) or "—"

    def render_industry(self, record):
        return self.value_industry(record) or "—"

    def render_last_contact(self, record):
        return format_datetime(record.last_contact_at) or "—"

    def render_leads(self, record):
        return str(record.lead_count)

    # -- plain values (CSV export) -------------------------------------------------------

    def value_name(self, record):
        return record.name

    def value_level(self, record):
        return _LEVEL_LABELS.get(record.level, record.level)

    def value_owner(self, record):
        return record.owner.display_name if record.owner_id else ""

    def value_region(self, record):
        if record.province and record.province == record.city:
            return record.city  # municipalities: 北京市 / 北京市
        return " ".join(p for p in (record.province, record.city) if p)

    def value_industry(self, record):
        return industry_label(record.industry)

    def value_last_contact(self, record):
        return format_datetime(record.last_contact_at)

    def value_leads(self, record):
        return record.lead_count

    def as_values(self, exclude_columns=None):
        """The export's rows: the header, then every record's value_* per column, safe
        to open in a spreadsheet, read in chunks (a generator: the export streams)."""
        exclude = set(exclude_columns or ())
        columns = [c for c in self.columns.iterall() if c.name not in exclude]
        yield [capfirst(force_str(column.header)) for column in columns]
        getters = [getattr(self, f"value_{column.name}") for column in columns]
        records = self.data.data.iterator(chunk_size=EXPORT_CHUNK)
        for chunk in chunks(records, EXPORT_CHUNK):
            for record in chunk:
                yield [spreadsheet_safe(force_str(get(record))) for get in getters]
