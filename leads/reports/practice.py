"""A colleague's practice that worked, for the weekly diagnosis (F37): the leads app's
`PracticeSource` in the kernel's registry (crm.process), registered from
LeadsConfig.ready().

For each rep diagnosed, over the leads assigned in the LOOKBACK_DAYS local days ending on
the diagnosis's last day:

1. The rep's lead mix: the share of their leads in each cell (channel × source grade).
2. Each active colleague's conversion (leads verified valid ÷ leads assigned) in each
   cell, weighted by the rep's mix: Σ w_rep(cell) × conversion_colleague(cell) over the
   cells the colleague has leads in, divided by the weight of those cells (direct
   standardisation: what the colleague would convert on the rep's leads). A colleague
   must cover at least MIN_COVERAGE of the rep's mix with at least MIN_LEADS leads; the
   rep's own conversion is taken over the same cells.
3. The colleague with the highest such conversion, if it beats the rep's own (ties: more
   leads, then the earlier seat), and their follow-up pattern beside the rep's: the
   median minutes from assignment to first touch, the follow-ups logged in the first 7
   days per lead, and how their touches went (phone, WeChat/WeCom, visit …).

Four grouped queries whatever the number of reps and leads.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

from django.db.models import Count, DateTimeField, ExpressionWrapper, F, Q
from django.db.models.fields.json import KeyTextTransform
from django.utils.translation import gettext

from crm.metrics import Median, period_bounds
from crm.models import Membership, Tenant
from crm.process import PracticeSource, minutes_text, percent_text, register_practice
from crm.roles import OWNERS
from customers.models import ContactMethod

LOOKBACK_DAYS = 90
MIN_COVERAGE = 0.6  # of the rep's mix the colleague must have leads in
MIN_LEADS = 10  # the colleague's leads in those cells
MIN_OWN_LEADS = 5  # a rep with fewer has no mix to compare on
FIRST_DAYS = timedelta(days=7)
KEY = "leads.follow_up_pattern"


def window(end: date) -> tuple[date, date]:
    return end - timedelta(days=LOOKBACK_DAYS - 1), end


def _leads(tenant: Tenant, start: date, end: date):
    from leads.models import Lead

    since, until = period_bounds(tenant, start, end)
    return Lead.objects.filter(
        tenant=tenant, owner__isnull=False, assigned_at__gte=since, assigned_at__lt=until
    )


def mixes(leads) -> dict[int, dict[tuple, tuple[int, int]]]:
    """{owner id: {(channel id, grade): (leads, valid)}}."""
    from leads.models import Verification

    found: dict[int, dict[tuple, tuple[int, int]]] = defaultdict(dict)
    rows = (
        leads.order_by()
        .values("owner_id", "channel_id", "source_grade")
        .annotate(n=Count("pk"), valid=Count("pk", filter=Q(verification__in=Verification.valid())))
    )
    for row in rows:
        found[row["owner_id"]][(row["channel_id"], row["source_grade"])] = (row["n"], row["valid"])
    return found


def standardised(mine: dict, theirs: dict) -> tuple[float, float, float, int] | None:
    """On `mine`'s mix, over the cells `theirs` has leads in: (their conversion, mine,
    the weight of those cells in my mix, their leads in them); None without a cell in
    common."""
    total = sum(n for n, _valid in mine.values())
    if not total:
        return None
    weight = their_rate = my_rate = 0.0
    their_leads = 0
    for cell, (n, valid) in mine.items():
        if cell not in theirs or not theirs[cell][0]:
            continue
        w = n / total
        their_n, their_valid = theirs[cell]
        weight += w
        their_rate += w * their_valid / their_n
        my_rate += w * valid / n
        their_leads += their_n
    if not weight:
        return None
    return their_rate / weight, my_rate / weight, weight, their_leads


def choose(rep: int, found: dict, colleagues: list[int]) -> dict | None:
    """The colleague with the best conversion on `rep`'s mix, if better than the rep's
    own on the same cells (see the module's docstring), with the comparison."""
    mine = found.get(rep, {})
    if sum(n for n, _valid in mine.values()) < MIN_OWN_LEADS:
        return None
    best = None
    for colleague in colleagues:
        if colleague == rep:
            continue
        compared = standardised(mine, found.get(colleague, {}))
        if compared is None:
            continue
        theirs, my_rate, coverage, their_leads = compared
        if coverage < MIN_COVERAGE or their_leads < MIN_LEADS or theirs <= my_rate:
            continue
        key = (theirs, their_leads, -colleague)
        if best is None or key > best[0]:
            best = (key, colleague, theirs, my_rate, coverage, their_leads)
    if best is None:
        return None
    _key, colleague, theirs, my_rate, coverage, their_leads = best
    return {
        "colleague_id": colleague,
        "their_conversion": round(theirs, 6),
        "my_conversion": round(my_rate, 6),
        "coverage": round(coverage, 6),
        "their_leads": their_leads,
        "my_leads": sum(n for n, _valid in mine.values()),
    }


def patterns(leads, owners: list[int]) -> dict[int, dict]:
    """Each owner's follow-up pattern over `leads`: the median minutes to first touch
    (touched after the assignment), follow-ups in the first 7 days per lead, and the
    share of their touches by channel."""
    from customers.models import Interaction
    from leads.models import LeadEvent, LeadEventKind
    from leads.reports.process import Epoch, touched_q

    leads = leads.filter(owner__in=owners).order_by()
    result = {
        o: {"first_touch_minutes": None, "follow_ups_7d": None, "channels": {}} for o in owners
    }
    counts = {}
    for row in leads.values("owner_id").annotate(
        n=Count("pk"),
        median=Median(Epoch(F("first_touch_at") - F("assigned_at")) / 60.0, filter=touched_q()),
    ):
        counts[row["owner_id"]] = row["n"]
        result[row["owner_id"]]["first_touch_minutes"] = row["median"]
    first_days_end = ExpressionWrapper(
        F("lead__assigned_at") + FIRST_DAYS, output_field=DateTimeField()
    )
    follow_ups = (
        Interaction.objects.filter(
            lead__in=leads.values("pk"),
            by=F("lead__owner"),
            at__gte=F("lead__assigned_at"),
            at__lt=first_days_end,
        )
        .order_by()
        .values("by_id")
        .annotate(n=Count("pk"))
    )
    for row in follow_ups:
        if counts.get(row["by_id"]):
            result[row["by_id"]]["follow_ups_7d"] = row["n"] / counts[row["by_id"]]
    for owner, n in counts.items():
        if result[owner]["follow_ups_7d"] is None and n:
            result[owner]["follow_ups_7d"] = 0.0
    touches = (
        LeadEvent.objects.filter(
            lead__in=leads.values("pk"),
            kind=LeadEventKind.TOUCH,
            actor=F("lead__owner__user"),
        )
        .order_by()
        .annotate(channel=KeyTextTransform("channel", "data"))
        .values("lead__owner_id", "channel")
        .annotate(n=Count("pk"))
    )
    by_owner: dict[int, dict[str, int]] = defaultdict(dict)
    for row in touches:
        by_owner[row["lead__owner_id"]][row["channel"] or ""] = row["n"]
    for owner, channels in by_owner.items():
        total = sum(channels.values())
        result[owner]["channels"] = {
            channel: round(n / total, 6) for channel, n in sorted(channels.items())
        }
    return result


def find(tenant: Tenant, start: date, end: date, rep_ids: list[int]) -> dict[int, dict]:
    """The practice for each rep of `rep_ids` who has a colleague to learn from."""
    first, last = window(end)
    leads = _leads(tenant, first, last)
    found = mixes(leads)
    colleagues = list(
        Membership.objects.in_tenant(tenant)
        .active()
        .filter(role__in=OWNERS, pk__in=list(found))
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    chosen = {rep: pick for rep in rep_ids if (pick := choose(rep, found, colleagues))}
    if not chosen:
        return {}
    owners = sorted({*chosen, *(p["colleague_id"] for p in chosen.values())})
    pattern = patterns(leads, owners)
    names = {
        m.pk: m.display_name
        for m in Membership.objects.in_tenant(tenant).filter(pk__in=owners).select_related("user")
    }
    for rep, pick in chosen.items():
        pick["colleague"] = names.get(pick["colleague_id"], "")
        pick["theirs"] = pattern[pick["colleague_id"]]
        pick["mine"] = pattern[rep]
        pick["days"] = LOOKBACK_DAYS
        pick["from"], pick["to"] = first.isoformat(), last.isoformat()
    return chosen


def _per_lead(value) -> str:
    return "—" if value is None else f"{value:.1f}"


CHANNEL_ORDER = [c.value for c in ContactMethod]


def describe(data: dict) -> dict:
    """The practice worded for the diagnosis page (the reader's language)."""
    theirs, mine = data.get("theirs") or {}, data.get("mine") or {}
    rows = [
        (
            gettext("Median time from assignment to first touch"),
            minutes_text(theirs.get("first_touch_minutes")),
            minutes_text(mine.get("first_touch_minutes")),
        ),
        (
            gettext("Follow-ups logged in a lead's first 7 days"),
            _per_lead(theirs.get("follow_ups_7d")),
            _per_lead(mine.get("follow_ups_7d")),
        ),
    ]
    labels = dict(ContactMethod.choices)
    channels = set(theirs.get("channels", {})) | set(mine.get("channels", {}))
    for channel in sorted(
        channels,
        key=lambda c: (
            c not in CHANNEL_ORDER,
            CHANNEL_ORDER.index(c) if c in CHANNEL_ORDER else 0,
            c,
        ),
    ):
        rows.append(
            (
                gettext("Touches by %(channel)s")
                % {"channel": labels.get(channel, channel or "—")},
                percent_text(theirs.get("channels", {}).get(channel, 0.0)),
                percent_text(mine.get("channels", {}).get(channel, 0.0)),
            )
        )
    summary = gettext(
        "On leads like yours (%(coverage)s of your mix of channels and source grades), "
        "%(colleague)s converts %(theirs)s to valid, against your %(mine)s."
    ) % {
        "coverage": percent_text(data.get("coverage")),
        "colleague": data.get("colleague", ""),
        "theirs": percent_text(data.get("their_conversion")),
        "mine": percent_text(data.get("my_conversion")),
    }
    method = gettext(
        "Leads assigned from %(start)s to %(end)s. Their conversion in each channel and "
        "source grade is weighted by your share of leads there; the colleague with the best "
        "such conversion is shown, if better than yours on the same leads."
    ) % {"start": data.get("from", ""), "end": data.get("to", "")}
    return {
        "colleague": data.get("colleague", ""),
        "summary": summary,
        "rows": rows,
        "method": method,
    }


def register() -> None:
    register_practice(PracticeSource(key=KEY, find=find, describe=describe))
