"""Minutes between two moments as a tenant counts them (F30): on the calendar, or in
working hours only (ServiceSettings.working_hours_only): the tenant's working day
(`work_starts`–`work_ends`, its time zone) on working days, the Chinese public holidays
off and their make-up working weekends (调休) on, from the `chinesecalendar` package.

A day the package does not know (past its last year) counts as a working day from Monday
to Friday."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import chinese_calendar

# Past this, a duration is implausible: flagged on the ticket, left out of averages.
ABSURD_MINUTES = 366 * 24 * 60


def is_working_day(day: date) -> bool:
    try:
        return chinese_calendar.is_workday(day)
    except NotImplementedError:  # a year the calendar does not cover yet
        return day.weekday() < 5


def calendar_minutes(start: datetime, end: datetime) -> int:
    return int((end - start).total_seconds() // 60)


def working_minutes(start: datetime, end: datetime, *, tz, starts: time, ends: time) -> int:
    """Minutes of [start, end) that fall in working hours on working days (tenant time)."""
    if end <= start:
        return 0
    local_start, local_end = start.astimezone(tz), end.astimezone(tz)
    total = 0
    day = local_start.date()
    while day <= local_end.date():
        if is_working_day(day):
            open_ = datetime.combine(day, starts, tzinfo=tz)
            close = datetime.combine(day, ends, tzinfo=tz)
            lo, hi = max(open_, local_start), min(close, local_end)
            if hi > lo:
                total += int((hi - lo).total_seconds() // 60)
        day += timedelta(days=1)
    return total


def minutes(settings, start: datetime | None, end: datetime | None) -> tuple[int | None, str]:
    """(minutes, problem) from `start` to `end` as `settings` (ServiceSettings) count them:
    (None, "") when either is missing, (None, why) when the duration is negative or
    absurd (the ticket keeps the why, the averages leave it out)."""
    if start is None or end is None:
        return None, ""
    if end < start:
        return None, "negative"
    if calendar_minutes(start, end) > ABSURD_MINUTES:
        return None, "absurd"
    if settings.working_hours_only:
        return (
            working_minutes(
                start,
                end,
                tz=settings.tenant.tzinfo,
                starts=settings.work_starts,
                ends=settings.work_ends,
            ),
            "",
        )
    return calendar_minutes(start, end), ""
