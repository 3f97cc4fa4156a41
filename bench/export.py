"""Export bench: the lead list's CSV export of a whole tenant, as a browser receives it.

    .venv/bin/python bench/leads.py --leads 100000 --only leads_export_csv   # fills `bench`
    .venv/bin/python bench/export.py [--tenant bench] [--runs 3]

Times, as the manager `<tenant>-leads-manager`, the first piece of the body and the whole
body of `/leads/?_export=csv` (every lead of the tenant), and the growth of the process's
peak memory while it is sent (ru_maxrss, after a warm-up page): a streamed export keeps it
flat whatever the number of rows. Prints JSON with the median and spread of --runs,
every run, the reference workload sampled --reference-samples times after each run
(common.Reference), and the machine block.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

from common import (
    MODEL_BACKEND,
    Reference,
    emit,
    log,
    reference_sample,
    relative,
    setup_django,
    spread,
)


def one_run(client) -> dict:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    first, size = None, 0
    response = client.get("/leads/", {"_export": "csv"})
    body = response.streaming_content if response.streaming else [response.content]
    for piece in body:
        if first is None:
            first = time.perf_counter() - started
        size += len(piece)
    total = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "status": response.status_code,
        "streamed": response.streaming,
        "bytes": size,
        "first_piece_ms": round(first * 1000, 1),
        "total_ms": round(total * 1000, 1),
        "peak_rss_growth_mb": round((after - before) / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenant", default="bench", help="tenant slug (default: bench)")
    parser.add_argument("--runs", type=int, default=3, help="timed exports")
    parser.add_argument(
        "--reference-samples",
        type=int,
        default=10,
        help="reference workload samples after each export (common.reference_sample)",
    )
    args = parser.parse_args()
    setup_django()

    from django.test import Client

    from crm.models import Membership, Tenant
    from crm.tenancy import tenant_context
    from leads.models import Lead

    tenant = Tenant.objects.get(slug=args.tenant)
    with tenant_context(tenant):
        manager = Membership.objects.select_related("user").get(
            user__username=f"{args.tenant}-leads-manager"
        )
        leads = Lead.objects.count()
    client = Client()
    client.force_login(manager.user, backend=MODEL_BACKEND)
    client.get("/leads/")  # warm: imports, templates, the connection
    reference_sample()
    runs, ref = [], Reference()
    for i in range(args.runs):
        log(f"export {i + 1}/{args.runs} of {leads} leads")
        runs.append(one_run(client))
        ref.sample(args.reference_samples)
    total = spread([r["total_ms"] for r in runs], digits=1)
    reference = ref.report()
    emit(
        {
            "bench": "export",
            "tenant": args.tenant,
            "leads": leads,
            "first_piece_ms_median": statistics.median(r["first_piece_ms"] for r in runs),
            "total_ms_median": total["median_ms"],
            "first_piece": spread([r["first_piece_ms"] for r in runs], digits=1),
            "total": total,
            "peak_rss_growth_mb_max": max(r["peak_rss_growth_mb"] for r in runs),
            "reference": reference,
            "relative": relative(total["median_ms"], reference),
            "runs": runs,
        }
    )


if __name__ == "__main__":
    main()
