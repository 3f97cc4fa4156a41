"""Parsing and normalising what leads arrive with (F4, F5): phones, e-mail, names, regions."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import phonenumbers
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from phonenumbers import PhoneNumberType, geocoder

_ACCEPTED_TYPES = {
    PhoneNumberType.MOBILE,
    PhoneNumberType.FIXED_LINE,
    PhoneNumberType.FIXED_LINE_OR_MOBILE,
    PhoneNumberType.SHARED_COST,  # 400 numbers
    PhoneNumberType.TOLL_FREE,  # 800 numbers
    PhoneNumberType.UAN,
}
_MUNICIPALITIES = ("北京市", "上海市", "天津市", "重庆市")
_REGION = re.compile(r"^(?P<province>.+?(?:省|自治区|特别行政区))?(?P<city>.+?(?:市|州|盟|地区))?$")


@dataclass(frozen=True)
class Phone:
    e164: str
    province: str = ""
    city: str = ""


def parse_phone(raw: str) -> Phone | None:
    """A Chinese mobile, landline, 400/800 or international number in E.164, or None."""
    text = (raw or "").strip()
    if not text:
        return None
    try:
        number = phonenumbers.parse(text, "CN")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    if phonenumbers.number_type(number) not in _ACCEPTED_TYPES:
        return None
    province, city = split_region(geocoder.description_for_number(number, "zh"))
    return Phone(
        phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), province, city
    )


def split_region(description: str) -> tuple[str, str]:
    """'江苏省连云港市' → ('江苏省', '连云港市'); '北京市' → ('北京市', '北京市')."""
    text = (description or "").strip()
    if text in _MUNICIPALITIES:
        return text, text
    match = _REGION.match(text)
    if not match or not (match["province"] or match["city"]):
        return "", ""
    return match["province"] or "", match["city"] or ""


_COUNTING = "01234567890123456789"
_KNOWN_PLACEHOLDERS = {"13800138000"}


def looks_fake_phone(phone: str) -> bool:
    """Placeholder numbers people type to get past a form, in E.164 or as typed:
    13800000000, 13888888888, 13333333333 (one digit after the prefix), 13912345678
    (a counting run after it), 12345678901 or 98765432109 (counting throughout),
    11111111111. Strangers share them, so they never identify anyone."""
    text = (phone or "").strip()
    digits = re.sub(r"\D", "", text)
    if text.startswith("+86") or (text.startswith("0086") and len(digits) > 13):
        digits = digits[2:] if text.startswith("+") else digits[4:]
    if len(digits) < 7:
        return False
    rest = digits[3:]
    return (
        len(set(rest)) <= 1
        or rest in ("12345678", "87654321")
        or digits in _COUNTING
        or digits in _COUNTING[::-1]
        or digits in _KNOWN_PLACEHOLDERS
    )


def is_valid_email(value: str) -> bool:
    try:
        validate_email(value)
    except ValidationError:
        return False
    return True


_COMPANY_NOISE = re.compile(
    r"(股份有限公司|有限责任公司|有限公司|集团|公司|co\.?,?\s*ltd\.?|ltd\.?|inc\.?|corp\.?|limited)",
    re.IGNORECASE,
)
_BRACKETED = re.compile(r"[（(][^）)]*[）)]")
_PUNCT = re.compile(r"[\s\W_]+", re.UNICODE)


def company_key(name: str) -> str:
    """'宁波恒力液压科技有限公司' and '宁波恒力液压科技（有限公司）' → '宁波恒力液压科技'."""
    text = unicodedata.normalize("NFKC", name or "").lower()
    text = _BRACKETED.sub("", text)
    text = _COMPANY_NOISE.sub("", text)
    return _PUNCT.sub("", text)


def person_key(name: str) -> str:
    text = unicodedata.normalize("NFKC", name or "").lower()
    return _PUNCT.sub("", text)


_TEST_WORDS = ("测试", "test", "asdf", "qwer", "aaaa")


def looks_like_test_entry(*values: str) -> bool:
    text = " ".join(v for v in values if v).lower()
    return any(word in text for word in _TEST_WORDS)


_BUDGET_UNITS = {
    "亿": 100_000_000,
    "千万": 10_000_000,
    "百万": 1_000_000,
    "万": 10_000,
    "千": 1_000,
}
_BUDGET_NUMBER = re.compile(r"(\d+(?:\.\d+)?)\s*(亿|千万|百万|万|千|[kKmMwW])?")
_LATIN_UNITS = {"k": 1_000, "m": 1_000_000, "w": 10_000}


def parse_budget(text: str) -> int | None:
    """A budget in yuan from what people type: "50万", "50-100万", "¥800,000", "1.2亿",
    "500k". A range counts by its lower end; the unit after a range's upper end applies
    to both ends ("50-100万" is 500,000). None when there is no number."""
    raw = unicodedata.normalize("NFKC", text or "").replace(",", "").replace("，", "")
    found = _BUDGET_NUMBER.findall(raw)
    if not found:
        return None
    unit = next((u for _n, u in found if u), "")
    first_number, first_unit = found[0]
    factor_unit = first_unit or unit
    factor = _BUDGET_UNITS.get(factor_unit) or _LATIN_UNITS.get(factor_unit.lower(), 1)
    return int(float(first_number) * factor)


_REGION_SUFFIX = re.compile(r"(省|市|自治区|特别行政区|壮族|回族|维吾尔|地区|盟|州)+$")


def region_key(name: str) -> str:
    """A province or city without its administrative suffix, for matching: 广东省 → 广东,
    深圳市 → 深圳, 广西壮族自治区 → 广西."""
    return _REGION_SUFFIX.sub("", (name or "").strip()) or (name or "").strip()


def keyword_matches(keyword: str, text: str) -> bool:
    """Whether `keyword` occurs in `text`: Latin words and abbreviations as whole tokens
    ("CT" in "CT机" but not in "ACT", any case), Chinese anywhere."""
    if keyword.isascii():
        pattern = r"(?<![A-Za-z0-9])" + re.escape(keyword) + r"(?![A-Za-z0-9])"
        return re.search(pattern, text, re.IGNORECASE) is not None
    return keyword.lower() in text.lower()
