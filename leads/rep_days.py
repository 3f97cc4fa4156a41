"""The members' active days (leads.models.RepActiveDay), which the self-test's daily
active reps count (leads.selftest, docs/selftest.md). PostgreSQL triggers keep the rows
(leads migration 0021); the one change they cannot follow is the tenant's time zone, which
moves every instant to another local day: the tenant's rows are then rebuilt from the four
sources (`rebuild`), once the change is committed."""

from __future__ import annotations

from django.db import connection, transaction
from django.db.models.signals import post_save, pre_save

from crm.models import Tenant
from crm.tenancy import tenant_context


def rebuild(tenant: Tenant) -> None:
    """Recompute `tenant`'s active days from the interactions, timeline entries, closed
    days and audit trail (one statement: leads_rep_days_rebuild)."""
    if connection.vendor != "postgresql":
        return
    with tenant_context(tenant), connection.cursor() as cursor:
        cursor.execute("SELECT leads_rep_days_rebuild(%s)", [tenant.pk])


def _remember_zone(sender, instance: Tenant, raw=False, **kwargs) -> None:
    if raw or instance.pk is None:
        instance._zone_before = None
        return
    instance._zone_before = (
        Tenant.objects.filter(pk=instance.pk).values_list("timezone", flat=True).first()
    )


def _rebuild_on_new_zone(sender, instance: Tenant, created=False, raw=False, **kwargs) -> None:
    before = getattr(instance, "_zone_before", None)
    if raw or created or before is None or before == instance.timezone:
        return
    transaction.on_commit(lambda: rebuild(instance))


def connect() -> None:
    pre_save.connect(_remember_zone, sender=Tenant, dispatch_uid="leads_rep_days_zone")
    post_save.connect(_rebuild_on_new_zone, sender=Tenant, dispatch_uid="leads_rep_days_rebuild")
