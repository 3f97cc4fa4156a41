"""Vocabulary the bench generators share for realistic company names."""

TRADES = [
    "液压科技",
    "精密仪器",
    "机械制造",
    "医疗器械",
    "新能源",
    "自动化设备",
    "环保工程",
    "电气",
    "材料",
    "智能装备",
    "检测技术",
    "流体控制",
    "工业软件",
]
