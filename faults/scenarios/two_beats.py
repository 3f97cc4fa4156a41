"""Two beat processes for 10 minutes over 5,000 SLA due-times: each alert exactly once.

5,000 unassigned B-class leads whose `unassigned` threshold falls due evenly over the
window; both beats schedule leads.sla_sweep_all every minute (so the sweeps run twice as
often as with one beat, and overlap). Afterwards each lead has exactly one SlaAlert and
each manager exactly one notification about it (sla.unassigned goes to the tenant's
active sales managers, crm.notify.managers_of)."""

from __future__ import annotations

import time

from faults.common import log, sized

THRESHOLD_MIN = 30


def start(stack) -> None:
    """The processes: one worker and two beats (shared with notify_down when the two
    run together, so the worker may send its robot deliveries)."""
    stack.worker(NOTIFY_ALLOW_PRIVATE_URLS="True")
    stack.beat("beat-1", NOTIFY_ALLOW_PRIVATE_URLS="True")
    stack.beat("beat-2", NOTIFY_ALLOW_PRIVATE_URLS="True")


def run(stack, world, *, started: bool = False) -> dict:
    n, window = sized(5000, 300), sized(600, 120)
    ch = stack.dj("channel", tenant="faults-a", name="two_beats")
    tenant_id = world["faults-a"]["id"]
    recipients = stack.sql(
        "SELECT count(*) FROM crm_membership WHERE tenant_id = %s AND role = 'manager' "
        "AND is_active",
        [tenant_id],
    )[0][0]
    stack.dj(
        "sla_leads",
        tenant="faults-a",
        n=n,
        window=window,
        channel_id=ch["id"],
        minutes=THRESHOLD_MIN,
    )
    if not started:
        start(stack)
    started = time.monotonic()
    # The window, then two more sweeps' worth for the last due-times.
    deadline = started + window + 150
    while time.monotonic() < deadline:
        time.sleep(10)
    log("counting alerts and notifications")
    lead_ids = "SELECT id FROM leads_lead WHERE channel_id = %s"
    alerts = stack.sql(
        f"SELECT lead_id, count(*) FROM leads_slaalert WHERE lead_id IN ({lead_ids}) "
        "AND threshold = 'unassigned' GROUP BY lead_id",
        [ch["id"]],
    )
    per_lead = [c for _lead, c in alerts]
    links = stack.sql(
        "SELECT n.recipient_id, n.link, count(*) FROM crm_notification n "
        "WHERE n.tenant_id = %s AND n.event = 'sla.unassigned' AND n.link IN "
        "(SELECT '/leads/' || public_id::text || '/' FROM leads_lead WHERE channel_id = %s) "
        "GROUP BY 1, 2",
        [tenant_id, ch["id"]],
    )
    notif_counts = [c for _r, _l, c in links]
    sweeps = stack.sql(
        f"SELECT count(DISTINCT fired_at) FROM leads_slaalert WHERE lead_id IN ({lead_ids})",
        [ch["id"]],
    )[0][0]
    doubled_alerts = sum(1 for c in per_lead if c > 1)
    doubled_notes = sum(1 for c in notif_counts if c > 1)
    ok = (
        len(alerts) == n
        and doubled_alerts == 0
        and len(links) == n * recipients
        and doubled_notes == 0
    )
    return {
        "ok": ok,
        "key": (
            f"{n} due-times over {window / 60:.0f} min, 2 beats: {len(alerts)} leads alerted, "
            f"{doubled_alerts} twice; {sum(notif_counts)} notifications "
            f"(expected {n * recipients}), {doubled_notes} doubled"
        ),
        "due_times": n,
        "window_s": window,
        "beats": 2,
        "leads_alerted": len(alerts),
        "leads_alerted_twice": doubled_alerts,
        "leads_not_alerted": n - len(alerts),
        "recipients_per_alert": recipients,
        "notifications": sum(notif_counts),
        "notifications_expected": n * recipients,
        "notifications_doubled": doubled_notes,
        "sweeps_that_fired": sweeps,
    }
