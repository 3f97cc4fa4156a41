"""The risk list (F34) over HTTP, and its retention task's "done".

- GET `/health/risk/` (`health:risk_list`): the customers on the list now (open entries)
  with their owner, today's score and coverage, days since the last interaction, the
  weakest dimension, when they entered and the retention task; sorted, filtered by owner
  (managers) and region, paginated; `?_export=csv` streams it (the rows of
  `risk_rows`, which the background export reads too: crm.exports).
- POST `/health/risk/<uuid>/done/` (`health:risk_done`): the task done (health.risk.
  risk_task_done), answered with the board item's "done" fragment for htmx, else a
  redirect back.

Reps see the entries of the customers they own, everyone else with a seat the tenant's
(customers.access's rule). An entry the member may not see answers 404, another tenant's
alike. A constant number of queries whatever the number of rows.
"""

from __future__ import annotations

import uuid

import django_filters
import django_tables2 as tables
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import F, Q
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils.encoding import force_str
from django.utils.functional import cached_property
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_POST
from django_tables2 import RequestConfig

from crm import exports
from crm.exports import list_count, sort_as_list
from crm.formatting import format_date
from crm.http import query_with
from crm.models import Membership
from crm.roles import CUSTOMER_ALL, CUSTOMER_LIST, OWNER_CHOICES
from crm.tables import (
    COUNT_CAP,
    EXPORT_CHUNK,
    FilterBarMixin,
    IdsFirstPaginator,
    OwnerFilter,
    chunks,
    count_up_to,
    detail_url_maker,
    spreadsheet_safe,
)
from crm.tenancy import tenant_today
from health import risk
from health.models import Dimension, RiskEntry

EXPORT_KIND = "health_risk"
OWNER_OPTIONS_MAX = 500
_DIMENSIONS = dict(Dimension.choices)


def _reader(request: HttpRequest) -> Membership:
    membership = request.membership
    if membership is None or membership.role not in CUSTOMER_LIST:
        raise PermissionDenied(gettext("Customers are for the members of this tenant."))
    return membership


# -- the filter bar ---------------------------------------------------------------------------


class RiskFilter(FilterBarMixin, django_filters.FilterSet):
    """Owner (managers and everyone who reads every customer) and region (a province as
    written, 广东省, or its start, 广东)."""

    owner = OwnerFilter(
        queryset=Membership.objects.none(),
        label=_("owner"),
        empty_label=_("All owners"),
        null_label=_("No owner"),
    )
    region = django_filters.CharFilter(method="filter_region", label=_("province/city"))

    class Meta:
        model = RiskEntry
        fields = ["owner", "region"]

    def __init__(self, data=None, queryset=None, *, membership, **kwargs):
        super().__init__(data, queryset, **kwargs)
        if membership.role not in CUSTOMER_ALL:  # a rep: their own customers only
            del self.filters["owner"]
        else:
            self.filters["owner"].queryset = (
                Membership.objects.in_tenant(membership.tenant_id)
                .select_related("user")
                .only("id", "is_active", "user__first_name", "user__last_name", "user__username")
            )

    def filter_region(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(
            Q(customer__province__startswith=value) | Q(customer__city__startswith=value)
        )

    @property
    def has_owner_filter(self) -> bool:
        return "owner" in self.filters

    @cached_property
    def owner_options(self):
        """The active reps and managers, sorted by name (none past OWNER_OPTIONS_MAX)."""
        if not self.has_owner_filter:
            return []
        field = self.form.fields["owner"]
        members = field.queryset.filter(role__in=OWNER_CHOICES, is_active=True)
        members = list(members.order_by()[: OWNER_OPTIONS_MAX + 1])
        if len(members) > OWNER_OPTIONS_MAX:
            return []
        members.sort(key=lambda m: (m.user.last_name, m.user.first_name, m.user.username))
        choices = [("", field.empty_label), (field.null_value, field.null_label)]
        choices += [(m.pk, field.label_from_instance(m)) for m in members]
        return self._selected("owner", choices)


# -- the table --------------------------------------------------------------------------------


def _column(label, **kwargs):
    kwargs.setdefault("orderable", False)
    return tables.Column(verbose_name=label, empty_values=(), **kwargs)


class RiskTable(tables.Table):
    """Each sort ends with the entry's id (stable pages) and reads an index: entered on
    (the default, newest first) and owner from the open entries' partial indexes, today's
    score from the snapshots' (tenant, day, score). Days since the last interaction is
    not a sort: no index of the snapshots has it, and its order is the score's
    neighbour (the quieter, the lower the recency score)."""

    customer = _column(_("customer"))
    owner = _column(_("owner"), orderable=True)
    score = _column(_("health score"), orderable=True)
    coverage = _column(_("coverage"))
    days_since_interaction = _column(_("days since interaction"))
    weakest = _column(_("weakest dimension"))
    entered_on = _column(_("entered on"), orderable=True)
    action = _column(_("retention action"))
    done = _column(_("task"))

    class Meta:
        model = RiskEntry
        fields = []
        attrs = {"class": "table table-hover table-sm align-middle mb-0"}
        empty_text = _("No customer is on the risk list.")
        order_by = ("-entered_on",)
        per_page = 50

    def __init__(self, *args, score_below: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._customer_url = detail_url_maker("customers:detail")
        self.score_below = score_below  # health.risk.list_state's bound, when known

    # -- sorts ----------------------------------------------------------------------------

    def order_entered_on(self, queryset, is_descending):
        if is_descending:
            return queryset.order_by(F("entered_on").desc(), F("id").desc()), True
        return queryset.order_by(F("entered_on").asc(), F("id").asc()), True

    def order_owner(self, queryset, is_descending):
        # Grouped by owner (by id: a sort on the joined name would read every entry), the
        # index risk_entry_open_owner read forwards or backwards (no owner: last).
        if is_descending:
            keys = (F("owner_id").desc(), F("entered_on").asc(), F("id").asc())
        else:
            keys = (F("owner_id").asc(), F("entered_on").desc(), F("id").desc())
        return queryset.order_by(*keys), True

    def order_score(self, queryset, is_descending):
        # The snapshots' (tenant, day, score) index, walked until a page of entries is
        # found (an open entry always has a score: it entered with one). No NULLS
        # FIRST/LAST: the index's own order, or the planner sorts every entry.
        if is_descending:
            if self.score_below is not None:  # exact: every open entry is below it
                queryset = queryset.filter(today_score__lt=self.score_below)
            return queryset.order_by(F("today_score").desc(), F("id").desc()), True
        return queryset.order_by(F("today_score").asc(), F("id").asc()), True

    # -- HTML -----------------------------------------------------------------------------

    def body_rows(self):
        """The page's <tr> elements in one pass (as customers.tables.CustomerTable)."""
        renderers = [getattr(self, f"render_{column.name}") for column in self.columns]
        rows = []
        for row in self.paginated_rows:
            record = row.record
            cells = "".join(
                f"<td>{conditional_escape(render(record))}</td>" for render in renderers
            )
            rows.append(mark_safe(f'<tr data-testid="risk-row">{cells}</tr>'))  # noqa: S308
        return rows

    def render_customer(self, record):
        return format_html(
            '<a href="{}" data-testid="risk-customer">{}</a>',
            self._customer_url(record.customer.public_id),
            record.customer.name or "—",
        )

    def render_owner(self, record):
        return self.value_owner(record) or "—"

    def render_score(self, record):
        if record.today_score is None:
            return gettext("No data")
        return format_html('<span class="badge text-bg-danger">{}</span>', record.today_score)

    def render_coverage(self, record):
        return risk.coverage_text(record) or "—"

    def render_days_since_interaction(self, record):
        days = risk.days_since(record)
        return "—" if days is None else str(days)

    def render_weakest(self, record):
        return self.value_weakest(record) or "—"

    def render_entered_on(self, record):
        return format_date(record.entered_on)

    def render_action(self, record):
        return record.action

    def render_done(self, record):
        if record.task_at is None:
            return "—"
        if record.done_at is not None:
            return format_html(
                '<span class="badge text-bg-success"><i class="bi bi-check2"></i> {}</span>',
                gettext("Done"),
            )
        return format_html('<span class="badge text-bg-warning">{}</span>', gettext("To do"))

    # -- CSV --------------------------------------------------------------------------------

    def value_customer(self, record):
        return record.customer.name

    def value_owner(self, record):
        return record.owner.display_name if record.owner_id else ""

    def value_score(self, record):
        return "" if record.today_score is None else record.today_score

    def value_coverage(self, record):
        return risk.coverage_text(record)

    def value_days_since_interaction(self, record):
        days = risk.days_since(record)
        return "" if days is None else days

    def value_weakest(self, record):
        return str(_DIMENSIONS.get(record.weakest, record.weakest or ""))

    def value_entered_on(self, record):
        return record.entered_on.isoformat()

    def value_action(self, record):
        return record.action

    def value_done(self, record):
        if record.task_at is None:
            return ""
        return "yes" if record.done_at is not None else "no"

    def as_values(self):
        """The CSV's rows: a header of the column keys (the list's contract: customer,
        owner, score, coverage, days_since_interaction, …), then each entry's values,
        read in chunks."""
        columns = list(self.columns.iterall())
        yield [column.name for column in columns]
        getters = [getattr(self, f"value_{column.name}") for column in columns]
        records = self.data.data.iterator(chunk_size=EXPORT_CHUNK)
        for chunk in chunks(records, EXPORT_CHUNK):
            for record in chunk:
                yield [spreadsheet_safe(force_str(get(record))) for get in getters]


class RiskPaginator(IdsFirstPaginator):
    """Counts the list's entries without today's snapshot joined (`count_from`): every
    open entry has one, and the count then reads the entries' indexes alone."""

    def __init__(self, *args, count_from=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.count_from = count_from

    @cached_property
    def count(self):
        if self.count_from is None:
            return super().count
        count, self.count_capped = count_up_to(self.count_from, self.count_cap)
        return count


# -- the rows, for the page and the export -------------------------------------------------------


def _entries(membership: Membership, query: QueryDict):
    """The filtered open entries the member sees, without today's figures."""
    if membership.role not in CUSTOMER_LIST:
        raise PermissionDenied(gettext("Customers are for the members of this tenant."))
    qs = risk.open_entries(membership).select_related("customer", "owner__user")
    return RiskFilter(query, queryset=qs, membership=membership).qs


def risk_rows(membership: Membership, query: QueryDict):
    """("risk-customers-<today>", the header and every row the member's list shows for
    `query`, in its sort): the streamed CSV and the background export."""
    day, below = risk.list_state(membership.tenant)
    table = RiskTable(risk.with_today(_entries(membership, query), day), score_below=below)
    sort_as_list(table, query)
    return f"risk-customers-{tenant_today():%Y%m%d}", table.as_values()


def risk_count(membership: Membership, query: QueryDict) -> int:
    return list_count(_entries(membership, query))


def export_source():
    from crm.exports import ExportSource

    return ExportSource(
        name=EXPORT_KIND,
        label=_("At-risk customers"),
        rows=risk_rows,
        count=risk_count,
        roles=CUSTOMER_LIST,
        list_url="health:risk_list",
    )


# -- the views ----------------------------------------------------------------------------------


@require_GET
def risk_list(request: HttpRequest) -> HttpResponse:
    membership = _reader(request)
    if request.GET.get("_export") == "csv":
        from crm.tables import streamed_csv

        stem, rows = risk_rows(membership, request.GET)
        return streamed_csv(rows, f"{stem}.csv", tenant=request.tenant)
    day, below = risk.list_state(request.tenant)
    risk_filter = RiskFilter(
        request.GET,
        queryset=risk.open_entries(membership).select_related("customer", "owner__user"),
        membership=membership,
    )
    entries = risk_filter.qs
    table = RiskTable(risk.with_today(entries, day), score_below=below)
    paginate = {
        "per_page": RiskTable._meta.per_page,
        "paginator_class": RiskPaginator,
        "count_cap": COUNT_CAP,
        "count_from": entries,
    }
    RequestConfig(request, paginate=paginate).configure(table)
    count = table.paginator.count
    filtered = risk_filter.is_filtered
    context = {
        "table": table,
        "filter": risk_filter,
        "filtered": filtered,
        "count": count,
        "count_capped": table.paginator.count_capped,
        "scored_day": day,
        "is_rep": membership.role not in CUSTOMER_ALL,
        "export_query": query_with(request, _export="csv", page=None),
        "export_background": exports.in_background(count, table.paginator.count_capped),
        "export_kind": EXPORT_KIND,
        "export_list_query": exports.list_query(request.GET),
    }
    return TemplateResponse(request, "health/risk_list.html", context)


@require_POST
def risk_done(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    membership = _reader(request)
    entry = (
        risk.entries_visible_to(membership)
        .select_related("customer")
        .filter(public_id=public_id)
        .first()
    )
    if entry is None or not risk.can_mark_done(membership, entry):
        raise Http404("No such retention task.")
    error = ""
    try:
        entry = risk.risk_task_done(tenant=request.tenant, acting_member=membership, entry=entry)
    except ValidationError as exc:
        error = " ".join(exc.messages)
    if request.htmx:
        context = {"entry": entry, "error": error}
        status = 409 if error else 200
        return TemplateResponse(request, "health/board_risk_done.html", context, status=status)
    if error:
        messages.warning(request, error)
    else:
        messages.success(request, gettext("Retention task done."))
    return redirect("board:board" if request.POST.get("next") == "board" else "health:risk_list")
