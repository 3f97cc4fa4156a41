"""Moving opportunities from a file (`opportunities:import`, GET/POST
`/opportunities/import/`): a CSV (or Excel sheet) with the columns `id` (the public uuid)
and `stage` (a stage code), for the sales managers and admins.

Every row goes through the one service (opportunities.services.opportunity_advance, path
"import"), in the file's order; nothing is all-or-nothing. The result lists every row of
the file in exactly one group: moved, already there, refused (with its missing items) or
not read (an unknown or foreign id, an unknown stage, a closed opportunity, a row listed
twice), with its line. A file that cannot be read at all (not a CSV, no `id` or `stage`
column, too long) is refused whole with the reason, and nothing moves.

The list's CSV export (opportunities.exports) has both columns first: an export edited
in its `stage` column is an import file as it is; its other columns are ignored.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from django import forms
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from crm.roles import OPPORTUNITY_WRITERS
from leads.intake.imports import MAX_UPLOAD_BYTES, ImportFileError, read_rows
from opportunities import services
from opportunities.access import opportunities_visible_to
from opportunities.models import Opportunity, Path, Stage
from opportunities.setup import ensure_defaults

# Rows one file may move: each runs the full check of every stage it passes.
MAX_ROWS = 1000
ID_HEADERS = ("id", "public_id", "uuid", "商机id", "商机编号")
STAGE_HEADERS = ("stage", "stage_code", "阶段", "阶段代码")


class ImportFileProblem(ValueError):
    """The file as a whole cannot be used; the message says why."""


@dataclass
class Row:
    line: int
    raw_id: str
    raw_stage: str
    opportunity: Opportunity | None = None
    stage: Stage | None = None
    error: str = ""


@dataclass
class Outcome:
    """What an import did, row by row."""

    moved: list[Row] = field(default_factory=list)
    unchanged: list[Row] = field(default_factory=list)
    refused: list[tuple[Row, services.RequirementsUnmet]] = field(default_factory=list)
    errors: list[Row] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.moved) + len(self.unchanged) + len(self.refused) + len(self.errors)


def _column(headers: list[str], names: tuple[str, ...]) -> int | None:
    wanted = {n.lower() for n in names}
    for index, header in enumerate(headers):
        if header.strip().lower().lstrip("\ufeff") in wanted:
            return index
    return None


def read_moves(uploaded_file) -> list[Row]:
    """The rows of the file as (line, id, stage), or ImportFileProblem."""
    try:
        headers, records = read_rows(uploaded_file)
    except ImportFileError as exc:
        raise ImportFileProblem(str(exc)) from None
    id_at, stage_at = _column(headers, ID_HEADERS), _column(headers, STAGE_HEADERS)
    if id_at is None or stage_at is None:
        raise ImportFileProblem(
            _(
                "The first row must name the columns: “id” (the opportunity's id, as the list's"
                " CSV export has it) and “stage” (the stage's code). Found: %(headers)s."
            )
            % {"headers": ", ".join(h for h in headers if h)[:200] or "—"}
        )
    if len(records) > MAX_ROWS:
        raise ImportFileProblem(
            _("The file has %(count)d rows: at most %(max)d at a time, split it.")
            % {"count": len(records), "max": MAX_ROWS}
        )
    rows = []
    for line, cells in records:
        cells = cells + [""] * (max(id_at, stage_at) + 1 - len(cells))
        rows.append(Row(line=line, raw_id=cells[id_at].strip(), raw_stage=cells[stage_at].strip()))
    return rows


def resolve(membership, rows: list[Row]) -> None:
    """Find each row's opportunity and stage (two queries for the file), or say why not.
    Another tenant's id, like any id the member may not move, is "no such opportunity"."""
    ids = {}
    for row in rows:
        try:
            ids[row.line] = uuid.UUID(row.raw_id)
        except ValueError:
            row.error = (
                _("The id is empty.") if not row.raw_id else _("“%(id)s” is not an opportunity id.")
            ) % {"id": row.raw_id[:40]}
    found = {
        o.public_id: o
        for o in opportunities_visible_to(membership)
        .select_related("customer", "stage")
        .filter(public_id__in=set(ids.values()))
    }
    stages = {s.code: s for s in Stage.objects.all()}
    active = ", ".join(code for code, s in stages.items() if s.is_active)
    seen = set()
    for row in rows:
        if row.error:
            continue
        public_id = ids[row.line]
        opportunity = found.get(public_id)
        stage = stages.get(row.raw_stage) or stages.get(row.raw_stage.lower())
        if opportunity is None or not services.can_write(membership, opportunity):
            row.error = _("No such opportunity: %(id)s.") % {"id": public_id}
        elif public_id in seen:
            row.error = _("This opportunity is on an earlier line already.")
        elif not row.raw_stage:
            row.error = _("The stage is empty: use one of %(codes)s.") % {"codes": active}
        elif stage is None:
            row.error = _("There is no stage “%(code)s”: use one of %(codes)s.") % {
                "code": row.raw_stage[:40],
                "codes": active,
            }
        elif not stage.is_active:
            row.error = _("The stage %(name)s is switched off.") % {"name": stage.name}
        elif not opportunity.is_open:
            row.error = _("The opportunity is %(status)s: it no longer moves.") % {
                "status": opportunity.get_status_display()
            }
        else:
            row.opportunity, row.stage = opportunity, stage
        if opportunity is not None:
            seen.add(public_id)


def apply_moves(*, tenant, membership, rows: list[Row]) -> Outcome:
    """Each readable row through opportunity_advance (path "import"), in the file's order."""
    outcome = Outcome()
    for row in rows:
        if row.error:
            outcome.errors.append(row)
            continue
        if row.opportunity.stage_id == row.stage.pk:
            outcome.unchanged.append(row)
            continue
        try:
            row.opportunity = services.opportunity_advance(
                tenant=tenant,
                acting_member=membership,
                opportunity=row.opportunity,
                stage=row.stage,
                path=Path.IMPORT,
            )
        except services.RequirementsUnmet as refusal:
            outcome.refused.append((row, refusal))
        except ValidationError as exc:  # closed meanwhile
            row.error = " ".join(exc.messages)
            outcome.errors.append(row)
        else:
            outcome.moved.append(row)
    outcome.errors.sort(key=lambda r: r.line)
    return outcome


class ImportMovesForm(forms.Form):
    file = forms.FileField(
        label=gettext_lazy("File"),
        help_text=gettext_lazy(
            "CSV (UTF-8 or GBK) or Excel .xlsx; the first row names the columns id and stage."
        ),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.rows: list[Row] = []

    def clean_file(self):
        uploaded = self.cleaned_data["file"]
        try:
            self.rows = read_moves(uploaded)
        except ImportFileProblem as exc:
            raise ValidationError(str(exc)) from None
        if not self.rows:
            raise ValidationError(_("The file has no rows under its header."))
        return uploaded


@require_http_methods(["GET", "POST"])
def import_moves(request: HttpRequest) -> HttpResponse:
    membership = request.membership
    if membership is None or membership.role not in OPPORTUNITY_WRITERS:
        raise PermissionDenied(_("Moving opportunities from a file is for sales managers."))
    ensure_defaults()
    status = 200
    if request.method == "POST":
        form = ImportMovesForm(request.POST, request.FILES)
        if form.is_valid():
            resolve(membership, form.rows)
            outcome = apply_moves(tenant=request.tenant, membership=membership, rows=form.rows)
            context = {
                "outcome": outcome,
                "filename": form.cleaned_data["file"].name,
            }
            return TemplateResponse(request, "opportunities/import_result.html", context)
        status = 422
    else:
        form = ImportMovesForm()
    context = {
        "form": form,
        "stages": list(Stage.objects.filter(is_active=True).order_by("position", "id")),
        "max_rows": MAX_ROWS,
        "max_mb": f"{MAX_UPLOAD_BYTES / 1024 / 1024:g}",
    }
    return TemplateResponse(request, "opportunities/import.html", context, status=status)
