from crm.celery import TenantTask, app
from leads import services


@app.task(base=TenantTask, name="leads.process_inbound_event")
def process_inbound_event(tenant_id: int, event_id: int) -> None:
    services.inbound_event_process(event_id=event_id)


@app.task(name="leads.redrive_inbound_events")
def redrive_inbound_events() -> int:
    """Beat, every minute: queue again what a lost broker message left unprocessed."""
    stale = services.stale_inbound_events()
    for tenant_id, event_id in stale:
        process_inbound_event.delay(tenant_id, event_id)
    return len(stale)


@app.task(base=TenantTask, name="leads.verify_lead_company")
def verify_lead_company(tenant_id: int, lead_id: int) -> None:
    from leads.registry import lead_verify_company

    lead_verify_company(lead_id=lead_id)
