"""The demo tenant's set-up for the lead story: tags and tagging rules, a channel of every
type (the WeCom one with placeholder credentials), the inbox's example events, and the six
reps' profiles (regions, industries, product lines, pace, share, cap) with the parts they
play in the story. Idempotent: what exists is kept."""

from __future__ import annotations

import json

from leads.demo.data import CHANNELS, RULES, TAGS, WECOM_AES_KEY, WECOM_CORP_ID, WECOM_TOKEN
from leads.intake.services import inbound_event_process, inbound_event_receive
from leads.messages import intake_message
from leads.models import (
    AssignmentPolicy,
    Channel,
    ChannelType,
    CyclePreference,
    EventSource,
    InboundEvent,
    Industry,
    RepProfile,
    ResponseTier,
    Tag,
    TaggingRule,
)


def tenant_channels(tenant) -> dict[str, Channel]:
    """The tags, tagging rules and a channel of every type, created when missing; the
    tenant's first channel of each type, by type."""
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


def failed_examples(channels: dict[str, Channel]) -> list[InboundEvent]:
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


# --- the reps ----------------------------------------------------------------------------
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


def rep_profiles(tenant, reps: dict) -> dict[str, RepProfile]:
    """Each demo rep's profile, created with the demo's values when missing (a profile
    edited in the demo is kept)."""
    profiles = {}
    for username, membership in reps.items():
        values = {**REP_PROFILES.get(username, {}), "capacity": CAPACITY.get(username)}
        profiles[username], _created = RepProfile.objects.get_or_create(
            membership=membership, defaults={"tenant": tenant, **values}
        )
    return profiles
