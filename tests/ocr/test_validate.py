"""normalise and validate by field kind, and the checks across fields."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import idnumber
from capture.specimens import card_values, form_values
from ocr.validate import cross_check, match_idcard, validate

VALID_ID = "110105198703150013"


@st.composite
def id_numbers(draw) -> str:
    region = draw(st.sampled_from(["110105", "310104", "440106", "510107"]))
    born = date(1930, 1, 1) + timedelta(days=draw(st.integers(0, 30_000)))
    return idnumber.make(region, born, draw(st.integers(0, 999)))


@given(id_numbers())
def test_every_generated_id_number_validates(number: str) -> None:
    assert validate("id_number", number).ok


@settings(max_examples=300)
@given(id_numbers(), st.integers(0, 16), st.integers(1, 9))
def test_any_single_digit_error_in_an_id_number_is_caught(number: str, position: int, shift: int) -> None:
    wrong = number[:position] + str((int(number[position]) + shift) % 10) + number[position + 1 :]
    assert not validate("id_number", wrong).ok  # ISO 7064 MOD 11-2 detects every single substitution


def test_an_id_number_with_digits_of_another_script_is_refused() -> None:
    arabic_indic_one = "\u0661"  # int() reads it as 1, so the check character still matches
    number = VALID_ID[0] + arabic_indic_one + VALID_ID[2:]
    assert not idnumber.is_valid(number)
    assert not validate("id_number", number).ok


@given(st.text(max_size=40))
def test_validators_never_raise_on_any_text(text: str) -> None:
    for kind in ("id_number", "date", "amount", "integer", "phone", "sex", "name", "code", "text", "address"):
        result = validate(kind, text)
        assert isinstance(result.value, str) and isinstance(result.problems, tuple)


@pytest.mark.parametrize(
    ("kind", "text", "value"),
    [
        ("id_number", "1101 0519 8703 1500 13", VALID_ID),
        ("id_number", "１１０１０５１９８７０３１５００１３", VALID_ID),  # full-width digits
        ("id_number", "11O1O5198703l50013", VALID_ID),  # O for 0, l for 1
        ("id_number", "11010519870315001x", None),  # x is X, but then the check character is wrong
        ("date", "1987年3月15日", "1987-03-15"),
        ("date", "1987 年 3 月 15 日", "1987-03-15"),
        ("date", "2015.03.15", "2015-03-15"),
        ("date", "1987-3-5", "1987-03-05"),
        ("date", "1987-02-30", None),
        ("amount", "500,000.00", "500000.00"),
        ("amount", "12345", "12345.00"),
        ("amount", "¥ 1,234.5元", "1234.50"),
        ("amount", "12.345", None),
        ("integer", "2O", "20"),
        ("phone", "138 1234 5678", "13812345678"),
        ("phone", "+86 13812345678", "13812345678"),
        ("phone", "12812345678", None),
        ("phone", "13٨12345678", None),  # digits of another script are not digits here
        ("amount", "١٢٣", None),
        ("sex", " 女 ", "女"),
        ("sex", "x", None),
        ("name", "张 三丰", "张三丰"),
        ("text", "鑫享年金保险 (分红型)", "鑫享年金保险(分红型)"),  # a space beside Chinese is the reader's
        ("text", "Ping  An Life", "Ping An Life"),
        ("name", "阿依古丽·买买提", "阿依古丽·买买提"),
        ("name", "Zhang San", None),
        ("name", "张", None),
        ("code", "tb 2026 0012 34", "TB2026001234"),
        ("address", "北京市朝阳区建国路88号", "北京市朝阳区建国路88号"),
        ("address", "88", None),
    ],
)
def test_values_are_normalised_or_refused_with_a_reason(kind: str, text: str, value: str | None) -> None:
    result = validate(kind, text)
    if value is None:
        assert not result.ok and result.problems[0]
    else:
        assert result.ok, result.problems
        assert result.value == value


def test_long_term_is_a_valid_end_date_only_on_the_card() -> None:
    assert validate("date", "长期", "valid_to").value == "长期"
    assert not validate("date", "长期", "applicant_birth_date").ok


def test_generated_specimen_values_all_validate() -> None:
    from capture.templates import latest

    rng = random.Random(7)
    for _ in range(50):
        for template, values in (
            (latest("application_form"), form_values(rng)),
            (latest("idcard_front"), card_values(rng)),
        ):
            for spec in template.fields:
                result = validate(str(spec.kind), values[spec.name], spec.name)
                assert result.ok, (spec.name, values[spec.name], result.problems)
            assert cross_check(values) == {}


def test_a_birth_date_or_sex_that_disagrees_with_the_id_number_is_flagged() -> None:
    values = {"applicant_id_number": VALID_ID, "applicant_birth_date": "1987-03-16", "applicant_sex": "女"}
    problems = cross_check(values)
    assert set(problems) == {"applicant_birth_date", "applicant_sex"}
    assert cross_check({**values, "applicant_birth_date": "1987-03-15", "applicant_sex": "男"}) == {}


def test_the_id_card_in_the_scan_must_be_the_applicants_or_the_insureds() -> None:
    form = {
        "applicant_id_number": VALID_ID,
        "applicant_name": "张三丰",
        "insured_id_number": "110105201001010010",
    }
    assert match_idcard(form, {"id_number": VALID_ID, "name": "张三丰"}) == []
    assert match_idcard(form, {"id_number": "110105201001010010", "name": "李四"}) == []
    assert match_idcard(form, {"id_number": VALID_ID, "name": "张三"}) != []
    assert match_idcard(form, {"id_number": "310104199012010028"}) != []
