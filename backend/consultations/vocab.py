"""The structured choices of the TCM record (舌象 and 脉象): stable English codes → zh-hans terms.

The record stores the codes; the signed content carries code and term together, so what the doctor
signed reads the same whatever the interface language. The terms are clinical terminology (data, like
the names in the diagnosis code table), not interface text, so they are not run through gettext.
"""

from __future__ import annotations

TONGUE_BODY: dict[str, str] = {  # 舌质：舌色与舌形
    "pale_red": "淡红舌",
    "pale": "淡白舌",
    "red": "红舌",
    "red_tip": "舌尖红",
    "crimson": "绛舌",
    "purple": "紫舌",
    "dark_purple": "紫暗舌",
    "blue": "青舌",
    "ecchymosis": "瘀斑舌",
    "enlarged": "胖大舌",
    "thin": "瘦薄舌",
    "teeth_marked": "齿痕舌",
    "fissured": "裂纹舌",
    "prickled": "点刺舌",
    "tender": "嫩舌",
    "tough": "老舌",
}

TONGUE_COATING: dict[str, str] = {  # 舌苔
    "thin_white": "薄白苔",
    "thick_white": "白厚苔",
    "white_greasy": "白腻苔",
    "white_slippery": "白滑苔",
    "thin_yellow": "薄黄苔",
    "yellow": "黄苔",
    "yellow_greasy": "黄腻苔",
    "yellow_dry": "黄燥苔",
    "grey_black": "灰黑苔",
    "curdy": "腐苔",
    "scant": "少苔",
    "absent": "无苔",
    "peeled": "剥苔",
    "geographic": "地图舌苔",
}

PULSE: dict[str, str] = {  # 脉象：二十八脉与平脉；复合脉（如弦细）记为多个
    "normal": "平",
    "floating": "浮",
    "deep": "沉",
    "hidden": "伏",
    "firm": "牢",
    "slow": "迟",
    "moderate": "缓",
    "rapid": "数",
    "racing": "疾",
    "deficient": "虚",
    "excess": "实",
    "slippery": "滑",
    "choppy": "涩",
    "wiry": "弦",
    "tight": "紧",
    "thready": "细",
    "faint": "微",
    "soggy": "濡",
    "weak": "弱",
    "surging": "洪",
    "long": "长",
    "short": "短",
    "hollow": "芤",
    "drumskin": "革",
    "scattered": "散",
    "moving": "动",
    "knotted": "结",
    "intermittent": "代",
    "hurried": "促",
}

MAX_PULSE_TERMS = 5


def vocab_choices() -> dict[str, list[dict[str, str]]]:
    """The form's choices, in display order."""
    return {name: [{"code": code, "label": label} for code, label in table.items()]
            for name, table in (("tongue_body", TONGUE_BODY), ("tongue_coating", TONGUE_COATING),
                                ("pulse", PULSE))}
