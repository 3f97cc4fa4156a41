"""A notification endpoint (a WeCom robot URL served by the suite) down for 10 minutes
under 2,000 alerts.

Promises (crm/notify.py, docs/notifications.md): three failures in a row open the breaker
(deliveries are held, nothing is sent); one probe per cool-down while it is open; when the
endpoint is back the probe closes it and the held deliveries go out; every alert is
delivered or dead-lettered, exactly once (one delivery per alert, each delivered alert
received once by the endpoint)."""

from __future__ import annotations

import itertools
import json
import re
import time

from faults.common import log, sized
from faults.httpd import Endpoint

EVENT = "sla.unassigned"
MARK = re.compile(r"ND-\d{5}")


def run(stack, world, *, started: bool = False) -> dict:
    n, down_for = sized(2000, 200), sized(600, 150)
    cooldown = sized(60, 30)
    bound = 300
    tenant_id = world["faults-b"]["id"]
    with Endpoint(up=False) as endpoint:
        setup = stack.dj(
            "notify_setup", tenant="faults-b", url=endpoint.url, cooldown=cooldown, event=EVENT
        )
        channel_id = setup["channel_id"]
        if not started:  # else two_beats' worker and two beats (faults/__main__.py)
            stack.worker(NOTIFY_ALLOW_PRIVATE_URLS="True")
            stack.beat(NOTIFY_ALLOW_PRIVATE_URLS="True")
        down_at = time.time()
        producer = stack.dj_background(
            "notify_burst", tenant="faults-b", n=n, seconds=down_for * 0.9, event=EVENT, marker="ND"
        )
        states: dict[str, int] = {}
        while time.time() - down_at < down_for:
            state = stack.sql(
                "SELECT state FROM crm_notificationchannel WHERE id = %s", [channel_id]
            )[0][0]
            states[state] = states.get(state, 0) + 1
            time.sleep(5)
        produced = json.loads((producer.communicate()[0] or "{}").strip().splitlines()[-1])
        endpoint.up = True
        up_at = time.time()
        log(f"endpoint up again; {len(endpoint.hits)} hits while down")
        waited, open_rows = 0.0, -1
        while time.time() - up_at < bound:
            open_rows = stack.sql(
                "SELECT count(*) FROM crm_delivery WHERE channel_id = %s "
                "AND status NOT IN ('sent', 'dead')",
                [channel_id],
            )[0][0]
            if open_rows == 0 and time.time() - up_at > 5:
                break
            time.sleep(3)
        waited = round(time.time() - up_at, 1)
        time.sleep(3)

    down_hits = sorted(h["t"] for h in endpoint.hits if not h["up"])
    opened = down_hits[2] if len(down_hits) >= 3 else None
    probes = [t for t in down_hits if opened is not None and t > opened + 5]
    gaps = [round(b - a, 1) for a, b in itertools.pairwise(probes)]
    allowed_probes = int(down_for // cooldown) + 1

    statuses = dict(
        stack.sql(
            "SELECT status, count(*) FROM crm_delivery WHERE channel_id = %s GROUP BY status",
            [channel_id],
        )
    )
    alerts = stack.sql(
        "SELECT n.params->>'lead', count(d.id), min(d.status) FROM crm_notification n "
        "LEFT JOIN crm_delivery d ON d.notification_id = n.id AND d.channel_id = %s "
        "WHERE n.tenant_id = %s AND n.event = %s AND n.params->>'lead' LIKE 'ND-%%' "
        "GROUP BY 1",
        [channel_id, tenant_id, EVENT],
    )
    received: dict[str, int] = {}
    for h in endpoint.hits:
        if h["up"]:
            for mark in set(MARK.findall(h["body"])):
                received[mark] = received.get(mark, 0) + 1
    sent = {a for a, _c, s in alerts if s == "sent"}
    dead = {a for a, _c, s in alerts if s == "dead"}
    deliveries_not_one = [a for a, c, _s in alerts if c != 1]
    sent_not_once = [a for a in sent if received.get(a, 0) != 1]
    dead_received = [a for a in dead if received.get(a, 0)]
    unaccounted = len(alerts) - len(sent) - len(dead)
    breaker_opened = opened is not None and ("open" in states or "half_open" in states)
    ok = (
        breaker_opened
        and len(alerts) == n
        and not deliveries_not_one
        and unaccounted == 0
        and not sent_not_once
        and not dead_received
        and len(probes) <= allowed_probes
        and all(g >= cooldown - 2 for g in gaps)
    )
    return {
        "ok": ok,
        "key": (
            f"{n} alerts, endpoint down {down_for / 60:.0f} min: {len(down_hits)} hits while down "
            f"({len(probes)} probes, gaps ≥ {min(gaps) if gaps else '-'} s, "
            f"cool-down {cooldown} s); "
            f"{len(sent)} delivered + {len(dead)} dead-lettered, {unaccounted} unaccounted, "
            f"{len(sent_not_once)} not received once; drained {waited:.0f} s after recovery"
        ),
        "alerts": n,
        "alerts_recorded": len(alerts),
        "producer": produced,
        "down_s": round(up_at - down_at, 1),
        "cooldown_s": cooldown,
        "breaker_opened": breaker_opened,
        "hits_while_down": len(down_hits),
        "breaker_states_sampled": states,
        "probes_while_open": len(probes),
        "probes_allowed": allowed_probes,
        "probe_gaps_s": gaps,
        "delivery_statuses": statuses,
        "delivered": len(sent),
        "dead_lettered": len(dead),
        "unaccounted": unaccounted,
        "alerts_without_exactly_one_delivery": len(deliveries_not_one),
        "delivered_not_received_once": len(sent_not_once),
        "dead_but_received": len(dead_received),
        "drained_s_after_recovery": waited,
        "left_open": open_rows,
    }
