"""The demo tenant's lead-intake and assignment part (`python manage.py seed_demo` runs it in
the demo tenant's context): a channel of every type, tags and tagging rules, six reps with
their profiles, and about 300 leads of the last 14 days, some of them revisits and some
suspect, plus a few failed inbox events.

Leads go through the real pipeline (`inbound_event_receive`, then `inbound_event_process`
at once, so no worker is needed; the messages queued on commit then find nothing to do),
in chronological order so that originals come before their revisits. The pipeline also
assigns each lead with the real engine (leads/assignment/engine.py). It stamps "now": right after
each lead, its times are moved to when it arrived (created, decided, timeline, notices).

The reps' work is interleaved in time order with the arrivals: touches on the real path
(`leads.assignment.zones.lead_record_touch`, so first-touch streaks and zones are real) and
verifications. The story (docs/assignment.md):
- rep1 is the senior (share 1.5), rep4 has a smaller cap (6); regions, industries and
  product lines differ (华东, 华南, 华北, 西南);
- version 2 of the policy is published a week ago; the draft holds a pending change, for
  the replay page's "simulate";
- rep5 answers a day late from four days ago: three late first touches in a row put them in
  the observation zone (paused from dispatch, training card on the home page);
- rep6 is away for the last three days ("unavailable" in those decisions) and until a date;
- leads older than 30 hours are verified (valid or invalid), younger ones still open;
- during the team meeting of the last hour (the reps present marked away) a lead waits
  and, retried with the optional criteria dropped, is pooled; another one still waits;
  the manager reassigns one lead by hand;
- the ledger is rebuilt from the decisions by their day, and the SLA sweep runs once:
  reminders for leads untouched after 24 hours, and valid leads verified on the first
  call whose next step is more than 72 hours past go back to the pool and on to another
  rep, their verdict kept;
- every rep present ends with room below their cap (their open load, docs/assignment.md),
  so new leads spread.

Idempotent: channels, tags, rules and rep profiles are created when missing; leads (and
the whole story) only when the tenant has none. Deterministic content
(random.Random(2026), stdlib only: Faker is a dev extra and the Docker image's seed runs
without it); the times follow today's date and the engine's tie-breaks are its own draws.
"""

from __future__ import annotations

import heapq
import json
import random
from collections import Counter, defaultdict
from datetime import timedelta

from django.db.models import Count, F, Max, Q
from django.urls import reverse
from django.utils import timezone

from crm import normalize
from crm.models import AuditEvent, Notification
from leads.assignment import sla
from leads.assignment.dispatch import dispatch_due, lead_reassign
from leads.assignment.engine import OK
from leads.assignment.policy import policy_active, policy_draft, policy_publish
from leads.assignment.reps import open_loads
from leads.assignment.zones import lead_record_touch, record_first_touch
from leads.demo import board as demo_board
from leads.intake.services import inbound_event_process, inbound_event_receive
from leads.messages import intake_message
from leads.models import (
    AssignmentDecision,
    AssignmentPolicy,
    Channel,
    ChannelType,
    ContactMethod,
    CyclePreference,
    DecisionKind,
    DecisionOutcome,
    EventSource,
    EventStatus,
    InboundEvent,
    Industry,
    Lead,
    LeadEvent,
    LeadStatus,
    MappingPreset,
    PolicyStatus,
    RepLedgerDay,
    RepProfile,
    ResponseTier,
    SourceGrade,
    Tag,
    TaggingRule,
    Zone,
)
from leads.verification import lead_verify

LEAD_COUNT = 300
DAYS = 14
SEED = 2026

# name, type, grade, preset, channel tags
CHANNELS = [
    ("官网表单", ChannelType.WEB_FORM, SourceGrade.A, MappingPreset.NONE, []),
    ("公众号菜单", ChannelType.WECHAT_OA, SourceGrade.B, MappingPreset.NONE, []),
    ("2026 上海医疗器械展", ChannelType.TRADE_SHOW_QR, SourceGrade.A, MappingPreset.NONE, ["展会"]),
    ("抖音线索广告", ChannelType.DOUYIN, SourceGrade.B, MappingPreset.DOUYIN, []),
    ("企业微信客户", ChannelType.WECOM, SourceGrade.A, MappingPreset.WECOM, []),
    ("短信咨询", ChannelType.SMS, SourceGrade.B, MappingPreset.SMS, []),
    ("400 客服热线", ChannelType.CALL_CENTER, SourceGrade.A, MappingPreset.CALL_CENTER, []),
    ("Excel/CSV 导入", ChannelType.IMPORT, SourceGrade.C, MappingPreset.NONE, []),
]
# Placeholders of WeCom's lengths: corp ID 18, token ≤ 32, EncodingAESKey exactly 43.
WECOM_CORP_ID = "ww0a1b2c3d4e5f6a7b"
WECOM_TOKEN = "DemoToken2026PlaceholderOnly0000"  # noqa: S105 — a placeholder
WECOM_AES_KEY = "DemoEncodingAESKeyPlaceholder0123456789abcd"

TAGS = [("紧急", "danger"), ("影像设备", "info"), ("招标", "warning"), ("展会", "primary")]
RULES = [
    ("紧急", "急需,招标,替换老型号"),
    ("影像设备", "DR,CT,MRI,超声"),
    ("招标", "招标,投标,采购公告"),
]

# Share of each channel in the leads (sums to 1).
CHANNEL_WEIGHTS = {
    ChannelType.WEB_FORM: 0.24,
    ChannelType.WECHAT_OA: 0.12,
    ChannelType.TRADE_SHOW_QR: 0.12,
    ChannelType.DOUYIN: 0.18,
    ChannelType.WECOM: 0.06,
    ChannelType.SMS: 0.07,
    ChannelType.CALL_CENTER: 0.11,
    ChannelType.IMPORT: 0.10,
}
SOURCES = {
    ChannelType.WEB_FORM: EventSource.FORM,
    ChannelType.TRADE_SHOW_QR: EventSource.FORM,
    ChannelType.WECOM: EventSource.WECOM,
    ChannelType.IMPORT: EventSource.IMPORT,
}


def _words(text: str) -> list[str]:
    return text.split()


SURNAMES = (
    "王王王李李李张张张刘刘陈陈杨杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹"
    "彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦方白邹孟"
    "熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严武戴孔汤"
)
GIVEN = _words(
    "伟 芳 娜 秀英 敏 静 丽 强 磊 军 洋 勇 艳 杰 娟 涛 明 超 秀兰 霞 平 刚 建华 文 华 红 "
    "玉兰 志强 海燕 晓东 丹 萍 鹏 辉 宇 浩 婷 雪 琳 晨 佳 欣怡 建国 国强 卫东 春梅 立新 "
    "海涛 振华 晓燕 俊杰 子豪 雨桐 思远 慧敏 德明 永刚 红梅 文博"
)
HONORIFICS = ["工", "主任", "科长", "经理", "院长", "老师"]
TITLES = [
    "设备科科长",
    "设备科工程师",
    "医学工程部主任",
    "放射科主任",
    "超声科主任",
    "检验科主任",
    "采购主管",
    "采购经理",
    "院长助理",
    "总经理",
    "销售总监",
    "招标代理项目经理",
]
BRANDS = _words(
    "康泰 华康 瑞康 仁和 同德 众康 博远 安瑞 德益 恒生 惠民 益康 康宁 嘉禾 明德 济世 "
    "仁济 康达 华信 永安 金桥 天元 卓越 鼎盛 长青 普瑞 迈康 鑫源 宏图 亿嘉"
)
HOSPITAL_KINDS = [
    "第一人民医院",
    "第二人民医院",
    "中心医院",
    "中医院",
    "妇幼保健院",
    "人民医院",
    "口腔医院",
    "肿瘤医院",
    "骨科医院",
    "第三人民医院",
]
EQUIPMENT = [
    "DR",
    "移动DR",
    "64排CT",
    "CT",
    "1.5T MRI",
    "MRI",
    "彩色多普勒超声",
    "便携超声",
    "全自动生化分析仪",
    "血球分析仪",
    "监护仪",
    "呼吸机",
    "麻醉机",
    "电子胃肠镜",
    "C形臂",
    "除颤仪",
]
MESSAGES = [
    "想了解{eq}的报价和配置，麻烦尽快联系。",
    "我院计划今年采购{n}台{eq}，请提供详细参数和报价。",
    "急需{n}台{eq}，能否本月内到货安装？",
    "{eq}项目预计下月发布采购公告，想提前了解贵司产品参数。",
    "我们在准备{eq}的招标文件，需要技术参数和三家以上的配置单。",
    "现有{eq}使用超过十年，计划替换老型号，求推荐方案。",
    "{eq}能否安排工程师上门演示？我们周三周四都有空。",
    "请问{eq}的售后维保怎么收费？保修期多久？",
    "科室新建，需要配置{eq}和{eq2}，预算约{budget}万元。",
    "代理商咨询：{eq}在{province}有没有区域代理政策？",
    "参加投标需要{eq}的授权书和注册证，请联系我。",
    "在展会上看到{eq}，想要一份彩页和价格表。",
    "{eq}有没有二手或者租赁方案？",
    "请发一份{eq}的报价单到我邮箱。",
]
REVISIT_MESSAGES = [
    "之前咨询过{eq}，一直没人联系，麻烦尽快回复。",
    "再次咨询{eq}的价格，领导催得比较急。",
    "上次说的{eq}方案收到了，想再约个时间详谈。",
    "补充一下需求：{eq}要带三年维保。",
]
SMS_MESSAGES = [
    "你好，想问下{eq}多少钱",
    "{eq}报价发我一下，谢谢",
    "急需{eq}，请回电",
    "我是{company}设备科的，{eq}招标的事请联系我",
]
BUDGETS = ["30", "50", "80", "120", "200", "300", "500"]
UTM_SOURCES = ["baidu", "baidu", "360", "bing", "direct", "zhihu"]
CAMPAIGNS = ["2026春季影像设备", "基层医院设备更新", "县域医共体专项", "超声新品发布"]
EAST_CHINA = ("上海", "江苏", "浙江", "安徽", "山东", "福建", "江西")
MOBILE_PREFIXES = _words(
    "130 131 132 133 135 136 137 138 139 150 151 152 153 155 156 157 158 159 "
    "176 177 180 181 182 183 185 186 187 188 189"
)
EMAIL_DOMAINS = ["qq.com", "163.com", "126.com", "sina.com", "139.com"]
BAD_EMAILS = ["zhang.wei#163.com", "liuyang@163", "wang wei@126.com", "13912345678qq.com"]


class _Maker:
    """Deterministic generator of the demo leads' payloads."""

    def __init__(self, seed: int = SEED):
        self.rnd = random.Random(seed)  # noqa: S311 — demo data, not secrets
        self.used_phones: set[str] = set()
        # (company, contact) keys given out: a new person never matches an earlier one
        # by company and contact (the intake's other revisit key).
        self.used_contacts: set[tuple[str, str]] = set()
        self.people: list[dict] = []  # earlier persons, for revisits
        self.serial = 0

    # -- people ------------------------------------------------------------------------
    def name(self) -> str:
        return self.rnd.choice(SURNAMES) + self.rnd.choice(GIVEN)

    def phone(self) -> tuple[str, str, str]:
        """A valid, unused CN mobile, mostly from East China; (number, province, city)."""
        east = self.rnd.random() < 0.7
        for _ in range(200):
            number = self.rnd.choice(MOBILE_PREFIXES) + "".join(
                self.rnd.choice("0123456789") for _ in range(8)
            )
            parsed = normalize.parse_phone(number)
            if parsed is None or not parsed.city or normalize.looks_fake_phone(parsed.e164):
                continue
            if number in self.used_phones or (east and not parsed.province.startswith(EAST_CHINA)):
                continue
            self.used_phones.add(number)
            return number, parsed.province, parsed.city
        raise RuntimeError("no phone number found")  # pragma: no cover

    def company(self, city: str) -> tuple[str, str]:
        """(company, industry as a form would send it) near the phone's city."""
        short = city.removesuffix("市") if len(city) > 2 else city
        brand = self.rnd.choice(BRANDS)
        roll = self.rnd.random()
        if roll < 0.45:
            return city + self.rnd.choice(HOSPITAL_KINDS), "医疗卫生"
        if roll < 0.60:
            return f"{short}{brand}医疗器械有限公司", "医疗器械经销"
        if roll < 0.70:
            return f"{short}{brand}体检中心", "医疗卫生"
        if roll < 0.80:
            return f"{short}{brand}医疗设备制造有限公司", "制造业"
        if roll < 0.87:
            return f"国网{short}供电公司职工医院", "能源"
        if roll < 0.93:
            return f"中建{self.rnd.choice('一二三四五八')}局{short}项目部卫生所", "基建"
        return f"{short}{brand}民营医院有限公司", "医疗卫生"

    def person(self) -> dict:
        phone, province, city = self.phone()
        for _ in range(200):
            company, industry = self.company(city)
            name = self.name()
            if self.rnd.random() < 0.15:
                name = name[0] + self.rnd.choice(HONORIFICS)
            key = (normalize.company_key(company), normalize.person_key(name))
            if key not in self.used_contacts:
                self.used_contacts.add(key)
                break
        else:  # pragma: no cover
            raise RuntimeError("no new company and contact found")
        email = ""
        if self.rnd.random() < 0.4:
            local = (
                "".join(self.rnd.choice("0123456789") for _ in range(self.rnd.randint(6, 10)))
                if self.rnd.random() < 0.5
                else "sbk" + "".join(self.rnd.choice("0123456789") for _ in range(4))
            )
            email = f"{local}@{self.rnd.choice(EMAIL_DOMAINS)}"
        return {
            "name": name,
            "phone": phone,
            "province": province,
            "company": company,
            "industry": industry,
            "title": self.rnd.choice(TITLES),
            "email": email,
        }

    # -- texts -------------------------------------------------------------------------
    def message(self, person: dict, templates=MESSAGES) -> str:
        eq, eq2 = self.rnd.sample(EQUIPMENT, 2)
        return self.rnd.choice(templates).format(
            eq=eq,
            eq2=eq2,
            n=self.rnd.choice([1, 1, 2, 2, 3, 4]),
            budget=self.rnd.choice(BUDGETS),
            province=person["province"] or "本省",
            company=person["company"],
        )

    def next_id(self, prefix: str, digits: int = 10) -> str:
        self.serial += 1
        return f"{prefix}{self.serial:0{digits}d}"

    # -- payloads ----------------------------------------------------------------------
    def payload(self, channel_type: str, person: dict, message: str) -> dict:
        """The body the channel's sender would post, in its preset's shape."""
        rnd = self.rnd
        if channel_type == ChannelType.DOUYIN:
            return {
                "clue_id": self.next_id("7312", 15),
                "name": person["name"],
                "telephone": person["phone"],
                "remark": message,
                "form_data": {
                    "公司名称": person["company"],
                    "行业": person["industry"],
                    "公司规模": rnd.choice(["1-50人", "51-200人", "201-500人", "501-1000人"]),
                },
                "clue_source": "douyin",
                "campaign_name": rnd.choice(CAMPAIGNS),
                "ad_id": str(1780000000000 + rnd.randint(0, 99999)),
            }
        if channel_type == ChannelType.SMS:
            return {
                "from": person["phone"],
                "content": self.message(person, SMS_MESSAGES),
                "msg_id": self.next_id("SM"),
                "gateway": "aliyun-sms",
            }
        if channel_type == ChannelType.CALL_CENTER:
            return {
                "call_id": self.next_id("CALL"),
                "caller": person["phone"],
                "customer_name": person["name"],
                "customer_company": person["company"],
                "summary": "来电：" + message,
                "hotline": "400-820-2026",
                "duration": rnd.randint(40, 600),
                "agent": rnd.choice(["1001", "1002", "1005"]),
            }
        if channel_type == ChannelType.WECOM:
            external = "wm" + "".join(
                rnd.choice("abcdefghijkmnpqrstuvwxyzABCDEFGH23456789") for _ in range(22)
            )
            # The decrypted callback's XML as leads/intake/wecom.py stores it: flat strings.
            return {
                "ToUserName": WECOM_CORP_ID,
                "FromUserName": "sys",
                "CreateTime": str(1_790_000_000 + self.serial),
                "MsgType": "event",
                "Event": "change_external_contact",
                "ChangeType": "add_external_contact",
                "UserID": rnd.choice(["rep1", "rep2", "rep3"]),
                "ExternalUserID": external,
                "State": rnd.choice(["cmef2026", "website", "card"]),
            }
        body = {
            "company": person["company"],
            "contact_name": person["name"],
            "phone": person["phone"],
            "industry": person["industry"],
            "message": message,
        }
        if person["email"]:
            body["email"] = person["email"]
        if channel_type == ChannelType.WEB_FORM:
            body["title"] = person["title"]
            if rnd.random() < 0.5:
                body["company_size"] = rnd.randint(1, 5)
            if rnd.random() < 0.3:
                body["budget"] = rnd.choice(BUDGETS) + "万元"
            if "招标" in message or "采购公告" in message:
                body["in_tender"] = "是"
            body["utm_source"] = rnd.choice(UTM_SOURCES)
            body["utm_medium"] = "cpc" if body["utm_source"] in ("baidu", "360") else "organic"
        elif channel_type == ChannelType.WECHAT_OA:
            body["utm_source"] = "wechat"
            body["utm_medium"] = "menu"
        elif channel_type == ChannelType.TRADE_SHOW_QR:
            body["title"] = person["title"]
            body["utm_campaign"] = "2026上海医疗器械展"
            body["utm_content"] = f"展台 {rnd.choice(['A', 'B'])}{rnd.randint(1, 3)}"
        elif channel_type == ChannelType.IMPORT:
            body["title"] = person["title"]
        return body

    def suspect(self, channel_type: str, person: dict) -> dict:
        """A copy of `person` that the validation will flag."""
        kind = self.rnd.choice(["placeholder", "test", "email", "short"])
        person = dict(person)
        if kind == "placeholder":
            person["phone"] = "13800000000"
        elif kind == "test":
            person["name"], person["company"] = "测试", "测试公司"
        elif kind == "email" and channel_type in (
            ChannelType.WEB_FORM,
            ChannelType.WECHAT_OA,
            ChannelType.TRADE_SHOW_QR,
        ):
            person["email"] = self.rnd.choice(BAD_EMAILS)
        else:
            person["phone"] = person["phone"][:7]  # a number cut short: not recognised
            person["email"] = person["email"] or f"{self.rnd.randint(10**6, 10**9)}@qq.com"
        return person

    def plan(self, count: int) -> list[tuple[str, dict, str, dict]]:
        """(channel type, payload, kind, person) in chronological order; kind is
        new/revisit/suspect."""
        types, weights = zip(*CHANNEL_WEIGHTS.items(), strict=True)
        rows = []
        for _ in range(count):
            channel_type = self.rnd.choices(types, weights)[0]
            roll = self.rnd.random()
            revisitable = [p for p in self.people if p["phone"]]
            if roll < 0.09 and len(revisitable) > 5 and channel_type != ChannelType.WECOM:
                # The same phone again (a revisit), sometimes through another channel.
                person = self.rnd.choice(revisitable)
                kind = "revisit"
                message = self.message(person, REVISIT_MESSAGES)
            elif roll < 0.12 and len(self.people) > 5 and channel_type != ChannelType.WECOM:
                # Same company and contact, another phone: also a revisit.
                person = dict(self.rnd.choice(self.people))
                person["phone"] = self.phone()[0]
                kind = "revisit"
                message = self.message(person, REVISIT_MESSAGES)
            elif roll < 0.17 and channel_type != ChannelType.WECOM:
                person = self.suspect(channel_type, self.person())
                kind = "suspect"
                message = self.message(person)
            else:
                person = self.person()
                kind = "new"
                message = self.message(person)
                self.people.append(person)
            rows.append((channel_type, self.payload(channel_type, person, message), kind, person))
        return rows

    def times(self, count: int, now) -> list:
        """`count` ascending moments of the last DAYS days, mostly in office hours."""
        start = now - timedelta(days=DAYS)
        moments = []
        while len(moments) < count:
            moment = start + timedelta(seconds=self.rnd.uniform(0, DAYS * 86400 - 600))
            local = timezone.localtime(moment)
            weekend = local.weekday() >= 5
            office = 8 <= local.hour < 21
            keep = (0.9 if office else 0.08) * (0.45 if weekend else 1.0)
            if self.rnd.random() < keep:
                moments.append(moment)
        return sorted(moments)


def _channels(tenant) -> dict[str, Channel]:
    tags = {}
    for name, color in TAGS:
        tags[name], _ = Tag.objects.get_or_create(
            tenant=tenant, name=name, defaults={"color": color}
        )
    for tag_name, keywords in RULES:
        if not TaggingRule.objects.filter(tag=tags[tag_name]).exists():
            TaggingRule.objects.create(tenant=tenant, tag=tags[tag_name], keywords=keywords)
    channels = {}
    for name, channel_type, grade, preset, channel_tags in CHANNELS:
        channel = Channel.objects.filter(type=channel_type).order_by("created_at", "id").first()
        if channel is None:
            extra = {}
            if channel_type == ChannelType.WECOM:
                extra = {
                    "wecom_corp_id": WECOM_CORP_ID,
                    "wecom_token": WECOM_TOKEN,
                    "wecom_aes_key": WECOM_AES_KEY,
                }
            channel = Channel.objects.create(
                tenant=tenant,
                name=name,
                type=channel_type,
                default_grade=grade,
                preset=preset,
                **extra,
            )
            channel.tags.add(*(tags[t] for t in channel_tags))
        channels[channel_type] = channel
    return channels


def _failed_examples(channels: dict[str, Channel]) -> list[InboundEvent]:
    """Events an admin finds in the inbox: two failed (fixable, re-processable) and a
    Douyin clue whose company size "不清楚" the preset cannot map: its lead is made
    without it, the value listed under the channel's field mapping problems."""
    events = []
    web = channels[ChannelType.WEB_FORM]
    no_contact = {"company": "苏州博远医疗器械有限公司", "message": "请联系我们，谢谢"}
    event, _ = inbound_event_receive(
        channel=web,
        raw_body=json.dumps(no_contact, ensure_ascii=False),
        source=EventSource.FORM,
        payload=no_contact,
        queue=False,
    )
    events.append(inbound_event_process(event_id=event.pk) or event)
    douyin = channels[ChannelType.DOUYIN]
    bad_size = {
        "clue_id": "7312999999999999001",
        "name": "钱立新",
        "telephone": "13968021345",
        "remark": "想了解移动DR",
        "form_data": {"公司名称": "温州华信体检中心", "行业": "医疗卫生", "公司规模": "不清楚"},
    }
    event, _ = inbound_event_receive(
        channel=douyin,
        raw_body=json.dumps(bad_size, ensure_ascii=False),
        source=EventSource.WEBHOOK,
        payload=bad_size,
        queue=False,
    )
    events.append(inbound_event_process(event_id=event.pk) or event)
    oa = channels[ChannelType.WECHAT_OA]
    raw = "company=宁波康达&phone=13857401234"
    event, _ = inbound_event_receive(
        channel=oa,
        raw_body=raw,
        source=EventSource.WEBHOOK,
        error="body is not JSON: Expecting value: line 1 column 1 (char 0)",
        error_detail=intake_message("body_not_json", line=1, column=1),
    )
    events.append(event)
    return events


# --- the assignment story ----------------------------------------------------------------
# Six reps with different regions, industries and product lines (F9); rep1 is the senior
# with a larger share. rep5 answers late and lands in the observation zone; rep6 goes on
# leave for the last days. Everything goes through the real engine: no decision, ledger
# row or zone is written by hand except the ledger rebuilt from the decisions' own record.

REP_PROFILES = {
    "rep1": {  # senior: Shanghai and southern Jiangsu, imaging
        "provinces": ["上海市", "江苏省"],
        "cities": ["上海市", "南京市", "苏州市", "无锡市"],
        "industries": [Industry.OTHER],
        "product_lines": ["影像设备", "DR", "CT", "MRI"],
        "response_tier": ResponseTier.FAST,
        "cycle_preference": CyclePreference.LONG,
        "share_weight": 1.5,
    },
    "rep2": {  # Zhejiang and Fujian, ultrasound and monitoring, quick deals
        "provinces": ["浙江省", "福建省"],
        "cities": ["杭州市", "宁波市", "温州市", "福州市", "厦门市"],
        "industries": [Industry.MANUFACTURING, Industry.OTHER],
        "product_lines": ["超声", "监护仪"],
        "response_tier": ResponseTier.FAST,
        "cycle_preference": CyclePreference.SHORT,
    },
    "rep3": {  # Anhui and Jiangxi, laboratory, energy and infrastructure clinics
        "provinces": ["安徽省", "江西省", "湖北省"],
        "cities": ["合肥市", "南昌市", "武汉市"],
        "industries": [Industry.ENERGY, Industry.INFRASTRUCTURE],
        "product_lines": ["生化", "血球", "检验"],
        "response_tier": ResponseTier.NORMAL,
        "cycle_preference": CyclePreference.ANY,
    },
    "rep4": {  # South China: Guangdong, Guangxi, Hunan; ICU equipment; a smaller cap
        "provinces": ["广东省", "广西壮族自治区", "湖南省"],
        "cities": ["广州市", "深圳市", "长沙市"],
        "industries": [Industry.MANUFACTURING],
        "product_lines": ["呼吸机", "麻醉机", "除颤仪"],
        "response_tier": ResponseTier.NORMAL,
        "cycle_preference": CyclePreference.SHORT,
    },
    "rep5": {  # North China and Shandong, tenders and endoscopy (responds slowly)
        "provinces": ["北京市", "天津市", "河北省", "山东省"],
        "cities": ["北京市", "天津市", "济南市", "青岛市"],
        "industries": [Industry.ENERGY, Industry.OTHER],
        "product_lines": ["招标", "胃肠镜", "C形臂"],
        "response_tier": ResponseTier.SLOW,
        "cycle_preference": CyclePreference.ANY,
    },
    "rep6": {  # South-west: Sichuan, Chongqing, Yunnan, Guizhou; long deals
        "provinces": ["四川省", "重庆市", "云南省", "贵州省"],
        "cities": ["成都市", "重庆市", "昆明市"],
        "industries": [Industry.INFRASTRUCTURE, Industry.OTHER],
        "product_lines": ["便携超声", "移动DR", "影像设备"],
        "response_tier": ResponseTier.NORMAL,
        "cycle_preference": CyclePreference.LONG,
    },
}
CAPACITY = {"rep4": 6}  # the others: the policy's default
DEFAULT_CAPACITY = AssignmentPolicy._meta.get_field("default_capacity").default
GENERATION_CAPACITY = 1000  # while 14 days of leads arrive in a minute: no backlog blocks
SENIOR, SLOW, AWAY = "rep1", "rep5", "rep6"
ACTIVE = ("rep1", "rep2", "rep3", "rep4")

VERSION_2_NOTE = "产品线匹配权重 0.3 → 0.4：展会后影像设备咨询增多"
DRAFT_NOTE = "试行：区域匹配权重 0.3 → 0.6（先模拟再发布）"
VERSION_2_AGO = timedelta(days=7)
LEAVE_DAYS, AWAY_UNTIL_DAYS = 3, 4  # rep6: away for the last 3 days, back in 4 days
SLOW_SINCE = timedelta(days=4)  # rep5's first touches are late from then on
OPEN_AGE = timedelta(hours=24)  # younger leads are still being worked: assigned, unverified
RECENT = timedelta(hours=30)  # between the two, a handful (one per rep) left untouched
# The story leaves at most this many of a rep's leads of the last day unverified (one
# fewer for a smaller cap); the board part adds two more to verify and one untouched past
# 24 h stays: every rep present ends well below the cap, so new leads spread.
OPEN_AT_END = 2
RETURNS = 3  # valid leads verified on the first call and then left: the sweep returns them
RETURN_AGE = timedelta(hours=120)  # old enough for the 72 h after their step's day
REASSIGN_REASON = "客户指定对接人"
# The board part gives each rep one revisit in these last hours (leads/demo/board.py): the
# history's arrivals then are new enquiries only, so that revisit is the rep's only one.
TODAY_REVISITS = timedelta(hours=6)

FIRST_NOTES_VALID = [
    "电话沟通，需求真实，已约下周演示",
    "已加微信，发送彩页和报价单",
    "客户确认今年有采购计划，预算已批",
    "设备科确认在做招标准备，已发技术参数",
    "院长助理回电，想先看同级医院的装机案例",
]
FIRST_NOTES_INVALID = [
    "空号，无法联系",
    "同行询价，非终端客户",
    "学生做课题调研，无采购需求",
    "已从其他渠道采购，暂无需求",
    "留错号码，对方不知情",
]
FOLLOW_NOTES = [
    "跟进报价细节，客户在比价",
    "发送配置单和方案",
    "约上门演示时间",
    "回复售后维保政策问题",
    "确认招标时间节点",
    "拜访设备科，介绍装机案例",
]
RECENT_NOTES = [
    "已致电，客户在开会，约明天再聊",
    "已加微信，等待回复",
    "已发送产品资料，待客户确认需求",
]
FOLLOW_CHANNELS = [
    ContactMethod.WECHAT,
    ContactMethod.PHONE,
    ContactMethod.VISIT,
    ContactMethod.EMAIL,
]


def _profiles(tenant, reps: dict) -> dict[str, RepProfile]:
    """Each demo rep's profile, created with the demo's values when missing (a profile
    edited in the demo is kept)."""
    profiles = {}
    for username, membership in reps.items():
        values = {**REP_PROFILES.get(username, {}), "capacity": CAPACITY.get(username)}
        profiles[username], _created = RepProfile.objects.get_or_create(
            membership=membership, defaults={"tenant": tenant, **values}
        )
    return profiles


class _Story:
    """14 days of leads through the intake and the assignment engine, with the reps'
    touches and verifications interleaved in time order, then today's open cases."""

    def __init__(self, world, channels: dict[str, Channel]):
        self.world = world
        self.tenant = world.demo
        self.channels = channels
        self.reps = {u: m for u, m in world.memberships.items() if u in REP_PROFILES}
        self.rep_ids = {m.pk for m in self.reps.values()}
        self.now = timezone.now()
        # The pipeline stamps "now": a row stamped at or after this was stamped by it.
        self.since = self.now
        self.rnd = random.Random(SEED + 1)  # noqa: S311 — demo data, not secrets
        self.maker = _Maker()
        self.todo: list = []  # heap of (when, seq, action, lead id, data)
        self.seq = 0
        self.untouched: Counter = Counter()
        self.open: Counter = Counter()  # leads left open at the end, by owner
        self.open_limit = {
            m.pk: min(OPEN_AT_END, CAPACITY.get(u, DEFAULT_CAPACITY) - 5)
            for u, m in self.reps.items()
        }
        self.returns = 0
        self.version_2 = None
        self.on_leave = False
        self.failed_moments: list = []
        self.counts = {"revisit": 0, "suspect": 0, "leads": 0}

    # -- the run ---------------------------------------------------------------------------
    def run(self) -> dict:
        self._start()
        self._history()
        self._rep5_fallback()
        self._reassignment()
        self._away()
        self._waiting_and_pooled()
        self._finish()
        return self.counts

    def _start(self) -> None:
        RepProfile.objects.filter(membership__in=self.reps.values()).update(
            capacity=GENERATION_CAPACITY, created_at=self.now - timedelta(days=DAYS + 1)
        )
        policy = policy_active()  # version 1 with the default rules
        AssignmentPolicy.objects.filter(pk=policy.pk).update(
            created_at=self.now - timedelta(days=DAYS + 1),
            published_at=self.now - timedelta(days=DAYS + 1),
        )
        self.relax = timedelta(minutes=policy.relax_after_minutes)

    def _history(self) -> None:
        plan = self.maker.plan(LEAD_COUNT)
        moments = self.maker.times(len(plan) + 3, self.now)
        self.failed_moments = moments[-3:]
        previous = self.now - timedelta(days=DAYS)
        for (channel_type, payload, kind, person), moment in zip(plan, moments, strict=False):
            # Due work first (a touch a few seconds after `moment` too: its lead is decided
            # at `moment` plus a few seconds, so every decision sees the zone it records).
            self._until(moment + timedelta(seconds=9))
            if self.version_2 is None and moment >= self.now - VERSION_2_AGO:
                # Published between two arrivals: each lead's decision names its version.
                self._publish_version_2(max(moment - timedelta(minutes=30), previous))
            if not self.on_leave and moment >= self.now - timedelta(days=LEAVE_DAYS):
                self.on_leave = True  # rep6 leaves: "unavailable" in every decision from here
                RepProfile.objects.filter(membership=self.reps[AWAY]).update(is_available=False)
            previous = moment + timedelta(seconds=10)
            if kind != "new" and (moment >= self.now - TODAY_REVISITS or self._of_away_rep(person)):
                # The last hours are the board's: its revisit is each rep's only one then
                # (and a "测试" suspect would be a revisit of the previous one). A revisit
                # of rep6's customer during the leave would be theirs, left untouched: a
                # late first touch at the sweep.
                person = self.maker.person()
                payload = self.maker.payload(channel_type, person, self.maker.message(person))
            intake = self._intake(channel_type, payload)
            if intake is None:
                continue
            event, lead = intake
            assigned = moment + timedelta(seconds=self.rnd.randint(2, 8))
            self._backdate(lead, [assigned], created=moment, event=event)
            self.counts["leads"] += 1
            self.counts["revisit"] += lead.revisit_of_id is not None
            self.counts["suspect"] += lead.is_suspect
            if lead.status == LeadStatus.ASSIGNED:
                self._plan_work(lead, moment, assigned)
        self._until(self.now)

    def _of_away_rep(self, person: dict) -> bool:
        """During rep6's leave: does `person` match (phone, or company and contact) an
        earlier lead of rep6's, so that the engine would hand it to them?"""
        if not self.on_leave:
            return False
        match = Q(
            company_key=normalize.company_key(person["company"]),
            contact_key=normalize.person_key(person["name"]),
        )
        if len(person["phone"]) >= 8:
            match |= Q(phone_key__endswith=person["phone"][-8:])
        return Lead.objects.filter(match, owner=self.reps[AWAY]).exists()

    def _intake(self, channel_type: str, payload: dict):
        event, created = inbound_event_receive(
            channel=self.channels[channel_type],
            raw_body=json.dumps(payload, ensure_ascii=False),
            source=SOURCES.get(channel_type, EventSource.WEBHOOK),
            payload=payload,
            queue=False,  # processed right here: no message for the worker to find idle
        )
        if not created:
            return None  # the same body twice: a replay, no second lead
        event = inbound_event_process(event_id=event.pk)
        if event is None or event.lead is None:
            return None
        return event, event.lead

    def _backdate(self, lead: Lead, times: list, *, created=None, event=None) -> None:
        """Move what the pipeline stamped "now" for this lead to when it happened: the
        decisions (in order) to `times`, their timeline entries and notices with them."""
        if event is not None:
            InboundEvent.objects.filter(pk=event.pk).update(
                received_at=created - timedelta(seconds=1), processed_at=created
            )
        decisions = list(
            AssignmentDecision.objects.filter(lead=lead, decided_at__gte=self.since).order_by(
                "decided_at", "id"
            )
        )
        when = {}
        for decision, at in zip(decisions, times, strict=False):
            AssignmentDecision.objects.filter(pk=decision.pk).update(decided_at=at)
            when[str(decision.public_id)] = at
        last = times[min(len(decisions), len(times)) - 1] if decisions else created
        entries = list(LeadEvent.objects.filter(lead=lead, at__gte=self.since))
        for entry in entries:
            entry.at = when.get((entry.data or {}).get("decision"), created or last)
        LeadEvent.objects.bulk_update(entries, ["at"])
        changes = {}
        if created is not None:
            changes["created_at"] = lead.created_at = created
        # The intake's lead instance is the one the engine saved: its stamps are current.
        if lead.assigned_at is not None and lead.assigned_at >= self.since:
            changes["assigned_at"] = lead.assigned_at = last
        if lead.pooled_at is not None and lead.pooled_at >= self.since:
            changes["pooled_at"] = lead.pooled_at = last
        if lead.dispatch_after is not None and lead.dispatch_after >= self.since:
            changes["dispatch_after"] = lead.dispatch_after = times[0] + self.relax
        if changes:
            Lead.objects.filter(pk=lead.pk).update(**changes)
        link = reverse("leads:detail", args=[lead.public_id])
        Notification.objects.filter(link=link, created_at__gte=self.since).update(created_at=last)

    # -- the reps' work, in time order with the arrivals ----------------------------------
    def _push(self, at, action: str, lead_id: int, **data) -> None:
        self.seq += 1
        heapq.heappush(self.todo, (at, self.seq, action, lead_id, data))

    def _until(self, moment) -> None:
        away = self.reps[AWAY].pk
        leave = self.now - timedelta(days=LEAVE_DAYS)
        while self.todo and self.todo[0][0] <= moment:
            at, _seq, action, lead_id, data = heapq.heappop(self.todo)
            if at >= leave and Lead.objects.filter(pk=lead_id, owner_id=away).exists():
                # rep6 does nothing once the leave has begun: follow-ups planned past it
                # stay undone (the SLA clocks run on; `_plan_work` has the first call and
                # the verdict made before it).
                continue
            if action == "touch":
                self._touch(lead_id, at, **data)
            else:
                self._verify(lead_id, at, **data)

    def _touch(self, lead_id: int, at, *, channel: str, note: str) -> None:
        lead = Lead.objects.select_related("owner__user", "tenant").get(pk=lead_id)
        if lead.owner is None or lead.status not in (LeadStatus.ASSIGNED, LeadStatus.VALID):
            return
        first = lead.first_touch_at is None
        lead_record_touch(lead, by=lead.owner, channel=channel, note=note, at=at)
        if first:  # a zone change tells the rep and the managers: then, not now
            Notification.objects.filter(created_at__gte=self.since).update(created_at=at)

    def _verify(self, lead_id: int, at, *, status: str, step_days=None) -> None:
        """The owner's verdict through the real service at its moment: the outcome, an
        invalid reason from what the first call found, a valid lead's next step (the
        visit's date, or the missing information's action), the customer and contact."""
        from customers.models import Contact, Customer

        lead = Lead.objects.select_related("owner__user", "tenant", "channel").get(pk=lead_id)
        if lead.owner is None or lead.status != LeadStatus.ASSIGNED or lead.verification:
            return  # handed on meanwhile, or verified already
        since = timezone.now()
        first = lead.first_touch_at is None
        arguments = demo_board.verdict_for(
            lead, at, valid=status == LeadStatus.VALID, rnd=self.rnd, step_days=step_days
        )
        last_touch = lead.last_touch_at
        lead_verify(lead, by=lead.owner, now=at, **arguments)
        if last_touch is not None and last_touch > at:  # a later touch stays the last one
            Lead.objects.filter(pk=lead.pk).update(last_touch_at=last_touch)
        AuditEvent.objects.filter(action="lead.verified", at__gte=since).update(at=at)
        Customer.objects.filter(created_at__gte=since).update(created_at=at)
        Contact.objects.filter(created_at__gte=since).update(created_at=at)
        if first:  # the verdict was the first touch: a zone change is told then
            Notification.objects.filter(created_at__gte=self.since).update(created_at=at)

    def _plan_work(self, lead: Lead, created, assigned) -> None:
        """What the owner does with the lead, by its age at the end of the story."""
        rnd, owner, age = self.rnd, lead.owner_id, self.now - created
        if owner == self.reps[SLOW].pk and created >= self.now - SLOW_SINCE:
            # rep5 answers a day late: late first touches in a row → observation zone.
            first = assigned + timedelta(hours=24, minutes=rnd.randint(30, 240))
            if first < self.now - timedelta(minutes=10):
                valid = rnd.random() < 0.6
                notes = FIRST_NOTES_VALID if valid else FIRST_NOTES_INVALID
                self._push(
                    first, "touch", lead.pk, channel=ContactMethod.PHONE, note=rnd.choice(notes)
                )
                status = LeadStatus.VALID if valid else LeadStatus.INVALID
                self._push(
                    first + timedelta(minutes=rnd.randint(2, 20)), "verify", lead.pk, status=status
                )
            return
        if age < OPEN_AGE and self.open[owner] < self.open_limit.get(owner, DEFAULT_CAPACITY):
            self.open[owner] += 1  # still open at the end; contacted already, or not yet
            latest = min(timedelta(hours=3), age - timedelta(minutes=15))
            if rnd.random() < 0.5 and latest > timedelta(minutes=10):
                at = assigned + timedelta(seconds=rnd.uniform(600, latest.total_seconds()))
                note = rnd.choice(RECENT_NOTES)
                self._push(at, "touch", lead.pk, channel=ContactMethod.PHONE, note=note)
            return
        if OPEN_AGE <= age < RECENT and self.untouched[owner] < 1 and rnd.random() < 0.7:
            self.untouched[owner] += 1  # untouched past 24 h: the SLA sweep reminds the rep
            self.open[owner] += 1
            return
        # Worked: touched (mostly within the hour) and verified, before the end.
        latest = min(240.0, (age - timedelta(minutes=30)).total_seconds() / 60)
        if latest < 5:
            self.open[owner] += 1  # arrived a moment ago
            return
        first = assigned + timedelta(minutes=min(latest, 5 + rnd.expovariate(1 / 45)))
        leave = self.now - timedelta(days=LEAVE_DAYS)
        before_leave = owner == self.reps[AWAY].pk and first >= leave - timedelta(minutes=30)
        if before_leave:
            # rep6 finishes before the leave what they start: a lead touched once and left
            # unverified would go back to the pool unverified, and every lead left
            # untouched counts as a late first touch (three make a streak). Only one that
            # arrives as the leave begins stays untouched.
            if assigned >= leave - timedelta(minutes=2):
                self.open[owner] += 1
                return
            first = min(first, leave - timedelta(minutes=2))
        valid = rnd.random() < (0.25 if lead.is_suspect else 0.65)
        if valid and self.returns < RETURNS and age > RETURN_AGE and rnd.random() < 0.12:
            # Verified on the first call, its next step due that day, then nothing: more
            # than 72 h after that day the SLA sweep returns it to the pool, verdict kept.
            self.returns += 1
            self._push(first, "verify", lead.pk, status=LeadStatus.VALID, step_days=0)
            return
        notes = FIRST_NOTES_VALID if valid else FIRST_NOTES_INVALID
        self._push(first, "touch", lead.pk, channel=ContactMethod.PHONE, note=rnd.choice(notes))
        verified = first + timedelta(minutes=rnd.randint(2, 25))
        if before_leave:
            verified = min(verified, leave - timedelta(seconds=30))
        status = LeadStatus.VALID if valid else LeadStatus.INVALID
        self._push(verified, "verify", lead.pk, status=status)
        if not valid:
            return
        stale = self.now - first > timedelta(hours=72)
        extra = rnd.choice([1, 1, 2]) if stale else rnd.choice([0, 1, 1, 2])
        room = min(48 * 3600.0, (self.now - verified).total_seconds() - 3600)
        if room < 3 * 3600:
            return
        for at in sorted(
            verified + timedelta(seconds=rnd.uniform(3 * 3600, room)) for _ in range(extra)
        ):
            channel = rnd.choice(FOLLOW_CHANNELS)
            self._push(at, "touch", lead.pk, channel=channel, note=rnd.choice(FOLLOW_NOTES))

    def _publish_version_2(self, at) -> None:
        admin = self.world.users["admin"]
        draft = policy_draft(user=admin)
        draft.weight_product = 0.4
        draft.save(update_fields=["weight_product"])
        self.version_2 = policy_publish(draft, user=admin, note=VERSION_2_NOTE)
        AssignmentPolicy.objects.filter(pk=self.version_2.pk).update(created_at=at, published_at=at)
        AssignmentPolicy.objects.filter(pk=draft.pk).update(created_at=at - timedelta(hours=1))
        AuditEvent.objects.filter(action="assignment.policy_published", at__gte=self.since).update(
            at=at
        )

    # -- today's cases ---------------------------------------------------------------------
    def _rep5_fallback(self) -> None:
        """Should rep5 have had too few leads for the late streak (the engine's draws are
        random), the streak is completed on the real path all the same."""
        rep5 = self.reps[SLOW]
        for minutes in (50, 40, 30):
            profile = RepProfile.objects.get(membership=rep5)
            if profile.zone == Zone.OBSERVATION:
                return
            at = self.now - timedelta(hours=20, minutes=minutes)
            record_first_touch(rep5, late=True, now=at)
            Notification.objects.filter(created_at__gte=self.since).update(created_at=at)

    def _reassignment(self) -> None:
        """The manager hands one of today's leads to another rep: the customer asked."""
        open_leads = Lead.objects.filter(
            status=LeadStatus.ASSIGNED,
            owner_id__in=[self.reps[u].pk for u in ACTIVE],
            revisit_of__isnull=True,
            assigned_at__lte=self.now - timedelta(hours=1),
        ).select_related("owner__user", "tenant", "channel")
        # An untouched lead of the last day; else (a quiet weekend) the latest open one.
        lead = (
            open_leads.filter(
                first_touch_at__isnull=True, created_at__gte=self.now - timedelta(hours=20)
            )
            .order_by("created_at", "id")
            .first()
        ) or open_leads.order_by("-assigned_at", "-id").first()
        if lead is None:
            return
        open_counts = self._open_counts()
        to = min(
            (self.reps[u] for u in ACTIVE if self.reps[u].pk != lead.owner_id),
            key=lambda m: (open_counts.get(m.pk, 0), m.pk),
        )
        at = min(lead.assigned_at + timedelta(minutes=40), self.now - timedelta(minutes=20))
        if lead.last_touch_at is not None:
            at = max(at, lead.last_touch_at + timedelta(minutes=10))
        manager = self.world.users["manager"]
        lead_reassign(lead, to=to, reason=REASSIGN_REASON, actor=manager, now=at)
        link = reverse("leads:detail", args=[lead.public_id])
        Notification.objects.filter(link=link, created_at__gte=self.since).update(created_at=at)
        AuditEvent.objects.filter(action="lead.reassigned", at__gte=self.since).update(at=at)

    def _away(self) -> None:
        """rep6 is away until a date now: back on dispatch by itself after it."""
        today = timezone.localtime(self.now, self.tenant.tzinfo).date()
        RepProfile.objects.filter(membership=self.reps[AWAY]).update(
            is_available=True, unavailable_until=today + timedelta(days=AWAY_UNTIL_DAYS)
        )

    def _open_counts(self) -> dict[int, int]:
        return open_loads(self.rep_ids)

    def _waiting_and_pooled(self) -> None:
        """The team meeting of the last hour: the reps present are marked away for it
        (unavailable), rep5 is paused and rep6 on leave. Two leads arrive meanwhile and
        wait; the first one's retry, with the optional criteria dropped, still finds nobody
        and pools it (the managers are told). The meeting is over: the second one's retry
        finds the reps back, with room below their caps (restored here from the story's)."""
        for username, membership in self.reps.items():
            RepProfile.objects.filter(membership=membership).update(capacity=CAPACITY.get(username))
        in_meeting = RepProfile.objects.filter(membership__in=[self.reps[u] for u in ACTIVE])
        in_meeting.update(is_available=False)
        first = self.now - timedelta(minutes=45)
        person = self.maker.person()
        payload = self.maker.payload(
            ChannelType.WEB_FORM, person, "急需2台移动DR，新院区下月开诊，请立即报价。"
        )
        intake = self._intake(ChannelType.WEB_FORM, payload)
        if intake is not None:
            event, lead = intake
            self._backdate(lead, [first + timedelta(seconds=3)], created=first, event=event)
            dispatch_due(now=first + self.relax + timedelta(seconds=20))
            link = reverse("leads:detail", args=[lead.public_id])
            Notification.objects.filter(link=link, created_at__gte=self.since).update(
                created_at=first + self.relax + timedelta(seconds=20)
            )
        second = self.now - timedelta(minutes=3)
        person = self.maker.person()
        payload = self.maker.payload(
            ChannelType.DOUYIN, person, "想了解便携超声的价格，基层卫生院用。"
        )
        intake = self._intake(ChannelType.DOUYIN, payload)
        if intake is not None:
            event, lead = intake
            self._backdate(lead, [second + timedelta(seconds=2)], created=second, event=event)
        in_meeting.update(is_available=True)

    def _finish(self) -> None:
        draft = policy_draft(user=self.world.users["admin"])
        draft.weight_region, draft.note = 0.6, DRAFT_NOTE  # pending: "simulate" moves leads
        draft.save(update_fields=["weight_region", "note"])
        self._rebuild_ledger()
        for membership in self.reps.values():
            last = (
                AssignmentDecision.objects.filter(
                    chosen=membership, outcome=DecisionOutcome.ASSIGNED
                )
                .aggregate(at=Max("decided_at"))
                .get("at")
            )
            RepProfile.objects.filter(membership=membership).update(last_assigned_at=last)
        # What the reps dealt with long ago is read.
        Notification.objects.filter(created_at__lt=self.now - RECENT, read_at__isnull=True).update(
            read_at=F("created_at") + timedelta(hours=1)
        )
        failed = _failed_examples(self.channels)
        for event, moment in zip(failed, self.failed_moments, strict=False):
            InboundEvent.objects.filter(pk=event.pk).update(received_at=moment, processed_at=moment)
        # The clocks, once, now: reminders for untouched leads, the returns to the pool.
        self.counts["sla"] = sla.sla_sweep()

    def _rebuild_ledger(self) -> None:
        """The ledger as the engine would have written it day by day: rebuilt from the
        decisions (each one records its eligible reps), by the tenant's day."""
        weights = dict(RepProfile.objects.values_list("membership_id", "share_weight"))
        tzinfo = self.tenant.tzinfo
        days: dict = defaultdict(lambda: [0.0, 0])
        decisions = AssignmentDecision.objects.filter(
            outcome=DecisionOutcome.ASSIGNED, kind__in=LEDGER_KINDS
        ).values_list("chosen_id", "candidates", "decided_at")
        for chosen_id, candidates, decided_at in decisions:
            day = timezone.localtime(decided_at, tzinfo).date()
            eligible = [c["m"] for c in candidates or () if c.get("v") == OK]
            total = sum(weights.get(m, 1.0) for m in eligible)
            for m in eligible:
                days[(m, day)][0] += weights.get(m, 1.0) / total
            if chosen_id is not None:
                days[(chosen_id, day)][1] += 1
        RepLedgerDay.objects.all().delete()
        RepLedgerDay.objects.bulk_create(
            [
                RepLedgerDay(
                    tenant=self.tenant,
                    membership_id=m,
                    day=day,
                    expected=round(expected, 6),
                    received=received,
                )
                for (m, day), (expected, received) in sorted(days.items())
            ],
            batch_size=500,
        )


# Decisions the ledger counts: a manual one adds to `received` only (it has no candidates);
# a revisit is not counted (same customer, not a new lead).
LEDGER_KINDS = (DecisionKind.AUTO, DecisionKind.RETRY, DecisionKind.RETURN, DecisionKind.MANUAL)


def _summary(tenant) -> str:
    profiles = list(RepProfile.objects.select_related("membership__user"))
    today = timezone.localtime(timezone.now(), tenant.tzinfo).date()
    versions = AssignmentPolicy.objects.filter(status=PolicyStatus.PUBLISHED).count()
    draft = AssignmentPolicy.objects.filter(status=PolicyStatus.DRAFT).exists()
    statuses = dict(
        Lead.objects.values_list("status").annotate(n=Count("id")).values_list("status", "n")
    )
    pooled = Lead.objects.filter(status=LeadStatus.NEW, pooled_at__isnull=False).count()
    waiting = Lead.objects.filter(status=LeadStatus.NEW, dispatch_after__isnull=False).count()
    manual = AssignmentDecision.objects.filter(kind=DecisionKind.MANUAL).count()
    observed = [p.membership.display_name for p in profiles if p.zone == Zone.OBSERVATION]
    away = [p.membership.display_name for p in profiles if not p.available_on(today)]
    return (
        f"assignment: {len(profiles)} rep profiles, {versions} policy versions"
        f"{' and a draft' if draft else ''}; {statuses.get(LeadStatus.ASSIGNED, 0)} assigned, "
        f"{statuses.get(LeadStatus.VALID, 0)} valid, {statuses.get(LeadStatus.INVALID, 0)} "
        f"invalid, {pooled} pooled, {waiting} waiting, {manual} reassigned by hand; "
        f"observation zone: {'、'.join(observed) or '—'}; away: {'、'.join(away) or '—'}"
    )


def seed(*, world, stdout) -> None:
    tenant = world.demo
    channels = _channels(tenant)
    _profiles(tenant, {u: m for u, m in world.memberships.items() if u in REP_PROFILES})
    if Lead.objects.exists():
        stdout.write(f"leads: {len(channels)} channels; demo leads already there, none added")
        stdout.write(_summary(tenant))
        return
    counts = _Story(world, channels).run()
    failed_count = InboundEvent.objects.filter(status=EventStatus.FAILED).count()
    stdout.write(
        f"leads: {len(channels)} channels, {len(TAGS)} tags, {counts['leads']} leads over "
        f"{DAYS} days ({counts['revisit']} revisits, {counts['suspect']} suspect), "
        f"{failed_count} failed inbox events"
    )
    stdout.write(_summary(tenant))
    fired = {k: v for k, v in counts["sla"].items() if v}
    stdout.write(f"SLA sweep: {', '.join(f'{k} {v}' for k, v in fired.items()) or 'nothing due'}")
    demo_board.seed(world=world, stdout=stdout)  # verifications, follow-ups, today's work
