"""The service facts customer health scores by (crm.customer_facts)."""

from __future__ import annotations

from crm import customer_facts

# One row per resolved ticket of a customer: 1 when resolved within the tenant's target
# (the resolution minutes are counted as the tenant counts them: calendar or working
# hours), else 0. Tickets whose duration is implausible have no minutes and are left out.
TICKET_RESOLVED_SQL = """
SELECT t.customer_id, t.resolved_at AS at,
       CASE WHEN t.resolution_minutes <= coalesce(s.resolution_hours, 24) * 60
            THEN 1 ELSE 0 END AS value
FROM service_feedback_ticket t
LEFT JOIN service_feedback_servicesettings s ON s.tenant_id = t.tenant_id
WHERE t.tenant_id = %(tenant)s AND t.customer_id IS NOT NULL
  AND t.resolved_at IS NOT NULL AND t.resolution_minutes IS NOT NULL
"""


def register() -> None:
    customer_facts.register(customer_facts.TICKET_RESOLVED, TICKET_RESOLVED_SQL)
