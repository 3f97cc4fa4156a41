"""What the pipeline's screens show, read in a fixed number of queries and rendered in
Python (a kanban of 250 cards through the template engine took 150 ms):

- the table (django-tables2), built like the lead and customer lists: cells rendered in
  one pass (body_rows), headers, sorting and pagination django-tables2's, pages fetched
  ids first (crm.tables.IdsFirstPaginator); the CSV rows are opportunities.exports';
- the kanban's columns (`kanban_columns`) and cards (`CardRenderer`): the card is also
  the answer to a move from the kanban (opportunities.views_pipeline.advance)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

import django_tables2 as tables
from django.db.models import Count, DecimalField, ExpressionWrapper, F, Q, Sum
from django.utils import timezone
from django.utils.html import conditional_escape, format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from crm.formatting import format_date, format_datetime, format_month
from crm.models import Membership
from crm.tables import detail_url_maker
from opportunities.access import sees_amounts
from opportunities.models import Opportunity, OpportunityStatus, Stage
from opportunities.services import can_write

# Cards shown per kanban column; the rest are in the table (a link says how many).
CARDS_PER_COLUMN = 50

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


# -- the kanban -----------------------------------------------------------------------------


@dataclass
class Card:
    """An opportunity as the kanban shows it."""

    opportunity: Opportunity
    stage: Stage
    days_in_stage: int
    idle_days: int
    stalled: bool
    movable: bool
    amount_text: str
    next_code: str  # what its "Move to" menu offers first: the next stage

    @property
    def weighted(self) -> Decimal:
        amount = self.opportunity.amount or Decimal(0)
        return amount * self.opportunity.probability / 100


def make_card(
    opportunity: Opportunity, stage: Stage, stages: list[Stage], membership: Membership, now
) -> Card:
    later = [s for s in stages if (s.position, s.pk) > (stage.position, stage.pk)]
    return Card(
        opportunity=opportunity,
        stage=stage,
        days_in_stage=max(0, (now - opportunity.stage_entered_at).days),
        idle_days=max(0, (now - opportunity.last_activity_at).days),
        stalled=opportunity.last_activity_at < now - timedelta(days=stage.days_to_stall),
        movable=can_write(membership, opportunity),
        amount_text=format_amount(opportunity.amount) if sees_amounts(membership) else "",
        next_code=later[0].code if later else stage.code,
    )


@dataclass
class Column:
    stage: Stage
    count: int = 0
    amount: Decimal = Decimal(0)
    weighted: Decimal = Decimal(0)
    valid: int = 0
    cards: list[Card] = field(default_factory=list)
    html: list[SafeString] = field(default_factory=list)  # the cards, rendered

    @property
    def more(self) -> int:
        return max(0, self.count - len(self.cards))

    @property
    def amount_text(self) -> str:
        return format_amount(self.amount)

    @property
    def weighted_text(self) -> str:
        return format_amount(self.weighted.quantize(Decimal(1)))


def kanban_columns(
    membership: Membership, queryset, stages: list[Stage], *, per_column: int = CARDS_PER_COLUMN
) -> list[Column]:
    """A column per stage of `stages` with the open opportunities of `queryset` in it: the
    totals (one grouped query), the first `per_column` ids of every column (one query: a
    UNION ALL of one LIMIT per stage, each read from the index opportunity_column or
    opportunity_owner_column) and their rows (one query), whatever their number."""
    columns = {stage.pk: Column(stage) for stage in stages}
    open_ones = queryset.filter(status=OpportunityStatus.OPEN, stage__in=list(columns))
    weighted = ExpressionWrapper(
        F("amount") * F("probability") / 100, output_field=DecimalField(max_digits=20)
    )
    totals = (
        open_ones.order_by()
        .values("stage_id")
        .annotate(
            n=Count("id"),
            sum_amount=Sum("amount"),
            sum_weighted=Sum(weighted),
            n_valid=Count("id", filter=Q(is_valid=True)),
        )
    )
    for row in totals:
        column = columns[row["stage_id"]]
        column.count = row["n"]
        column.amount = row["sum_amount"] or Decimal(0)
        column.weighted = row["sum_weighted"] or Decimal(0)
        column.valid = row["n_valid"]
    filled = [c for c in columns.values() if c.count]
    if filled:
        firsts = [
            open_ones.filter(stage_id=c.stage.pk)
            .order_by("-last_activity_at", "-id")
            .values_list("pk", flat=True)[:per_column]
            for c in filled
        ]
        ids = list(firsts[0].union(*firsts[1:], all=True)) if len(firsts) > 1 else list(firsts[0])
        now = timezone.now()
        rows = (
            Opportunity.objects.filter(pk__in=ids)
            .select_related("customer", "owner__user")
            .order_by("-last_activity_at", "-id")
        )
        for opportunity in rows:
            column = columns[opportunity.stage_id]
            opportunity.stage = column.stage
            column.cards.append(make_card(opportunity, column.stage, stages, membership, now))
    return [columns[stage.pk] for stage in stages]


class CardRenderer:
    """A kanban card's HTML (templates/opportunities/kanban.html shows them; kanban.js
    reads their data-* attributes): what is translated and every stage's option is
    prepared once per page, each card is then one format_html."""

    def __init__(self, stages: list[Stage], *, show_amounts: bool, csrf_token: str):
        self.stages = stages
        self.show_amounts = show_amounts
        self.csrf_token = csrf_token
        self.detail_url = detail_url_maker("opportunities:detail")
        self.advance_url = detail_url_maker("opportunities:advance")
        self.valid = format_html(
            '<span class="badge text-bg-success" data-testid="valid-badge" title="{}">{}</span>',
            gettext("All four validity checks pass"),
            gettext("Valid"),
        )
        self.probability_title = gettext("probability")
        self.days_title = gettext("Days in this stage")
        self.move_to = gettext("Move to")
        self.move = gettext("Move")
        self.now = gettext("now")

    def _options(self, card: Card) -> SafeString:
        return format_html_join(
            "",
            '<option value="{}"{}>{}{}</option>',
            (
                (
                    stage.code,
                    mark_safe(" selected") if stage.code == card.next_code else "",
                    stage.name,
                    f" ({self.now})" if stage.pk == card.stage.pk else "",
                )
                for stage in self.stages
            ),
        )

    def _move_form(self, card: Card, public_id: str) -> SafeString:
        if not card.movable:
            return mark_safe("")
        return format_html(
            '<form class="kanban-move input-group input-group-sm mt-2" method="post"'
            ' action="{url}" data-testid="move-form">'
            '<input type="hidden" name="csrfmiddlewaretoken" value="{token}">'
            '<input type="hidden" name="path" value="form">'
            '<label class="input-group-text" for="move-{id}">{move_to}</label>'
            '<select class="form-select" id="move-{id}" name="stage" aria-label="{label}"'
            ' data-testid="move-select">{options}</select>'
            '<button class="btn btn-outline-primary" type="submit" title="{move}"'
            ' data-testid="move-submit"><i class="bi bi-arrow-right" aria-hidden="true"></i>'
            '<span class="visually-hidden">{move}</span></button></form>',
            url=self.advance_url(public_id),
            token=self.csrf_token,
            id=public_id,
            move_to=self.move_to,
            label=gettext("Move %(name)s to") % {"name": card.opportunity.name},
            options=self._options(card),
            move=self.move,
        )

    def render(self, card: Card) -> SafeString:
        opportunity = card.opportunity
        public_id = str(opportunity.public_id)
        data = format_html(
            ' data-probability="{}" data-valid="{}"',
            opportunity.probability,
            "1" if opportunity.is_valid else "0",
        )
        if self.show_amounts:
            data += format_html(' data-amount="{}"', opportunity.amount or 0)
        if card.movable:
            data += format_html(
                ' data-movable="1" data-advance-url="{}"', self.advance_url(public_id)
            )
        amount = (
            format_html('<span data-testid="card-amount">{}</span>', card.amount_text)
            if card.amount_text
            else ""
        )
        stalled = ""
        if card.stalled:
            stalled = format_html(
                '<div class="small text-warning-emphasis mt-1" data-testid="stalled">'
                '<i class="bi bi-hourglass-split"></i> {}</div>',
                ngettext(
                    "Stalled: no activity for %(count)d day",
                    "Stalled: no activity for %(count)d days",
                    card.idle_days,
                )
                % {"count": card.idle_days},
            )
        return format_html(
            '<li class="kanban-card card mb-2{stalled_class}" id="card-{id}"'
            ' data-testid="kanban-card" data-id="{id}" data-stage="{stage}"{data}>'
            '<div class="card-body p-2">'
            '<div class="d-flex justify-content-between align-items-start gap-1">'
            '<a class="fw-semibold kanban-name" href="{url}" data-testid="card-name">{name}</a>'
            "{valid}</div>"
            '<div class="small text-body-secondary text-truncate" data-testid="card-customer">'
            "{customer}</div>"
            '<div class="small d-flex flex-wrap column-gap-2 mt-1">{amount}'
            '<span data-testid="card-probability" title="{probability_title}">{probability}%'
            "</span>"
            '<span data-testid="card-days" title="{days_title}"><i class="bi bi-clock"></i> '
            "{days}</span>"
            '<span class="text-body-secondary text-truncate" data-testid="card-owner">'
            '<i class="bi bi-person"></i> {owner}</span></div>'
            "{stalled}{form}"
            '<div class="kanban-feedback mt-2" aria-live="polite" data-testid="card-feedback">'
            "</div></div></li>",
            stalled_class=" kanban-stalled" if card.stalled else "",
            id=public_id,
            stage=card.stage.code,
            data=data,
            url=self.detail_url(public_id),
            name=opportunity.name,
            valid=self.valid if opportunity.is_valid else "",
            customer=opportunity.customer.name,
            amount=amount,
            probability_title=self.probability_title,
            probability=opportunity.probability,
            days_title=self.days_title,
            days=ngettext("%(count)d day", "%(count)d days", card.days_in_stage)
            % {"count": card.days_in_stage},
            owner=opportunity.owner.display_name,
            stalled=stalled,
            form=self._move_form(card, public_id),
        )
