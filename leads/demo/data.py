"""The demo story's fixed data: the channels, tags and tagging rules the demo tenant gets,
the vocabulary its leads are made of (names, companies, equipment, enquiries), the reps'
notes, and the story's calendar (when version 2 is published, rep5 slows down, rep6 leaves,
which leads are left open). Nothing here touches the database."""

from __future__ import annotations

from datetime import timedelta

from leads.models import ChannelType, ContactMethod, EventSource, MappingPreset, SourceGrade

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


# --- the story's notes and calendar --------------------------------------------------------

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
