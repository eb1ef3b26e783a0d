"""Every reason OCR and the validators give is shown to keyers in Chinese (ocr/reasons.py)."""

from __future__ import annotations

import re

from ocr.choice import EMPTY, decide_choice
from ocr.decide import decide_field
from ocr.engine import OcrText
from ocr.reasons import in_chinese
from ocr.validate import document_checks, validate

CJK = re.compile(r"[\u4e00-\u9fff]")


def _reasons() -> list[str]:
    bad = {
        ("id_number", ""): ["1101051987", "11010519870315001A", "110105198702300013", "110105209903150013",
                            "110105198703150023"],
        ("date", ""): ["1987-02-30", "tomorrow"],
        ("amount", ""): ["12a"], ("integer", ""): ["x"], ("phone", ""): ["123"], ("sex", ""): ["m"],
        ("name", ""): ["A"], ("code", ""): ["!"], ("card_number", ""): ["1234", "6222020200112233445"],
        ("text", ""): [""], ("address", ""): ["ab"], ("text", "ethnicity"): ["火星"],
    }  # fmt: skip
    out = [
        p for (kind, name), values in bad.items() for v in values for p in validate(kind, v, name).problems
    ]
    checks = document_checks({
        "id_number": "110105198703150013", "birth_date": "1988-01-01", "sex": "女",
        "valid_from": "2020-01-01", "valid_to": "2010-01-01", "admission_date": "2026-03-02",
        "discharge_date": "2026-03-01", "total_amount": "10.00", "item_bed": "6.00",
        "item_western_medicine": "1.00", "item_examination": "1.00", "item_treatment": "1.00",
        "item_chinese_medicine": "1.00", "item_laboratory": "1.00",
    })  # fmt: skip
    out += [p for problems in checks.values() for p in problems]
    tess, pp = (
        (lambda t, c=90.0: OcrText(t, c, (), "tesseract")),
        (lambda t, c=99.0: OcrText(t, c, (), "ppocr")),
    )
    out += decide_field("name", "x", (tess("孙字", 2.0), pp("孙宇", 10.0))).reasons
    out += decide_field("name", "x", (tess("孙字"), tess("孙宇"))).reasons
    out += decide_field("name", "x", (tess("孙字"), tess("孙宇"), tess("孙字"))).reasons
    out += decide_field("name", "x", ()).reasons
    out += decide_field("date", "x", (pp("2020-01-01"),)).reasons  # one PP-OCR read, no print to check
    out += decide_choice("choice", "payment_method", (("年缴", 0.0), ("月缴", 0.0))).reasons
    out += decide_choice(
        "choice", "payment_method", (("年缴", 0.5), ("月缴", 0.5), ("季缴", EMPTY + 0.01))
    ).reasons
    return out


def test_every_reason_the_validators_and_the_decision_give_reads_in_chinese() -> None:
    reasons = _reasons()
    assert len(reasons) >= 25
    untold = [r for r in reasons if in_chinese(r) == r or not CJK.search(in_chinese(r))]
    assert not untold, untold
    assert in_chinese("the check character does not match (GB 11643)") == "校验码不符（GB 11643）"
    assert in_chinese("OCR confidence 3 below 10") == "识别置信度低（3）"
    assert in_chinese("a reason nobody wrote down yet") == "a reason nobody wrote down yet"
