"""The ticket list (django-tables2), built like the customer list (customers/tables.py):
cells rendered in Python in one pass, headers, sorting and pagination django-tables2's,
pages fetched ids first (crm.tables.IdsFirstPaginator)."""

from __future__ import annotations

import django_tables2 as tables
from django.db.models import F
from django.utils.html import conditional_escape, format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _

from crm.formatting import format_datetime
from crm.tables import detail_url_maker
from service_feedback.models import FlagKind, TicketStatus

FLAG_LABELS = dict(FlagKind.choices)
STATUS_LABELS = dict(TicketStatus.choices)
FLAG_STYLES = {
    FlagKind.UPSELL: "success",
    FlagKind.REFERRAL: "info",
    FlagKind.CHURN: "danger",
}
STATUS_STYLES = {TicketStatus.OPEN: "warning", TicketStatus.RESOLVED: "success"}


def flag_badges(flags) -> str:
    """A ticket's flags as badges."""
    return format_html_join(
        " ",
        '<span class="badge text-bg-{}" data-flag="{}">{}</span>',
        ((FLAG_STYLES.get(f, "secondary"), f, FLAG_LABELS.get(f, f)) for f in flags or ()),
    )


def status_badge(status: str) -> str:
    return format_html(
        '<span class="badge text-bg-{}">{}</span>',
        STATUS_STYLES.get(status, "secondary"),
        STATUS_LABELS.get(status, status),
    )


def minutes_text(value) -> str:
    return "—" if value is None else f"{value:,}"


def _column(label, **kwargs):
    kwargs.setdefault("orderable", "order_by" in kwargs)
    return tables.Column(verbose_name=label, empty_values=(), **kwargs)


class TicketTable(tables.Table):
    """Newest opened first (the index ticket_opened); resolution minutes sort within the
    filtered rows."""

    opened = _column(_("opened"), accessor="opened_at", order_by=("opened_at", "id"))
    subject = _column(_("subject"))
    customer = _column(_("customer"))
    status = _column(_("status"))
    flags = _column(_("flags"))
    product = _column(_("model · fault"))
    region = _column(_("region"))
    first_response = _column(_("response (min)"))
    resolution = _column(_("resolution (min)"), accessor="resolution_minutes", orderable=True)
    satisfaction = _column(_("satisfaction"))

    class Meta:
        fields = []
        attrs = {"class": "table table-hover table-sm align-middle text-nowrap mb-0"}
        empty_text = _("No ticket matches these filters.")
        order_by = ("-opened",)
        per_page = 50

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._detail_url = detail_url_maker("service_feedback:ticket")
        self._customer_url = detail_url_maker("customers:detail")

    def order_resolution(self, queryset, is_descending):
        if is_descending:
            keys = (F("resolution_minutes").desc(nulls_last=True), F("id").desc())
        else:
            keys = (F("resolution_minutes").asc(nulls_last=True), F("id").asc())
        return queryset.order_by(*keys), True

    def body_rows(self):
        """The page's <tr> elements in one pass (see customers.tables.CustomerTable)."""
        renderers = [getattr(self, f"render_{column.name}") for column in self.columns]
        rows = []
        for row in self.paginated_rows:
            record = row.record
            cells = "".join(
                f"<td>{conditional_escape(render(record))}</td>" for render in renderers
            )
            rows.append(mark_safe(f'<tr data-testid="ticket-row">{cells}</tr>'))  # noqa: S308
        return rows

    def render_opened(self, record):
        return format_datetime(record.opened_at)

    def render_subject(self, record):
        text = record.subject or record.text[:40] or record.external_id
        return format_html(
            '<a href="{}" data-testid="ticket-link" title="{}">{}</a>',
            self._detail_url(record.public_id),
            record.external_id,
            text[:60],
        )

    def render_customer(self, record):
        if record.customer_id is None:
            return format_html(
                '<span class="badge text-bg-light border" data-testid="unmatched">{}</span>',
                _("waiting for a customer"),
            )
        return format_html(
            '<a href="{}">{}</a>',
            self._customer_url(record.customer.public_id),
            record.customer.name,
        )

    def render_status(self, record):
        return status_badge(record.status)

    def render_flags(self, record):
        return flag_badges(record.flags) or "—"

    def render_product(self, record):
        parts = [p for p in (record.product_model, record.fault_code) if p]
        return " · ".join(parts) or "—"

    def render_region(self, record):
        return " ".join(p for p in (record.province, record.city) if p) or "—"

    def render_first_response(self, record):
        return minutes_text(record.first_response_minutes)

    def render_resolution(self, record):
        if record.duration_issue and record.resolution_minutes is None:
            return format_html(
                '<span class="text-danger" title="{}">'
                '<i class="bi bi-exclamation-triangle"></i></span>',
                record.duration_issue,
            )
        return minutes_text(record.resolution_minutes)

    def render_satisfaction(self, record):
        return "—" if record.satisfaction is None else f"{record.satisfaction}/5"
