"""in_chinese: why a value went to a person, in the keyers' words. ocr/decide.py, ocr/choice.py and
ocr/validate.py give their reasons in English (logs, the API, the record); the key-entry page shows these.
A reason not in the table is shown as it is (a new one reads in English until it is added here)."""

from __future__ import annotations

import re

# (pattern of the English reason, the Chinese, with the pattern's groups as {1}, {2}...); first match wins.
REASONS: tuple[tuple[str, str], ...] = (
    # ocr/decide.py
    (
        r"does not look printed \(match (-?[\d.]+) < [\d.]+\).*",
        "不像打印字迹（吻合度 {1}），可能是手写或污损",
    ),
    (
        r"a character does not look printed as read \(match (-?[\d.]+) < [\d.]+\)",
        "有字与识别结果不符（吻合度 {1}）",
    ),
    (r"(.+) could as well be (.+) \(the print matches it only (-?[\d.]+) better\)", "“{1}”也可能是“{2}”"),
    (r"the reads disagree: (\d+) of (\d+)", "多次识别结果不一致（{1}/{2}）"),
    (r"only (\d+) of (\d+) reads give (.+)", "仅 {1}/{2} 次识别得到 {3}"),
    (r"(.+) and (.+) match the ink almost equally", "{1} 与 {2} 难以区分"),
    (r"the two engines disagree: (.+)", "两个识别引擎结果不同：{1}"),
    (r"two readings disagree: (.+)", "两次识别结果不同：{1}"),
    (r"OCR confidence (\d+) below (\d+)", "识别置信度低（{1}）"),
    (r"PP-OCR confidence (\d+) below (\d+)", "第二识别引擎置信度低（{1}）"),
    (r"one PP-OCR read does not settle a .*", "仅一个识别引擎的结果，不足以确认"),
    (r"one read, not checked against the print", "仅识别一次，未与打印字迹核对"),
    (r"nothing written in the field", "字段为空"),
    (r"one character, not the size or on the line of .*", "单个字，大小或位置与其他打印内容不符，可能是手写"),
    (r"differs from the form's QR code \((.+)\)", "与投保单二维码（{1}）不符"),
    # ocr/choice.py
    (r"unclear mark in (.+)", "勾选不清：{1}"),
    (r"more than one ticked: (.+)", "勾选了多项：{1}"),
    (r"nothing ticked", "未勾选"),
    # ocr/validate.py
    (r"an ID number has 18 characters, this has (\d+)", "身份证号码应为18位，此处为{1}位"),
    (r"not the pattern of an ID number .*", "不是身份证号码格式（17位数字加一位数字或X）"),
    (r"(\d+) is not a real birth date", "{1} 不是有效的出生日期"),
    (r"the birth date inside is in the future", "号码中的出生日期晚于今天"),
    (r"the check character does not match \(GB 11643\)", "校验码不符（GB 11643）"),
    (r"(.+) is not a real date", "{1} 不是有效日期"),
    (r"not a date .*", "不是日期（如 1987-03-15 或 1987年3月15日）"),
    (r"not an amount .*", "不是金额（数字，最多两位小数）"),
    (r"not a whole number", "不是整数"),
    (r"a mobile number has 11 digits starting 13-19", "手机号码应为13-19开头的11位数字"),
    (r"sex is 男 or 女", "性别应为男或女"),
    (r"a name is 2-20 Chinese characters.*", "姓名应为2-20个汉字（少数民族姓名各部分间用·）"),
    (r"a code is 4-32 letters and digits", "编号应为4-32位字母或数字"),
    (r"a card or account number has 16-19 digits, this has (\d+)", "卡号应为16-19位，此处为{1}位"),
    (r"the check digit does not match \(Luhn\)", "卡号校验位不符（Luhn）"),
    (r"empty", "为空"),
    (r"an address is at least 4 characters, in Chinese", "地址应至少4个汉字"),
    (r"not one of the 56 nationalities", "不是56个民族之一"),
    (r"does not match the birth date in .+", "与证件号码中的出生日期不符"),
    (r"does not match the sex digit of .+", "与证件号码中的性别不符"),
    (r"ends \((.+)\) before it begins \(valid_from (.+)\)", "有效期截止（{1}）早于起始（{2}）"),
    (r"the items add up to ([\d.]+), not the total (.+)", "各项合计 {1}，与总额 {2} 不符"),
    (r"(\w+) (\S+) is after (\w+) (\S+)", "日期 {2} 晚于 {4}"),
    (r"(\w+) (\S+) is before (\w+) (\S+)", "日期 {2} 早于 {4}"),
    # keyentry.py
    (r"a keyer could not read it: scan the page again", "录入员无法辨认：请重新扫描该页"),
)
_COMPILED = tuple((re.compile(pattern), zh) for pattern, zh in REASONS)


def in_chinese(reason: str) -> str:
    """Return a reason in Chinese (as it is when the table does not know it)."""
    for pattern, zh in _COMPILED:
        match = pattern.fullmatch(reason)
        if match:
            return zh.format("", *match.groups())
    return reason
