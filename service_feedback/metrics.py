"""The service feedback app's metrics in the kernel's registry (crm.metrics), registered
from ServiceFeedbackConfig.ready(): the service report's totals (F30) over the tickets
opened in the tenant's local days [start, end], counted with the report's definitions
(service_feedback.report), so each figure equals the report's total for the same period.

Each metric's rows are a queryset of the tenant's tickets; its figure is their count, so
a figure and its drill-down cannot disagree.
"""

from __future__ import annotations

from datetime import date

from django.db.models import QuerySet
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from crm.metrics import (
    COUNT,
    REGION,
    REP,
    Column,
    Dimension,
    Metric,
    RowLink,
    period_bounds,
    register_metric,
)
from crm.models import Tenant
from crm.roles import EVERYONE
from service_feedback import report
from service_feedback.models import ServiceSettings, Ticket


def _column(path: str) -> Column:
    """A drill-down column headed by the verbose name of the path's first field."""
    first = path.split("__", 1)[0]
    return Column(path, capfirst(Ticket._meta.get_field(first).verbose_name))


COLUMNS = tuple(
    _column(path)
    for path in (
        "external_id",
        "opened_at",
        "customer__name",
        "product_line",
        "product_model",
        "fault_code",
        "province",
        "status",
        "first_response_minutes",
        "resolution_minutes",
        "duration_issue",
    )
)


def target_minutes(tenant: Tenant) -> int:
    """The tenant's first response target (the default before its settings exist)."""
    found = ServiceSettings.objects.filter(tenant=tenant).values_list(
        "first_response_minutes", flat=True
    )
    return found.first() or ServiceSettings._meta.get_field("first_response_minutes").default


def opened_in(tenant: Tenant, start: date, end: date) -> QuerySet:
    """The family's rows: the tenant's tickets opened in the period."""
    since, until = period_bounds(tenant, start, end)
    return Ticket.objects.filter(tenant=tenant, opened_at__gte=since, opened_at__lt=until)


# A ticket's region is its own (the helpdesk's province); its rep, its customer's owner.
DIMENSIONS = (Dimension(REGION, "province"), Dimension(REP, "customer__owner"))
LINK = RowLink("service_feedback:ticket", "public_id")
SECTION = _("Service")


def register() -> None:
    for key, label, definition, condition in (
        (
            "service.tickets",
            _("Service tickets"),
            _("Every helpdesk ticket opened in the range, matched to a customer or not."),
            None,
        ),
        (
            "service.first_responded",
            _("Tickets with a first response"),
            _(
                "Tickets opened in the range that have a first response, their times not "
                "refused at intake."
            ),
            report.responded_q(),
        ),
        (
            "service.first_response_in_target",
            _("First responses within target"),
            _(
                "Tickets opened in the range whose first response came within the first "
                "response target of the service settings (calendar or working minutes)."
            ),
            lambda tenant: report.in_target_q(target_minutes(tenant)),
        ),
        (
            "service.resolved",
            _("Tickets resolved"),
            _("Tickets opened in the range that have a resolution time, not refused at intake."),
            report.resolved_q(),
        ),
        (
            "service.repeat_complaints",
            _("Repeat complaints"),
            _(
                "Tickets opened in the range whose customer had another ticket with the same "
                "fault code in the 30 days before it."
            ),
            report.repeat_q(),
        ),
        (
            "service.duration_issues",
            _("Tickets with refused times"),
            _(
                "Tickets opened in the range whose response or resolution time was refused "
                "at intake (before the opening, or implausibly long)."
            ),
            report.duration_issue_q(),
        ),
    ):
        register_metric(
            Metric(
                key=key,
                label=label,
                definition=definition,
                rows=opened_in,
                where=condition,
                aggregate=COUNT,
                columns=COLUMNS,
                dimensions=DIMENSIONS,
                dated_by="opened_at",
                link=LINK,
                section=SECTION,
                # The service desk's own figures: service agents read them too.
                roles=EVERYONE,
            )
        )
