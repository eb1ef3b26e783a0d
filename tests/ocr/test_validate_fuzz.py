"""Property-based fuzzing of the validators (ocr/validate.py) and the ID number (idnumber.py): on any text
they answer with a value and reasons, never an exception; a value they accept is canonical (ASCII, in its
one spelling) and accepted again as itself; GB 11643's check character catches every single error."""

from __future__ import annotations

import re
from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

import idnumber
from ocr.validate import CHECKS, LONG_TERM, cross_check, match_idcard, validate

# Reproducible in CI: the same examples every run, nothing remembered between runs.
FUZZ = settings(derandomize=True, database=None, max_examples=400, deadline=None)
KINDS = sorted(CHECKS)
# Characters the validators treat specially, and their look-alikes from other scripts: ASCII and
# full-width digits, Arabic-Indic and Devanagari digits, OCR confusables, separators, date words.
TRICKY = (
    "0123456789０１２３４５６７８９٠١٢٣٤٥٦٧٨٩०१२३४५६७८९"
    "OoDQlI|iZSsBgqXxß"
    " \u3000_—–-‐,，、'`.·・•/+¥￥元年月日长期男女汉族张三丰阿依古丽买\n\t"
)
DIGITS = (
    "0123456789０１２٣٤٥६७८९OlSB.+-年月日X"  # numbers as OCR and keyers produce them, and as nobody should
)
texts = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=TRICKY, max_size=24),
    st.text(alphabet=DIGITS, min_size=8, max_size=20),
    st.text(alphabet=DIGITS, max_size=8),
)
# What each kind's accepted value must look like: ASCII digits, one spelling.
CANONICAL = {
    "id_number": r"[1-9][0-9]{16}[0-9X]",
    "date": r"[0-9]{4}-[0-9]{2}-[0-9]{2}|" + LONG_TERM,
    "amount": r"(0|[1-9][0-9]{0,11})\.[0-9]{2}",
    "integer": r"0|[1-9][0-9]{0,8}",
    "phone": r"1[3-9][0-9]{9}",
    "sex": r"[男女]",
    "code": r"[A-Z0-9]{4,32}",
}


@st.composite
def id_numbers(draw) -> str:
    region = draw(st.sampled_from(["110105", "310104", "440106", "510107", "654321"]))
    born = date(1900, 1, 1) + timedelta(days=draw(st.integers(0, (date.today() - date(1900, 1, 1)).days)))
    return idnumber.make(region, born, draw(st.integers(0, 999)))


@FUZZ
@given(st.sampled_from(KINDS), texts, st.sampled_from(["", "ethnicity", "valid_to", "applicant_birth_date"]))
def test_a_validator_answers_any_text_with_a_value_and_reasons(kind: str, text: str, field: str) -> None:
    result = validate(kind, text, field)
    assert isinstance(result.value, str)
    assert all(isinstance(p, str) and p for p in result.problems)


@FUZZ
@given(st.sampled_from(KINDS), texts)
def test_an_accepted_value_is_canonical_and_accepted_again_as_itself(kind: str, text: str) -> None:
    result = validate(kind, text, "valid_to")
    if result.ok:
        if kind in CANONICAL:
            assert re.fullmatch(CANONICAL[kind], result.value), result.value
        again = validate(kind, result.value, "valid_to")
        assert (again.ok, again.value) == (True, result.value)


@FUZZ
@given(texts)
def test_an_accepted_id_number_is_a_valid_one(text: str) -> None:
    result = validate("id_number", text)
    assert result.ok == idnumber.is_valid(result.value)


@FUZZ
@given(texts)
def test_the_id_number_check_never_raises_and_never_accepts_other_digits(text: str) -> None:
    if idnumber.is_valid(text):
        assert re.fullmatch(r"[0-9]{17}[0-9X]", text)
        assert idnumber.birth_date(text) <= date.today() and idnumber.sex(text) in ("男", "女")


@FUZZ
@given(id_numbers(), st.integers(0, 17), st.sampled_from("0123456789X"))
def test_any_single_character_changed_in_a_valid_id_number_is_caught(number: str, at: int, to: str) -> None:
    changed = number[:at] + to + number[at + 1 :]
    if changed != number:
        assert not idnumber.is_valid(changed)
        assert not validate("id_number", changed).ok


@FUZZ
@given(id_numbers(), st.integers(0, 15))
def test_two_neighbouring_digits_swapped_in_a_valid_id_number_are_caught(number: str, at: int) -> None:
    swapped = number[:at] + number[at + 1] + number[at] + number[at + 2 :]
    if swapped != number:  # ISO 7064 MOD 11-2: neighbouring weights differ, and 11 is prime
        assert not idnumber.is_valid(swapped)


@FUZZ
@given(id_numbers(), st.text(alphabet=TRICKY, max_size=6), st.text(alphabet=TRICKY, max_size=6))
def test_an_id_number_in_a_log_line_is_masked(number: str, before: str, after: str) -> None:
    before = re.sub(r"[0-9]+$", "", before)  # a digit on either side makes it part of a longer number
    after = re.sub(r"^[0-9Xx]+", "", after)
    line = f"{before}{number}{after}"
    masked = idnumber.mask_all(line)
    assert len(masked) == len(line)
    assert number not in masked and number[6:14] not in masked[len(before) :][:18]


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(["id_number", "birth_date", "sex", "applicant_id_number", "applicant_birth_date"]),
        st.one_of(texts, id_numbers()),
    ),
    st.dictionaries(st.sampled_from(["id_number", "name"]), st.one_of(texts, id_numbers())),
)
def test_the_checks_across_fields_answer_any_values(values: dict[str, str], card: dict[str, str]) -> None:
    problems = cross_check(values)
    assert all(isinstance(reasons, list) for reasons in problems.values())
    assert isinstance(match_idcard(values, card), list)


def test_digits_of_other_scripts_are_not_taken_for_ascii_ones() -> None:
    # Found by the fuzzing above: \d matched them, so these were accepted and stored as the value.
    assert not idnumber.is_valid("1101051987٠٣150013")
    assert not validate("id_number", "1101051987٠٣150013").ok
    assert not validate("amount", "0.०0").ok
    assert not validate("phone", "13८००१३८०००").ok
