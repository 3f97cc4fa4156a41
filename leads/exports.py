"""The lead list as an export source (crm.exports): the rows its CSV sends for a query
string (filters and sort). The streamed download (leads.views.lead_list, `?_export=csv`)
and the background export both read `lead_rows`, so their files are the same."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import QueryDict
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crm import roles
from crm.exports import ExportSource, list_count, register_source, sort_as_list
from crm.tenancy import tenant_today
from leads.access import leads_visible_to
from leads.filters import LeadFilter
from leads.tables import LeadTable

KIND = "leads"


def _filtered(membership, query: QueryDict):
    if membership.role not in roles.LEAD_LIST:
        raise PermissionDenied(gettext("Leads are for sales, marketing and admins."))
    qs = (
        leads_visible_to(membership)
        .select_related("channel", "owner__user", "revisit_of")
        .prefetch_related("tags")
    )
    return LeadFilter(query, queryset=qs, membership=membership).qs


def lead_rows(membership, query: QueryDict):
    """("leads-<today>", the header and every lead the member's list shows for `query`,
    in its sort)."""
    table = LeadTable(_filtered(membership, query))
    sort_as_list(table, query)
    return f"leads-{tenant_today():%Y%m%d}", table.as_values()


def lead_count(membership, query: QueryDict) -> int:
    return list_count(_filtered(membership, query))


def register() -> None:
    register_source(
        ExportSource(
            name=KIND,
            label=_("Leads"),
            rows=lead_rows,
            count=lead_count,
            roles=roles.LEAD_LIST,
            list_url="leads:list",
        )
    )
