"""The demo tenant's board part (F15–F20, F36): `leads/demo/story.py` calls `seed()` at the end of
its story, inside the demo tenant's context, so the daily board, the follow-ups and the
lead-quality report have something real to show.

The story verifies its leads through `leads.verification.lead_verify` at their moments
(`verdict_for()` here says with what: an invalid verdict takes the reason the first call's
note gives, 空号 → 空号/停机 …; a valid one its next step, the visit's date or the
missing information's action, a few working days ahead). Leads verified valid and later
returned to the pool by the SLA sweep keep that verdict with their new owner.

Then two weeks of follow-ups, through `customers.services.interaction_log` at backdated
moments: one to three per customer, with talk tags, pain points, decision-chain roles
and a next action; the first closes the verdict's next step, each the rep's previous
one. Every rep ends today with a handful of next actions due today, a few overdue, some
due later, and older ones done.

And today's open work through the real intake and engine: each rep gets a revisit of one
of their customers (the engine hands a revisit to the first lead's owner, and it takes
over the valid verdict: a customer to follow up, not a lead to verify), and a lead to
verify past its 24 h clock plus a recent one, each from one of the rep's regions and
asking for one of their product lines, so the engine gives it to them (the others have
room, but score well below); for rep5 and rep6 with their zone or leave as it was at
that earlier moment. The SLA sweep then runs once (reminders for
the leads past 24 h) and the fairness ledger is rebuilt from the decisions.

Idempotent: nothing is added when the tenant has any follow-up already. Deterministic
content (random.Random); the times follow today's date.
"""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from datetime import datetime, time, timedelta

from django.db.models import F, Max, Q
from django.urls import reverse
from django.utils import timezone

from crm.models import AuditEvent, Notification
from customers.models import (
    Contact,
    Customer,
    CustomerLevel,
    DecisionRole,
    Interaction,
    InteractionKind,
    PresetKind,
)
from customers.services import VISIT_ACTION, add_working_days, presets
from leads.assignment import sla
from leads.demo.data import EQUIPMENT as ALL_EQUIPMENT
from leads.demo.data import LEAVE_DAYS
from leads.demo.ledger import rebuild_ledger
from leads.demo.maker import Maker
from leads.demo.tenant import AWAY, REP_PROFILES, SLOW, tenant_channels
from leads.followups_services import lead_follow_up
from leads.intake.services import inbound_event_process, inbound_event_receive
from leads.models import (
    AssignmentDecision,
    ChannelType,
    ContactMethod,
    DecisionOutcome,
    EventSource,
    InboundEvent,
    Industry,
    Lead,
    LeadEvent,
    LeadEventKind,
    LeadStatus,
    RepProfile,
    Verification,
    Zone,
)
from leads.verification import invalid_reasons

SEED = 2026 + 15

# The story's first-call notes on an invalid lead → the invalid reason they mean.
REASON_BY_NOTE = {
    "空号，无法联系": "空号/停机",
    "同行询价，非终端客户": "同行/竞争对手",
    "学生做课题调研，无采购需求": "个人用户非企业",
    "已从其他渠道采购，暂无需求": "已有供应商不考虑",
    "留错号码，对方不知情": "号码错误",
}
CONTACT_REASONS = {"空号/停机", "号码错误", "无人接听多次"}
DUPLICATE_REASON = "重复咨询"
TEST_REASON = "测试/恶意提交"
FALLBACK_REASONS = ["无预算", "地区不在服务范围", "非决策人且无法转介", "无人接听多次"]

FOLLOW_UP_NOTES = [
    "电话沟通，客户在比价，下周再联系",
    "发送了配置单和报价，客户问价格多少能再优惠",
    "客户说要再考虑一下，预算要等下季度",
    "设备科确认参数，安排下周上门演示",
    "院长同意先试用一台",
    "回复售后维保和保修期问题",
    "客户反馈太贵，申请特价中",
    "已发合同草稿，等法务意见",
    "招标文件已挂网，准备投标资料",
    "拜访设备科，介绍同级医院装机案例",
    "微信发送彩页和注册证",
    "",
]
FOLLOW_UP_CHANNELS = [
    ContactMethod.PHONE,
    ContactMethod.PHONE,
    ContactMethod.WECHAT,
    ContactMethod.WECHAT,
    ContactMethod.VISIT,
    ContactMethod.MEETING,
    ContactMethod.EMAIL,
]
REVISIT_NOTES = [
    "之前咨询过{eq}，想再确认一下配置和交期。",
    "上次的{eq}方案领导看过了，想约时间详谈。",
    "再次咨询{eq}的价格，科室催得比较急。",
    "补充需求：{eq}需要带三年维保。",
    "{eq}项目预算批下来了，请尽快联系。",
    "想了解{eq}能否分期付款。",
]
NEW_NOTES = [
    "想了解{eq}的报价和配置，麻烦尽快联系。",
    "我院计划采购{eq}，请提供详细参数。",
    "{eq}能否安排工程师上门演示？",
    "科室新建，需要配置{eq}，请联系我。",
]
EQUIPMENT = ["移动DR", "64排CT", "彩色多普勒超声", "全自动生化分析仪", "监护仪", "呼吸机"]

INDUSTRY_WORDS = {
    Industry.MANUFACTURING: "制造业",
    Industry.ENERGY: "能源",
    Industry.INFRASTRUCTURE: "基建",
    Industry.OTHER: "其他",
}

# Today's follow-ups per rep: (due today, overdue), drawn in these ranges.
DUE_TODAY = (3, 5)
OVERDUE = (2, 3)


def _reason(lead: Lead, at, reasons: dict, rnd):
    if lead.revisit_of_id is not None and DUPLICATE_REASON in reasons:
        return reasons[DUPLICATE_REASON]
    if lead.is_suspect and TEST_REASON in reasons:
        return reasons[TEST_REASON]
    notes = LeadEvent.objects.filter(lead=lead, kind=LeadEventKind.TOUCH, at__lte=at).values_list(
        "data", flat=True
    )
    for data in notes:
        name = REASON_BY_NOTE.get((data or {}).get("note", ""))
        if name in reasons:
            return reasons[name]
    names = [n for n in FALLBACK_REASONS if n in reasons] or list(reasons)
    return reasons[rnd.choice(names)]


def verdict_for(lead: Lead, at, *, valid: bool, rnd, step_days=None) -> dict:
    """`lead_verify`'s arguments for the story's verdict on `lead` at `at`: the outcome
    and, for a valid one, its next step `step_days` working days ahead (drawn when None:
    a visit 1–5 days out, missing information 0–3), for an invalid one its reason."""
    day = timezone.localtime(at, lead.tenant.tzinfo).date()
    if valid:
        outcome = rnd.choice(
            [Verification.VALID_VISIT, Verification.VALID_MORE_INFO, Verification.VALID_MORE_INFO]
        )
        if step_days is not None:
            outcome = Verification.VALID_MORE_INFO
        if outcome == Verification.VALID_VISIT:
            return {"outcome": outcome, "visit_date": add_working_days(day, rnd.randint(1, 5))}
        actions = [a for a in presets(PresetKind.ACTION) if a.name != VISIT_ACTION]
        days = rnd.randint(0, 3) if step_days is None else step_days
        return {
            "outcome": outcome,
            "next_action": rnd.choice(actions),
            "next_action_due": add_working_days(day, days),
        }
    reason = _reason(lead, at, {r.name: r for r in invalid_reasons()}, rnd)
    outcome = (
        Verification.INVALID_CONTACT
        if reason.name in CONTACT_REASONS
        else Verification.INVALID_NOT_TARGET
    )
    return {"outcome": outcome, "invalid_reason": reason}


def seed(*, world, stdout) -> None:
    if Interaction.objects.filter(kind=InteractionKind.FOLLOW_UP).exists():
        stdout.write("board: follow-ups already there, none added")
        return
    if not Lead.objects.exists():
        return
    counts = _Board(world).run()
    verified = Lead.objects.exclude(verification="")
    valid = verified.filter(verification__in=Verification.valid()).count()
    stdout.write(
        f"board: {verified.count()} verifications ({valid} valid → "
        f"{Customer.objects.count()} customers, {Contact.objects.count()} contacts; "
        f"{verified.count() - valid} invalid with a reason), {Interaction.objects.count()} "
        f"follow-ups and next steps ({counts['due_today']} due today, {counts['overdue']} overdue, "
        f"{counts['later']} due later, {counts['done']} done); today: {counts['revisits']} "
        f"revisits and {counts['to_verify']} new leads to verify; SLA sweep: "
        + (", ".join(f"{k} {v}" for k, v in counts["sla"].items() if v) or "nothing due")
    )


class _Board:
    def __init__(self, world):
        self.world = world
        self.tenant = world.demo
        self.tz = self.tenant.tzinfo
        self.now = timezone.now()
        self.today = timezone.localtime(self.now, self.tz).date()
        self.rnd = random.Random(SEED)  # noqa: S311 — demo data, not secrets
        self.reps = {u: m for u, m in world.memberships.items() if u in REP_PROFILES}
        self.slow, self.away = SLOW, AWAY
        self.leave_start = self.now - timedelta(days=LEAVE_DAYS)
        self.counts: Counter = Counter()
        self.tags = list(presets(PresetKind.TALK_TAG))
        self.pains = list(presets(PresetKind.PAIN))
        self.actions = list(presets(PresetKind.ACTION))

    def run(self) -> Counter:
        self._levels()
        self._follow_ups()
        self._today()
        self.counts["sla"] = sla.sla_sweep()
        self._ledger()
        return self.counts

    def _levels(self) -> None:
        """A few key and growing accounts among the customers (the rank's level weight)."""
        for customer in Customer.objects.order_by("created_at", "id"):
            roll = self.rnd.random()
            level = CustomerLevel.A if roll < 0.15 else CustomerLevel.B if roll < 0.5 else None
            if level is not None:
                Customer.objects.filter(pk=customer.pk).update(level=level)

    # -- follow-ups --------------------------------------------------------------------

    def _follow_ups(self) -> None:
        """1–3 follow-ups per customer by its lead's owner, then today's shape per rep."""
        anchors = (
            Lead.objects.filter(
                status=LeadStatus.VALID,
                customer__isnull=False,
                owner__isnull=False,
                verified_by=F("owner"),
            )
            .select_related("customer", "contact", "owner__user", "tenant")
            .order_by("verified_at", "id")
        )
        seen: set[int] = set()
        chains_by_rep: dict[int, list[dict]] = defaultdict(list)
        for lead in anchors:
            if lead.customer_id in seen:
                continue  # one thread per customer: a later lead joins the first one's
            seen.add(lead.customer_id)
            chain = self._chain(lead)
            if chain is not None:
                chains_by_rep[lead.owner_id].append(chain)
        for chains in chains_by_rep.values():
            self._shape(chains)
        steps = sorted(
            (
                (at, n, chain)
                for chains in chains_by_rep.values()
                for chain in chains
                for n, at in enumerate(chain["times"])
            ),
            key=lambda s: (s[0], s[2]["lead"].pk, s[1]),
        )
        for at, n, chain in steps:
            self._log(chain, n, at)
        # Older threads: the last next action was done (no follow-up logged for it).
        for chains in chains_by_rep.values():
            for chain in chains:
                if chain.get("done_at") is not None:
                    Interaction.objects.filter(pk=chain["last"].pk).update(
                        next_done_at=chain["done_at"]
                    )
        self.counts["done"] = Interaction.objects.filter(next_done_at__isnull=False).count()

    def _chain(self, lead: Lead) -> dict | None:
        """When the rep followed the customer up: after the lead's last touch, 1–3 times."""
        rnd = self.rnd
        limit = self.now - timedelta(minutes=20)
        if lead.owner_id == self.reps[self.away].pk:
            limit = min(limit, self.leave_start - timedelta(hours=2))
        base = max(lead.verified_at, lead.last_touch_at or lead.verified_at)
        if base >= limit - timedelta(minutes=30):
            return None
        if rnd.random() < 0.85:
            gap = timedelta(hours=rnd.uniform(1, 30))
        else:
            gap = timedelta(days=rnd.uniform(3, 5))  # followed up late (the report's 72 h)
        first = base + gap
        if first >= limit:
            first = base + (limit - base) * rnd.uniform(0.3, 0.9)
        times = [first]
        wanted = rnd.choice([1, 2, 2, 3, 3])
        while len(times) < wanted:
            nxt = times[-1] + timedelta(days=rnd.uniform(1, 4), hours=rnd.uniform(-3, 3))
            if nxt >= limit:
                break
            times.append(nxt)
        return {"lead": lead, "rep": lead.owner, "times": times}

    def _local_date(self, moment: datetime):
        return timezone.localtime(moment, self.tz).date()

    def _shape(self, chains: list[dict]) -> None:
        """Due dates: each next action before the next follow-up's day; the last ones of
        the rep's threads make today: a few overdue, a handful due today, some later, the
        older ones done."""
        rnd = self.rnd
        for chain in chains:
            chain["dues"] = [
                add_working_days(self._local_date(t), rnd.randint(1, 3)) for t in chain["times"]
            ]
        recent_first = sorted(chains, key=lambda c: c["times"][-1], reverse=True)
        want_overdue = rnd.randint(*OVERDUE)
        want_today = rnd.randint(*DUE_TODAY)
        left = []
        for chain in recent_first:
            last_day = self._local_date(chain["times"][-1])
            if want_overdue and last_day <= self.today - timedelta(days=2):
                days_over = rnd.randint(1, min(4, (self.today - last_day).days - 1) or 1)
                chain["dues"][-1] = max(last_day, self.today - timedelta(days=days_over))
                want_overdue -= 1
                self.counts["overdue"] += 1
            else:
                left.append(chain)
        # Due today: the next most recent threads. Due later: at least the one after, and
        # every thread of the last days. Older ones: their last action was done.
        for chain in left[:want_today]:
            chain["dues"][-1] = self.today
            self.counts["due_today"] += 1
        for n, chain in enumerate(left[want_today:]):
            last = chain["times"][-1]
            natural = chain["dues"][-1]
            if n == 0 or last >= self.now - timedelta(days=5) or natural >= self.today:
                chain["dues"][-1] = add_working_days(self.today, rnd.randint(1, 5))
                self.counts["later"] += 1
            else:
                done = datetime.combine(natural, time(9), tzinfo=self.tz) + timedelta(
                    hours=rnd.uniform(0, 8)
                )
                chain["done_at"] = max(min(done, self.now - timedelta(minutes=5)), last)

    def _log(self, chain: dict, n: int, at: datetime) -> None:
        rnd = self.rnd
        lead = chain["lead"]
        tags = rnd.sample(self.tags, rnd.choice([0, 1, 1, 2])) if self.tags else []
        pains = rnd.sample(self.pains, rnd.choice([0, 1, 1, 2])) if self.pains else []
        roles = rnd.sample(list(DecisionRole.values), rnd.choice([0, 1, 1, 2]))
        since = timezone.now()
        interaction = lead_follow_up(
            tenant=self.tenant,
            acting_member=chain["rep"],
            lead=lead,
            channel=rnd.choice(FOLLOW_UP_CHANNELS),
            talk_tags=tags,
            pains=pains,
            roles=roles,
            note=rnd.choice(FOLLOW_UP_NOTES),
            next_action=rnd.choice(self.actions),
            next_action_due=chain["dues"][n],
            at=at,
        )
        Customer.objects.filter(created_at__gte=since).update(created_at=at)
        AuditEvent.objects.filter(at__gte=since).update(at=at)
        chain["last"] = interaction

    # -- today's open work -------------------------------------------------------------

    def _today(self) -> None:
        """Per rep: a revisit today; a lead past its 24 h clock and a recent one."""
        self.channels = tenant_channels(self.tenant)
        rnd = self.rnd
        for rep in self.reps.values():
            original = (
                Lead.objects.filter(
                    owner=rep,
                    status=LeadStatus.VALID,
                    revisit_of__isnull=True,
                    revisits__isnull=True,
                    created_at__gte=self.now - timedelta(days=20),
                )
                .exclude(phone_key="")
                .order_by("created_at", "id")
                .first()
            )
            if original is not None:
                moment = self.now - timedelta(hours=rnd.uniform(1, 5))
                # After the rep's last follow-up of that customer (the chains run up to 20
                # minutes ago): a revisit with a step logged since is planned, not on the board.
                last = Interaction.objects.filter(
                    by=rep, customer_id=original.customer_id
                ).aggregate(last=Max("at"))["last"]
                if original.customer_id and last is not None and last >= moment:
                    moment = last + (self.now - last) / 2
                self._revisit(original, moment, rep)
        profiles = {p.membership_id: p for p in RepProfile.objects.all()}
        slow, away = self.reps[self.slow], self.reps[self.away]
        for rep in self.reps.values():
            if rep.pk == slow.pk:
                # Before the pause: rep5 was still on dispatch then.
                zone_since = profiles[rep.pk].zone_since or self.now
                late = min(zone_since - timedelta(hours=1), self.now - timedelta(hours=26))
                moments = [late]
            elif rep.pk == away.pk:
                moments = [self.leave_start - timedelta(hours=rnd.uniform(2, 5))]
            else:
                moments = [
                    self.now - timedelta(hours=rnd.uniform(26, 32)),
                    self.now - timedelta(hours=rnd.uniform(1, 6)),
                ]
            for moment in moments:
                self._new_lead(rep, moment, profiles)

    def _intake(self, channel_type: str, payload: dict):
        event, created = inbound_event_receive(
            channel=self.channels[channel_type],
            raw_body=json.dumps(payload, ensure_ascii=False),
            source=EventSource.FORM
            if channel_type == ChannelType.WEB_FORM
            else EventSource.WEBHOOK,
            payload=payload,
            queue=False,
        )
        if not created:
            return None, None
        event = inbound_event_process(event_id=event.pk)
        return event, (event.lead if event is not None else None)

    def _revisit(self, original: Lead, moment: datetime, rep) -> None:
        eq = self.rnd.choice(EQUIPMENT)
        payload = {
            "company": original.company,
            "contact_name": original.contact_name,
            "phone": original.phone,
            "message": self.rnd.choice(REVISIT_NOTES).format(eq=eq),
        }
        since = timezone.now()
        event, lead = self._intake(ChannelType.WEB_FORM, payload)
        if lead is None:
            return
        self._backdate(lead, event, moment, since)
        if lead.owner_id == rep.pk and lead.revisit_of_id is not None:
            self.counts["revisits"] += 1

    def _new_lead(self, rep, moment: datetime, profiles: dict) -> None:
        """A new lead that fits `rep` (from one of their regions, asking for one of their
        product lines), dispatched by the engine as it stands: the others have room but
        score well below, so it is theirs. rep5 and rep6 get theirs as things were at
        `moment` (before the pause, before the leave), then put back."""
        from crm import normalize

        profile = profiles[rep.pk]
        regions = {
            normalize.region_key(r) for r in [*(profile.provinces or []), *(profile.cities or [])]
        }
        # Seeded by the rep's place in the story, not by a database id (which differs from
        # one database to the next).
        index = list(self.reps.values()).index(rep)
        maker = Maker(seed=SEED + index * 100 + self.counts["to_verify"])
        person = maker.person()
        for _attempt in range(3000):
            phone = normalize.parse_phone(person["phone"])
            here = {normalize.region_key(p) for p in (phone.province, phone.city) if p}
            # Neither the phone nor the company and contact of an earlier lead: a new
            # enquiry, not a revisit (which would go to that lead's owner).
            taken = Lead.objects.filter(
                Q(phone_key__endswith=person["phone"][-8:])
                | Q(
                    company_key=normalize.company_key(person["company"]),
                    contact_key=normalize.person_key(person["name"]),
                )
            ).exists()
            if here & regions and not taken:
                break
            person = maker.person()
        lines = [p for p in profile.product_lines or [] if p]
        fitting = [e for e in ALL_EQUIPMENT if any(line in e for line in lines)]
        equipment = self.rnd.choice(fitting or lines or EQUIPMENT)
        message = self.rnd.choice(NEW_NOTES).format(eq=equipment)
        industries = [i for i in profile.industries or [] if i in INDUSTRY_WORDS]
        if industries:  # one of the rep's industries, as a form would say it
            person = {**person, "industry": INDUSTRY_WORDS[industries[0]]}
        payload = maker.payload(ChannelType.WEB_FORM, person, message)
        saved = (profile.zone, profile.zone_since, profile.is_available, profile.unavailable_until)
        # rep5 before the pause, rep6 before the leave: on dispatch then.
        RepProfile.objects.filter(pk=profile.pk).update(
            zone=Zone.NORMAL, is_available=True, unavailable_until=None
        )
        since = timezone.now()
        try:
            event, lead = self._intake(ChannelType.WEB_FORM, payload)
        finally:
            zone, zone_since, available, until = saved
            RepProfile.objects.filter(pk=profile.pk).update(
                zone=zone, zone_since=zone_since, is_available=available, unavailable_until=until
            )
        if lead is None:
            return
        self._backdate(lead, event, moment, since)
        if lead.owner_id == rep.pk:
            self.counts["to_verify"] += 1

    def _backdate(self, lead: Lead, event, moment: datetime, since: datetime) -> None:
        """Move what the intake and the engine stamped now to `moment`."""
        assigned = moment + timedelta(seconds=self.rnd.randint(2, 8))
        InboundEvent.objects.filter(pk=event.pk).update(
            received_at=moment - timedelta(seconds=1), processed_at=moment
        )
        AssignmentDecision.objects.filter(lead=lead, decided_at__gte=since).update(
            decided_at=assigned
        )
        LeadEvent.objects.filter(lead=lead, at__gte=since).exclude(
            kind__in=[LeadEventKind.ASSIGNED]
        ).update(at=moment)
        LeadEvent.objects.filter(lead=lead, at__gte=since, kind=LeadEventKind.ASSIGNED).update(
            at=assigned
        )
        Lead.objects.filter(pk=lead.pk).update(
            created_at=moment, assigned_at=assigned if lead.assigned_at else None
        )
        link = reverse("leads:detail", args=[lead.public_id])
        Notification.objects.filter(link=link, created_at__gte=since).update(created_at=assigned)

    def _ledger(self) -> None:
        """The ledger from the decisions by their day (the story's rule), and each rep's
        last lead received."""
        rebuild_ledger(self.tenant)
        for rep in self.reps.values():
            last = AssignmentDecision.objects.filter(
                chosen=rep, outcome=DecisionOutcome.ASSIGNED
            ).aggregate(at=Max("decided_at"))["at"]
            RepProfile.objects.filter(membership=rep).update(last_assigned_at=last)
