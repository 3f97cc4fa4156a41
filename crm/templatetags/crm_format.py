"""Template filters for what people read: times in the tenant's zone, phones in the
national format. They wrap crm.formatting, which Python code calls directly.

    {% load crm_format %}
    {{ lead.created_at|local_datetime }}   → 2026-12-02 07:40
    {{ customer.created_at|local_date }}   → 2026-12-02
    {{ summary.closed_at|local_time }}     → 18:05
    {{ forecast.month|local_month }}       → 2026-12
    {{ contact.phone|phone }}              → 138 0013 8000
"""

from django import template

from crm import formatting

register = template.Library()


@register.filter
def local_datetime(value):
    return formatting.format_datetime(value)


@register.filter
def local_date(value):
    return formatting.format_date(value)


@register.filter
def local_month(value):
    return formatting.format_month(value)


@register.filter
def iso_week(value):
    """A date's ISO week, "2026-W49" (the same in every language)."""
    if not value:
        return ""
    year, week, _day = value.isocalendar()
    return f"{year}-W{week:02d}"


@register.filter
def local_time(value):
    return formatting.format_time(value)


@register.filter
def phone(value):
    return formatting.format_phone(value)
