"""The board bench's figures (bench/board.py): the lead-quality roll-ups (as the beat
jobs make them, or change marks that make days count live), and the board and report
pages measured (with their slowest plans on `--explain`)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from datetime import time as dtime

from board_data import REPORT_DAYS, TZ, local_date
from common import explain, log, measure


def roll_up(tenant, *, mark_days=None) -> int:
    """`leads.reports.rollups.cover` (what the nightly job does, then the 5-minute refresh), or,
    with `mark_days`, only write change marks for every hour of those local days, as if
    their leads had just changed: the report then counts them live until the next run."""
    from crm.tenancy import tenant_context
    from leads.models import ReportChange
    from leads.reports import rollups

    with tenant_context(tenant):
        if mark_days is None:
            return rollups.cover(tenant)
        marks = []
        for day in mark_days:
            start = datetime.combine(day, dtime.min, tzinfo=TZ).astimezone(UTC)
            marks += [
                ReportChange(tenant=tenant, hour=start + timedelta(hours=h)) for h in range(24)
            ]
        ReportChange.objects.bulk_create(marks)
        return len(mark_days)


# -- measuring --------------------------------------------------------------------------------


def _page_exists(name: str) -> bool:
    from django.urls import NoReverseMatch, reverse

    try:
        reverse(name)
    except NoReverseMatch:
        return False
    return True


def _with_explain(result: dict, tenant, keep: bool) -> dict:
    if not keep:
        return result
    result["explain"] = [
        {"sql": q["sql"], "ms": q["ms"], "plan": explain(q["sql"], tenant=tenant)}
        for q in sorted(result.pop("sql"), key=lambda q: -q["ms"])[:5]
        if q["sql"].lstrip().upper().startswith("SELECT") and "set_config(" not in q["sql"]
    ]
    return result


def board_counts(tenant, member) -> dict | None:
    """The board's own count of the member's items (None without leads.board.ranking.board_for)."""
    from crm.tenancy import tenant_context

    try:
        from leads.board.ranking import board_for
    except ImportError:
        return None
    with tenant_context(tenant):
        return board_for(member).counts


def measure_pages(args, tenant, chosen, other, manager) -> dict:
    from django.urls import reverse

    pages = {}
    if _page_exists("board:board"):
        path = reverse("board:board")
        log(f"measuring board: {path} as {chosen.user.username}")
        pages["board"] = _with_explain(
            measure(
                path, membership=chosen, n=args.requests, warmup=args.warmup, keep_sql=args.explain
            ),
            tenant,
            args.explain,
        )
        log(f"measuring board_as_manager: {path}?rep=… as {manager.user.username}")
        pages["board_as_manager"] = _with_explain(
            measure(
                path,
                membership=manager,
                n=args.requests,
                warmup=args.warmup,
                params={"rep": str(chosen.public_id)},
                keep_sql=args.explain,
            ),
            tenant,
            args.explain,
        )
        # Another rep, with the bulk data's share of open items: the same query count.
        log(f"measuring board_other_rep: {path} as {other.user.username}")
        pages["board_other_rep"] = measure(path, membership=other, n=20, warmup=2)
        for label, member in (("board", chosen), ("board_other_rep", other)):
            pages[label]["items"] = board_counts(tenant, member)
    else:
        log("skipped: the board (URL board:board) does not exist yet")
        pages["board"] = {"skipped": "board:board not found"}
    if _page_exists("lead_reports:lead_quality"):
        path = reverse("lead_reports:lead_quality")
        today = local_date(datetime.now(UTC))
        params = {
            "created_from": (today - timedelta(days=REPORT_DAYS - 1)).isoformat(),
            "created_to": today.isoformat(),
        }
        log(f"measuring report: {path} {params} as {manager.user.username}")
        pages["report"] = _with_explain(
            measure(
                path,
                membership=manager,
                n=args.report_requests,
                warmup=2,
                params=params,
                keep_sql=args.explain,
            ),
            tenant,
            args.explain,
        )
        # The page's default range (the last 30 days), for comparison.
        log(f"measuring report_default_range: {path} as {manager.user.username}")
        pages["report_default_range"] = measure(
            path, membership=manager, n=max(5, args.report_requests // 2), warmup=2
        )
        # Leads of the last three days changed since the last roll-up (as during a working
        # day: today's arrive, yesterday's are verified and followed up): counted live.
        recent = [today - timedelta(days=i) for i in range(3)]
        roll_up(tenant, mark_days=recent)
        log(f"measuring report_recent_days_live: {path} {params}, {recent} live")
        pages["report_recent_days_live"] = measure(
            path, membership=manager, n=args.report_requests, warmup=2, params=params
        )
        # Without roll-ups (every day marked): the live count alone, for comparison.
        every = [today - timedelta(days=i) for i in range(REPORT_DAYS)]
        roll_up(tenant, mark_days=every)
        log(f"measuring report_without_rollups: {path} {params}, all live")
        pages["report_without_rollups"] = measure(
            path, membership=manager, n=3, warmup=1, params=params
        )
        t = time.perf_counter()
        days = roll_up(tenant)
        pages["report_without_rollups"]["refresh_after"] = {
            "days": days,
            "seconds": round(time.perf_counter() - t, 2),
        }
    else:
        log("skipped: the lead-quality report (URL lead_reports:lead_quality) does not exist")
        pages["report"] = {"skipped": "lead_reports:lead_quality not found"}
    return pages
