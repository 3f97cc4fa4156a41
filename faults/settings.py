"""The pooled scenario's settings: the product's own, plus a check at every request start
(only here, never in the product) that the database connection the request is handed has
no tenant in its RLS settings. Each request appends one line to FAULTS_CHECKOUT_LOG:
{"tenant": current_setting('app.tenant_id'), "all": …('app.all_tenants'), "pid": backend}.
"""

import json
import os

from django.core.signals import request_started

from crm.settings import *  # noqa: F403

_LOG = os.environ["FAULTS_CHECKOUT_LOG"]


def _checkout(sender, **kwargs) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('app.tenant_id', true), "
            "current_setting('app.all_tenants', true), pg_backend_pid(), "
            "pg_catalog.txid_current_if_assigned() IS NOT NULL OR %s",
            [connection.in_atomic_block],
        )
        tenant, all_tenants, pid, in_tx = cursor.fetchone()
    line = json.dumps({"tenant": tenant, "all": all_tenants, "pid": pid, "in_tx": in_tx})
    with open(_LOG, "a", encoding="utf-8") as f:
        f.write(line + "\n")


request_started.connect(_checkout, weak=False, dispatch_uid="faults_checkout")
