"""The sales facts customer health reads (crm.customer_facts): orders won."""

from __future__ import annotations

from crm import customer_facts

ORDER_WON_SQL = """
SELECT o.customer_id, o.won_at AS at, 1 AS value
FROM opportunities_opportunity o
WHERE o.tenant_id = %(tenant)s AND o.status = 'won' AND o.won_at IS NOT NULL
"""


def register() -> None:
    customer_facts.register(customer_facts.ORDER_WON, ORDER_WON_SQL)
