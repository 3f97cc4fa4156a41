"""python -m faults [scenario ...]: run the fault scenarios (all by default) on a private
stack, print each one's figures as JSON, then a summary table. Exit 1 if any failed."""

from __future__ import annotations

import importlib
import json
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor

from faults.stack import QUICK, VAR, FaultStack, log

# Quick ones first; the two 10-minute ones last.
SCENARIOS = [
    "ssrf",
    "raw_sql",
    "hostile",
    "login_abuse",
    "pooled",
    "kill_worker",
    "redis_down",
    "pg_restart",
    "two_beats",
    "notify_down",
]
# Run at the same time when both are chosen (they share one worker and two beats).
TOGETHER = ["two_beats", "notify_down"]


def main(argv: list[str]) -> int:
    names = argv or SCENARIOS
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        print(f"unknown scenario(s): {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
        return 2
    started = time.monotonic()
    stack = FaultStack()
    log(f"private servers under {VAR}{' (FAULTS_QUICK)' if QUICK else ''}")
    stack.start_servers()
    results = []
    try:
        log("fresh database: setup_roles, migrate, collectstatic")
        stack.fresh_database()
        world = stack.dj("world")
        together = [n for n in TOGETHER if n in names]
        for name in names:
            if len(together) > 1 and name in together:
                if name != together[0]:
                    continue
                log(f"--- {' + '.join(together)}, together")
                group = run_together(stack, world, together)
            else:
                log(f"--- {name}")
                group = [run_one(stack, world, name)]
            stack.stop_procs()
            if not stack.stack._redis_running():
                stack.start_redis()
            stack.flush_redis()
            for result in group:
                print(json.dumps(result, ensure_ascii=False, default=str), flush=True)
                results.append(result)
    finally:
        stack.stop_procs()
        stack.stop_servers()
    total = time.monotonic() - started
    summary(results, total)
    (VAR / "last-run.json").write_text(
        json.dumps(results, ensure_ascii=False, default=str, indent=1)
    )
    return 0 if results and all(r["ok"] for r in results) else 1


def run_one(stack, world, name: str, **kwargs) -> dict:
    t0 = time.monotonic()
    restarts_before = len(stack.restarts)
    try:
        module = importlib.import_module(f"faults.scenarios.{name}")
        figures = module.run(stack, world, **kwargs)
    except Exception as exc:  # a crashed scenario is a failed one
        figures = {
            "ok": False,
            "key": f"crashed: {exc.__class__.__name__}",
            "error": traceback.format_exc()[-2000:],
        }
    return {
        "scenario": name,
        "ok": bool(figures.pop("ok")),
        "duration_s": round(time.monotonic() - t0, 1),
        "quick": QUICK,
        **figures,
        # Processes that exited by themselves during the scenario and were restarted.
        "unplanned_restarts": stack.restarts[restarts_before:],
    }


def run_together(stack, world, names: list[str]) -> list[dict]:
    """The two 10-minute scenarios at once, on one worker and two beats (two_beats.start):
    two_beats' SLA clocks are in faults-a, notify_down's alerts in faults-b."""
    from faults.scenarios import two_beats

    two_beats.start(stack)
    with ThreadPoolExecutor(len(names)) as pool:
        futures = [pool.submit(run_one, stack, world, n, started=True) for n in names]
        return [f.result() for f in futures]


def summary(results: list[dict], total: float) -> None:
    rows = [
        (r["scenario"], "pass" if r["ok"] else "FAIL", r.get("key", ""), f"{r['duration_s']:.0f} s")
        for r in results
    ]
    head = ("scenario", "result", "key figures", "duration")
    widths = [max(len(str(row[i])) for row in [head, *rows]) for i in range(4)]
    widths[2] = min(widths[2], 110)
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    print()
    print(line.format(*head))
    print(line.format(*("-" * w for w in widths)))
    for row in rows:
        print(line.format(row[0], row[1], str(row[2])[:110], row[3]))
    passed = sum(r["ok"] for r in results)
    print(f"\n{passed}/{len(results)} passed in {total / 60:.1f} min")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
