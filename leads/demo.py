"""The demo tenant's lead-intake part (`python manage.py seed_demo` runs it in the demo
tenant's context): a channel of every type, tags and tagging rules, and about 300 leads of
the last 14 days, some of them revisits and some suspect, plus a few failed inbox events.

Leads go through the real pipeline (`inbound_event_receive`, then `inbound_event_process`
at once, so no worker is needed; the messages queued on commit then find nothing to do),
in chronological order so that originals come before their revisits. The pipeline stamps
"now"; one bulk update per table then spreads the times over the 14 days.

Idempotent: channels, tags and rules are created when missing; leads only when the tenant
has none. Deterministic content (random.Random(2026), stdlib only: Faker is a dev extra
and the Docker image's seed runs without it); only the times follow today's date.
"""

from __future__ import annotations

import json
import random
from datetime import timedelta

from django.utils import timezone

from leads import normalize
from leads.models import (
    Channel,
    ChannelType,
    EventSource,
    EventStatus,
    InboundEvent,
    Lead,
    LeadEvent,
    MappingPreset,
    SourceGrade,
    Tag,
    TaggingRule,
)
from leads.services import inbound_event_process, inbound_event_receive

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
        company, industry = self.company(city)
        name = self.name()
        if self.rnd.random() < 0.15:
            name = name[0] + self.rnd.choice(HONORIFICS)
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
            # The decrypted callback's XML as leads/wecom.py stores it: flat strings.
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

    def plan(self, count: int) -> list[tuple[str, dict, str]]:
        """(channel type, payload, kind) in chronological order; kind is new/revisit/suspect."""
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
            rows.append((channel_type, self.payload(channel_type, person, message), kind))
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
    """Three events an admin will find as failed in the inbox (fixable, re-processable)."""
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
    )
    events.append(event)
    return events


def seed(*, world, stdout) -> None:
    tenant = world.demo
    channels = _channels(tenant)
    if Lead.objects.exists():
        stdout.write(f"leads: {len(channels)} channels; demo leads already there, none added")
        return

    now = timezone.now()
    maker = _Maker()
    plan = maker.plan(LEAD_COUNT)
    moments = maker.times(len(plan) + 3, now)
    leads, counts = [], {"revisit": 0, "suspect": 0}
    for (channel_type, payload, _kind), moment in zip(plan, moments, strict=False):
        body = json.dumps(payload, ensure_ascii=False)
        event, created = inbound_event_receive(
            channel=channels[channel_type],
            raw_body=body,
            source=SOURCES.get(channel_type, EventSource.WEBHOOK),
            payload=payload,
            queue=False,  # processed right here: no message for the worker to find idle
        )
        if not created:
            continue  # the same body twice: a replay, no second lead
        event = inbound_event_process(event_id=event.pk)
        if event is not None and event.lead is not None:
            leads.append((event, event.lead, moment))

    # Spread the times over the 14 days (the pipeline stamped them all "now").
    lead_rows, event_rows = [], []
    for event, lead, moment in leads:
        lead.created_at = moment
        event.received_at = moment - timedelta(seconds=1)
        event.processed_at = moment
        lead_rows.append(lead)
        event_rows.append(event)
        counts["revisit"] += lead.revisit_of_id is not None
        counts["suspect"] += lead.is_suspect
    Lead.objects.bulk_update(lead_rows, ["created_at"], batch_size=500)
    InboundEvent.objects.bulk_update(event_rows, ["received_at", "processed_at"], batch_size=500)
    timeline = list(LeadEvent.objects.filter(lead__in=lead_rows).only("pk", "lead_id"))
    moment_of = {lead.pk: lead.created_at for lead in lead_rows}
    for entry in timeline:
        entry.at = moment_of[entry.lead_id]
    LeadEvent.objects.bulk_update(timeline, ["at"], batch_size=500)

    failed = _failed_examples(channels)
    for event, moment in zip(failed, moments[-3:], strict=False):
        InboundEvent.objects.filter(pk=event.pk).update(received_at=moment, processed_at=moment)
    failed_count = InboundEvent.objects.filter(status=EventStatus.FAILED).count()
    stdout.write(
        f"leads: {len(channels)} channels, {len(TAGS)} tags, {len(lead_rows)} leads over "
        f"{DAYS} days ({counts['revisit']} revisits, {counts['suspect']} suspect), "
        f"{failed_count} failed inbox events"
    )
