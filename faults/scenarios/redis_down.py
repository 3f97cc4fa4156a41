"""Redis stopped for 60 s in the middle of a burst of webhooks and hosted-form posts.

Promises: every webhook answered 202/200 (acknowledged: stored) or 503, never another 5xx;
every acknowledged webhook processed within 5 minutes of Redis's return (the re-drive
beat task, leads.redrive every 60 s, queues events left `received` for over 2 minutes);
the hosted form keeps working: every post ends on the thank-you page and is stored."""

from __future__ import annotations

import re
import threading
import time

import httpx

from faults.common import (
    Burst,
    account,
    log,
    percentile,
    phone,
    sized,
    wait_processed,
    webhook_maker,
)

BOUND_S = 300  # after Redis is back


def _form_post(base_url: str, key: str, i: int) -> dict:
    """One visitor: open the form, post it, follow to the thank-you page."""
    # Each visitor has their own address (the trusted proxy's X-Forwarded-For), as real
    # visitors do; the per-address rate limit is not what this scenario measures.
    ip = f"198.51.{100 + i // 250}.{i % 250 + 1}"
    headers = {"X-Forwarded-For": ip}
    mobile = phone()
    t0 = time.monotonic()
    out = {"i": i, "phone": mobile, "status": 0, "thanks": False}
    try:
        with httpx.Client(base_url=base_url, timeout=60, headers=headers) as client:
            page = client.get(f"/f/{key}/")
            out["get_status"] = page.status_code
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
            data = {
                "csrfmiddlewaretoken": token.group(1) if token else "",
                "company": f"表单访客{i:04d}号机电设备有限公司",
                "contact_name": "李经理",
                "phone": mobile,
                "industry": "manufacturing",
                "message": f"redis_down form #{i}",
            }
            r = client.post(f"/f/{key}/", data=data)
            out["status"] = r.status_code
            if r.status_code in (302, 303):
                thanks = client.get(r.headers["Location"])
                out["thanks"] = thanks.status_code == 200 and "?sent=1" in r.headers["Location"]
    except httpx.HTTPError as exc:
        out["error"] = repr(exc)[:200]
    out["ms"] = (time.monotonic() - t0) * 1000
    out["at"] = time.time()
    return out


def form_visitors(
    base_url: str, key: str, n: int, seconds: float, first: int = 0
) -> tuple[threading.Thread, list[dict]]:
    """`n` form visitors (numbered from `first`) spread evenly over `seconds`, in a started
    thread; their results fill the returned list."""
    results: list[dict] = []

    def visitors() -> None:
        start = time.monotonic()
        for i in range(n):
            delay = start + i * seconds / n - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            results.append(_form_post(base_url, key, first + i))

    thread = threading.Thread(target=visitors, daemon=True)
    thread.start()
    return thread, results


def run(stack, world) -> dict:
    n, seconds = sized(600, 150), sized(150, 75)
    forms = sized(150, 40)
    down_at, down_for = sized(45, 20), sized(60, 20)
    hook = stack.dj("channel", tenant="faults-a", name="redis_down hooks")
    form = stack.dj("channel", tenant="faults-b", type="web_form", name="redis_down form")
    stack.web(BEHIND_HTTPS_PROXY="True")
    stack.worker()
    stack.beat()

    burst = Burst(n, n / seconds, webhook_maker(stack.base_url, hook, "rd"))
    hooks_thread = burst.start_in_thread()
    form_thread, form_results = form_visitors(stack.base_url, form["key"], forms, seconds)
    time.sleep(down_at)
    log("stopping Redis")
    stopped_at = time.time()
    stack.stop_redis()
    time.sleep(down_for)
    stack.start_redis()
    back_at = time.time()
    log("Redis is back")
    hooks_thread.join()
    form_thread.join()

    statuses = burst.statuses()
    acked = [a.key for a in burst.answers if a.status in (200, 202)]
    refused = [a for a in burst.answers if a.status == 503]
    bad = [a for a in burst.answers if a.status not in (200, 202, 503)]
    during = [a for a in burst.answers if stopped_at <= a.at <= back_at + 1]
    waited, left = wait_processed(stack, [hook["id"]], BOUND_S - (time.time() - back_at))
    acc = account(stack, [hook["id"]], acked)
    # Not acknowledged but stored all the same: the sender retries, the retry is a duplicate.
    refused_keys = [a.key for a in burst.answers if a.status not in (200, 202)]
    stored_unacked = stack.sql(
        "SELECT count(*) FROM leads_inboundevent "
        "WHERE channel_id = %s AND idempotency_key = ANY(%s)",
        [hook["id"], refused_keys],
    )[0][0]
    since_back = round(time.time() - back_at - 0, 1) if left == 0 else None

    form_ok = [f for f in form_results if f["status"] in (302, 303) and f["thanks"]]
    stored = stack.sql(
        "SELECT payload->>'phone' FROM leads_inboundevent WHERE channel_id = %s",
        [form["id"]],
    )
    stored_phones = {row[0] for row in stored}
    # The form normalises phones to E.164 in the payload or keeps them as typed.
    not_stored = [
        f
        for f in form_ok
        if f["phone"] not in stored_phones and f"+86{f['phone']}" not in stored_phones
    ]
    form_bad = [f for f in form_results if f not in form_ok]
    ok = (
        not bad
        and acc["missing"] == 0
        and acc["events_doubled"] == 0
        and left == 0
        and len(form_ok) == forms
        and not not_stored
    )
    return {
        "ok": ok,
        "key": (
            f"webhooks {statuses}; {len(bad)} other than 2xx/503; "
            f"{len(acked) - acc['missing']}/{len(acked)} acked stored, {left} unprocessed; "
            f"forms {len(form_ok)}/{forms} thanked, {len(not_stored)} not stored"
        ),
        "webhooks": n,
        "answers": statuses,
        "answers_while_down": _count([a.status for a in during]),
        "acknowledged": len(acked),
        "refused_503": len(refused),
        "refused_503_with_retry_after": sum(1 for a in refused if a.retry_after),
        "other_answers": len(bad),
        "other_examples": [
            {"status": a.status, "type": a.content_type, "body": a.body[:120], "error": a.error}
            for a in bad[:3]
        ],
        **burst.latency(),
        "redis_down_s": round(back_at - stopped_at, 1),
        "lost": acc["missing"],
        "stored_but_not_acknowledged": stored_unacked,
        "event_statuses": acc["statuses"],
        "still_received": left,
        "all_processed_s_after_recovery": since_back,
        "bound_s": BOUND_S,
        "forms": forms,
        "forms_thanked": len(form_ok),
        "forms_not_stored": len(not_stored),
        "form_failures": _count([f["status"] for f in form_bad]),
        "form_failure_examples": form_bad[:3],
        "form_p95_ms": percentile([f["ms"] for f in form_results], 95),
        "waited_s": waited,
    }


def _count(values) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[str(v)] = out.get(str(v), 0) + 1
    return dict(sorted(out.items()))
