"""Lists (django-tables2): the team list, and what the apps' lists share: the deferred-join
paginator, the chunked, spreadsheet-safe CSV writer (streamed to the browser, or written to
a file by crm.exports), and one reverse() per table for the rows' links."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from datetime import date, datetime, time

import django_filters
import django_tables2 as tables
from django import forms
from django.core.paginator import EmptyPage, Paginator
from django.db.models import Count, Q, Window
from django.http import StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.functional import cached_property
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django_filters.fields import ModelChoiceField
from django_tables2.rows import BoundRows

from crm.formatting import format_date
from crm.models import Membership, Role

# Spreadsheets run a cell that starts with one of these as a formula; lead and customer fields
# come from public forms, so an exported cell never starts with one (a phone number "+86…" may).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"^[+-]?[\d\s().-]+$")


EXPORT_CHUNK = 2_000
# Characters of CSV sent at a time by streamed_csv.
STREAM_PIECE = 64 * 1024


def spreadsheet_safe(value):
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _NUMBER.match(value):
        return "'" + value
    return value


def chunks(iterable, size):
    """Lists of up to `size` items from `iterable`."""
    chunk = []
    for item in iterable:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def detail_url_maker(url_name: str):
    """`reverse(url_name, args=[public_id])` for many rows, reversing once per table."""
    marker = "00000000-0000-0000-0000-000000000000"
    template = reverse(url_name, args=[marker])
    return lambda public_id: template.replace(marker, str(public_id))


def start_of_day(day: date) -> datetime:
    """00:00 of a local day in the active zone (the tenant's): a range on a timestamp
    column itself, rather than on its date, keeps the column's index usable."""
    return timezone.make_aware(datetime.combine(day, time.min))


class MemberChoiceField(ModelChoiceField):
    def label_from_instance(self, obj):
        # Membership.__str__ adds the tenant (one more query per option): the name is enough.
        if not obj.is_active:
            return gettext("%(name)s (inactive)") % {"name": obj.display_name}
        return obj.display_name


class OwnerFilter(django_filters.ModelChoiceFilter):
    """A seat of the tenant, by name (the queryset is narrowed to the tenant by the
    FilterSet: Membership has no scoped manager; row-level security narrows it too)."""

    field_class = MemberChoiceField


class FilterBarMixin:
    """For the FilterSets behind the lists' filter bars (leads, customers): whether any
    filter narrows the list, and the selects' options rendered by hand."""

    @property
    def is_filtered(self) -> bool:
        """Whether any filter narrows the list (valid values only)."""
        if not self.is_bound:
            return False
        self.form.is_valid()  # cleans once; invalid values are left out, as in .qs
        cleaned = getattr(self.form, "cleaned_data", {})
        return any(cleaned.get(name) not in (None, "") for name in self.filters)

    def options(self, name: str) -> list[tuple[str, str, bool]]:
        """(value, label, selected) for a select of the filter bar, rendered by hand:
        Django's Select widget renders a template per option, and a model field's choice
        iterator opens a server-side cursor; one plain query per list is enough."""
        field = self.form.fields[name]
        if isinstance(field, forms.ModelChoiceField):
            choices = [("", field.empty_label)]
            if field.null_label:  # e.g. "No reason given": ?invalid_reason=null
                choices.append((field.null_value, field.null_label))
            choices += [(obj.pk, field.label_from_instance(obj)) for obj in field.queryset]
        else:
            choices = field.choices
        return self._selected(name, choices)

    def _selected(self, name, choices) -> list[tuple[str, str, bool]]:
        current = self.form[name].value()
        current = "" if current is None else str(current)
        return [(str(v), label, str(v) == current) for v, label in choices]


class _Echo:
    """csv.writer's file: hands each formatted line back instead of storing it."""

    def write(self, value: str) -> str:
        return value


def csv_pieces(rows: Iterable[list]) -> Iterator[tuple[str, int]]:
    """The CSV text of `rows`, spreadsheet-ready: a byte-order mark first (without it Excel
    reads UTF-8 as the local code page), then the rows in pieces of about STREAM_PIECE
    characters (one write per row costs more than the row). Each piece comes with the
    number of rows written so far, the header included. The streamed download
    (streamed_csv) and the background export (crm.exports) both write with this."""
    writer = csv.writer(_Echo())
    batch, size, written = ["\ufeff"], 0, 0
    for row in rows:
        line = writer.writerow(row)
        batch.append(line)
        size += len(line)
        written += 1
        if size >= STREAM_PIECE:
            yield "".join(batch), written
            batch, size = [], 0
    if batch:
        yield "".join(batch), written


def streamed_csv(rows: Iterable[list], filename: str, *, tenant) -> StreamingHttpResponse:
    """A CSV download sent while it is read, row by row (csv_pieces).

    The rows are read after the view has returned, outside the request's tenant
    transaction: they are read inside `tenant`'s context again (scoped managers, RLS,
    times in its zone), in the request's language, and on the reports alias again when
    the view read there (crm.metrics.reading_all)."""
    from contextlib import nullcontext

    from crm.metrics import reading_all, routed_alias
    from crm.tenancy import tenant_context

    language = translation.get_language()
    routed = routed_alias() is not None

    def lines() -> Iterator[str]:
        with (
            translation.override(language),
            tenant_context(tenant),
            reading_all(tenant) if routed else nullcontext(),
        ):
            for piece, _written in csv_pieces(rows):
                yield piece

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


# The lists count their rows up to this many; beyond it they show the planner's estimate.
COUNT_CAP = 10_000


def list_paging(per_page, *, exact, searched, walked, count_cap, search_cap, rows_from):
    """RequestConfig's `paginate` for a list with a gram-table search (crm.search):

    - `?count=exact`: counted exactly, on demand;
    - not searched: counted up to `count_cap`, beyond it the planner's estimate (one query);
    - searched, more candidates than the search's cap (`walked`): "more than …", no count
      to read, the page read in the list's order;
    - searched, a short list of candidates: counted with the page's ids in one query, the
      page's rows read by id from `rows_from()` (the list with the exact check only, not
      the candidates' list, which a 50-row fetch would plan again)."""
    paging = {"per_page": per_page, "paginator_class": IdsFirstPaginator}
    if exact:
        return paging
    if not searched:
        paging.update(count_cap=count_cap)
    elif walked:
        paging.update(count_cap=search_cap, capped=True)
    else:
        paging.update(count_with_ids=True, rows_from=rows_from)
    return paging


def count_up_to(queryset, cap: int = COUNT_CAP) -> tuple[int, bool]:
    """A list's rows as its page counts them, in one query: exact up to `cap` (COUNT(*)
    over a LIMIT subquery stops reading at cap + 1 rows), beyond it the planner's estimate
    (crm_row_estimate(): EXPLAIN inside the database, under the same row-level security
    as the request). Returns the count and whether it is past the cap."""
    from django.db import connections

    ids = queryset.order_by().values("pk")
    connection = connections[ids.db]
    sql, params = ids.query.sql_with_params()
    capped_sql, capped_params = ids[: cap + 1].query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT (SELECT COUNT(*) FROM ({capped_sql}) capped), crm_row_estimate(%s)",  # noqa: S608
            [*capped_params, connection.ops.compose_sql(sql, params)],
        )
        found, estimate = cursor.fetchone()
    if found > cap:
        return max(found, estimate or 0), True
    return found, False


class IdsFirstPaginator(Paginator):
    """Fetches a page as "the rows whose id is among this page's ids" (a deferred join).

    The ids query pages over the list's own table alone, in the index order of the sort
    (the lead list's `lead_newest`, the customer list's `customer_last_contact` for the
    defaults), so OFFSET walks index entries rather than joined, full-width rows; the
    joins and per-row annotations then run for the page's 50 rows only.

    With `count_with_ids`, the ids query also counts the matches (COUNT(*) OVER ()): one
    query for a list known to be short (a search's few candidates), not two.

    With `count_cap`, the count stops at cap + 1 rows and beyond it is the planner's
    estimate (`count_up_to`; `count_capped` then says so): an exact COUNT reads every
    matching row, which at a million leads was most of the first page's time. A capped
    list shows the estimate ("about 1,000,000") and pages by it; a page past the real end
    falls back to the exact count and its last page. One count query either way,
    whatever the number of rows.

    With `capped`, the caller already knows there are more than `count_cap` rows (the
    lead search, from its candidates: leads.search): no count query, "more than cap".
    With `rows_from` (a callable returning the list's queryset with cheaper filters), the
    page's rows are read from that one by id: the lead search narrows the list to a long
    list of candidate ids, which a 50-row fetch need not plan again.
    """

    def __init__(
        self,
        *args,
        count_with_ids=False,
        count_cap=None,
        capped=False,
        rows_from=None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.count_with_ids = count_with_ids
        self.count_cap = count_cap
        self.capped = capped
        self.rows_from = rows_from
        self.count_capped = False

    @cached_property
    def count(self):
        if not self.count_cap:
            return super().count
        if self.capped:
            self.count_capped = True
            return self.count_cap + 1
        count, self.count_capped = count_up_to(self.object_list.data.data, self.count_cap)
        return count

    def exact_count(self):
        """The exact count, after a capped one proved too short or too long."""
        self.count = self.object_list.data.data.order_by().count()
        self.count_capped = False
        self.__dict__.pop("num_pages", None)  # a cached_property of the count
        return self.count

    def _valid_number(self, number):
        try:
            return self.validate_number(number)
        except EmptyPage:
            if not self.count_capped:
                raise
            # Past the estimate: the exact count says where the list really ends.
            self.exact_count()
            return self.validate_number(number)

    def page(self, number):
        rows = self.object_list  # django-tables2's BoundRows over the ordered queryset
        queryset = rows.data.data
        if self.count_with_ids and "count" not in self.__dict__:
            page = self._page_counted(queryset, rows.table, number)
            if page is not None:
                return page
        number = self._valid_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if top + self.orphans >= self.count and not self.count_capped:
            top = self.count  # a capped count is a lower bound or an estimate
        page_ids = list(queryset.values_list("pk", flat=True)[bottom:top])
        if not page_ids and number > 1 and self.count_capped:
            # Past the real end of an estimated list: count, and show its last page.
            self.exact_count()
            return self.page(self.num_pages)
        if self.rows_from is not None:
            queryset = self.rows_from().order_by(*queryset.query.order_by)
        page_rows = BoundRows(data=queryset.filter(pk__in=page_ids), table=rows.table)
        return self._get_page(page_rows, number, self)

    def _page_counted(self, queryset, table, number):
        try:
            number = int(number)
        except (TypeError, ValueError):
            return None  # validate_number() says why
        if number < 1:
            return None
        bottom = (number - 1) * self.per_page
        found = list(
            queryset.prefetch_related(None)
            .annotate(_matches=Window(Count("pk")))
            .values_list("pk", "_matches")[bottom : bottom + self.per_page + self.orphans]
        )
        if not found:
            return None  # past the end, or nothing matches: count, then the usual way
        self.count = found[0][1]  # the cached_property's slot
        number = self.validate_number(number)
        top = min(bottom + self.per_page, self.count)
        if top + self.orphans >= self.count:
            top = self.count
        ids = [pk for pk, _ in found[: top - bottom]]
        if self.rows_from is not None:
            queryset = self.rows_from().order_by(*queryset.query.order_by)
        page_rows = BoundRows(data=queryset.filter(pk__in=ids), table=table)
        return self._get_page(page_rows, number, self)


class MemberTable(tables.Table):
    username = tables.Column(
        accessor="user__username", verbose_name=_("username"), order_by="user__username"
    )
    name = tables.Column(
        accessor="user__last_name",
        verbose_name=_("name"),
        order_by=("user__last_name", "user__first_name"),
        empty_values=(),
    )
    role = tables.Column(verbose_name=_("role"))
    email = tables.Column(accessor="user__email", verbose_name=_("e-mail"))
    is_active = tables.BooleanColumn(verbose_name=_("active"))
    # A plain column rendered in Python: DateColumn compiles a template per cell.
    created_at = tables.Column(verbose_name=_("joined"), order_by=("created_at", "id"))

    class Meta:
        model = Membership
        fields = ["username", "name", "role", "email", "is_active", "created_at"]
        attrs = {"class": "table table-hover align-middle"}
        empty_text = _("No member matches these filters.")
        # Column names, not ORM paths: django-tables2 silently drops anything else.
        order_by = ("username",)

    def render_name(self, record):
        return record.user.get_full_name() or "—"

    def render_created_at(self, value):
        return format_date(value)


class MemberFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label=_("Search"))
    role = django_filters.ChoiceFilter(
        choices=Role.choices, label=_("role"), empty_label=_("All roles")
    )

    class Meta:
        model = Membership
        fields = ["q", "role"]

    def search(self, queryset, name, value):
        return queryset.filter(
            Q(user__username__icontains=value)
            | Q(user__first_name__icontains=value)
            | Q(user__last_name__icontains=value)
        )
