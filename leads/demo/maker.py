"""The demo leads' content: people (a valid, unused mobile number, a company near its city,
a contact), their enquiries, the bodies each channel's sender would post, suspect copies,
and the plan of arrivals over the last DAYS days, all drawn from one random.Random in a
fixed order (the demo's data is the same from one run to the next but for the dates)."""

from __future__ import annotations

import random
from datetime import timedelta

from django.utils import timezone

from crm import normalize
from leads.demo.data import (
    BAD_EMAILS,
    BRANDS,
    BUDGETS,
    CAMPAIGNS,
    CHANNEL_WEIGHTS,
    DAYS,
    EAST_CHINA,
    EMAIL_DOMAINS,
    EQUIPMENT,
    GIVEN,
    HONORIFICS,
    HOSPITAL_KINDS,
    MESSAGES,
    MOBILE_PREFIXES,
    REVISIT_MESSAGES,
    SEED,
    SMS_MESSAGES,
    SURNAMES,
    TITLES,
    UTM_SOURCES,
    WECOM_CORP_ID,
)
from leads.models import ChannelType


class Maker:
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
