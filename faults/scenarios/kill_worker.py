"""The Celery worker's process group killed with SIGKILL every 15 s during 1,000 signed
webhooks (and restarted each time): 0 lost, 0 duplicated, all processed within the bound.

Every 202/200 must have exactly one event, and each event exactly one lead or a failed
status accounted for; leads = processed events, no lead shared by two events."""

from __future__ import annotations

import time

from faults.common import Burst, account, log, sized, wait_processed, webhook_maker

BOUND_S = 300  # all processed within 5 minutes after the burst


def run(stack, world) -> dict:
    n, seconds = sized(1000, 120), sized(125, 35)
    kill_every = 15
    ch = [
        stack.dj("channel", tenant="faults-a", name="kill_worker A"),
        stack.dj("channel", tenant="faults-b", name="kill_worker B"),
    ]
    stack.web()
    worker = stack.worker()
    stack.beat()
    burst = Burst(n, n / seconds, webhook_maker(stack.base_url, ch[0], "kw", channels=ch))
    thread = burst.start_in_thread()
    kills = 0
    next_kill = time.monotonic() + kill_every
    while thread.is_alive():
        if time.monotonic() >= next_kill:
            worker.kill()
            kills += 1
            worker.start()
            next_kill += kill_every
        time.sleep(0.2)
    thread.join()
    log(f"burst done: {burst.statuses()}, {kills} kills; waiting for the worker")
    acked = [a.key for a in burst.answers if a.status in (200, 202)]
    ids = [c["id"] for c in ch]
    waited, left = wait_processed(stack, ids, BOUND_S)
    acc = account(stack, ids, acked)
    processed = acc["statuses"].get("processed", 0)
    failed = acc["statuses"].get("failed", 0)
    ok = (
        len(acked) == n
        and acc["missing"] == 0
        and acc["events_doubled"] == 0
        and left == 0
        and processed + failed == len(acked)
        and acc["leads"] == processed
        and acc["leads_of_events_distinct"] == processed
        and acc["lead_ids_shared"] == 0
    )
    return {
        "ok": ok,
        "key": (
            f"{n} webhooks, {kills} kills: {len(acked)} acked, {acc['missing']} lost, "
            f"{acc['leads'] - processed + acc['lead_ids_shared']} duplicated, "
            f"processed {waited:.0f} s after the burst"
        ),
        "webhooks": n,
        "kills": kills,
        "answers": burst.statuses(),
        **burst.latency(),
        "acknowledged": len(acked),
        "lost": acc["missing"],
        "events": acc["events"],
        "event_statuses": acc["statuses"],
        "leads": acc["leads"],
        "duplicated_leads": acc["leads"] - processed + acc["lead_ids_shared"],
        "still_received": left,
        "processed_within_s": waited,
        "bound_s": BOUND_S,
        "burst_s": round(burst.ended - burst.started, 1),
    }
