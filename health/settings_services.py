"""Writes to a tenant's health settings from the admin (crm.services' contract): saving
the weights, bands and rules, rotating the tracking secret, and "recompute now"."""

from __future__ import annotations

from django.db import transaction

from crm.audit import audit
from crm.models import Membership, Tenant
from crm.services import actor_user, check_tenant
from health.models import Dimension, HealthSettings, new_secret

# Up to this many customers "recompute now" runs in the request (a few seconds); a larger
# tenant's run is queued (health.recompute) and its figures arrive with the next page.
INLINE_CUSTOMERS = 50_000

_AUDITED = [
    *(f"weight_{d}" for d in Dimension.values),
    "risk_score_below",
    "risk_quiet_days",
    "competitor_keywords",
]


def _diff(before: HealthSettings, after: HealthSettings) -> dict:
    changes = {
        name: [getattr(before, name), getattr(after, name)]
        for name in _AUDITED
        if getattr(before, name) != getattr(after, name)
    }
    old, new = before.band_table(), after.band_table()
    for d in Dimension.values:
        if old[d] != new[d]:
            changes[f"bands.{d}"] = [old[d], new[d]]
    return changes


def health_settings_update(
    *, tenant: Tenant, acting_member: Membership | None, settings: HealthSettings
) -> dict:
    """Save `settings` (validated: HealthSettings.clean) and audit what changed as
    "health.settings". Returns the changes."""
    check_tenant(tenant, settings)
    settings.tenant = tenant
    settings.full_clean(exclude=["tenant", "track_key"])
    with transaction.atomic():
        before = HealthSettings.objects.select_for_update().filter(pk=settings.pk).first()
        settings.save()
        changes = _diff(before, settings) if before is not None else {}
        audit(
            tenant=tenant,
            actor=actor_user(acting_member),
            action="health.settings",
            obj=settings,
            changes=changes,
        )
    return changes


def health_secret_rotate(
    *, tenant: Tenant, acting_member: Membership | None, settings: HealthSettings
) -> None:
    """A new signing secret for `POST /track/<key>/` (the old one stops working at once)."""
    check_tenant(tenant, settings)
    with transaction.atomic():
        HealthSettings.objects.filter(pk=settings.pk).update(track_secret=new_secret())
        audit(
            tenant=tenant,
            actor=actor_user(acting_member),
            action="health.settings",
            obj=settings,
            changes={"track_secret": ["…", "rotated"]},
        )


def health_recompute(*, tenant: Tenant, acting_member: Membership | None) -> dict:
    """Score the tenant's customers for today now (health.compute.recompute), audited as
    "health.recompute": in the request up to INLINE_CUSTOMERS customers, else queued.
    Returns the run's figures, or {"queued": True, "customers": n}."""
    from customers.models import Customer
    from health import compute

    check_tenant(tenant)
    customers = Customer.objects.filter(tenant=tenant).count()
    if customers > INLINE_CUSTOMERS:
        from health.tasks import recompute_tenant

        with transaction.atomic():
            # The hourly run's "done today" cleared: the queued run scores today.
            HealthSettings.objects.filter(tenant=tenant).update(computed_on=None)
            audit(
                tenant=tenant,
                actor=actor_user(acting_member),
                action="health.recompute",
                changes={"queued": True, "customers": customers},
            )
            transaction.on_commit(lambda: recompute_tenant.delay(tenant.pk))
        return {"queued": True, "customers": customers}
    with transaction.atomic():
        result = compute.recompute(tenant).as_dict()
        audit(
            tenant=tenant,
            actor=actor_user(acting_member),
            action="health.recompute",
            changes=result,
        )
    return result
