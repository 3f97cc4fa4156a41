"""Field mapping (F3): rules, value maps, defaults, presets, validation."""

import pytest

from leads.intake import mapping
from leads.models import Industry, MappingPreset

DOUYIN = {
    "clue_id": "7301234567890",
    "name": "李经理",
    "telephone": "13912345678",
    "remark": "想了解DR设备价格",
    "campaign_name": "春季医疗设备推广",
    "ad_id": 1789,
    "form_data": {"公司名称": "杭州明德医疗器械有限公司", "行业": "制造业", "公司规模": "51-200人"},
}
SMS = {"from": "+86 139 1234 5678", "content": "请回电，需要CT报价", "msg_id": "sms-1"}
CALL = {
    "call_id": "c-88",
    "caller": "0571-87654321",
    "customer_name": "陈主任",
    "customer_company": "浙江省人民医院",
    "summary": "咨询超声设备维修",
}

pytestmark = pytest.mark.usefixtures("english")


def test_the_douyin_preset_maps_its_push():
    values = mapping.apply(MappingPreset.DOUYIN, [], DOUYIN)
    assert values == {
        "external_id": "7301234567890",
        "contact_name": "李经理",
        "phone": "13912345678",
        "message": "想了解DR设备价格",
        "company": "杭州明德医疗器械有限公司",
        "industry": Industry.MANUFACTURING,
        "company_size": 2,
        "utm_source": "douyin",
        "utm_campaign": "春季医疗设备推广",
        "utm_content": "1789",
    }


def test_the_sms_and_call_centre_presets():
    assert mapping.apply(MappingPreset.SMS, [], SMS) == {
        "phone": "+86 139 1234 5678",
        "message": "请回电，需要CT报价",
        "external_id": "sms-1",
        "utm_source": "sms",
    }
    values = mapping.apply(MappingPreset.CALL_CENTER, [], CALL)
    assert values["phone"] == "0571-87654321"
    assert values["company"] == "浙江省人民医院"
    assert values["utm_source"] == "400"


def test_channel_rules_override_the_preset_field_by_field():
    rules = [
        {"field": "company", "path": "form_data.单位"},
        {"field": "budget", "default": "待确认"},
    ]
    payload = {**DOUYIN, "form_data": {"单位": "某某医院"}}
    values = mapping.apply(MappingPreset.DOUYIN, rules, payload)
    assert values["company"] == "某某医院"
    assert values["budget"] == "待确认"
    assert values["phone"] == "13912345678"  # still from the preset


def test_value_maps_and_defaults():
    rules = [
        {"field": "company_size", "path": "size", "map": {"1-50人": 1, "51-200人": 2}},
        {"field": "phone", "path": "tel"},
        {"field": "in_tender", "path": "tender", "default": False},
        {"field": "industry", "path": "ind"},
    ]
    assert mapping.apply("", rules, {"size": "1-50人", "tel": "1", "ind": "能源"}) == {
        "company_size": 1,
        "phone": "1",
        "in_tender": False,
        "industry": Industry.ENERGY,
    }
    values = mapping.apply("", rules, {"size": "3", "tel": "1", "tender": "是", "ind": "医疗"})
    assert values["company_size"] == 3
    assert values["in_tender"] is True
    # an industry outside the four becomes 其他 with the original kept as the remark
    assert values["industry"] == Industry.OTHER
    assert values["industry_remark"] == "医疗"


def test_without_preset_or_rules_keys_are_lead_fields():
    assert mapping.apply("", [], {"company": " 甲公司 ", "phone": "1", "unknown": "x"}) == {
        "company": "甲公司",
        "phone": "1",
    }


def test_dotted_paths_reach_into_lists():
    assert mapping.get_path({"a": [{"b": 1}, {"b": 2}]}, "a.1.b") == 2
    assert mapping.get_path({"a": [1]}, "a.5") is None
    assert mapping.get_path({"a": "x"}, "a.b") is None


@pytest.mark.parametrize(
    ("rules", "problem"),
    [
        ({"field": "phone"}, "must be a list"),
        ([{"field": "colour", "path": "x"}], "is not a lead field"),
        ([{"field": "phone"}], "needs a path or a default"),
        ([{"field": "phone", "path": "a..b"}], "dotted keys"),
        ([{"field": "company_size", "path": "s", "map": {"big": "huge"}}], "whole number"),
        ([{"field": "in_tender", "path": "t", "default": "perhaps"}], "yes or no"),
        ([{"field": "phone", "path": "p", "map": ["x"]}], "must be an object"),
        ([{"field": "phone", "path": "p", "colour": 1}], "unknown keys"),
    ],
)
def test_bad_rules_are_explained(rules, problem):
    problems = mapping.validate_rules(rules)
    assert problems and any(problem in p for p in problems), problems


def test_every_preset_is_valid():
    for preset, rules in mapping.PRESETS.items():
        assert mapping.validate_rules(rules) == [], preset


def test_applying_bad_rules_raises():
    with pytest.raises(mapping.MappingError):
        mapping.apply("", [{"field": "nope", "path": "x"}], {})
    with pytest.raises(mapping.MappingError):
        mapping.apply("", [], ["not", "an", "object"])
    with pytest.raises(mapping.MappingError, match="not a single value"):
        mapping.apply("", [{"field": "company", "path": "c"}], {"c": {"nested": 1}})


def test_one_own_rule_keeps_the_other_fields_by_name():
    rules = [{"field": "company", "path": "org"}]
    assert mapping.apply("", rules, {"org": "甲公司", "phone": "1", "company": "ignored"}) == {
        "company": "甲公司",
        "phone": "1",
    }


def test_null_in_a_map_means_leave_the_field_empty():
    rules = [
        {"field": "company_size", "path": "size", "map": {"1-50人": 1, "不清楚": None}},
        {"field": "industry", "path": "ind", "map": {"不清楚": None}, "default": "other"},
    ]
    assert mapping.validate_rules(rules) == []
    values = mapping.apply("", rules, {"size": "不清楚", "ind": " 不清楚 ", "phone": "1"})
    assert values == {"phone": "1"}
    assert mapping.apply("", rules, {"size": "1-50人", "phone": "1"})["company_size"] == 1


@pytest.mark.parametrize(
    ("band", "size"),
    [
        ("1-50人", 1),
        ("51-200人", 2),
        ("201-500人", 3),
        ("501-1000人", 4),
        ("1000人以上", 5),
        ("51 - 200 人", 2),
        ("51～200人", 2),
        ("１０００人以上", 5),
        ("1000人及以上", 5),
        ("3", 3),
        (4, 4),
    ],
)
def test_company_size_bands_are_their_class_without_any_rule(band, size):
    assert mapping.apply("", [], {"company_size": band}) == {"company_size": size}


def test_an_unknown_band_is_noted_not_raised_when_issues_are_collected():
    issues = []
    values = mapping.apply("", [], {"company_size": "很多", "phone": "1"}, issues)
    assert values == {"phone": "1"}
    [issue] = issues
    assert (issue["code"], issue["field"], issue["value"]) == ("unmapped", "company_size", "很多")
    assert issue["error"]["code"] == "needs_size_class"
    with pytest.raises(mapping.MappingError, match="whole number"):
        mapping.apply("", [], {"company_size": "很多", "phone": "1"})


def test_mapping_messages_name_fields_by_their_label():
    from django.utils import translation

    with translation.override("zh-hans"):
        problems = mapping.validate_rules(
            [{"field": "in_tender", "path": "t", "map": {"也许": "perhaps"}}]
        )
        assert problems == ["第 1 条规则：是否招标需要“是”或“否”，收到的是“perhaps”。"], problems
        with pytest.raises(mapping.MappingError) as raised:
            mapping.apply("", [{"field": "company", "path": "c"}], {"c": {"nested": 1}})
        assert str(raised.value).startswith("公司名称：路径“c”处的值是对象或列表"), raised.value
