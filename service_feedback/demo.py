"""The demo tenant's helpdesk tickets (`manage.py seed_demo`, after the leads' and the
opportunities' parts).

The story: the 智齿客服 helpdesk channel of a medical-device distributor (彩超, CT, 内镜,
监护仪) with two months of tickets on the demo customers, through
`service_feedback.services.ticket_upsert` as the intake would deliver them, backdated:

- most tickets match their customer by a contact's phone or e-mail; a few from unknown
  numbers wait unmatched in the queue (the last three days, still open);
- first responses mostly within the 15-minute target, resolutions from an hour to days,
  the recent ones still open; two tickets whose helpdesk clock put the resolution before
  the opening (the report's "data quality" count);
- repeat complaints: one customer's fault coming back within 30 days;
- one open quality cluster: six tickets of one model × fault code × province in the
  last 72 hours;
- upsell (增购/扩容) and referral (推荐/介绍) mentions on customers of reps at work (never
  rep6, who is away), so they reach the reps' boards; two churn-risk tickets.

Idempotent: nothing is added when the helpdesk channel has tickets already.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from django.apps import apps
from django.utils import timezone

from customers.models import Contact
from service_feedback.models import Ticket, TicketStatus
from service_feedback.services import TicketData, ticket_upsert

SEED = 20261215
DAYS = 60
PER_DAY = (2, 6)
CHANNEL_TYPE, CHANNEL_NAME = "helpdesk", "智齿客服"
# Reps at work (rep5 is slow but at work; rep6 is away: leads.demo.tenant.AWAY).
AT_WORK = ("rep1", "rep2", "rep3", "rep4")
AWAY = "rep6"

# product line → (models, [(fault code, what the caller says)])
PRODUCTS = {
    "彩超": (
        ("Resona 7", "DC-80"),
        (("E-201", "探头无图像"), ("E-202", "图像出现条纹干扰"), ("E-215", "开机自检失败")),
    ),
    "CT": (
        ("uCT 530", "Aquilion 64"),
        (("E-305", "球管过热报警"), ("E-318", "扫描床运动受限")),
    ),
    "内镜": (
        ("EG-760R", "CV-290"),
        (("E-410", "图像模糊、白平衡异常"), ("E-422", "测漏失败")),
    ),
    "监护仪": (
        ("BeneVision N17", "iPM 12"),
        (("E-512", "血氧读数跳变"), ("E-520", "无创血压测量失败")),
    ),
}
PROVINCES = ("江苏省", "浙江省", "上海市", "安徽省", "山东省", "广东省")
# The open quality cluster: this model, fault and province, six tickets in 72 hours.
CLUSTER = ("彩超", "Resona 7", "E-201", "江苏省")
CLUSTER_SIZE = 6
# Asked about three times in four weeks by one customer (automation's dry run).
SAME_MODEL = ("CT", "uCT 530")
CALLERS = ("王工", "李主任", "张护士长", "陈医生", "刘工程师", "赵科长", "周老师", "孙技师")
DEPARTMENTS = ("超声科", "放射科", "消化内镜中心", "ICU", "急诊科", "心内科", "设备科")
CLOSINGS = (
    "科室急用，请尽快安排工程师上门。",
    "已按电话指导重启，问题仍在。",
    "上午还能用，下午开始报错。",
    "麻烦确认一下是否在保修期内。",
    "今天有十几个病人排队，请优先处理。",
    "报错截图已上传到工单附件。",
)
UPSELL = (
    "另外，科室明年计划增购两台同型号设备，请销售联系报价。",
    "工作站存储快满了，想了解一下扩容方案和费用。",
    "新院区开业，考虑再增购一套，请安排销售对接。",
)
REFERRAL = (
    "隔壁市妇幼保健院也在选型，我们可以介绍给你们。",
    "你们售后很及时，已推荐给兄弟医院的设备科。",
)
CHURN = (
    "一个月内第三次同样的故障，已向院领导投诉，正在考虑换供应商。",
    "维修一拖再拖，科室很不满意，要求退货处理。",
)
FREE_PHONES = ("13912345601", "13912345602", "13912345603", "13912345604", "13912345605")


def helpdesk_channel(tenant):
    """The demo's helpdesk channel (a leads.Channel, named by the app registry: this app
    does not import leads)."""
    channel_model = apps.get_model("leads", "Channel")
    channel, _created = channel_model.objects.get_or_create(
        tenant=tenant, type=CHANNEL_TYPE, name=CHANNEL_NAME
    )
    return channel


def seed(*, world, stdout) -> None:
    tenant = world.demo
    channel = helpdesk_channel(tenant)
    if Ticket.objects.filter(channel=channel).exists():
        stdout.write("service: demo tickets already there, none added")
        return
    story = _Story(tenant, channel, world)
    story.history()
    story.cluster()
    story.same_model()
    story.mentions()
    story.queue()
    story.clock_errors()
    stdout.write(
        f"service: {story.count} tickets over {DAYS} days on channel {CHANNEL_NAME}, "
        f"{len(FREE_PHONES)} waiting unmatched, one open quality cluster "
        f"({CLUSTER[1]} · {CLUSTER[2]} · {CLUSTER[3]})"
    )


class _Story:
    def __init__(self, tenant, channel, world):
        self.tenant, self.channel = tenant, channel
        self.rnd = random.Random(SEED)  # noqa: S311 — demo data, not secrets
        self.now = timezone.now()
        self.count = 0
        contacts = list(
            Contact.objects.select_related("customer__owner__user")
            .exclude(phone_key="", email="")
            .filter(customer__isnull=False)
            .order_by("id")
        )
        self.contacts = contacts
        self.at_work = [
            c
            for c in contacts
            if c.customer.owner is not None and c.customer.owner.user.username in AT_WORK
        ]
        self.quiet = [
            c
            for c in contacts
            if c.customer.owner is None or c.customer.owner.user.username != AWAY
        ]
        self.world = world

    # -- one ticket ---------------------------------------------------------------------------

    def _ticket(
        self,
        *,
        opened: datetime,
        contact=None,
        phone: str = "",
        line: str | None = None,
        model: str | None = None,
        fault: tuple[str, str] | None = None,
        province: str | None = None,
        extra: str = "",
        resolve: bool | None = None,
        first_minutes: int | None = None,
        clock_error: bool = False,
    ) -> Ticket:
        rnd = self.rnd
        line = line or rnd.choice(list(PRODUCTS))
        models_, faults = PRODUCTS[line]
        model = model or rnd.choice(models_)
        code, what = fault or rnd.choice(faults)
        customer = contact.customer if contact is not None else None
        province = province or (customer.province if customer and customer.province else "")
        province = province or rnd.choice(PROVINCES)
        caller = rnd.choice(CALLERS)
        department = rnd.choice(DEPARTMENTS)
        text = (
            f"{department}{caller}来电：{line}（{model}）{what}，设备报错代码 {code}。"
            f"{rnd.choice(CLOSINGS)}{extra}"
        )
        age = self.now - opened
        if first_minutes is None:
            first_minutes = rnd.choice((2, 4, 6, 8, 9, 11, 12, 14, 18, 25, 45, 120))
        first = opened + timedelta(minutes=first_minutes)
        if first > self.now:
            first = None
        if resolve is None:
            resolve = age > timedelta(days=2) or rnd.random() < 0.3
        resolved = None
        if resolve:
            resolved = opened + timedelta(minutes=rnd.choice((50, 90, 180, 240, 600, 1500, 2900)))
            resolved = resolved if resolved <= self.now else None
        if clock_error:
            resolved = opened - timedelta(hours=rnd.choice((3, 8)))
        if resolved is None:
            status = TicketStatus.OPEN
        elif age > timedelta(days=10):
            status = TicketStatus.CLOSED
        else:
            status = TicketStatus.RESOLVED
        if contact is not None and contact.email and (not contact.phone_key or rnd.random() < 0.2):
            phone_value, email = "", contact.email
        else:
            phone_value, email = (contact.phone_key if contact else phone), ""
        self.count += 1
        data = TicketData(
            external_id=f"ZC{opened:%Y%m%d}{self.count:04d}",
            status=status,
            subject=f"{model} {what}",
            text=text,
            opened_at=opened,
            first_response_at=first,
            resolved_at=resolved,
            requester_name=f"{caller}（{department}）",
            phone=phone_value,
            email=email,
            product_line=line,
            product_model=model,
            fault_code=code,
            province=province,
            city=customer.city if customer else "",
            satisfaction=rnd.choice((3, 4, 4, 5, 5)) if resolved and not clock_error else None,
            nps=rnd.choice((6, 8, 9, 10)) if resolved and not clock_error else None,
        )
        ticket, _created, _flags = ticket_upsert(
            tenant=self.tenant, channel=self.channel, data=data, now=opened
        )
        return ticket

    def _opened(self, days_ago_from: float, days_ago_to: float) -> datetime:
        """An instant between two ages, mostly in the working day (Asia/Shanghai)."""
        tz = self.tenant.tzinfo
        moment = self.now - timedelta(days=self.rnd.uniform(days_ago_to, days_ago_from))
        local = timezone.localtime(moment, tz)
        hour = self.rnd.choice((8, 9, 9, 10, 10, 11, 13, 14, 14, 15, 16, 17, 20))
        local = local.replace(hour=hour, minute=self.rnd.randrange(60))
        return min(local, self.now - timedelta(minutes=30))

    def _known_at(self, moment: datetime) -> list:
        """The contacts whose customer was a customer at `moment` (all of them if none)."""
        return [c for c in self.quiet if c.customer.created_at <= moment] or self.quiet

    # -- the parts of the story ---------------------------------------------------------------

    def history(self) -> None:
        """Two months of everyday tickets on the customers (not the last three days'
        cluster), with one customer's fault coming back within 30 days."""
        if not self.quiet:
            return
        for day in range(DAYS, 0, -1):
            for _n in range(self.rnd.randint(*PER_DAY)):
                opened = self._opened(day, day - 1)
                self._ticket(opened=opened, contact=self.rnd.choice(self._known_at(opened)))
        # Repeat complaints: the same customer's fault again 9 and 20 days later.
        for contact, (line, fault) in zip(
            self._known_at(self.now - timedelta(days=41))[:3],
            (
                ("CT", ("E-305", "球管过热报警")),
                ("内镜", ("E-422", "测漏失败")),
                ("监护仪", ("E-512", "血氧读数跳变")),
            ),
            strict=False,
        ):
            for age in (40, 31, 20):
                self._ticket(
                    opened=self._opened(age, age - 1), contact=contact, line=line, fault=fault
                )

    def cluster(self) -> None:
        """Six tickets of one model, fault and province in the last 72 hours."""
        line, model, code, province = CLUSTER
        what = dict(PRODUCTS[line][1])[code]
        pool = [c for c in self.quiet if c.customer.province == province] or self.quiet
        for i in range(CLUSTER_SIZE):
            contact = pool[i % len(pool)] if pool else None
            opened = self.now - timedelta(hours=64 - i * 11, minutes=self.rnd.randrange(50))
            self._ticket(
                opened=opened,
                contact=contact,
                phone="" if contact else FREE_PHONES[0],
                line=line,
                model=model,
                fault=(code, what),
                province=province,
                resolve=False,
                first_minutes=self.rnd.choice((3, 7, 12)),
            )

    def same_model(self) -> None:
        """One customer asks about the same model three times in the last four weeks (the
        automation preset "same model 3 times in 30 days → the planner", dry-run on the
        demo): a different fault each time, so no quality cluster."""
        pool = self.at_work or self.quiet
        if not pool:
            return
        contact = pool[len(pool) // 2]
        line, model = SAME_MODEL
        for age, fault in zip((24, 11, 2), PRODUCTS[line][1] * 3, strict=False):
            self._ticket(
                opened=self._opened(age, age - 1), contact=contact, line=line, model=model,
                fault=fault,
            )  # fmt: skip

    def mentions(self) -> None:
        """Upsell and referral mentions on customers of reps at work (they reach the
        boards), and two churn risks."""
        pool = self.at_work or self.quiet
        if not pool:
            return
        picks = self.rnd.sample(pool, min(len(pool), len(UPSELL) + len(REFERRAL) + len(CHURN)))
        extras = [*UPSELL, *REFERRAL, *CHURN]
        for contact, extra in zip(picks, extras, strict=False):
            self._ticket(
                opened=self._opened(6, 0.2),
                contact=contact,
                extra=extra,
                resolve=extra in UPSELL or extra in REFERRAL,
            )

    def queue(self) -> None:
        """Tickets from numbers no contact has: unmatched, open, waiting for service."""
        for phone in FREE_PHONES:
            self._ticket(opened=self._opened(3, 0.1), phone=phone, resolve=False)

    def clock_errors(self) -> None:
        """Two tickets whose helpdesk clock put the resolution before the opening."""
        for contact in self.quiet[-2:]:
            self._ticket(opened=self._opened(25, 10), contact=contact, clock_error=True)
