import logging

from crm.celery import TenantTask, app
from crm.jobs import per_active_tenant, per_tenant
from crm.models import Tenant
from leads.intake import services

logger = logging.getLogger(__name__)


@app.task(name="leads.process_inbound_events")
def process_inbound_events(tenant_id: int) -> int:
    """The tenant's inbox, announced by the events stored (leads.intake.services._announce):
    its received events in batches, each in its own tenant transaction (so not a
    TenantTask); how many it processed. A tenant gone or inactive ends it quietly."""
    tenant = Tenant.objects.filter(pk=tenant_id, is_active=True).first()
    if tenant is None:
        logger.warning("inbox of tenant %s skipped: the tenant is gone or inactive", tenant_id)
        return 0
    return services.inbound_events_drain(tenant)


@app.task(base=TenantTask, name="leads.process_inbound_event")
def process_inbound_event(tenant_id: int, event_id: int) -> int:
    """The event's lead, with those of the tenant's other queued events (a batch, in one
    transaction); how many events it processed: none when a batch took this one already.
    For `redrive_inbound` and messages queued before the inbox was announced per tenant."""
    return len(services.inbound_events_process(event_id=event_id))


@app.task(name="leads.redrive_inbound_events")
def redrive_inbound_events() -> int:
    """Beat, every minute: what a lost broker message left unprocessed (events received
    over 2 minutes ago) is queued again, one inbox task per tenant, whatever the tenant's
    announcement mark says; how many stale events it found."""
    stale = services.stale_inbound_events()
    for tenant_id in sorted({tenant_id for tenant_id, _ in stale}):
        process_inbound_events.delay(tenant_id)
    return len(stale)


@app.task(base=TenantTask, name="leads.verify_lead_company")
def verify_lead_company(tenant_id: int, lead_id: int) -> None:
    from leads.intake.registry import lead_verify_company

    lead_verify_company(lead_id=lead_id)


# A sweep still queued when the next minute's is due is pointless: it expires unrun.
SLA_SWEEP_EXPIRES = 120  # seconds


@app.task(name="leads.sla_sweep_all")
def sla_sweep_all() -> int:
    """Beat, every minute: queue an SLA sweep for each active tenant with clocks due (one
    platform statement lists them, leads.assignment.sla.sla_due_tenants; each sweep runs
    inside its own tenant). How many were queued."""
    from leads.assignment.sla import sla_due_tenants

    return per_tenant(sla_sweep, sla_due_tenants(), expires=SLA_SWEEP_EXPIRES)


@app.task(base=TenantTask, name="leads.sla_sweep", round_robin=True)
def sla_sweep(tenant_id: int) -> dict[str, int]:
    """One tenant's SLA clocks and returns to the pool (leads.assignment.sla.sla_sweep)."""
    from leads.assignment.sla import sla_sweep as run

    return run()


@app.task(base=TenantTask, name="leads.run_replay")
def run_replay(tenant_id: int, replay_id: int) -> str | None:
    """Replay the last N days under a draft policy (F14; leads.assignment.replay_runs)."""
    from leads.assignment.replay_runs import run_replay as run
    from leads.models import ReplayRun, ReplayStatus

    replay = ReplayRun.objects.select_related("policy", "baseline").filter(pk=replay_id).first()
    if replay is None or replay.status in (ReplayStatus.DONE, ReplayStatus.FAILED):
        return None  # gone, or already run (a redelivered message)
    return run(replay).status


# A roll-up still queued when the next one is due is pointless: it expires unrun.
REPORT_ROLLUP_EXPIRES = 600  # seconds


@app.task(name="leads.report_rollup_all")
def report_rollup_all(cover: bool = False) -> int:
    """Beat: queue the lead-quality roll-up refresh of each active tenant with changes
    pending (every 5 minutes; one platform statement lists them,
    leads.reports.rollups.due_tenants), or every active tenant's nightly coverage check
    (`cover`, leads.reports.rollups.cover). How many were queued."""
    if cover:
        return per_active_tenant(report_rollup, cover, expires=REPORT_ROLLUP_EXPIRES)
    from leads.reports.rollups import due_tenants

    return per_tenant(report_rollup, due_tenants(), cover, expires=REPORT_ROLLUP_EXPIRES)


@app.task(base=TenantTask, name="leads.report_rollup", round_robin=True)
def report_rollup(tenant_id: int, cover: bool = False) -> int:
    """Recompute one tenant's lead-quality days with pending changes (leads.reports.rollups)."""
    from crm.tenancy import current_tenant
    from leads.reports import rollups

    tenant = current_tenant()
    return rollups.cover(tenant) if cover else rollups.refresh(tenant)


@app.task(name="leads.activity_nightly_all")
def activity_nightly_all() -> int:
    """Beat, hourly: queue each active tenant's nightly lead activity index
    (leads.activity.compute.nightly: once a day, from 01:00 in its time zone)."""
    from leads.activity.compute import NIGHTLY_EXPIRES

    return per_active_tenant(activity_nightly, expires=NIGHTLY_EXPIRES)


@app.task(base=TenantTask, name="leads.activity_nightly", round_robin=True)
def activity_nightly(tenant_id: int) -> dict | None:
    """One tenant's activity index for today, when due."""
    from crm.tenancy import current_tenant
    from leads.activity import compute

    return compute.nightly(current_tenant())
