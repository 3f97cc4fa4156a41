"""The opportunity list (django-tables2), built like the lead and customer lists: cells
rendered in Python in one pass (body_rows), headers, sorting and pagination
django-tables2's, pages fetched ids first (crm.tables.IdsFirstPaginator). The CSV rows are
opportunities.exports'."""

from __future__ import annotations

from decimal import Decimal

import django_tables2 as tables
from django.db.models import F
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crm.formatting import format_date, format_datetime
from crm.tables import detail_url_maker
from opportunities.models import Opportunity, OpportunityStatus

_STATUS_LABELS = dict(OpportunityStatus.choices)
_STATUS_BADGES = {
    "open": "text-bg-light border",
    "won": "text-bg-success",
    "lost": "text-bg-secondary",
}


def format_amount(value) -> str:
    """An amount in CNY as the pages show it: ¥480,000 (cents only when there are any)."""
    if value is None:
        return ""
    value = Decimal(value)
    if value == value.to_integral_value():
        return f"¥{value:,.0f}"
    return f"¥{value:,.2f}"


def format_month(value) -> str:
    return f"{value:%Y-%m}" if value else ""


def _column(label, **kwargs):
    # Plain columns whose render_* method takes the record and handles empty values, so
    # that body_rows() can call them directly.
    kwargs.setdefault("orderable", "order_by" in kwargs)
    return tables.Column(verbose_name=label, empty_values=(), **kwargs)


class OpportunityTable(tables.Table):
    """Every sort key ends with the id, so pages are stable. The default (newest first)
    and the owner sort are read from the indexes opportunity_created and
    opportunity_owner; the others sort the member's rows."""

    select = _column(_("select"), exclude_from_export=True)
    name = _column(_("name"), order_by=("name", "id"))
    customer = _column(_("customer"), order_by=("customer__name", "id"))
    stage = _column(_("stage"), orderable=True)
    status = _column(_("status"), order_by=("status", "-created_at", "-id"))
    amount = _column(_("amount"), orderable=True)
    probability = _column(_("probability"), order_by=("probability", "id"))
    valid = _column(_("valid"), accessor="is_valid", order_by=("is_valid", "-created_at", "-id"))
    owner = _column(_("owner"), orderable=True)
    expected_close = _column(_("expected close"), orderable=True)
    last_activity = _column(_("last activity"), order_by=("last_activity_at", "id"))
    created = _column(_("created at"), order_by=("created_at", "id"))

    class Meta:
        model = Opportunity
        fields = []  # the columns above, in that order
        attrs = {"class": "table table-hover table-sm align-middle text-nowrap mb-0"}
        empty_text = _("No opportunity matches these filters.")
        # Column names, not ORM paths: django-tables2 silently drops anything else.
        order_by = ("-created",)
        per_page = 50

    def __init__(self, *args, selectable: bool = False, show_amounts: bool = True, **kwargs):
        exclude = list(kwargs.pop("exclude", ()) or ())
        if not selectable:
            exclude.append("select")
        if not show_amounts:
            exclude.append("amount")
        super().__init__(*args, exclude=exclude, **kwargs)
        self._detail_url = detail_url_maker("opportunities:detail")

    # -- sorts with the empty values last and the id last --------------------------------

    def _nulls_last(self, queryset, field, is_descending):
        if is_descending:
            keys = (F(field).desc(nulls_last=True), F("id").desc())
        else:
            keys = (F(field).asc(nulls_last=True), F("id").asc())
        return queryset.order_by(*keys), True

    def order_amount(self, queryset, is_descending):
        return self._nulls_last(queryset, "amount", is_descending)

    def order_expected_close(self, queryset, is_descending):
        return self._nulls_last(queryset, "expected_close", is_descending)

    def order_stage(self, queryset, is_descending):
        # In pipeline order, the most recently active first within a stage.
        if is_descending:
            keys = (F("stage__position").desc(), F("stage_id").desc())
        else:
            keys = (F("stage__position").asc(), F("stage_id").asc())
        return queryset.order_by(*keys, F("last_activity_at").desc(), F("id").desc()), True

    def order_owner(self, queryset, is_descending):
        # Grouped by owner (the index opportunity_owner), newest first within.
        owner = F("owner_id").desc() if is_descending else F("owner_id").asc()
        return queryset.order_by(owner, F("created_at").desc(), F("id").desc()), True

    # -- HTML cells ----------------------------------------------------------------------

    def body_rows(self):
        """The page's <tr> elements in one pass (see leads.tables.LeadTable.body_rows)."""
        renderers = [getattr(self, f"render_{column.name}") for column in self.columns]
        rows = []
        for row in self.paginated_rows:
            record = row.record
            cells = "".join(
                f"<td>{conditional_escape(render(record))}</td>" for render in renderers
            )
            rows.append(mark_safe(f'<tr data-testid="opportunity-row">{cells}</tr>'))  # noqa: S308 (cells escaped above)
        return rows

    def render_select(self, record):
        if not record.is_open:
            return ""
        return format_html(
            '<input class="form-check-input" type="checkbox" name="ids" value="{}"'
            ' form="bulk-form" aria-label="{}" data-testid="select-row">',
            record.public_id,
            gettext("Select %(name)s") % {"name": record.name},
        )

    def render_name(self, record):
        return format_html(
            '<a href="{}" data-testid="opportunity-link">{}</a>',
            self._detail_url(record.public_id),
            record.name or "—",
        )

    def render_customer(self, record):
        return record.customer.name

    def render_stage(self, record):
        return record.stage.name

    def render_status(self, record):
        return format_html(
            '<span class="badge {}">{}</span>',
            _STATUS_BADGES.get(record.status, "text-bg-light"),
            _STATUS_LABELS.get(record.status, record.status),
        )

    def render_amount(self, record):
        return format_amount(record.amount) or "—"

    def render_probability(self, record):
        return f"{record.probability}%"

    def render_valid(self, record):
        if record.is_valid:
            return format_html(
                '<span class="badge text-bg-success" data-testid="valid-badge">{}</span>',
                gettext("Valid"),
            )
        return format_html('<span class="text-body-secondary">{}</span>', gettext("Not yet"))

    def render_owner(self, record):
        return record.owner.display_name

    def render_expected_close(self, record):
        return format_month(record.expected_close) or "—"

    def render_last_activity(self, record):
        return format_datetime(record.last_activity_at)

    def render_created(self, record):
        return format_date(record.created_at)
