"""Background exports: a list too long to stream to the browser is written to a file by a
worker, with its progress, and downloaded from /exports/ (crm.exports_views).

Every list with a CSV streams it (crm.tables.streamed_csv) below BACKGROUND_THRESHOLD
rows; above it (or when its count is capped, crm.tables.IdsFirstPaginator) its "Export
CSV" button becomes a POST that queues an `Export` here. The kernel never imports the
apps: each app registers its lists as export sources in its AppConfig.ready(),

    from crm.exports import ExportSource, register_source

    register_source(
        ExportSource(
            name="leads",
            label=_("Leads"),
            roles=LEAD_LIST,
            rows=lead_rows,  # (membership, QueryDict) -> (file name stem, rows)
            count=lead_count,  # (membership, QueryDict) -> rows expected, optional
            list_url="leads:list",
        )
    )

- `rows(membership, query)` returns the file's name without ".csv" and the rows, the
  header first: exactly what the list's streamed CSV sends for the same query string
  (filters and sort), so both read one function. It runs inside the tenant, in the
  requester's language; it raises PermissionDenied for a member the list refuses.
- `count(membership, query)` is the list's count or estimate (`list_count`), for the
  progress bar; the button's threshold reads the list's own count (`in_background`).
- `roles`: who may export it (checked at request and again when the worker runs).

The worker (`run_export`) writes with the streamed export's writer (crm.tables.csv_pieces),
commits `rows_written` every PROGRESS_EVERY rows, and tells the requester when the file is
ready (the bell, crm.notify). A job is claimed once (queued → running): a message
delivered twice does not write it twice. Beat (`exports_cleanup_all`) deletes exports and
their files after KEEP_DAYS, and fails a job left running by a lost worker.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from pathlib import Path

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.storage import default_storage
from django.db import transaction
from django.http import QueryDict
from django.utils import timezone, translation
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crm.celery import TenantTask, app
from crm.jobs import per_active_tenant
from crm.metrics import reading_all
from crm.models import Export, ExportStatus, Membership, Tenant, export_upload_to
from crm.roles import EVERYONE, MANAGERS
from crm.tables import count_up_to, csv_pieces
from crm.tenancy import tenant_context

logger = logging.getLogger(__name__)

# A list with more rows than this (or one whose count is capped) is exported in the
# background; below it the browser streams the CSV as before.
BACKGROUND_THRESHOLD = 20_000
# rows_written is committed about this often (a 1,000,000-row export: 200 updates).
PROGRESS_EVERY = 5_000
# Exports (rows and files) are kept this long.
KEEP_DAYS = 7
# A job still queued or running after this long was lost with its worker or message.
STALE_AFTER = timedelta(hours=1)
# Exports one member may have queued or running at once.
MAX_PENDING = 3
# The list's parameters that are not filters or sort.
NOT_FILTERS = ("_export", "page", "per_page", "count")

EXPORT_DONE = "export.done"
EXPORT_FAILED = "export.failed"


# --- The registry -------------------------------------------------------------------------

RowsProvider = Callable[[Membership, QueryDict], tuple[str, Iterable[list]]]
CountProvider = Callable[[Membership, QueryDict], int | None]


@dataclass(frozen=True)
class ExportSource:
    name: str  # the Export's `kind`, at most 40 characters
    label: str  # lazy: the list's name on /exports/
    rows: RowsProvider = field(compare=False)
    count: CountProvider | None = field(default=None, compare=False)
    roles: frozenset[str] = EVERYONE
    list_url: str = ""  # the list's URL name, for a link back to it


_registry: dict[str, ExportSource] = {}


def register_source(source: ExportSource) -> None:
    """Make a list exportable in the background; registering a name again replaces it."""
    if len(source.name) > 40:
        raise ValueError(f"export source {source.name!r} is longer than 40 characters")
    _registry[source.name] = source


def get_source(name: str) -> ExportSource | None:
    return _registry.get(name)


def sources() -> list[ExportSource]:
    return sorted(_registry.values(), key=lambda s: s.name)


# --- What the lists use ----------------------------------------------------------------------


def in_background(count: int, capped: bool = False) -> bool:
    """Whether a list of `count` rows (a lower bound or an estimate when `capped`) is
    exported in the background rather than streamed."""
    return capped or count > BACKGROUND_THRESHOLD


def list_query(query: QueryDict) -> str:
    """The list's filters and sort from its query string (page, count and export dropped)."""
    params = query.copy()
    for name in NOT_FILTERS:
        params.pop(name, None)
    return params.urlencode()


def sort_as_list(table, query: QueryDict) -> None:
    """Sort a django-tables2 table as its list sorts it for `query` (what RequestConfig
    does with ?sort=, without a request)."""
    order_by = query.getlist(table.prefixed_order_by_field)
    if order_by:
        table.order_by = order_by


def list_count(queryset) -> int:
    """A list's rows as its page counts them (crm.tables.count_up_to)."""
    return count_up_to(queryset)[0]


# --- Requesting one --------------------------------------------------------------------------


def visible_exports(membership: Membership):
    """The exports `membership` may see and download: managers and admins the tenant's,
    everyone else their own."""
    exports = Export.objects.select_related("requested_by__user")
    if membership.role in MANAGERS:
        return exports
    return exports.filter(requested_by=membership)


def export_request(*, tenant: Tenant, membership: Membership, kind: str, query: str) -> Export:
    """Queue the export of list `kind` with `query` (its filters and sort) for `membership`;
    the worker starts once the transaction commits. PermissionDenied for a member the
    list refuses, LookupError for an unknown list, ValidationError when the member has
    MAX_PENDING exports in progress already."""
    source = get_source(kind)
    if source is None:
        raise LookupError(kind)
    if membership.role not in source.roles:
        raise PermissionDenied(gettext("You may not export this list."))
    params = QueryDict(list_query(QueryDict(query)))
    pending = Export.objects.filter(
        requested_by=membership, status__in=(ExportStatus.QUEUED, ExportStatus.RUNNING)
    ).count()
    if pending >= MAX_PENDING:
        raise ValidationError(
            gettext("You have %(count)s exports in progress: wait for one to finish."),
            params={"count": pending},
        )
    expected = source.count(membership, params) if source.count is not None else None
    job = Export.objects.create(
        tenant=tenant,
        kind=kind,
        query=params.urlencode(),
        language=translation.get_language() or "",
        requested_by=membership,
        rows_expected=expected,
    )
    transaction.on_commit(partial(run_export.delay, tenant.pk, job.pk), robust=True)
    return job


# --- The worker ------------------------------------------------------------------------------


class _Progress:
    """Commits rows_written while the export's rows are still being read.

    The rows are read in one transaction (a server-side cursor lives no longer), and what
    it writes stays unseen until it ends; so the progress is written from a thread of its
    own, on that thread's own connection (Django keeps one per thread), in the tenant's
    context. Best effort: a failed update is logged, not raised."""

    def __init__(self, tenant: Tenant, export_id: int):
        self.tenant = tenant
        self.export_id = export_id
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="export-progress")

    def report(self, rows: int) -> None:
        self._pool.submit(self._write, rows)

    def _write(self, rows: int) -> None:
        try:
            with tenant_context(self.tenant):
                Export.objects.filter(pk=self.export_id, status=ExportStatus.RUNNING).update(
                    rows_written=rows
                )
        except Exception:
            logger.warning("export %s: progress not saved", self.export_id, exc_info=True)

    def close(self) -> None:
        from django.db import connections

        self._pool.submit(connections.close_all)  # the thread's own connection
        self._pool.shutdown(wait=True)


def _write_file(job: Export, tenant: Tenant) -> tuple[str, str, int]:
    """Write `job`'s CSV (inside its tenant). Returns (stored name, download name, rows)."""
    source = get_source(job.kind)
    if source is None:
        raise LookupError(gettext("This list can no longer be exported."))
    member = job.requested_by
    if not member.is_active or member.role not in source.roles:
        raise PermissionDenied(gettext("The member who asked may no longer export this list."))
    stem, rows = source.rows(member, QueryDict(job.query))
    name = export_upload_to(job, "")
    path = Path(default_storage.path(name))
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    progress = _Progress(tenant, job.pk)
    written = reported = 0
    try:
        with open(part, "w", encoding="utf-8", newline="") as out:
            for piece, written in csv_pieces(rows):
                out.write(piece)
                if written - reported >= PROGRESS_EVERY:
                    progress.report(written - 1)  # the header is not a row
                    reported = written
        os.replace(part, path)  # a file is there whole or not at all
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    finally:
        progress.close()
    return name, f"{stem}.csv", max(0, written - 1)


@app.task(name="crm.run_export")
def run_export(tenant_id: int, export_id: int) -> str | None:
    """Write one queued export. Not a TenantTask (one transaction): the claim, the rows and
    the outcome are three transactions in the tenant, so that /exports/ sees it running,
    its progress, and a failure recorded even though the rows' transaction rolled back."""
    tenant = Tenant.objects.filter(pk=tenant_id, is_active=True).first()
    if tenant is None:
        return None
    with tenant_context(tenant):
        # Claimed once: a message delivered twice finds it running or done and stops.
        claimed = Export.objects.filter(pk=export_id, status=ExportStatus.QUEUED).update(
            status=ExportStatus.RUNNING, started_at=timezone.now()
        )
        if not claimed:
            return None
        job = Export.objects.select_related("requested_by__user").get(pk=export_id)
    try:
        # The rows are read on the reports alias (a replica when configured: a long read
        # off the primary), the job's progress and outcome written on the primary.
        with (
            translation.override(job.language or None),
            tenant_context(tenant),
            reading_all(tenant),
        ):
            name, filename, rows = _write_file(job, tenant)
    except Exception as exc:
        logger.exception("export %s (%s) failed", job.pk, job.kind)
        error = str(exc) or type(exc).__name__
        with tenant_context(tenant):
            _finish(job, status=ExportStatus.FAILED, error=error[:500])
        return ExportStatus.FAILED
    with tenant_context(tenant):
        _finish(job, status=ExportStatus.DONE, file=name, filename=filename, rows_written=rows)
    return ExportStatus.DONE


def _finish(job: Export, **fields) -> None:
    from django.urls import reverse

    from crm.notify import notify

    fields["finished_at"] = timezone.now()
    Export.objects.filter(pk=job.pk).update(**fields)
    done = fields["status"] == ExportStatus.DONE
    source = get_source(job.kind)
    try:
        # A notification that cannot be written never costs the export its outcome.
        with transaction.atomic():
            notify(
                event=EXPORT_DONE if done else EXPORT_FAILED,
                recipients=[job.requested_by],
                params={
                    "list": str(source.label) if source else job.kind,
                    "rows": fields.get("rows_written", 0),
                    "error": fields.get("error", ""),
                },
                link=reverse("exports"),
            )
    except Exception:
        logger.exception("export %s: the requester was not notified", job.pk)


# --- Clean-up ----------------------------------------------------------------------------------

CLEANUP_EXPIRES = 1800  # seconds: a clean-up still queued when the next is due expires


@app.task(name="crm.exports_cleanup_all")
def exports_cleanup_all() -> int:
    """Beat, hourly: queue each active tenant's clean-up (a platform job that only lists
    tenants; each clean-up runs inside its own tenant)."""
    return per_active_tenant(exports_cleanup, expires=CLEANUP_EXPIRES)


@app.task(base=TenantTask, name="crm.exports_cleanup", round_robin=True)
def exports_cleanup(tenant_id: int) -> int:
    return cleanup()


def cleanup(now=None) -> int:
    """The current tenant's exports older than KEEP_DAYS deleted with their files; jobs
    queued or running for longer than STALE_AFTER marked failed. Returns the deleted."""
    now = now or timezone.now()
    old = Export.objects.filter(created_at__lt=now - timedelta(days=KEEP_DAYS))
    names = [name for name in old.values_list("file", flat=True) if name]
    deleted, _by_model = old.delete()
    for name in names:
        try:
            default_storage.delete(name)
        except OSError:
            logger.warning("export file %s not deleted", name, exc_info=True)
    Export.objects.filter(
        status__in=(ExportStatus.QUEUED, ExportStatus.RUNNING), created_at__lt=now - STALE_AFTER
    ).update(
        status=ExportStatus.FAILED,
        error=gettext("Interrupted: the worker stopped before the file was written."),
        finished_at=now,
    )
    return deleted


# --- Kernel registrations ----------------------------------------------------------------------


def register_defaults() -> None:
    """The export notifications (called from CrmConfig.ready)."""
    from crm.notify import EventType, register_event

    register_event(
        EventType(
            key=EXPORT_DONE,
            label=_("A background export is ready"),
            title=_("Your export of %(list)s is ready"),
            body=_("%(rows)s rows: download it from Exports within 7 days."),
        )
    )
    register_event(
        EventType(
            key=EXPORT_FAILED,
            label=_("A background export failed"),
            title=_("Your export of %(list)s failed"),
            body=_("Error: %(error)s. Start it again from the list."),
        )
    )
