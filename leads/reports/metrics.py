"""The leads app's metrics in the kernel's registry (crm.metrics), registered from
LeadsConfig.ready(): the lead-quality figures of the whole tenant, counted with the same
definitions as the report (leads.reports.quality) over the leads created in the period,
and the contacts the reps recorded when they closed their days (F19).

Each metric's rows are a queryset of the tenant's leads (or day summaries) over its local
days [start, end]; its figure is their count (or the sum of a field), so it equals the
matching total of the lead-quality report for the same range.
"""

from __future__ import annotations

from datetime import date

from django.db.models import Q, QuerySet
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from crm.metrics import (
    COUNT,
    REGION,
    REP,
    SUM,
    Column,
    Dimension,
    Metric,
    RowLink,
    period_bounds,
    register_metric,
)
from crm.models import Tenant
from leads.models import DailySummary, Lead
from leads.reports.quality import invalid_q, valid_q, verified_24h_q


def _column(model, path: str) -> Column:
    """A drill-down column headed by the verbose name of the path's first field."""
    first = path.split("__", 1)[0]
    return Column(path, capfirst(model._meta.get_field(first).verbose_name))


LEAD_COLUMNS = tuple(
    _column(Lead, path)
    for path in (
        "public_id",
        "created_at",
        "company",
        "contact_name",
        "channel__name",
        "source_grade",
        "owner__user__username",
        "verification",
        "verified_at",
    )
)


# A lead's region is its province; its rep, its owner (the dashboards' breakdowns).
LEAD_DIMENSIONS = (Dimension(REGION, "province"), Dimension(REP, "owner"))
LEAD_LINK = RowLink("leads:detail", "public_id")
SECTION = _("Leads")


def created_in(tenant: Tenant, start: date, end: date) -> QuerySet:
    """The tenant's leads created on its local days [start, end]: the range of the
    lead-quality report."""
    since, until = period_bounds(tenant, start, end)
    return Lead.objects.filter(tenant=tenant, created_at__gte=since, created_at__lt=until)


def closed_days(tenant: Tenant, start: date, end: date) -> QuerySet:
    """The reps' day summaries (closed days) of the tenant's local days [start, end]."""
    return DailySummary.objects.filter(tenant=tenant, day__gte=start, day__lte=end)


def register() -> None:
    lead_metrics = [
        (
            "delivered",
            _("Delivered"),
            _("Every lead created in the range, revisits included."),
            None,
        ),
        (
            "verified_24h",
            _("Verified within 24 h"),
            _("Verified (valid or invalid) at most 24 hours after the lead was created."),
            verified_24h_q(),
        ),
        (
            "valid_24h",
            _("Valid within 24 h"),
            _(
                "Verified valid (visit booked, or needs more information) at most 24 hours "
                "after the lead was created."
            ),
            verified_24h_q() & valid_q(),
        ),
        (
            "invalid",
            _("Invalid"),
            _(
                "Leads verified invalid (wrong contact details, or not a target customer), "
                "whenever verified; the reasons are the ones the rep chose."
            ),
            invalid_q(),
        ),
        (
            "duplicates",
            _("Duplicates"),
            _("Revisits: leads recognised as a repeat of an earlier lead."),
            Q(revisit_of__isnull=False),
        ),
        ("suspect", _("Suspect"), _("Leads flagged as suspect at intake."), Q(is_suspect=True)),
    ]
    for name, label, definition, condition in lead_metrics:
        register_metric(
            Metric(
                key=f"leads.{name}",
                label=label,
                definition=definition,
                rows=created_in,
                where=condition,
                aggregate=COUNT,
                columns=LEAD_COLUMNS,
                dimensions=LEAD_DIMENSIONS,
                dated_by="created_at",
                link=LEAD_LINK,
                section=SECTION,
            )
        )
    register_metric(
        Metric(
            key="leads.contacts_made",
            label=_("Contacts made"),
            definition=_(
                "Follow-ups logged and leads verified by each rep, as recorded when they "
                "closed their days in the range."
            ),
            rows=closed_days,
            aggregate=SUM,
            of="contacts",
            dimensions=(Dimension(REP, "membership"),),
            dated_by="day",
            section=SECTION,
            columns=tuple(
                _column(DailySummary, path)
                for path in ("day", "membership__user__username", "contacts", "closed_at")
            ),
        )
    )
