"""The opportunity list as an export source (crm.exports): the rows its CSV sends for a
query string (filters and sort). The streamed download (`opportunities:list`,
`?_export=csv`) and the background export both read `opportunity_rows`.

The header names are fixed, not translated (outside tools and the import read them):
`id` (the public uuid), `stage` (the stage's code, as the advance endpoint and the import
take it), `status`, `amount`, `probability`, `valid`, `owner` first, in that order, then
the rest. An exported file edited in its `stage` column is an import file as it is
(opportunities.imports). Service agents get no amount column."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import QueryDict
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crm.exports import ExportSource, list_count, sort_as_list
from crm.formatting import format_datetime
from crm.roles import OPPORTUNITY_LIST
from crm.tables import EXPORT_CHUNK, spreadsheet_safe
from crm.tenancy import tenant_today
from opportunities.access import opportunities_visible_to, sees_amounts
from opportunities.filters import OpportunityFilter
from opportunities.tables import OpportunityTable

KIND = "opportunities"

HEADER = [
    "id",
    "stage",
    "status",
    "amount",
    "probability",
    "valid",
    "owner",
    "owner_name",
    "name",
    "customer",
    "expected_close",
    "budget_band",
    "stage_name",
    "created_at",
    "last_activity_at",
]

# What each row reads, in one values_list (joins, no model instances).
_FIELDS = (
    "public_id",
    "stage__code",
    "status",
    "amount",
    "probability",
    "is_valid",
    "owner__user__username",
    "owner__user__first_name",
    "owner__user__last_name",
    "name",
    "customer__name",
    "expected_close",
    "budget_band",
    "stage__name",
    "created_at",
    "last_activity_at",
)


def filtered(membership, query: QueryDict):
    """The opportunities the member's list shows for `query` (its filters, not its sort)."""
    if membership.role not in OPPORTUNITY_LIST:
        raise PermissionDenied(gettext("Opportunities are for the members of this tenant."))
    qs = opportunities_visible_to(membership).select_related("customer", "owner__user", "stage")
    return OpportunityFilter(query, queryset=qs, membership=membership).qs


def _owner_name(username, first, last) -> str:
    # Membership.display_name (User.get_full_name, else the username) without the objects.
    full = f"{first} {last}".strip()
    return full or username


def _stamp(value) -> str:
    return format_datetime(value) if value else ""


def opportunity_rows(membership, query: QueryDict):
    """("opportunities-<today>", the header and every opportunity the member's list shows
    for `query`, in its sort)."""
    table = OpportunityTable(filtered(membership, query))
    sort_as_list(table, query)
    amounts = sees_amounts(membership)
    ordered = table.data.data

    # Service agents never see amounts: not even the column.
    keep = [i for i, name in enumerate(HEADER) if amounts or name != "amount"]

    def rows():
        yield [HEADER[i] for i in keep]
        records = (
            ordered.select_related(None).values_list(*_FIELDS).iterator(chunk_size=EXPORT_CHUNK)
        )
        for (
            public_id,
            stage,
            status,
            amount,
            probability,
            is_valid,
            username,
            first,
            last,
            name,
            customer,
            expected_close,
            budget_band,
            stage_name,
            created_at,
            last_activity_at,
        ) in records:
            row = [
                str(public_id),
                stage,
                status,
                "" if amount is None or not amounts else f"{amount:f}",
                str(probability),
                "true" if is_valid else "false",
                spreadsheet_safe(username),
                spreadsheet_safe(_owner_name(username, first, last)),
                spreadsheet_safe(name),
                spreadsheet_safe(customer),
                f"{expected_close:%Y-%m}" if expected_close else "",
                budget_band,
                spreadsheet_safe(stage_name),
                _stamp(created_at),
                _stamp(last_activity_at),
            ]
            yield [row[i] for i in keep]

    return f"opportunities-{tenant_today():%Y%m%d}", rows()


def opportunity_count(membership, query: QueryDict) -> int:
    return list_count(filtered(membership, query))


def source() -> ExportSource:
    return ExportSource(
        name=KIND,
        label=_("Opportunities"),
        rows=opportunity_rows,
        count=opportunity_count,
        roles=OPPORTUNITY_LIST,
        list_url="opportunities:list",
    )
