"""The board bench's data (bench/board.py): the tenant's size, the shares and the
vocabulary of the generated rows, and the helpers that make each row deterministic in its
number (lead i, customer j)."""

from __future__ import annotations

import functools
import random
import uuid
import zoneinfo
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as dtime

from words import TRADES

PASSWORD = "bench-pass-2026"  # noqa: S105 — bench-only accounts
SEED = 2026
TZ = zoneinfo.ZoneInfo("Asia/Shanghai")


@dataclass
class Size:
    """The tenant and its size: the full bench's, or a smoke run's (`resize`). Read as
    `SIZE.leads` etc. at the moment of use, so that `resize` reaches every module."""

    slug: str = "bench-board"
    leads: int = 1_000_000
    customers: int = 150_000
    interactions: int = 2_000_000
    chunk: int = 50_000  # leads (and their follow-ups) per COPY transaction
    customer_chunk: int = 50_000


SIZE = Size()

REPS = 200
DAYS = 180
LEAD_PREFIX = "bb-"
CHOSEN_PREFIX = "bb-chosen-"
REPORT_DAYS = 90

# The chosen rep's board: the counts it must show.
CHOSEN_VERIFY = 60
CHOSEN_VERIFY_LATE = 12  # of them past the 24 h clock
CHOSEN_REVISITS = 40
CHOSEN_DUE_TODAY = 60
CHOSEN_OVERDUE = 140
CHOSEN_LATER = 120  # open, due after today: not on the board
CHOSEN_NS = uuid.UUID("6f1c1d5e-2b1f-4a55-9a51-0b0a4d2c2026")

# Shares (of all leads).
P_POOLED = 0.04
P_VALID = 0.68  # of the assigned and verified
P_VALID_SUSPECT = 0.25
P_OPEN_CHAIN = 0.30  # a recent chain's last follow-up is still open
OPEN_WINDOW_DAYS = 14  # … when its due date is at most this many days before the end
P_CUSTOMER_ONLY = 0.10  # a chain logged on the customer, not the lead
K_WEIGHTS = {0: 5, 1: 14, 2: 22, 3: 23, 4: 16, 5: 10, 6: 6, 7: 4}  # follow-ups per valid lead

CHANNELS = [
    ("官网表单", "web_form", "A", 24),
    ("公众号", "wechat_oa", "B", 12),
    ("展会扫码", "trade_show_qr", "A", 12),
    ("抖音线索", "douyin", "B", 18),
    ("企业微信", "wecom", "A", 6),
    ("短信", "sms", "B", 7),
    ("400 热线", "call_center", "A", 11),
    ("导入名单", "import", "C", 10),
]
CITIES = [
    ("宁波", "浙江省", "宁波市"),
    ("苏州", "江苏省", "苏州市"),
    ("深圳", "广东省", "深圳市"),
    ("上海", "上海市", "上海市"),
    ("北京", "北京市", "北京市"),
    ("青岛", "山东省", "青岛市"),
    ("武汉", "湖北省", "武汉市"),
    ("成都", "四川省", "成都市"),
    ("厦门", "福建省", "厦门市"),
    ("天津", "天津市", "天津市"),
    ("郑州", "河南省", "郑州市"),
]
# Two characters each: a pair of brands never reads as another pair.
BRANDS = [
    "恒力",
    "华信",
    "永安",
    "德胜",
    "瑞丰",
    "宏达",
    "鑫源",
    "中科",
    "金桥",
    "远航",
    "天成",
    "东方",
    "博远",
    "长城",
    "联创",
    "海天",
    "银河",
    "嘉禾",
    "万通",
    "正泰",
    "明阳",
    "普瑞",
    "同舟",
    "盛世",
    "凯达",
    "信诚",
    "安泰",
    "华宇",
    "卓越",
    "锦程",
    "百川",
    "恒通",
    "九州",
    "启明",
    "和泰",
    "泰山",
]
INDUSTRIES = ["manufacturing", "energy", "infrastructure", "other", ""]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹"
GIVEN = [
    "伟",
    "芳",
    "娜",
    "敏",
    "静",
    "丽",
    "强",
    "磊",
    "军",
    "洋",
    "勇",
    "艳",
    "杰",
    "娟",
    "涛",
    "明",
    "超",
    "霞",
    "平",
    "刚",
    "建华",
    "文",
    "华",
    "红",
    "志强",
    "海燕",
]
TITLES = ["设备科科长", "采购经理", "总经理", "技术总监", "工程师", "厂长", "主任"]
BUDGETS = ["", "", "", "10万", "30万", "50-100万", "80万", "200万"]
MESSAGES = [
    "想了解一下产品报价和交期。",
    "请尽快联系，我们下周开会定方案。",
    "产线改造需要设备，预算已批。",
    "有没有同行业的案例？",
    "需要技术参数和配置单。",
    "咨询售后维保。",
]
TOUCH_CHANNELS = [("phone", 50), ("wechat", 30), ("visit", 10), ("meeting", 5), ("email", 5)]
ROLES = ["decision_maker", "technical", "user", "purchasing", "finance", "influencer"]
NOTES = [
    "客户在比价，下周再联系",
    "已发送配置单和方案",
    "约了上门演示时间",
    "回复了售后维保问题",
    "客户说要再考虑一下",
    "询问价格多少，准备报价",
    "客户确认预算，安排技术交流",
    "设备科同意试用",
    "对交期有顾虑",
    "",
    "",
]
CONTACT_REASONS = {"空号/停机", "号码错误", "无人接听多次"}


def resize(args) -> None:
    """Smaller sizes for a smoke run (in another tenant: a tenant keeps its first size)."""
    SIZE.slug, SIZE.leads, SIZE.customers, SIZE.interactions = (
        args.tenant,
        args.leads,
        args.customers,
        args.interactions,
    )
    SIZE.chunk = min(SIZE.chunk, SIZE.leads)
    SIZE.customer_chunk = min(SIZE.customer_chunk, SIZE.customers)
    if SIZE.leads % SIZE.chunk or SIZE.interactions * SIZE.chunk % SIZE.leads:
        raise SystemExit("--leads must be a multiple of 50,000 or less than it")


# -- deterministic helpers -------------------------------------------------------------------


def rng(i: int) -> random.Random:
    return random.Random(SEED * 1_000_003 + i)


def weighted(r: random.Random, pairs):
    total = sum(w for _, w in pairs)
    x = r.random() * total
    for value, w in pairs:
        x -= w
        if x < 0:
            return value
    return pairs[-1][0]


def external_id(i: int) -> str:
    return f"{LEAD_PREFIX}{i:07d}"


def customer_name(j: int) -> str:
    city = CITIES[j % len(CITIES)][0]
    rest = j // len(CITIES)
    b1 = BRANDS[rest % len(BRANDS)]
    rest //= len(BRANDS)
    b2 = BRANDS[rest % len(BRANDS)]
    rest //= len(BRANDS)
    return f"{city}{b1}{b2}{TRADES[rest % len(TRADES)]}有限公司"


def contacts_of(j: int) -> int:
    return 1 + (j % 4 == 0) + (j % 12 == 0)


def contact_phone(j: int, k: int) -> str:
    return f"+8617{j * 3 + k:09d}"


def person_name(r: random.Random) -> str:
    return r.choice(SURNAMES) + r.choice(GIVEN)


def customer_owner(j: int) -> int:
    """The rep index owning customer j."""
    return (j * 7 + j // 1000) % REPS


@functools.cache
def company_key(name: str) -> str:
    from crm.normalize import company_key as key

    return key(name)


@functools.lru_cache(maxsize=4096)
def person_key(name: str) -> str:
    from crm.normalize import person_key as key

    return key(name)


def add_working_days(start: date, n: int) -> date:
    from customers.services import add_working_days as add

    return add(start, n)


def local_date(moment: datetime) -> date:
    return moment.astimezone(TZ).date()


def at_local(day: date, hour: float) -> datetime:
    return datetime.combine(day, dtime(0), tzinfo=TZ) + timedelta(hours=hour)
