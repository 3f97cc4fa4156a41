"""Customer health's indicator of the CRM health self-test (crm.selftest,
docs/selftest.md) and the metrics (group "selftest") its numbers come from, registered
from health.registrations:

9. at least one action a month triggered by a customer's signals: a retention task of the
   risk list done.

A customer enters the risk list when its signals and contacts (the health score's six
dimensions) bring its score under the tenant's line; its entry carries the retention task
of its weakest dimension. An entry whose task was done is a signal-triggered action.
"""

from __future__ import annotations

from datetime import date

from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _

from crm.metrics import COUNT, REGION, REP, Column, Dimension, Metric, RowLink, register_metric
from crm.models import Tenant
from crm.selftest import COUNT as COUNTED
from crm.selftest import GROUP, SECTION, Indicator, Result, count_result, register_indicator, window
from health.models import RiskEntry


def entry_rows(tenant: Tenant, start: date, end: date) -> QuerySet:
    """The risk-list entries made on the local days [start, end] that were given their
    retention task (by the tenant's rule, health.risk.retention_task)."""
    return RiskEntry.objects.filter(
        tenant=tenant, entered_on__gte=start, entered_on__lte=end, task_at__isnull=False
    )


COLUMNS = (
    Column("entered_on", _("Entered on")),
    Column("customer__name", _("Customer")),
    Column("owner__user__username", _("Owner")),
    Column("score", _("Score on entry")),
    Column("action", _("Retention action")),
    Column("done_at", _("Task done")),
)
DIMENSIONS = (Dimension(REGION, "customer__province"), Dimension(REP, "owner"))
LINK = RowLink("customers:detail", "customer__public_id")


def signal_actions(tenant: Tenant, today: date) -> Result:
    start, end = window(today)
    return count_result(
        tenant,
        start,
        end,
        numerator="selftest.risk_acted",
        denominator="selftest.risk_entries",
        failing="selftest.risk_waiting",
    )


def register() -> None:
    fields = {
        "rows": entry_rows,
        "aggregate": COUNT,
        "columns": COLUMNS,
        "dimensions": DIMENSIONS,
        "dated_by": "entered_on",
        "link": LINK,
        "section": SECTION,
        "group": GROUP,
    }
    register_metric(
        Metric(
            key="selftest.risk_entries",
            label=_("Customers put on the risk list"),
            definition=_("Risk-list entries made in the range, each with its retention task."),
            **fields,
        )
    )
    register_metric(
        Metric(
            key="selftest.risk_acted",
            label=_("Retention tasks done"),
            definition=_("Risk-list entries made in the range whose retention task was done."),
            where=Q(done_at__isnull=False),
            **fields,
        )
    )
    register_metric(
        Metric(
            key="selftest.risk_waiting",
            label=_("Retention tasks not done"),
            definition=_("Risk-list entries made in the range whose retention task is not done."),
            where=Q(done_at__isnull=True),
            **fields,
        )
    )
    register_indicator(
        Indicator(
            key="signal_actions",
            position=9,
            label=_("Signal-triggered actions"),
            target=_("≥ 1 a month"),
            threshold=1,
            higher_is_better=True,
            inclusive=True,
            unit=COUNTED,
            compute=signal_actions,
            definition=_(
                "In the last 30 days, the customers put on the risk list by their signals "
                "whose retention task was done."
            ),
            advice=_(
                "Work the risk list every week: each customer on it comes with a retention task "
                "on its owner's board; do it and mark it done, starting with the listed owners."
            ),
            no_data=_("No customer was put on the risk list in the last 30 days."),
        )
    )
