"""What the lead-quality report's tests share (F36): a realistic week of leads in tenant
a, every figure of the report recounted from the rows without the report's code, and
reading the page, the lead list and the CSV exports."""

from __future__ import annotations

import csv
import io
import random
import statistics
from collections import defaultdict
from datetime import date, datetime, timedelta
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

from django.urls import reverse

from crm.models import Role
from crm.tenancy import tenant_context
from customers.models import Interaction, Preset, PresetKind
from leads.models import ChannelType, InvalidReason, Lead, SourceGrade, Verification
from tests.factories import MembershipFactory
from tests.leads.factories import make_channel, make_lead

URL = reverse("lead_reports:lead_quality")
LIST = reverse("leads:list")
SHANGHAI = ZoneInfo("Asia/Shanghai")
START, END = date(2026, 3, 2), date(2026, 3, 8)
RANGE = {"created_from": START.isoformat(), "created_to": END.isoformat()}
VALID = {Verification.VALID_VISIT, Verification.VALID_MORE_INFO}
INVALID = {Verification.INVALID_CONTACT, Verification.INVALID_NOT_TARGET}
COUNTS = ("delivered", "verified_24h", "valid_24h", "invalid", "duplicates", "suspect")


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=SHANGHAI)


# -- the fixture: a realistic week of leads ------------------------------------------------


class Mix:
    """Builds leads and follow-ups in tenant a; remembers what it made."""

    def __init__(self, world):
        self.world = world
        self.tenant = world.a.tenant
        self.web = make_channel(self.tenant, name="官网表单")
        self.douyin = make_channel(self.tenant, name="抖音线索", type=ChannelType.DOUYIN)
        self.quiet = make_channel(self.tenant, name="展会扫码", type=ChannelType.TRADE_SHOW_QR)
        self.retired = make_channel(self.tenant, name="旧渠道", is_active=False)
        self.rep1 = world.a.rep
        self.rep2 = MembershipFactory(
            tenant=self.tenant, role=Role.REP, user__username="alpha-rep2", user__first_name="李强"
        )
        with tenant_context(self.tenant):
            self.reasons = [
                InvalidReason.objects.create(tenant=self.tenant, name=name, position=i)
                for i, name in enumerate(["空号", "非目标行业", "重复提交"], start=1)
            ]
            self.action = Preset.objects.create(
                tenant=self.tenant, kind=PresetKind.ACTION, name="发送资料"
            )
        self.leads: list[Lead] = []

    def lead(self, created_at, *, channel=None, grade=SourceGrade.B, owner=None, **fields):
        lead = make_lead(
            self.tenant,
            channel or self.web,
            created_at=created_at,
            source_grade=grade,
            owner=owner,
            company=fields.pop("company", f"公司{len(self.leads)}"),
            **fields,
        )
        self.leads.append(lead)
        return lead

    def verify(self, lead, after: timedelta, outcome, reason=None):
        with tenant_context(self.tenant):
            lead.verification = outcome
            lead.verified_at = lead.created_at + after
            lead.verified_by = lead.owner
            lead.invalid_reason = reason
            lead.save(
                update_fields=["verification", "verified_at", "verified_by", "invalid_reason"]
            )

    def assign_and_touch(self, lead, assigned_after: timedelta, touched_after: timedelta | None):
        with tenant_context(self.tenant):
            lead.assigned_at = lead.created_at + assigned_after
            fields = ["assigned_at"]
            if touched_after is not None:
                lead.first_touch_at = lead.last_touch_at = lead.assigned_at + touched_after
                lead.touch_count = 1
                fields += ["first_touch_at", "last_touch_at", "touch_count"]
            lead.save(update_fields=fields)

    def follow_up(self, lead, by, after_verified: timedelta, *, structured=False):
        """A follow-up; `structured`: with a talk tag and a role reached (process data)."""
        with tenant_context(self.tenant):
            Interaction.objects.create(
                tenant=self.tenant,
                lead=lead,
                by=by,
                at=lead.verified_at + after_verified,
                channel="phone",
                talk_tags=["价格敏感"] if structured else [],
                roles=["technical"] if structured else [],
                next_action=self.action,
                next_action_due=date(2026, 4, 1),
            )


def build_mix(world) -> Mix:
    mix = Mix(world)
    rng = random.Random(36)
    channels = [mix.web, mix.douyin]
    grades = list(SourceGrade.values)
    owners = [mix.rep1, mix.rep2, None]
    outcomes = [*Verification.values, ""]
    originals = []
    for day in range(7):
        for n in range(5):
            created = local(START + timedelta(days=day), 8 + 2 * n, rng.randrange(60))
            revisit_of = rng.choice(originals) if originals and rng.random() < 0.2 else None
            owner = rng.choice(owners)
            lead = mix.lead(
                created,
                channel=rng.choice(channels),
                grade=rng.choice(grades),
                owner=owner,
                revisit_of=revisit_of,
                is_suspect=rng.random() < 0.2,
                suspect_reasons=["x"],
            )
            if revisit_of is None:
                originals.append(lead)
            if owner is None:
                continue
            mix.assign_and_touch(
                lead,
                timedelta(minutes=rng.randrange(1, 30)),
                rng.choice([None, timedelta(minutes=rng.randrange(5, 600))]),
            )
            outcome = rng.choice(outcomes)
            if not outcome:
                continue
            reason = rng.choice([*mix.reasons, None]) if outcome in INVALID else None
            mix.verify(lead, timedelta(hours=rng.choice([1, 5, 23, 30, 50])), outcome, reason)
            if outcome in VALID:
                for _i in range(rng.randrange(3)):
                    by = owner if rng.random() < 0.8 else rng.choice([mix.rep1, mix.rep2])
                    mix.follow_up(lead, by, timedelta(hours=rng.choice([-2, 2, 48, 80])))

    # The edges, by hand.
    day = START + timedelta(days=2)
    exactly = mix.lead(local(day, 9), owner=mix.rep1, grade=SourceGrade.A)
    mix.verify(exactly, timedelta(hours=24), Verification.VALID_VISIT)  # within 24 h
    mix.follow_up(exactly, mix.rep1, timedelta(hours=72))  # within 72 h
    late = mix.lead(local(day, 10), owner=mix.rep1, grade=SourceGrade.A)
    mix.verify(late, timedelta(hours=24, minutes=1), Verification.VALID_MORE_INFO)
    mix.follow_up(late, mix.rep1, timedelta(hours=72, minutes=1))  # too late
    mix.follow_up(late, mix.rep2, timedelta(hours=1))  # not its owner
    mix.follow_up(late, mix.rep1, timedelta(minutes=-1))  # before the verification
    mix.assign_and_touch(late, timedelta(minutes=3), timedelta(hours=2))
    # A former rep (seat deactivated) still owns a lead in the range.
    former = MembershipFactory(
        tenant=mix.tenant,
        role=Role.REP,
        is_active=False,
        user__username="alpha-former",
        user__first_name="赵敏",
    )
    kept = mix.lead(local(day, 11), owner=former, channel=mix.douyin, grade=SourceGrade.C)
    mix.assign_and_touch(kept, timedelta(minutes=1), timedelta(minutes=42))
    mix.verify(kept, timedelta(hours=2), Verification.VALID_VISIT)
    mix.follow_up(kept, former, timedelta(hours=3), structured=True)
    # A retired channel that delivered in the range still shows.
    mix.lead(local(day, 12), channel=mix.retired, is_suspect=True)
    # Local-day edges: the last evening is in; the minutes around the range are out.
    mix.lead(local(END, 23, 30), channel=mix.douyin, grade=SourceGrade.C)
    mix.lead(local(END + timedelta(days=1), 0, 0), company="just after")
    mix.lead(local(START, 0, 0) - timedelta(minutes=1), company="just before")
    # The other tenant's lead in the range.
    make_lead(world.b.tenant, created_at=local(day, 9), company="Beta Ltd")
    return mix


# -- the independent recount ------------------------------------------------------------------


def recount(mix: Mix, start=START, end=END, tz=SHANGHAI) -> dict:
    """Every figure of the report, from the rows, without the report's code."""
    with tenant_context(mix.tenant):
        leads = list(Lead.objects.select_related("channel", "invalid_reason"))
        interactions = list(Interaction.objects.all())
    leads = [x for x in leads if start <= x.created_at.astimezone(tz).date() <= end]
    follow_ups = defaultdict(list)
    for i in interactions:
        follow_ups[i.lead_id].append(i)

    def figures(rows):
        within = [
            x
            for x in rows
            if x.verified_at is not None and x.verified_at - x.created_at <= timedelta(hours=24)
        ]
        return {
            "delivered": len(rows),
            "verified_24h": len(within),
            "valid_24h": sum(1 for x in within if x.verification in VALID),
            "invalid": sum(1 for x in rows if x.verification in INVALID),
            "duplicates": sum(1 for x in rows if x.revisit_of_id is not None),
            "suspect": sum(1 for x in rows if x.is_suspect),
        }

    def followed(x):
        return x.verification in VALID and any(
            i.by_id == x.owner_id and x.verified_at <= i.at <= x.verified_at + timedelta(hours=72)
            for i in follow_ups[x.id]
        )

    shown_channels = {x.channel for x in leads} | {
        c for c in (mix.web, mix.douyin, mix.quiet, mix.retired) if c.is_active
    }
    result = {
        "channel": {
            f"channel-{c.pk}": (c.name, figures([x for x in leads if x.channel_id == c.pk]))
            for c in shown_channels
        },
        "grade": {
            f"grade-{g}": (g, figures([x for x in leads if x.source_grade == g]))
            for g in SourceGrade.values
        },
        "total": figures(leads),
        "reason": {},
        "rep": {},
    }
    invalid = [x for x in leads if x.verification in INVALID]
    for reason in {x.invalid_reason for x in invalid}:
        rows = [x for x in invalid if x.invalid_reason == reason]
        columns = {f"channel-{c.pk}": 0 for c in shown_channels}
        columns |= {f"grade-{g}": 0 for g in SourceGrade.values}
        for x in rows:
            columns[f"channel-{x.channel_id}"] += 1
            columns[f"grade-{x.source_grade}"] += 1
        key = f"reason-{reason.pk if reason else 'none'}"
        result["reason"][key] = (reason.name if reason else "No reason given", len(rows), columns)
    for owner_id in {x.owner_id for x in leads if x.owner_id}:
        rows = [x for x in leads if x.owner_id == owner_id]
        valid = [x for x in rows if x.verification in VALID]
        touched = [x for x in rows if x.first_touch_at and x.assigned_at]
        result["rep"][f"rep-{owner_id}"] = {
            "valid": len(valid),
            "followed_up": sum(1 for x in valid if followed(x)),
            "touched": len(touched),
            "median": (
                statistics.median(x.first_touch_at - x.assigned_at for x in touched)
                if touched
                else None
            ),
        }
    return result


def rate_text(numerator, denominator) -> str:
    return "—" if not denominator else f"{numerator / denominator * 100:.1f}%"


# -- reading the page ------------------------------------------------------------------------


class Figures(HTMLParser):
    """{data-figure: (data-value, text, href)} of the page's figure cells."""

    def __init__(self):
        super().__init__()
        self.cells, self._current = {}, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "td" and "data-figure" in attrs:
            self._current = attrs["data-figure"]
            self.cells[self._current] = [attrs["data-value"], "", ""]
        elif tag == "a" and self._current:
            self.cells[self._current][2] = attrs["href"]

    def handle_endtag(self, tag):
        if tag == "td":
            self._current = None

    def handle_data(self, data):
        if self._current:
            self.cells[self._current][1] += data.strip()


def figures_of(response) -> dict[str, tuple[str, str, str]]:
    parser = Figures()
    parser.feed(response.content.decode())
    return {k: tuple(v) for k, v in parser.cells.items()}


def list_count(client, href) -> int:
    assert href.startswith(LIST + "?"), href
    response = client.get(href)
    assert response.status_code == 200
    return response.context["count"]


def csv_of(client, table, params=RANGE) -> list[list[str]]:
    response = client.get(URL, {**params, "_export": "csv", "table": table})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response.streaming  # the product's one CSV writer (crm.tables.streamed_csv)
    content = response.getvalue()
    assert content.startswith("\ufeff".encode())
    return list(csv.reader(io.StringIO(content.decode("utf-8")[1:])))
