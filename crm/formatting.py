"""How times and phone numbers are shown to people: one place, used by pages, the admin,
exports meant for people and the `__str__` of models.

Times are shown in the tenant's time zone (the tenant in scope, else the active zone,
which `TenantMiddleware` sets to the tenant's) as `2026-12-02 07:40`, dates as
`2026-12-02`, clock times as `07:40`. The same formats are Django's own for both
languages (`crm/formats/`), so the admin's columns and read-only fields agree with the
pages. Templates use the filters of `crm_format` (`local_datetime`, `local_date`,
`local_time`, `phone`). Machine-readable output (JSON, the `datetime` attribute of
<time>, stored data) keeps ISO 8601.

Phones are stored in E.164 (`+8613800138000`) and shown in the national format for
Chinese numbers (`138 0013 8000`, `010 6552 9988`), in the international format for
others (`+1 650-253-0000`); anything that does not parse is shown as it was typed.
"""

from __future__ import annotations

import datetime
import zoneinfo
from functools import lru_cache

import phonenumbers
from django.utils import timezone

# Django's format strings (crm/formats/*/formats.py) and the strftime equivalents used
# here: strftime is several times faster than django.utils.dateformat, which matters on
# lists of hundreds of rows. They must say the same thing.
DATETIME_FORMAT = "Y-m-d H:i"
DATE_FORMAT = "Y-m-d"
TIME_FORMAT = "H:i"
_STRF_DATETIME = "%Y-%m-%d %H:%M"
_STRF_DATE = "%Y-%m-%d"
_STRF_TIME = "%H:%M"

HOME_REGION = "CN"


def display_zone(tz: datetime.tzinfo | None = None) -> datetime.tzinfo:
    """The zone times are shown in: `tz` if given, else the current tenant's, else the
    active one (the tenant's during its requests, settings.TIME_ZONE otherwise)."""
    if tz is not None:
        return tz
    from crm.tenancy import current_tenant

    tenant = current_tenant()
    if tenant is not None:
        return _zone(tenant.timezone)
    return timezone.get_current_timezone()


@lru_cache(maxsize=64)
def _zone(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)


def local(value: datetime.datetime, tz: datetime.tzinfo | None = None) -> datetime.datetime:
    """An aware datetime in the display zone (a naive one is taken as already local)."""
    if timezone.is_naive(value):
        return value
    return value.astimezone(display_zone(tz))


def format_datetime(value, tz: datetime.tzinfo | None = None) -> str:
    """`2026-12-02 07:40` in the display zone; "" for None."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = _parse(value)
        if isinstance(value, str):
            return value
    if not isinstance(value, datetime.datetime):
        return format_date(value)
    return local(value, tz).strftime(_STRF_DATETIME)


def format_date(value, tz: datetime.tzinfo | None = None) -> str:
    """`2026-12-02`: a date as it is, a datetime as its local day; "" for None."""
    if value is None or value == "":
        return ""
    if isinstance(value, datetime.datetime):
        value = local(value, tz)
    return value.strftime(_STRF_DATE)


def format_month(value, tz: datetime.tzinfo | None = None) -> str:
    """`2026-12`: a month (a date, its first day), a datetime as its local month; "" for
    None."""
    if value is None or value == "":
        return ""
    if isinstance(value, datetime.datetime):
        value = local(value, tz)
    return f"{value.year:04d}-{value.month:02d}"


def format_time(value, tz: datetime.tzinfo | None = None) -> str:
    """`07:40`, the clock time in the display zone; "" for None."""
    if value is None or value == "":
        return ""
    if isinstance(value, datetime.datetime):
        value = local(value, tz)
    return value.strftime(_STRF_TIME)


def _parse(text: str):
    """An ISO 8601 datetime from stored data (the audit trail, JSON), else the text."""
    try:
        return datetime.datetime.fromisoformat(text)
    except ValueError:
        return text


def format_phone(value) -> str:
    """A stored phone number as people read it: national format for Chinese numbers,
    international for others, the text itself when it does not parse."""
    text = str(value or "").strip()
    if not text:
        return ""
    return _format_phone(text)


@lru_cache(maxsize=4096)
def _format_phone(text: str) -> str:
    try:
        number = phonenumbers.parse(text, HOME_REGION)
    except phonenumbers.NumberParseException:
        return text
    if not phonenumbers.is_valid_number(number):
        return text
    region = phonenumbers.region_code_for_number(number)
    style = (
        phonenumbers.PhoneNumberFormat.NATIONAL
        if region == HOME_REGION
        else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    )
    return phonenumbers.format_number(number, style)
