"""The ticket list as an export source (crm.exports): the rows its CSV sends for a query
string (filters and sort). The streamed download (`service_feedback:tickets`,
`?_export=csv`) and the background export both read `ticket_rows`.

The header names are fixed, not translated (outside tools read them): `external_id`,
`customer`, `status`, `resolution_minutes`, `flags` first, in that order, then the rest.
`status`, `flags` (joined by ";") and `match_key` are codes; minutes are whole numbers,
empty when unknown or implausible (`duration_issue` says why)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import QueryDict
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crm.exports import ExportSource, list_count, register_source, sort_as_list
from crm.formatting import format_datetime
from crm.tables import EXPORT_CHUNK, spreadsheet_safe
from crm.tenancy import tenant_today
from service_feedback.access import TICKET_LIST, tickets_visible_to
from service_feedback.filters import TicketFilter
from service_feedback.tables import TicketTable

KIND = "tickets"

HEADER = [
    "external_id",
    "customer",
    "status",
    "resolution_minutes",
    "flags",
    "id",
    "customer_id",
    "channel",
    "opened_at",
    "first_response_at",
    "resolved_at",
    "first_response_minutes",
    "duration_issue",
    "product_line",
    "product_model",
    "fault_code",
    "province",
    "city",
    "match_key",
    "match_value",
    "requester",
    "subject",
    "flag_words",
    "sentiment",
    "nps",
    "satisfaction",
]

_FIELDS = (
    "external_id",
    "customer__name",
    "status",
    "resolution_minutes",
    "flags",
    "public_id",
    "customer__public_id",
    "channel__name",
    "opened_at",
    "first_response_at",
    "resolved_at",
    "first_response_minutes",
    "duration_issue",
    "product_line",
    "product_model",
    "fault_code",
    "province",
    "city",
    "match_key",
    "match_value",
    "requester_name",
    "subject",
    "flag_words",
    "sentiment",
    "nps",
    "satisfaction",
)
_STAMPS = {"opened_at", "first_response_at", "resolved_at"}


def filtered(membership, query: QueryDict):
    """The tickets the member's list shows for `query` (its filters, not its sort)."""
    if membership.role not in TICKET_LIST:
        raise PermissionDenied(gettext("Tickets are for the members of this tenant."))
    qs = tickets_visible_to(membership).select_related("customer__owner__user")
    return TicketFilter(query, queryset=qs).qs


def _cell(name: str, value) -> str:
    if value is None:
        return ""
    if name in _STAMPS:
        return format_datetime(value)
    if name in ("flags", "flag_words"):
        return ";".join(value or ())
    return spreadsheet_safe(str(value))


def ticket_rows(membership, query: QueryDict):
    """("tickets-<today>", the header and every ticket the member's list shows for
    `query`, in its sort)."""
    table = TicketTable(filtered(membership, query))
    sort_as_list(table, query)
    ordered = table.data.data

    def rows():
        yield list(HEADER)
        records = (
            ordered.select_related(None).values_list(*_FIELDS).iterator(chunk_size=EXPORT_CHUNK)
        )
        for record in records:
            yield [_cell(name, value) for name, value in zip(_FIELDS, record, strict=True)]

    return f"tickets-{tenant_today():%Y%m%d}", rows()


def ticket_count(membership, query: QueryDict) -> int:
    return list_count(filtered(membership, query))


def register() -> None:
    register_source(
        ExportSource(
            name=KIND,
            label=_("Tickets"),
            rows=ticket_rows,
            count=ticket_count,
            roles=TICKET_LIST,
            list_url="service_feedback:tickets",
        )
    )
