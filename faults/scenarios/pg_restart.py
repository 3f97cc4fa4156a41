"""PostgreSQL restarted (pg_ctl restart -m fast) in the middle of a webhook and form burst.

Promises: every answer is 2xx (or the form's 303) or 503 with Retry-After, never 500 or
another 5xx; every acknowledged webhook exists afterwards (nothing acknowledged is lost:
synchronous_commit=on on this server) and is processed within 5 minutes."""

from __future__ import annotations

import time

from faults.common import Burst, account, log, sized, wait_processed, webhook_maker
from faults.scenarios.redis_down import _count, form_visitors

BOUND_S = 300


def run(stack, world) -> dict:
    n, seconds = sized(600, 200), sized(90, 40)
    forms = sized(60, 20)
    restart_at = sized(30, 15)
    hook = stack.dj("channel", tenant="faults-a", name="pg_restart hooks")
    form = stack.dj("channel", tenant="faults-b", type="web_form", name="pg_restart form")
    stack.web(BEHIND_HTTPS_PROXY="True")
    stack.worker()
    stack.beat()
    burst = Burst(n, n / seconds, webhook_maker(stack.base_url, hook, "pg"))
    thread = burst.start_in_thread()
    form_thread, form_results = form_visitors(
        stack.base_url, form["key"], forms, seconds, first=5000
    )
    time.sleep(restart_at)
    log("restarting PostgreSQL")
    t_restart = time.time()
    away = stack.restart_postgres()
    log(f"PostgreSQL back after {away:.1f} s")
    thread.join()
    form_thread.join()

    acked = [a.key for a in burst.answers if a.status in (200, 202)]
    refused = [a for a in burst.answers if a.status == 503]
    refused_no_retry = [a for a in refused if not a.retry_after]
    bad = [a for a in burst.answers if a.status not in (200, 202, 503)]
    form_bad = [
        f
        for f in form_results
        if not (f["status"] in (302, 303) and f["thanks"])
        and not (f["status"] == 503 or f.get("get_status") == 503)
    ]
    form_500 = [f for f in form_results if f["status"] >= 500 and f["status"] != 503]
    waited, left = wait_processed(stack, [hook["id"]], BOUND_S)
    acc = account(stack, [hook["id"]], acked)
    refused_keys = [a.key for a in burst.answers if a.status not in (200, 202)]
    stored_unacked = stack.sql(
        "SELECT count(*) FROM leads_inboundevent "
        "WHERE channel_id = %s AND idempotency_key = ANY(%s)",
        [hook["id"], refused_keys],
    )[0][0]
    ok = (
        not bad
        and not refused_no_retry
        and not form_bad
        and acc["missing"] == 0
        and acc["events_doubled"] == 0
        and left == 0
    )
    return {
        "ok": ok,
        "key": (
            f"webhooks {burst.statuses()}, {len(refused_no_retry)} 503 without Retry-After; "
            f"{acc['missing']}/{len(acked)} acked lost; "
            f"forms {_count(f['status'] for f in form_results)}"
        ),
        "webhooks": n,
        "answers": burst.statuses(),
        **burst.latency(),
        "restart_s": round(away, 1),
        "answers_around_restart": _count(
            a.status for a in burst.answers if t_restart - 1 <= a.at <= t_restart + away + 5
        ),
        "acknowledged": len(acked),
        "refused_503": len(refused),
        "refused_503_without_retry_after": len(refused_no_retry),
        "other_answers": len(bad),
        "other_examples": [
            {"status": a.status, "type": a.content_type, "body": a.body[:120], "error": a.error}
            for a in bad[:3]
        ],
        "lost": acc["missing"],
        "stored_but_not_acknowledged": stored_unacked,
        "event_statuses": acc["statuses"],
        "still_received": left,
        "processed_within_s": waited,
        "forms": forms,
        "form_answers": _count(f["status"] for f in form_results),
        "form_5xx_not_503": len(form_500),
        "form_failure_examples": form_bad[:3],
    }
