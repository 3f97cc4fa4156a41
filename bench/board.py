"""Board bench (F15, F36): the daily board of a rep with 300 open items, and the
lead-quality report over 90 days, in a tenant of 1,000,000 leads, 200 reps and
2,000,000 follow-ups.

    .venv/bin/python bench/board.py [--requests 50] [--report-requests 30] [--explain]

Fills tenant `bench-board` (idempotent: only what is missing is added) by PostgreSQL
COPY as the tables' owner, in transactions of 50,000 leads each with their follow-ups:

- 200 reps with rep profiles, a manager and a marketing member; 8 channels; the tenant's
  invalid reasons, follow-up presets and status rules (created by the services' defaults);
- 150,000 customers with ~200,000 contacts;
- 1,000,000 leads over 180 days: 63 % verified valid (linked to their customer and
  contact), 33 % invalid with a reason, 4 % in the pool, 0.1 % still open (about 5 per
  rep); 1 in 20 a revisit (of a lead up to ~11 days older, same person and owner), 1 in
  33 suspect; assignment, first and last touch, touch count and verification times
  consistent with each other (the time to verify is log-normal, median ~1.2 h times the
  rep's pace, so a few % take more than 24 h);
- 2,000,000 follow-ups (customers.Interaction) by the leads' owners: chains of 0–12 per
  valid lead (10 % on the customer only), each closed by the next one; the last one is
  left open for 30 % of the chains whose due date is at most 14 days before the end
  (1.5 % of all, ~150 per rep, due dates spread around today), closed otherwise.

One rep (`bench-board-rep001`, the *chosen* rep) has no open item from the bulk data and
gets exactly 300 on top (realigned to today on every run): 60 leads to verify (12 past
their 24 h clock), 40 revisits to verify, 200 follow-ups due (60 today, 140 overdue), and
120 follow-ups due later (not on the board). Then the lead-quality roll-ups of every day
missing or changed (`leads.reports.rollups.cover`, what the beat jobs do), `VACUUM (ANALYZE)`,
and the figures:

- `board`: `/board/` as the chosen rep, as the manager with `?rep=<uuid>`, and as
  another rep (`rep002`, the bulk data's share of items: the query count must match);
- `report`: `/reports/lead-quality/` over the last 90 days as the manager, read from the
  roll-ups; `report_default_range` (30 days); `report_recent_days_live` with change marks
  on the last three days (counted live); `report_without_rollups` with every day marked
  (all live), after which the days are rolled up again.

Pages not there yet are skipped with a message. JSON on stdout; see bench/README.md
("Board and lead-quality report").
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import random
import time
import uuid
import zoneinfo
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime

import common
from common import emit, explain, log, measure, prepare_database, setup_django
from words import TRADES

SLUG = "bench-board"
PASSWORD = "bench-pass-2026"  # noqa: S105 — bench-only accounts
SEED = 2026
TZ = zoneinfo.ZoneInfo("Asia/Shanghai")

LEADS = 1_000_000
REPS = 200
CUSTOMERS = 150_000
INTERACTIONS = 2_000_000
DAYS = 180
CHUNK = 50_000  # leads (and their follow-ups) per COPY transaction
CUSTOMER_CHUNK = 50_000
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


# -- COPY ------------------------------------------------------------------------------------


class Table:
    """The columns a COPY writes, checked against the model: every NOT NULL column (but
    an identity `id` left out on purpose) must be written, or the load would fail late."""

    def __init__(self, model, columns: list[str], *, with_id: bool = False):
        self.name = model._meta.db_table
        self.columns = (["id"] if with_id else []) + columns
        known = {f.column for f in model._meta.concrete_fields}
        unknown = set(self.columns) - known
        if unknown:
            raise RuntimeError(f"{self.name}: no such columns {sorted(unknown)}")
        required = {
            f.column for f in model._meta.concrete_fields if not f.null and not f.primary_key
        }
        missing = required - set(self.columns)
        if missing:
            raise RuntimeError(f"{self.name}: NOT NULL columns not written: {sorted(missing)}")
        self.index = {c: n for n, c in enumerate(self.columns)}

    def sql(self) -> str:
        return f"COPY {self.name} ({', '.join(self.columns)}) FROM STDIN"


def copy_rows(cursor, table: Table, rows) -> int:
    n = 0
    with cursor.copy(table.sql()) as copy:
        for row in rows:
            copy.write_row(row)
            n += 1
    return n


def reserve_ids(cursor, table: str, n: int) -> int:
    """The first of `n` consecutive ids taken from the table's identity sequence."""
    cursor.execute(
        "SELECT setval(pg_get_serial_sequence(%s, 'id'), "
        "nextval(pg_get_serial_sequence(%s, 'id')) + %s - 1)",
        [table, table, n],
    )
    return cursor.fetchone()[0] - n + 1


def owner_transaction(tenant):
    """A transaction on the owner connection with the tenant's RLS setting (harmless for a
    superuser, needed for an owner without BYPASSRLS: the tables FORCE row security)."""
    from contextlib import contextmanager

    from django.db import connections, transaction

    @contextmanager
    def scope():
        with transaction.atomic(using="owner"), connections["owner"].cursor() as cursor:
            cursor.execute("SELECT set_config('app.tenant_id', %s, true)", [str(tenant.pk)])
            yield cursor

    return scope()


# -- people and catalogue --------------------------------------------------------------------


def ensure_people(tenant):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password

    from crm.models import Membership, Role
    from crm.tenancy import tenant_context
    from leads.models import RepProfile

    User = get_user_model()
    password = make_password(PASSWORD)
    seats = [(f"{SLUG}-rep{n:03d}", Role.REP) for n in range(1, REPS + 1)]
    seats += [(f"{SLUG}-manager", Role.MANAGER), (f"{SLUG}-marketing", Role.MARKETING)]
    names = [u for u, _ in seats]
    existing = set(User.objects.filter(username__in=names).values_list("username", flat=True))
    User.objects.bulk_create(
        [
            User(
                username=u,
                password=password,
                first_name=u.rsplit("-", 1)[-1],
                last_name=SURNAMES[n % len(SURNAMES)],
            )
            for n, (u, _) in enumerate(seats)
            if u not in existing
        ]
    )
    users = dict(User.objects.filter(username__in=names).values_list("username", "id"))
    seated = set(
        Membership.objects.in_tenant(tenant)
        .filter(user_id__in=users.values())
        .values_list("user_id", flat=True)
    )
    Membership.objects.bulk_create(
        [
            Membership(tenant=tenant, user_id=users[u], role=role)
            for u, role in seats
            if users[u] not in seated
        ]
    )
    members = {
        m.user.username: m
        for m in Membership.objects.in_tenant(tenant)
        .filter(user_id__in=users.values())
        .select_related("user", "tenant")
    }
    reps = [members[u] for u, role in seats if role == Role.REP]
    r = random.Random(SEED)
    with tenant_context(tenant):
        have = set(RepProfile.objects.values_list("membership_id", flat=True))
        RepProfile.objects.bulk_create(
            [
                RepProfile(
                    tenant=tenant,
                    membership=m,
                    industries=r.sample(INDUSTRIES[:4], r.choice([1, 2])),
                    provinces=[c[1] for c in r.sample(CITIES, r.choice([1, 2, 3]))],
                    response_tier=r.choice(["fast", "normal", "normal", "slow"]),
                    capacity=r.choice([None, None, None, 10, 12]),
                )
                for m in reps
                if m.pk not in have
            ]
        )
    return reps, members[f"{SLUG}-manager"], members[f"{SLUG}-marketing"]


def ensure_catalogue(tenant) -> dict:
    """Channels, and the tenant's pick lists as the services create them by default."""
    from crm.tenancy import tenant_context
    from customers.models import PresetKind
    from customers.services import presets, status_suggestions
    from leads.models import Channel
    from leads.verification import invalid_reasons

    with tenant_context(tenant):
        channels = []
        for name, kind, grade, weight in CHANNELS:
            channel = Channel.objects.filter(name=name).first() or Channel.objects.create(
                tenant=tenant, name=name, type=kind, default_grade=grade
            )
            channels.append((channel.pk, grade, weight))
        reasons = [(r.pk, r.name) for r in invalid_reasons()]
        tags = [(p.name, p.is_agreement) for p in presets(PresetKind.TALK_TAG)]
        pains = [p.name for p in presets(PresetKind.PAIN)]
        actions = [p.pk for p in presets(PresetKind.ACTION)]
        rules = [(s.keyword, s.status) for s in status_suggestions()]
    return {
        "channels": channels,
        "reasons": reasons,
        "talk_tags": tags,
        "pains": pains,
        "actions": actions,
        "rules": rules,
    }


# -- customers and contacts ------------------------------------------------------------------


def customer_rows(tenant, reps, start, c0: int, c1: int, first: int):
    """Customers c0 … c1 - 1, with ids from `first` on."""
    for j in range(c0, c1):
        r = rng(10_000_000 + j)
        name = customer_name(j)
        _short, province, city = CITIES[j % len(CITIES)]
        yield (
            first + j - c0,
            tenant.pk,
            uuid.uuid4(),
            name,
            company_key(name),
            weighted(r, [("A", 10), ("B", 30), ("C", 60)]),
            r.choice(INDUSTRIES),
            province,
            city,
            reps[customer_owner(j)].pk,
            start + timedelta(seconds=r.uniform(0, 3600)),
        )


def contact_rows(tenant, start, c0: int, c1: int, first: int):
    """The contacts of customers c0 … c1 - 1 (1 to 3 each)."""
    for j in range(c0, c1):
        r = rng(20_000_000 + j)
        for k in range(contacts_of(j)):
            phone = contact_phone(j, k)
            yield (
                tenant.pk,
                uuid.uuid4(),
                first + j - c0,
                person_name(r),
                phone,
                phone,
                "",
                r.choice(TITLES),
                r.choice(["", *ROLES]),
                start + timedelta(seconds=r.uniform(0, 3600)),
            )


def fill_customers(tenant, reps, start: datetime) -> dict:
    """150,000 customers with their contacts (COPY); returns the seconds and rows made."""
    from customers.models import Contact, Customer

    customers = Table(
        Customer,
        [
            "tenant_id",
            "public_id",
            "name",
            "name_key",
            "level",
            "industry",
            "province",
            "city",
            "owner_id",
            "created_at",
        ],
        with_id=True,
    )
    contacts = Table(
        Contact,
        [
            "tenant_id",
            "public_id",
            "customer_id",
            "name",
            "phone",
            "phone_key",
            "email",
            "title",
            "role",
            "created_at",
        ],
    )
    markers = {
        customer_name(min(c + CUSTOMER_CHUNK, CUSTOMERS) - 1): c
        for c in range(0, CUSTOMERS, CUSTOMER_CHUNK)
    }
    made = {"customers": 0, "contacts": 0}
    with owner_transaction(tenant) as cursor:
        cursor.execute(
            "SELECT name FROM customers_customer WHERE tenant_id = %s AND name_key = ANY(%s)",
            [tenant.pk, [company_key(n) for n in markers]],
        )
        present = {markers[row[0]] for row in cursor.fetchall()}
    for c0 in range(0, CUSTOMERS, CUSTOMER_CHUNK):
        if c0 in present:
            continue
        c1 = min(c0 + CUSTOMER_CHUNK, CUSTOMERS)
        with owner_transaction(tenant) as cursor:
            first = reserve_ids(cursor, "customers_customer", c1 - c0)

            made["customers"] += copy_rows(
                cursor, customers, customer_rows(tenant, reps, start, c0, c1, first)
            )
            made["contacts"] += copy_rows(
                cursor, contacts, contact_rows(tenant, start, c0, c1, first)
            )
        log(f"  customers {c1}/{CUSTOMERS}")
    return made


def customer_maps(tenant) -> tuple[list[int], dict[str, int], list[str]]:
    """Customer j → id, contact phone → id, customer j → level."""
    with owner_transaction(tenant) as cursor:
        cursor.execute(
            "SELECT name_key, id, level FROM customers_customer WHERE tenant_id = %s",
            [tenant.pk],
        )
        by_key = {key: (pk, level) for key, pk, level in cursor.fetchall()}
        cursor.execute(
            "SELECT phone_key, id FROM customers_contact WHERE tenant_id = %s AND phone_key "
            "LIKE '+8617%%'",
            [tenant.pk],
        )
        contacts = dict(cursor.fetchall())
    ids, levels = [], []
    for j in range(CUSTOMERS):
        pk, level = by_key[company_key(customer_name(j))]
        ids.append(pk)
        levels.append(level)
    return ids, contacts, levels


# -- leads and follow-ups --------------------------------------------------------------------


class Plan:
    """Lead i, deterministic in i: who it is (`identity`), what became of it, its times."""

    def __init__(self, start: datetime, end: datetime, reps, catalogue, chosen_index: int):
        self.start, self.end = start, end
        self.step = (end - start) / LEADS
        self.reps = reps
        self.cat = catalogue
        self.chosen = chosen_index
        self.channel_pairs = [((pk, grade), w) for pk, grade, w in catalogue["channels"]]
        self.reason_pairs = [
            ((pk, name), 3 if name in CONTACT_REASONS else (4 if name == "重复咨询" else 2))
            for pk, name in catalogue["reasons"]
        ]
        self.duplicate_reason = next(
            ((pk, name) for pk, name in catalogue["reasons"] if name == "重复咨询"),
            catalogue["reasons"][0],
        )
        # Each rep's pace: a multiplier of the time to verify (0.5 quick … 3 slow).
        r = random.Random(SEED + 7)
        self.pace = [r.choice([0.5, 0.8, 1, 1, 1, 1.3, 1.6, 2.2, 3]) for _ in range(REPS)]

    @staticmethod
    def original_of(i: int) -> int | None:
        """Lead i is a revisit (1 in 20) of an earlier lead within ~11 days."""
        if i % 20 != 11 or i < 70_000:
            return None
        return i - 50 - (i * 7919) % 60_000

    def identity(self, i: int) -> dict:
        """Who lead i is: a customer's contact (for a valid lead) or anyone, and its owner."""
        r = rng(i)
        roll = r.random()
        suspect = r.random() < 1 / 33
        pooled = roll < P_POOLED
        valid = not pooled and r.random() < (P_VALID_SUSPECT if suspect else P_VALID)
        if valid:
            j = r.randrange(CUSTOMERS)
            k = r.randrange(contacts_of(j))
            owner = customer_owner(j) if r.random() < 0.88 else r.randrange(REPS)
            person = {
                "customer": j,
                "contact": k,
                "phone": contact_phone(j, k),
                "company": customer_name(j),
            }
        else:
            short, _p, _c = r.choice(CITIES)
            company = f"{short}{r.choice(BRANDS)}{r.choice(BRANDS)}{r.choice(TRADES)}有限公司"
            person = {
                "customer": None,
                "contact": None,
                "phone": f"+8613{i:09d}",
                "company": company,
            }
            owner = None if pooled else r.randrange(REPS)
        person["name"] = person_name(r)
        return {
            "r": r,
            "pooled": pooled,
            "valid": valid,
            "suspect": suspect,
            "owner": owner,
            **person,
        }

    def build(self, i: int, lead_id: int, cmap, tenant_id: int):
        """(the lead's row values by column, its follow-ups' timeline) — see fill_leads."""
        me = self.identity(i)
        r = me["r"]
        original = self.original_of(i)
        if original is not None:
            first = self.identity(original)
            keep = {k: first[k] for k in ("customer", "contact", "phone", "company", "name")}
            me.update(keep)
            me["owner"] = first["owner"] if first["owner"] is not None else me["owner"]
            me["pooled"] = me["owner"] is None
            me["valid"] = first["valid"] and not me["pooled"] and r.random() < 0.6
        jitter = timedelta(seconds=r.uniform(0, 10)) if i else timedelta(0)
        created = min(self.start + self.step * i + jitter, self.end - timedelta(minutes=1))
        channel, grade = weighted(r, self.channel_pairs)
        if r.random() < 0.25:
            grade = r.choice("ABC")
        _short, province, city = CITIES[(me["customer"] or i) % len(CITIES)]
        row = {
            "id": lead_id,
            "tenant_id": tenant_id,
            "public_id": uuid.UUID(int=r.getrandbits(128), version=4),
            "company": me["company"],
            "contact_name": me["name"],
            "phone": me["phone"],
            "industry": r.choice(INDUSTRIES),
            "message": r.choice(MESSAGES),
            "industry_remark": "",
            "email": "",
            "title": r.choice(TITLES),
            "province": province,
            "city": city,
            "budget": r.choice(BUDGETS),
            "external_id": external_id(i),
            "utm": '{"utm_source": "baidu"}' if r.random() < 0.2 else "{}",
            "channel_id": channel,
            "source_grade": grade,
            "status": "new",
            "owner_id": None,
            "is_suspect": me["suspect"],
            "suspect_reasons": '[{"code": "test_entry"}]' if me["suspect"] else "[]",
            "intake_issues": "[]",
            "registry_status": "",
            "phone_key": me["phone"],
            "company_key": company_key(me["company"]),
            "contact_key": person_key(me["name"]),
            "created_at": created,
            "score": r.randint(30, 95),
            "dispatch_round": 0,
            "pool_reason": "",
            "touch_count": 0,
            "verification": "",
        }
        chain = None
        if me["pooled"]:
            row.update(pooled_at=created + timedelta(minutes=20), pool_reason="no_candidate")
            return row, chain
        rep = me["owner"]
        assigned = created + timedelta(seconds=r.uniform(2, 8))
        row.update(
            owner_id=self.reps[rep].pk, assigned_at=assigned, dispatch_round=1, status="assigned"
        )
        delay = timedelta(hours=min(r.lognormvariate(math.log(1.2 * self.pace[rep]), 1.4), 24 * 10))
        age = self.end - assigned
        if delay >= age and rep == self.chosen:
            delay = age * r.uniform(0.3, 0.9)  # the chosen rep's open items come later
        early_touch = r.random() < 0.3
        first_touch = assigned + (delay * r.uniform(0.2, 0.9) if early_touch else delay)
        if delay >= age:  # still open at the end
            if first_touch < self.end:
                row.update(
                    first_touch_at=first_touch,
                    last_touch_at=first_touch,
                    touch_count=1,
                    first_touch_late=first_touch - assigned > timedelta(hours=24),
                )
            return row, chain
        verified = assigned + delay
        row.update(
            verified_at=verified,
            verified_by_id=self.reps[rep].pk,
            first_touch_at=first_touch,
            last_touch_at=verified,
            touch_count=2 if early_touch else 1,
            first_touch_late=first_touch - assigned > timedelta(hours=24),
        )
        if not me["valid"]:
            if original is not None and r.random() < 0.8:
                reason = self.duplicate_reason
            else:
                reason = weighted(r, self.reason_pairs)
            row.update(
                status="invalid",
                invalid_reason_id=reason[0],
                verification="invalid_contact"
                if reason[1] in CONTACT_REASONS
                else "invalid_not_target",
            )
            return row, chain
        customer_ids, contact_ids, _levels = cmap
        row.update(
            status="valid",
            verification="valid_visit" if r.random() < 0.4 else "valid_more_info",
            customer_id=customer_ids[me["customer"]],
            contact_id=contact_ids[me["phone"]],
        )
        chain = {
            "k": weighted(r, list(K_WEIGHTS.items())),
            "seed": SEED * 7_000_003 + i,  # distinct per lead: so are the uuids drawn
            "rep": rep,
            "on_lead": r.random() >= P_CUSTOMER_ONLY,
        }
        return row, chain

    def follow_ups(self, row: dict, chain: dict, tenant_id: int):
        """The chain's follow-ups as Interaction values; updates the lead's touches."""
        r = random.Random(chain["seed"])
        k = chain["k"]
        if k == 0:
            return []
        verified = row["verified_at"]
        works = [r.choice([1, 1, 2, 2, 3, 3, 3, 5, 7]) for _ in range(k)]
        roll = r.random()
        first_gap = (
            timedelta(minutes=r.uniform(10, 24 * 60))
            if roll < 0.7
            else timedelta(days=r.uniform(1, 3))
            if roll < 0.9
            else timedelta(days=r.uniform(3, 10))
        )
        gaps = [first_gap] + [
            timedelta(days=w * 1.4 * r.uniform(0.6, 1.3), hours=r.uniform(-3, 3))
            for w in works[:-1]
        ]
        gaps = [max(g, timedelta(minutes=5)) for g in gaps]
        room = self.end - verified - timedelta(minutes=5)
        total = sum(gaps, timedelta())
        if total > room:
            scale = max(room, timedelta(0)) / total
            gaps = [g * scale for g in gaps]
        moments = []
        at = verified
        for g in gaps:
            at = at + g
            moments.append(at)
        by = self.reps[chain["rep"]].pk
        lead_id = row["id"] if chain["on_lead"] else None
        out = []
        end_day = local_date(self.end)
        tags, pains, actions, rules = (
            self.cat["talk_tags"],
            self.cat["pains"],
            self.cat["actions"],
            self.cat["rules"],
        )
        for n, (at, w) in enumerate(zip(moments, works, strict=True)):
            due = add_working_days(local_date(at), w)
            if n < k - 1:
                done = moments[n + 1]
            elif (
                chain["rep"] != self.chosen
                and due >= end_day - timedelta(days=OPEN_WINDOW_DAYS)
                and r.random() < P_OPEN_CHAIN
            ):
                done = None
            else:
                done = min(
                    self.end, max(at + timedelta(hours=1), at_local(due, r.uniform(-30, 20)))
                )
            picked = r.sample(tags, r.choice([0, 1, 1, 2])) if tags else []
            note = r.choice(NOTES)
            out.append(
                (
                    tenant_id,
                    uuid.UUID(int=r.getrandbits(128), version=4),
                    row["customer_id"],
                    lead_id,
                    row["contact_id"],
                    by,
                    at,
                    weighted(r, TOUCH_CHANNELS),
                    json.dumps([t for t, _a in picked], ensure_ascii=False),
                    json.dumps(
                        r.sample(pains, r.choice([0, 0, 1, 2])) if pains else [], ensure_ascii=False
                    ),
                    json.dumps(r.sample(ROLES, r.choice([0, 1, 1, 2]))),
                    note,
                    r.choice(actions),
                    due,
                    done,
                    next((s for kw, s in rules if kw in note), ""),
                    any(a for _t, a in picked)
                    or any(wd in note for wd in ("确认", "同意", "安排")),
                    "follow_up",
                )
            )
        if lead_id is not None:
            row["touch_count"] += len(out)
            row["last_touch_at"] = max(row["last_touch_at"], moments[-1])
        return out


LEAD_COLUMNS = [
    "id",
    "tenant_id",
    "public_id",
    "company",
    "contact_name",
    "phone",
    "industry",
    "message",
    "industry_remark",
    "email",
    "title",
    "province",
    "city",
    "budget",
    "external_id",
    "utm",
    "channel_id",
    "source_grade",
    "status",
    "owner_id",
    "is_suspect",
    "suspect_reasons",
    "intake_issues",
    "registry_status",
    "phone_key",
    "company_key",
    "contact_key",
    "created_at",
    "score",
    "assigned_at",
    "dispatch_round",
    "pooled_at",
    "pool_reason",
    "first_touch_at",
    "last_touch_at",
    "touch_count",
    "first_touch_late",
    "verified_at",
    "verification",
    "invalid_reason_id",
    "verified_by_id",
    "customer_id",
    "contact_id",
    "revisit_of_id",
]
INTERACTION_COLUMNS = [
    "tenant_id",
    "public_id",
    "customer_id",
    "lead_id",
    "contact_id",
    "by_id",
    "at",
    "channel",
    "talk_tags",
    "pains",
    "roles",
    "note",
    "next_action_id",
    "next_action_due",
    "next_done_at",
    "suggested_status",
    "closes_loop",
    "kind",
]


def lead_window(tenant) -> tuple[datetime, datetime]:
    """[start, end): a first run ends the window now; later runs keep the first run's
    window (lead 0's arrival marks its start), so they add exactly what is missing."""
    from django.utils import timezone

    with owner_transaction(tenant) as cursor:
        cursor.execute(
            "SELECT created_at FROM leads_lead WHERE tenant_id = %s AND external_id = %s",
            [tenant.pk, external_id(0)],
        )
        found = cursor.fetchone()
    if found:
        return found[0], found[0] + timedelta(days=DAYS)  # lead 0 arrives at the start
    end = timezone.now().replace(microsecond=0)
    return end - timedelta(days=DAYS), end


def fill_leads(tenant, plan: Plan, cmap) -> dict:
    from customers.models import Interaction
    from leads.models import Lead

    leads_table = Table(Lead, LEAD_COLUMNS[1:], with_id=True)
    interactions_table = Table(Interaction, INTERACTION_COLUMNS)
    chunks = list(range(0, LEADS, CHUNK))
    markers = {external_id(min(c + CHUNK, LEADS) - 1): c for c in chunks}
    with owner_transaction(tenant) as cursor:
        cursor.execute(
            "SELECT external_id FROM leads_lead WHERE tenant_id = %s AND external_id = ANY(%s)",
            [tenant.pk, list(markers)],
        )
        present = {markers[row[0]] for row in cursor.fetchall()}
    first_ids = chunk_first_ids(tenant)
    made = Counter()
    per_chunk = INTERACTIONS * CHUNK // LEADS
    for c0 in chunks:
        if c0 in present:
            continue
        c1 = min(c0 + CHUNK, LEADS)
        started = time.perf_counter()
        with owner_transaction(tenant) as cursor:
            first = first_ids[c0] = reserve_ids(cursor, "leads_lead", c1 - c0)
            built = [plan.build(i, first + i - c0, cmap, tenant.pk) for i in range(c0, c1)]
            for i, (row, _chain) in enumerate(built, start=c0):
                original = Plan.original_of(i)
                if original is not None:
                    row["revisit_of_id"] = lead_id(first_ids, original)
            # Exactly `per_chunk` follow-ups: the chunk's own draw adds or removes some.
            chains = [c for _row, c in built if c is not None]
            adjust = random.Random(SEED + c0)
            total = sum(c["k"] for c in chains)
            while total != per_chunk and chains:
                c = adjust.choice(chains)
                if total < per_chunk and c["k"] < 12:
                    c["k"] += 1
                    total += 1
                elif total > per_chunk and c["k"] > 0:
                    c["k"] -= 1
                    total -= 1
            interactions = []
            for row, chain in built:
                if chain is not None:
                    interactions.extend(plan.follow_ups(row, chain, tenant.pk))
            generated = time.perf_counter()
            made["leads"] += copy_rows(
                cursor,
                leads_table,
                (tuple(row.get(col) for col in leads_table.columns) for row, _c in built),
            )
            made["interactions"] += copy_rows(cursor, interactions_table, interactions)
        made["chunks"] += 1
        log(
            f"  leads {c1}/{LEADS}: {c1 - c0} leads, {len(interactions)} follow-ups in "
            f"{time.perf_counter() - started:.1f} s (generating {generated - started:.1f} s)"
        )
        for row, _c in built:
            made[row["status"]] += 1
    return dict(made)


def chunk_first_ids(tenant) -> dict[int, int]:
    """The id of each loaded chunk's first lead: a chunk's ids are consecutive (one
    reserved range, one COPY), so lead i's id is its chunk's first plus its offset."""
    firsts = {external_id(c): c for c in range(0, LEADS, CHUNK)}
    with owner_transaction(tenant) as cursor:
        cursor.execute(
            "SELECT external_id, id FROM leads_lead WHERE tenant_id = %s AND external_id = ANY(%s)",
            [tenant.pk, list(firsts)],
        )
        return {firsts[ext]: pk for ext, pk in cursor.fetchall()}


def lead_id(first_ids: dict[int, int], i: int) -> int:
    c0 = i - i % CHUNK
    return first_ids[c0] + i - c0


def analyze() -> None:
    """Statistics after a bulk load, before anything joins the new rows (without them the
    planner takes the tenant's million leads for one row and nests loops over them)."""
    from django.db import connections

    with connections["owner"].cursor() as cursor:
        cursor.execute(
            "ANALYZE leads_lead, customers_customer, customers_contact, customers_interaction"
        )


def link_revisits_and_firsts(tenant) -> dict:
    """Revisits point at their original (set at load already; this completes leads loaded
    by an earlier version), and each customer's first lead and creation time come from
    its earliest valid lead. Idempotent."""
    first_ids = chunk_first_ids(tenant)
    pairs = [
        (lead_id(first_ids, i), lead_id(first_ids, o))
        for i in range(LEADS)
        if (o := Plan.original_of(i)) is not None
    ]
    with owner_transaction(tenant) as cursor:
        cursor.execute(
            """
            UPDATE leads_lead AS l SET revisit_of_id = v.original
            FROM unnest(%s::bigint[], %s::bigint[]) AS v(id, original)
            WHERE l.id = v.id AND l.tenant_id = %s AND l.revisit_of_id IS NULL
            """,
            [[p[0] for p in pairs], [p[1] for p in pairs], tenant.pk],
        )
        revisits = cursor.rowcount
        cursor.execute(
            """
            UPDATE customers_customer AS c SET source_lead_id = f.lead_id,
                created_at = f.verified_at
            FROM (
                SELECT DISTINCT ON (customer_id) customer_id, id AS lead_id, verified_at
                FROM leads_lead WHERE tenant_id = %s AND customer_id IS NOT NULL
                ORDER BY customer_id, verified_at, id
            ) AS f
            WHERE c.id = f.customer_id AND c.tenant_id = %s AND c.source_lead_id IS NULL
            """,
            [tenant.pk, tenant.pk],
        )
        firsts = cursor.rowcount
        cursor.execute(
            "UPDATE customers_contact AS k SET created_at = c.created_at "
            "FROM customers_customer AS c WHERE k.customer_id = c.id AND k.tenant_id = %s "
            "AND k.created_at < c.created_at",
            [tenant.pk],
        )
    return {"revisits_linked": revisits, "customers_first_lead_set": firsts}


# -- the chosen rep's 300 items --------------------------------------------------------------


def chosen_items(tenant, chosen, plan: Plan, catalogue, now: datetime) -> dict:
    """Create (when missing) and realign to `now` the chosen rep's open items."""
    from django.db.models import Q

    from crm.tenancy import tenant_context
    from customers.models import Interaction
    from leads.models import Lead

    today = local_date(now)
    r = random.Random(SEED + 300)
    with tenant_context(tenant):
        # Originals for the revisits and leads for the follow-ups: the rep's valid leads.
        own_valid = list(
            Lead.objects.filter(owner=chosen, status="valid", customer__isnull=False)
            .exclude(external_id__startswith=CHOSEN_PREFIX)
            .order_by("-verified_at", "-id")
            .values_list("id", "customer_id", "contact_id", "company", "contact_name", "phone")[
                : CHOSEN_DUE_TODAY + CHOSEN_OVERDUE + CHOSEN_LATER + CHOSEN_REVISITS
            ]
        )
        if len(own_valid) < CHOSEN_REVISITS + 1:
            raise RuntimeError("the chosen rep has too few valid leads for their items")
        present = set(
            Lead.objects.filter(external_id__startswith=CHOSEN_PREFIX).values_list(
                "external_id", flat=True
            )
        )
        channel = catalogue["channels"][0][0]
        new = []
        specs = []  # (external id, age, revisit of)
        for n in range(CHOSEN_VERIFY):
            late = n < CHOSEN_VERIFY_LATE
            age = timedelta(hours=r.uniform(25, 60) if late else r.uniform(0.2, 23))
            specs.append((f"{CHOSEN_PREFIX}verify-{n:03d}", age, None))
        for n in range(CHOSEN_REVISITS):
            age = timedelta(hours=r.uniform(0.5, 40))
            specs.append((f"{CHOSEN_PREFIX}revisit-{n:03d}", age, own_valid[n]))
        for ext, _age, original in specs:
            if ext in present:
                continue
            n = int(ext.rsplit("-", 1)[1])
            if original is None:
                company, contact, phone = customer_name(n), person_name(r), f"+8615{n:09d}"
            else:
                company, contact, phone = original[3], original[4], original[5]
            new.append(
                Lead(
                    tenant=tenant,
                    company=company,
                    contact_name=contact,
                    phone=phone,
                    phone_key=phone,
                    company_key=company_key(company),
                    contact_key=person_key(contact),
                    message=MESSAGES[n % len(MESSAGES)],
                    channel_id=channel,
                    source_grade="ABC"[n % 3],
                    external_id=ext,
                    owner=chosen,
                    status="assigned",
                    dispatch_round=1,
                    score=60,
                    revisit_of_id=original[0] if original else None,
                )
            )
        Lead.objects.bulk_create(new)
        by_ext = {
            lead.external_id: lead
            for lead in Lead.objects.filter(external_id__startswith=CHOSEN_PREFIX)
        }
        for ext, age, _original in specs:
            lead = by_ext[ext]
            lead.created_at = now - age
            lead.assigned_at = lead.created_at + timedelta(seconds=5)
            lead.status, lead.verification, lead.owner = "assigned", "", chosen
            lead.verified_at = lead.first_touch_at = lead.last_touch_at = None
            lead.touch_count = 0
        Lead.objects.bulk_update(
            [by_ext[s[0]] for s in specs],
            [
                "created_at",
                "assigned_at",
                "status",
                "verification",
                "owner",
                "verified_at",
                "first_touch_at",
                "last_touch_at",
                "touch_count",
            ],
        )

        # Follow-ups: 60 due today, 140 overdue, 120 due later.
        fu_specs = []
        sources = own_valid[CHOSEN_REVISITS:] or own_valid
        for n in range(CHOSEN_DUE_TODAY + CHOSEN_OVERDUE + CHOSEN_LATER):
            if n < CHOSEN_DUE_TODAY:
                due = today
            elif n < CHOSEN_DUE_TODAY + CHOSEN_OVERDUE:
                due = today - timedelta(days=1 + (n * 7) % 15)
            else:
                due = today + timedelta(days=1 + n % 10)
            fu_specs.append(
                (uuid.uuid5(CHOSEN_NS, f"follow-up-{n}"), due, sources[n % len(sources)])
            )
        have = set(
            Interaction.objects.filter(public_id__in=[s[0] for s in fu_specs]).values_list(
                "public_id", flat=True
            )
        )
        Interaction.objects.bulk_create(
            [
                Interaction(
                    tenant=tenant,
                    public_id=pid,
                    customer_id=src[1],
                    lead_id=src[0],
                    contact_id=src[2],
                    by=chosen,
                    at=now,
                    channel="phone",
                    talk_tags=[],
                    pains=[],
                    roles=[],
                    note=NOTES[n % len(NOTES)],
                    next_action_id=catalogue["actions"][n % len(catalogue["actions"])],
                    next_action_due=due,
                )
                for n, (pid, due, src) in enumerate(fu_specs)
                if pid not in have
            ]
        )
        rows = {
            i.public_id: i
            for i in Interaction.objects.filter(public_id__in=[s[0] for s in fu_specs])
        }
        for pid, due, _src in fu_specs:
            row = rows[pid]
            row.next_action_due = due
            row.at = min(now - timedelta(minutes=5), at_local(due - timedelta(days=3), 10.5))
            row.next_done_at = None
        Interaction.objects.bulk_update(
            list(rows.values()), ["next_action_due", "at", "next_done_at"]
        )
        # Nothing else of the chosen rep's may be open (a bulk re-run never opens any).
        stray_leads = (
            Lead.objects.filter(owner=chosen, status="assigned", verification="")
            .exclude(external_id__startswith=CHOSEN_PREFIX)
            .count()
        )
        stray_follow_ups = (
            Interaction.objects.filter(by=chosen, next_done_at__isnull=True)
            .exclude(public_id__in=[s[0] for s in fu_specs])
            .count()
        )
        composition = {
            "to_verify": Lead.objects.filter(
                owner=chosen, status="assigned", verification="", revisit_of__isnull=True
            ).count(),
            "to_verify_past_24h": Lead.objects.filter(
                owner=chosen,
                status="assigned",
                verification="",
                revisit_of__isnull=True,
                assigned_at__lt=now - timedelta(hours=24),
            ).count(),
            "revisits": Lead.objects.filter(
                owner=chosen, status="assigned", verification="", revisit_of__isnull=False
            ).count(),
            "follow_ups_due_today": Interaction.objects.filter(
                by=chosen, next_done_at__isnull=True, next_action_due=today
            ).count(),
            "follow_ups_overdue": Interaction.objects.filter(
                by=chosen, next_done_at__isnull=True, next_action_due__lt=today
            ).count(),
            "follow_ups_later": Interaction.objects.filter(
                Q(next_action_due__gt=today), by=chosen, next_done_at__isnull=True
            ).count(),
            "stray_open_leads": stray_leads,
            "stray_open_follow_ups": stray_follow_ups,
        }
    composition["board_items"] = (
        composition["to_verify"]
        + composition["revisits"]
        + composition["follow_ups_due_today"]
        + composition["follow_ups_overdue"]
    )
    return composition


# What the bulk load wrote, vacuumed and analysed before measuring.
TABLES = (
    "leads_lead",
    "customers_customer",
    "customers_contact",
    "customers_interaction",
    "customers_preset",
    "leads_invalidreason",
    "leads_channel",
    "leads_repprofile",
    "crm_membership",
    "auth_user",
    "leads_reportday",
    "leads_reportchange",
    "leads_qualityday",
    "leads_qualityrepday",
)


def vacuum_analyze() -> float:
    started = time.perf_counter()
    common.vacuum_analyze(*TABLES)
    return time.perf_counter() - started


def roll_up(tenant, *, mark_days=None) -> int:
    """`leads.reports.rollups.cover` (what the nightly job does, then the 5-minute refresh), or,
    with `mark_days`, only write change marks for every hour of those local days, as if
    their leads had just changed: the report then counts them live until the next run."""
    from crm.tenancy import tenant_context
    from leads.models import ReportChange
    from leads.reports import rollups

    with tenant_context(tenant):
        if mark_days is None:
            return rollups.cover(tenant)
        marks = []
        for day in mark_days:
            start = datetime.combine(day, dtime.min, tzinfo=TZ).astimezone(UTC)
            marks += [
                ReportChange(tenant=tenant, hour=start + timedelta(hours=h)) for h in range(24)
            ]
        ReportChange.objects.bulk_create(marks)
        return len(mark_days)


# -- measuring --------------------------------------------------------------------------------


def _page_exists(name: str) -> bool:
    from django.urls import NoReverseMatch, reverse

    try:
        reverse(name)
    except NoReverseMatch:
        return False
    return True


def _with_explain(result: dict, tenant, keep: bool) -> dict:
    if not keep:
        return result
    result["explain"] = [
        {"sql": q["sql"], "ms": q["ms"], "plan": explain(q["sql"], tenant=tenant)}
        for q in sorted(result.pop("sql"), key=lambda q: -q["ms"])[:5]
        if q["sql"].lstrip().upper().startswith("SELECT") and "set_config(" not in q["sql"]
    ]
    return result


def board_counts(tenant, member) -> dict | None:
    """The board's own count of the member's items (None without leads.board.ranking.board_for)."""
    from crm.tenancy import tenant_context

    try:
        from leads.board.ranking import board_for
    except ImportError:
        return None
    with tenant_context(tenant):
        return board_for(member).counts


def measure_pages(args, tenant, chosen, other, manager) -> dict:
    from django.urls import reverse

    pages = {}
    if _page_exists("board:board"):
        path = reverse("board:board")
        log(f"measuring board: {path} as {chosen.user.username}")
        pages["board"] = _with_explain(
            measure(
                path, membership=chosen, n=args.requests, warmup=args.warmup, keep_sql=args.explain
            ),
            tenant,
            args.explain,
        )
        log(f"measuring board_as_manager: {path}?rep=… as {manager.user.username}")
        pages["board_as_manager"] = _with_explain(
            measure(
                path,
                membership=manager,
                n=args.requests,
                warmup=args.warmup,
                params={"rep": str(chosen.public_id)},
                keep_sql=args.explain,
            ),
            tenant,
            args.explain,
        )
        # Another rep, with the bulk data's share of open items: the same query count.
        log(f"measuring board_other_rep: {path} as {other.user.username}")
        pages["board_other_rep"] = measure(path, membership=other, n=20, warmup=2)
        for label, member in (("board", chosen), ("board_other_rep", other)):
            pages[label]["items"] = board_counts(tenant, member)
    else:
        log("skipped: the board (URL board:board) does not exist yet")
        pages["board"] = {"skipped": "board:board not found"}
    if _page_exists("lead_reports:lead_quality"):
        path = reverse("lead_reports:lead_quality")
        today = local_date(datetime.now(UTC))
        params = {
            "created_from": (today - timedelta(days=REPORT_DAYS - 1)).isoformat(),
            "created_to": today.isoformat(),
        }
        log(f"measuring report: {path} {params} as {manager.user.username}")
        pages["report"] = _with_explain(
            measure(
                path,
                membership=manager,
                n=args.report_requests,
                warmup=2,
                params=params,
                keep_sql=args.explain,
            ),
            tenant,
            args.explain,
        )
        # The page's default range (the last 30 days), for comparison.
        log(f"measuring report_default_range: {path} as {manager.user.username}")
        pages["report_default_range"] = measure(
            path, membership=manager, n=max(5, args.report_requests // 2), warmup=2
        )
        # Leads of the last three days changed since the last roll-up (as during a working
        # day: today's arrive, yesterday's are verified and followed up): counted live.
        recent = [today - timedelta(days=i) for i in range(3)]
        roll_up(tenant, mark_days=recent)
        log(f"measuring report_recent_days_live: {path} {params}, {recent} live")
        pages["report_recent_days_live"] = measure(
            path, membership=manager, n=args.report_requests, warmup=2, params=params
        )
        # Without roll-ups (every day marked): the live count alone, for comparison.
        every = [today - timedelta(days=i) for i in range(REPORT_DAYS)]
        roll_up(tenant, mark_days=every)
        log(f"measuring report_without_rollups: {path} {params}, all live")
        pages["report_without_rollups"] = measure(
            path, membership=manager, n=3, warmup=1, params=params
        )
        t = time.perf_counter()
        days = roll_up(tenant)
        pages["report_without_rollups"]["refresh_after"] = {
            "days": days,
            "seconds": round(time.perf_counter() - t, 2),
        }
    else:
        log("skipped: the lead-quality report (URL lead_reports:lead_quality) does not exist")
        pages["report"] = {"skipped": "lead_reports:lead_quality not found"}
    return pages


def _resize(args) -> None:
    """Smaller sizes for a smoke run (in another tenant: a tenant keeps its first size)."""
    global SLUG, LEADS, CUSTOMERS, INTERACTIONS, CHUNK, CUSTOMER_CHUNK
    SLUG, LEADS, CUSTOMERS, INTERACTIONS = (
        args.tenant,
        args.leads,
        args.customers,
        args.interactions,
    )
    CHUNK = min(CHUNK, LEADS)
    CUSTOMER_CHUNK = min(CUSTOMER_CHUNK, CUSTOMERS)
    if LEADS % CHUNK or INTERACTIONS * CHUNK % LEADS:
        raise SystemExit("--leads must be a multiple of 50,000 or less than it")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=50, help="timed board requests")
    parser.add_argument("--report-requests", type=int, default=30, help="timed report requests")
    parser.add_argument("--warmup", type=int, default=5, help="untimed requests per page")
    parser.add_argument(
        "--explain",
        action="store_true",
        help="add EXPLAIN ANALYZE of each page's 5 slowest SELECTs",
    )
    parser.add_argument("--no-measure", action="store_true", help="generate only")
    parser.add_argument("--tenant", default=SLUG, help=f"tenant slug (default {SLUG})")
    parser.add_argument("--leads", type=int, default=LEADS, help="leads (a smoke run: fewer)")
    parser.add_argument("--customers", type=int, default=CUSTOMERS)
    parser.add_argument("--interactions", type=int, default=INTERACTIONS)
    args = parser.parse_args()
    _resize(args)

    setup_django()
    prepare_database()

    from django.utils import timezone

    from crm.models import Tenant
    from crm.tenancy import tenant_context
    from customers.models import Customer, Interaction
    from leads.models import Lead

    phases = {}
    t0 = time.perf_counter()
    tenant, _ = Tenant.objects.get_or_create(
        slug=SLUG, defaults={"name": "Bench 工作台", "timezone": "Asia/Shanghai"}
    )
    with tenant_context(tenant):  # memberships are row-level secured too
        reps, manager, _marketing = ensure_people(tenant)
    catalogue = ensure_catalogue(tenant)
    phases["people_and_catalogue_s"] = round(time.perf_counter() - t0, 2)

    start, end = lead_window(tenant)
    log(f"window {start:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M} UTC")
    t = time.perf_counter()
    made = fill_customers(tenant, reps, start)
    phases["customers_s"] = round(time.perf_counter() - t, 2)

    t = time.perf_counter()
    cmap = customer_maps(tenant)
    plan = Plan(start, end, reps, catalogue, chosen_index=0)
    made |= fill_leads(tenant, plan, cmap)
    phases["leads_and_follow_ups_s"] = round(time.perf_counter() - t, 2)

    t = time.perf_counter()
    analyze()
    phases["analyze_s"] = round(time.perf_counter() - t, 2)
    t = time.perf_counter()
    made |= link_revisits_and_firsts(tenant)
    phases["links_s"] = round(time.perf_counter() - t, 2)

    t = time.perf_counter()
    chosen = reps[0]
    composition = chosen_items(tenant, chosen, plan, catalogue, timezone.now())
    phases["chosen_rep_s"] = round(time.perf_counter() - t, 2)
    # What the beat jobs do: roll up every day with leads that has no roll-up yet or has
    # changed (on the first run all 180 days; afterwards the chosen rep's realigned days).
    t = time.perf_counter()
    phases["rollup_days"] = roll_up(tenant)
    phases["rollup_s"] = round(time.perf_counter() - t, 2)
    phases["vacuum_analyze_s"] = round(vacuum_analyze(), 2)
    phases["total_s"] = round(time.perf_counter() - t0, 2)
    log(f"phases: {phases}")
    log(f"chosen rep {chosen.user.username}: {composition}")

    with tenant_context(tenant):
        rows = {
            "leads": Lead.objects.count(),
            "customers": Customer.objects.count(),
            "interactions": Interaction.objects.count(),
            "open_interactions": Interaction.objects.filter(next_done_at__isnull=True).count(),
            "reps": len(reps),
        }
        by_status = dict(Counter(Lead.objects.values_list("status", flat=True).iterator()))
    rows["by_status"] = by_status
    log(f"rows: {rows}")

    pages = {} if args.no_measure else measure_pages(args, tenant, chosen, reps[1], manager)
    emit(
        {
            "bench": "board",
            "tenant": SLUG,
            "generation": {"phases": phases, "made": made},
            "rows": rows,
            "chosen_rep": {
                "username": chosen.user.username,
                "membership": str(chosen.public_id),
                **composition,
            },
            "targets": {
                "board_p95_ms_max": 150,
                "report_p95_ms_max": 500,
                "queries_constant": True,
            },
            "pages": pages,
        }
    )


if __name__ == "__main__":
    main()
