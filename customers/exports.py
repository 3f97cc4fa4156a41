"""The customer list as an export source (crm.exports): the rows its CSV sends for a
query string (filters and sort). The streamed download (customers.views.customer_list,
`?_export=csv`) and the background export both read `customer_rows`."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import QueryDict
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crm.exports import ExportSource, list_count, register_source, sort_as_list
from crm.roles import CUSTOMER_LIST
from crm.tenancy import tenant_today
from customers.access import customers_visible_to
from customers.filters import CustomerFilter
from customers.tables import CustomerTable, with_lead_counts

KIND = "customers"


def _filtered(membership, query: QueryDict, *, lead_counts: bool = True):
    if membership.role not in CUSTOMER_LIST:
        raise PermissionDenied(gettext("Customers are for the members of this tenant."))
    qs = customers_visible_to(membership).select_related("owner__user")
    if lead_counts:
        qs = with_lead_counts(qs)
    return CustomerFilter(query, queryset=qs, membership=membership).qs


def customer_rows(membership, query: QueryDict):
    """("customers-<today>", the header and every customer the member's list shows for
    `query`, in its sort)."""
    table = CustomerTable(_filtered(membership, query))
    sort_as_list(table, query)
    return f"customers-{tenant_today():%Y%m%d}", table.as_values()


def customer_count(membership, query: QueryDict) -> int:
    return list_count(_filtered(membership, query, lead_counts=False))


def register() -> None:
    register_source(
        ExportSource(
            name=KIND,
            label=_("Customers"),
            rows=customer_rows,
            count=customer_count,
            roles=CUSTOMER_LIST,
            list_url="customers:list",
        )
    )
