"""The CRM health self-test page (F40): /reports/self-test/, for managers and admins.

The indicators come from the apps (crm.selftest's registry); the page reads them on the
reports alias, as every report does (crm.metrics.reading)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from crm import selftest
from crm.metrics import reading
from crm.roles import MANAGERS

# The gauge's colours by score, as brief 001 reads it: under 6 needs work at once.
BANDS = ((0.6, "#dc3545"), (0.8, "#ffc107"), (1, "#198754"))


@require_GET
def self_test(request: HttpRequest) -> HttpResponse:
    membership = request.membership
    if membership is None or membership.role not in MANAGERS:
        raise PermissionDenied(_("The CRM health self-test is for managers and admins."))
    tenant = request.tenant
    today = timezone.localdate(timezone=tenant.tzinfo)
    with reading(tenant):
        outcomes = selftest.run(tenant, today)
    score = selftest.score(outcomes)
    counts = {
        status: sum(1 for o in outcomes if o.status == status)
        for status in (selftest.PASSED, selftest.FAILED, selftest.NO_DATA)
    }
    context = {
        "today": today,
        "outcomes": outcomes,
        "score": score,
        "counts": counts,
        "with_data": counts[selftest.PASSED] + counts[selftest.FAILED],
        "gauge": {
            "score": float(score) if score is not None else None,
            "label": _("Score"),
            "bands": [list(band) for band in BANDS],
        },
    }
    return TemplateResponse(request, "crm/self_test.html", context)
