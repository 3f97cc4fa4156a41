"""The demo tenant's customer health (`manage.py seed_demo`, after the helpdesk tickets).

Six months of what the demo customers did, then a snapshot for every one of the last 180
days, scored by the real recompute (health.compute) day after day in order, so that the
risk list fills and empties as it would have night after night.

- The tenant's competitor keywords are the medical-imaging vendors a distributor of
  Mindray and United Imaging equipment competes with (西门子, 飞利浦, GE医疗, …), and its
  playbook has a step for the weakest dimensions that matter most.
- The customers of earlier years (the opportunities' history) get six months of
  follow-ups, tracked document and quote links, web visits and searches, by pattern:
  *healthy* (follow-ups every week, manuals downloaded, quotes opened, no competitor
  search), *steady* (a follow-up every few weeks, some quotes left unopened, a competitor
  searched now and then), *slipping* (follow-ups stop one to two months ago, the last
  quotes are never opened, competitor searches rise week after week: on the risk list
  now) and *recovered* (went quiet four to five months ago while searching a competitor,
  entered the risk list, came back: the entry left, its retention task done).
- The customers of the last two weeks' leads get what a new customer does: visits, a
  manual sent (most download it), some a quote, a few a competitor search.

Signals are written as the tracking endpoint and the tracked links record them (links
resolve by token, visits and searches by the contact's e-mail or the customer code).
Idempotent: when the tenant has signals already nothing is added; only the days not
scored yet (a demo loaded on an earlier day) are scored up to today.
"""

from __future__ import annotations

import random
import time as clock
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from crm import events
from customers.models import Contact, Customer, Interaction, PresetKind
from customers.services import presets
from health import compute
from health.models import (
    DEFAULT_PLAYBOOK,
    HealthSettings,
    LinkKind,
    PlaybookStep,
    ResolvedBy,
    RiskEntry,
    Signal,
    SignalKind,
    TrackedLink,
)

SEED = 20261203
DAYS = 180
AWAY = "rep6"  # on leave for the last days (leads.demo): logs nothing lately
COMPETITORS = ("西门子", "飞利浦", "GE医疗", "开立", "佳能医疗")
PLAYBOOK = {
    "": DEFAULT_PLAYBOOK,
    "recency": "本周内上门拜访 + 设备使用情况回访",
    "competitor": "定制化技术方案 + 限时服务响应承诺",
    "quotes": "电话解读报价 + 限时商务优惠",
    "service": "服务经理牵头复盘工单 + 限时服务响应承诺",
}
HEALTHY, STEADY, SLIPPING, RECOVERED, NEW = "healthy", "steady", "slipping", "recovered", "new"
# The customers of earlier years, newest first: the first three are the ones whose
# opportunity stalled weeks ago (opportunities.demo), slipping too.
OLD_PATTERNS = (
    SLIPPING, SLIPPING, SLIPPING, HEALTHY, RECOVERED, STEADY, HEALTHY, SLIPPING, RECOVERED,
    HEALTHY, STEADY, SLIPPING, HEALTHY, RECOVERED, STEADY, HEALTHY, STEADY, HEALTHY,
)  # fmt: skip
DOCUMENTS = (
    ("Resona 7 彩超产品手册", "https://docs.demo.invalid/resona7-brochure.pdf"),
    ("uCT 530 CT 技术白皮书", "https://docs.demo.invalid/uct530-whitepaper.pdf"),
    ("BeneVision 监护仪临床案例集", "https://docs.demo.invalid/benevision-cases.pdf"),
    ("内镜维保服务方案", "https://docs.demo.invalid/endoscope-service-plan.pdf"),
    ("设备以旧换新政策", "https://docs.demo.invalid/trade-in-2026.pdf"),
)
QUOTES = ("彩超采购报价单", "CT 球管更换报价", "监护仪扩容报价", "年度维保续约报价")
PAGES = (
    "https://www.demo.invalid/products/ultrasound",
    "https://www.demo.invalid/products/ct",
    "https://www.demo.invalid/products/monitoring",
    "https://www.demo.invalid/service",
    "https://www.demo.invalid/cases",
)
SEARCHES = ("彩超 探头 维修", "CT 球管 寿命", "监护仪 血氧 校准", "内镜 测漏 方法")
COMPETITOR_SEARCHES = ("{} 彩超 报价", "{} CT 价格", "{} 监护仪 参数对比", "{} 售后 服务 评价")


@dataclass
class _Plan:
    """One customer's story: its pattern, the contact its signals come from, and how far
    back (days) anything of it can be (since it became a customer, at most DAYS)."""

    customer: Customer
    contact: Contact | None
    pattern: str
    since: float  # the oldest age anything happens at


def seed(*, world, stdout) -> None:
    tenant = world.demo
    started = clock.monotonic()
    settings = HealthSettings.for_tenant(tenant)
    if Signal.objects.exists():
        days = _score_days(tenant, settings)
        stdout.write(f"health: demo signals already there, none added; {days} day(s) scored")
        return
    settings.competitor_keywords = "\n".join(COMPETITORS)
    settings.save(update_fields=["competitor_keywords", "updated_at"])
    _playbook(tenant)
    story = _Story(tenant)
    story.write()
    loaded = clock.monotonic() - started
    days = _score_days(tenant, settings, first=story.today - timedelta(days=DAYS - 1))
    _tasks_done(story)
    open_entries = RiskEntry.objects.filter(left_on__isnull=True).count()
    stdout.write(
        f"health: {story.signals} signals, {story.links} tracked links and "
        f"{story.interactions} follow-ups over {DAYS} days on {len(story.plans)} customers "
        f"({loaded:.1f} s); {days} days scored, {open_entries} on the risk list "
        f"({clock.monotonic() - started:.1f} s in all)"
    )


def _playbook(tenant) -> None:
    if PlaybookStep.objects.exists():
        return
    PlaybookStep.objects.bulk_create(
        PlaybookStep(tenant=tenant, dimension=dimension, action=action)
        for dimension, action in PLAYBOOK.items()
    )


def _score_days(tenant, settings: HealthSettings, first=None) -> int:
    """Score every day from `first` (else the day after the last one scored) to today, in
    order, each as the night after it would have: the risk list moves as it did."""
    today = compute.local_today(tenant)
    if first is None:
        if settings.computed_on is None:
            first = today - timedelta(days=DAYS - 1)
        else:
            first = max(settings.computed_on + timedelta(days=1), today - timedelta(days=DAYS - 1))
    day, scored = first, 0
    while day <= today:
        now = timezone.now() if day == today else compute.as_of(tenant, day) + timedelta(hours=2)
        compute.recompute(tenant, day=day, now=now, settings=settings)
        # The night's new stays get their task from the tenant's rule (automation), as
        # the outbox drain would hand them over after that night's run.
        while events.process_pending():
            pass
        day += timedelta(days=1)
        scored += 1
    return scored


def _tasks_done(story: _Story) -> None:
    """The owners did the retention task of every stay that is over, a few days in."""
    stays = RiskEntry.objects.filter(
        left_on__isnull=False, done_at__isnull=True, task_at__isnull=False
    )
    for entry in stays:
        days = max(0, min(story.rnd.randint(2, 6), (entry.left_on - entry.entered_on).days))
        done = compute.as_of(story.tenant, entry.entered_on) + timedelta(days=days, hours=15)
        RiskEntry.objects.filter(pk=entry.pk).update(done_at=done, done_by=entry.owner_id)


class _Story:
    def __init__(self, tenant):
        self.tenant = tenant
        self.rnd = random.Random(SEED)  # noqa: S311 — demo data, not secrets
        self.now = timezone.now()
        self.today = compute.local_today(tenant, self.now)
        self.action = presets(PresetKind.ACTION).first()
        self.signals = self.links = self.interactions = 0
        self._signals: list[Signal] = []
        self._links: list[TrackedLink] = []
        self._interactions: list[Interaction] = []
        self.plans = self._plans()

    def _plans(self) -> list[_Plan]:
        contacts: dict[int, Contact] = {}
        for contact in Contact.objects.filter(customer__isnull=False).order_by("id"):
            contacts.setdefault(contact.customer_id, contact)
        customers = list(
            Customer.objects.select_related("owner__user").order_by("-created_at", "id")
        )
        horizon = self.now - timedelta(days=DAYS)
        old = [c for c in customers if c.created_at <= horizon]
        new = [c for c in customers if c.created_at > horizon]
        plans = [
            _Plan(c, contacts.get(c.pk), OLD_PATTERNS[i % len(OLD_PATTERNS)], DAYS)
            for i, c in enumerate(old)
        ]
        plans += [
            _Plan(c, contacts.get(c.pk), NEW, (self.now - c.created_at).total_seconds() / 86400)
            for c in new
        ]
        return plans

    # -- writing ------------------------------------------------------------------------------

    def write(self) -> None:
        for plan in self.plans:
            getattr(self, f"_{plan.pattern}")(plan)
        TrackedLink.objects.bulk_create(self._links, batch_size=2000)  # ids for the opens
        Signal.objects.bulk_create(self._signals, batch_size=2000)
        Interaction.objects.bulk_create(self._interactions, batch_size=2000)
        self.signals, self.links = len(self._signals), len(self._links)
        self.interactions = len(self._interactions)

    def _at(self, age: float) -> datetime:
        """An instant `age` days ago, in the working day (Asia/Shanghai), never ahead."""
        moment = self.now - timedelta(days=age)
        local = timezone.localtime(moment, self.tenant.tzinfo)
        hour = self.rnd.choice((9, 9, 10, 10, 11, 13, 14, 14, 15, 16, 17, 19))
        local = local.replace(hour=hour, minute=self.rnd.randrange(60), second=0, microsecond=0)
        return min(local, self.now - timedelta(minutes=self.rnd.randrange(20, 240)))

    def _follow_ups(self, plan: _Plan, ages) -> None:
        """Done follow-ups by the customer's owner at the given ages (none in the last
        days by a rep on leave), each closing the one before."""
        owner = plan.customer.owner
        if owner is None or self.action is None:
            return
        away = owner.user.username == AWAY
        moments = sorted(
            {self._at(age) for age in ages if age < plan.since and not (away and age < 4)}
        )
        for at, following in zip(moments, [*moments[1:], None], strict=True):
            done = following or min(at + timedelta(days=1), self.now)
            self._interactions.append(
                Interaction(
                    tenant=self.tenant,
                    customer=plan.customer,
                    contact=plan.contact,
                    by=owner,
                    at=at,
                    channel=self.rnd.choice(("phone", "phone", "wechat", "visit", "email")),
                    note=self.rnd.choice(
                        ("设备使用回访", "科室需求沟通", "维保续约跟进", "新品介绍")
                    ),
                    next_action=self.action,
                    next_action_due=timezone.localtime(at, self.tenant.tzinfo).date()
                    + timedelta(days=7),
                    next_done_at=done,
                )
            )

    def _signal(self, plan: _Plan, kind: str, age: float, **fields) -> None:
        if age >= plan.since:
            return
        contact = plan.contact
        by = ResolvedBy.EMAIL if contact is not None and contact.email else ResolvedBy.CODE
        at = self._at(age)
        self._signals.append(
            Signal(
                tenant=self.tenant,
                customer=plan.customer,
                contact=contact,
                kind=kind,
                at=at,
                received_at=at,
                resolved_by=fields.pop("resolved_by", by),
                **fields,
            )
        )

    def _link(self, plan: _Plan, kind: str, age: float, opened_after: list[float]) -> None:
        """A tracked link sent `age` days ago, opened after each of `opened_after` days
        (a download or a quote opened each time)."""
        if age >= plan.since:
            return
        title, url = (
            self.rnd.choice(DOCUMENTS)
            if kind == LinkKind.DOCUMENT
            else (self.rnd.choice(QUOTES), "https://quotes.demo.invalid/q.pdf")
        )
        sent = self._at(age)
        opens = sorted(
            sent + timedelta(days=after, hours=self.rnd.randint(1, 6))
            for after in opened_after
            if age - after > 0.2
        )
        link = TrackedLink(
            tenant=self.tenant,
            customer=plan.customer,
            contact=plan.contact,
            kind=kind,
            title=title,
            target_url=url,
            created_by=plan.customer.owner,
            sent_at=sent,
            first_opened_at=opens[0] if opens else None,
            open_count=len(opens),
        )
        self._links.append(link)
        signal_kind = SignalKind.DOWNLOAD if kind == LinkKind.DOCUMENT else SignalKind.QUOTE_OPEN
        for at in opens:
            self._signals.append(
                Signal(
                    tenant=self.tenant,
                    customer=plan.customer,
                    contact=plan.contact,
                    link=link,
                    kind=signal_kind,
                    at=at,
                    received_at=at,
                    resolved_by=ResolvedBy.TOKEN,
                    url=url,
                )
            )

    def _visits(self, plan: _Plan, ages) -> None:
        for age in ages:
            self._signal(plan, SignalKind.VISIT, age, url=self.rnd.choice(PAGES))

    def _searches(self, plan: _Plan, ages) -> None:
        for age in ages:
            self._signal(plan, SignalKind.SEARCH, age, query=self.rnd.choice(SEARCHES))

    def _competitor(self, plan: _Plan, ages) -> None:
        for age in ages:
            name = self.rnd.choice(COMPETITORS)
            query = self.rnd.choice(COMPETITOR_SEARCHES).format(name)
            self._signal(plan, SignalKind.COMPETITOR_SEARCH, age, query=query, competitor=name)

    def _every(self, start: float, stop: float, low: float, high: float) -> list[float]:
        """Ages from `start` down to `stop` days ago, `low`–`high` days apart."""
        ages, age = [], start - self.rnd.uniform(0, high)
        while age > stop:
            ages.append(age)
            age -= self.rnd.uniform(low, high)
        return ages

    # -- the patterns -------------------------------------------------------------------------

    def _healthy(self, plan: _Plan) -> None:
        self._follow_ups(plan, self._every(DAYS, 0.3, 4, 8))
        self._visits(plan, self._every(DAYS, 0.5, 3, 9))
        self._searches(plan, self._every(DAYS, 1, 20, 40))
        for age in self._every(DAYS, 2, 25, 35):
            self._link(plan, LinkKind.DOCUMENT, age, [0.2, 1, 6][: self.rnd.randint(1, 3)])
        for age in self._every(DAYS, 3, 35, 50):
            self._link(plan, LinkKind.QUOTE, age, [self.rnd.uniform(0.1, 2)])

    def _steady(self, plan: _Plan) -> None:
        self._follow_ups(plan, self._every(DAYS, 2, 12, 24))
        self._visits(plan, self._every(DAYS, 2, 8, 20))
        for age in self._every(DAYS, 5, 50, 70):
            self._link(plan, LinkKind.DOCUMENT, age, [1] if self.rnd.random() < 0.6 else [])
        for age in self._every(DAYS, 5, 30, 45):
            opened = [self.rnd.uniform(1, 5)] if self.rnd.random() < 0.5 else []
            self._link(plan, LinkKind.QUOTE, age, opened)
        self._competitor(plan, self.rnd.sample(range(5, DAYS), 3))

    def _slipping(self, plan: _Plan) -> None:
        """Weekly until one to two months ago, then nothing; nothing downloaded in the last
        three months and no quote of the last six opened (the dimensions' windows); competitor
        searches rising over the last ten weeks. Below the risk score even where an
        opportunity's follow-ups of the last weeks keep recency and frequency up."""
        stop = self.rnd.uniform(38, 70)
        self._follow_ups(plan, self._every(DAYS, stop, 5, 9))
        self._visits(plan, self._every(DAYS, stop + 10, 4, 8))
        self._visits(plan, self._every(stop, 1, 15, 25))
        for age in self._every(DAYS, stop + 15, 25, 35):
            self._link(plan, LinkKind.DOCUMENT, age, [0.5] if age > 92 else [])
        for age in self._every(DAYS, stop + 20, 35, 45):
            self._link(plan, LinkKind.QUOTE, age, [self.rnd.uniform(0.1, 2)] if age > 185 else [])
        for age in (stop + self.rnd.uniform(0, 5), stop - self.rnd.uniform(5, 15)):
            self._link(plan, LinkKind.QUOTE, age, [])
        rising = [a for a in range(70, 0, -1) if self.rnd.random() < 0.03 + 0.3 * (70 - a) / 70]
        self._competitor(plan, rising)

    def _recovered(self, plan: _Plan) -> None:
        """Went quiet four to five months ago, searching a competitor meanwhile; back in
        the last three months."""
        quiet_from, quiet_to = self.rnd.uniform(145, 160), self.rnd.uniform(95, 105)
        ages = [a for a in self._every(DAYS, 0.5, 5, 9) if not quiet_to < a < quiet_from]
        self._follow_ups(plan, ages)
        self._visits(
            plan, [a for a in self._every(DAYS, 1, 4, 10) if not quiet_to < a < quiet_from]
        )
        self._competitor(plan, self._every(quiet_from - 5, quiet_to + 3, 2, 5))
        for age in (quiet_from + 10, quiet_from - 10):
            self._link(plan, LinkKind.QUOTE, age, [] if age < quiet_from else [1])
        for age in self._every(quiet_to - 2, 3, 20, 30):
            self._link(plan, LinkKind.DOCUMENT, age, [0.5, 2])
            self._link(plan, LinkKind.QUOTE, age - 3, [self.rnd.uniform(0.1, 1)])

    def _new(self, plan: _Plan) -> None:
        """A customer of the last weeks: visits, a manual, maybe a quote, a few searches
        of a competitor."""
        if plan.since < 0.5:
            return
        rnd = self.rnd
        self._visits(plan, [rnd.uniform(0.1, plan.since) for _ in range(rnd.randint(0, 5))])
        if rnd.random() < 0.75:
            self._link(
                plan,
                LinkKind.DOCUMENT,
                rnd.uniform(0.2, plan.since),
                [0.3] if rnd.random() < 0.7 else [],
            )
        if rnd.random() < 0.4:
            self._link(
                plan,
                LinkKind.QUOTE,
                rnd.uniform(0.2, plan.since),
                [1] if rnd.random() < 0.5 else [],
            )
        if rnd.random() < 0.2:
            self._competitor(plan, [rnd.uniform(0.1, plan.since) for _ in range(rnd.randint(1, 6))])
