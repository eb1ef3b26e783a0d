"""Identity numbers of every kind: every generated valid number passes its check, every single
substitution of a number with a check character fails it, and bad input gets a message, not a guess."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import idnumber
from idnumber import CREDIT_CHARS, IdKind, identify

DIGITS = "0123456789"


@st.composite
def born(draw) -> date:
    return date(1930, 1, 1) + timedelta(days=draw(st.integers(0, 30_000)))


@st.composite
def resident(draw) -> str:
    region = draw(st.sampled_from(["110105", "310104", "440106", "510107", "650102"]))
    return idnumber.make(region, draw(born()), draw(st.integers(0, 999)))


@st.composite
def hmt_residence(draw) -> str:
    region = draw(st.sampled_from(["810000", "820000", "830000"]))
    return idnumber.make(region, draw(born()), draw(st.integers(0, 999)))


@st.composite
def foreign_permanent(draw) -> str:
    # 9, two digits of the province, three of the nationality, the birth date, a sequence, the check.
    head = "9" + draw(st.sampled_from(["11", "31", "44"])) + draw(st.sampled_from(["156", "840", "392"]))
    first17 = f"{head}{draw(born()):%Y%m%d}{draw(st.integers(0, 999)):03d}"
    return first17 + idnumber.check_character(first17)


@st.composite
def credit_code(draw) -> str:
    authority = draw(st.sampled_from("15679ANY"))
    kind = draw(st.sampled_from("123459"))
    region = draw(st.sampled_from(["110000", "350100", "440300"]))
    body = draw(st.text(CREDIT_CHARS, min_size=9, max_size=9))
    first17 = authority + kind + region + body
    return first17 + idnumber.credit_check_character(first17)


CHECKED = {
    IdKind.resident: resident(),
    IdKind.hmt_residence: hmt_residence(),
    IdKind.foreign_permanent: foreign_permanent(),
    IdKind.credit_code: credit_code(),
}


@pytest.mark.parametrize("kind", sorted(CHECKED))
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_every_generated_valid_number_passes_as_its_kind(kind: IdKind, data) -> None:
    number = data.draw(CHECKED[kind])
    found = identify(number)
    assert found.ok and found.kind == kind, (number, found)
    assert identify(number, kind).ok


@pytest.mark.parametrize("kind", sorted(CHECKED))
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_every_single_substitution_fails_the_check(kind: IdKind, data) -> None:
    number = data.draw(CHECKED[kind])
    position = data.draw(st.integers(0, 17))
    alphabet = CREDIT_CHARS if kind == IdKind.credit_code else DIGITS + "X" * (position == 17)
    other = data.draw(st.sampled_from([c for c in alphabet if c != number[position]]))
    wrong = number[:position] + other + number[position + 1 :]
    assert not identify(wrong, kind).ok, (number, wrong)


@pytest.mark.parametrize(
    ("number", "kind"),
    [
        ("E12345678", IdKind.passport),
        ("EA1234567", IdKind.passport),
        ("X12AB3456", IdKind.passport),
        ("H12345678", IdKind.hk_macao_permit),
        ("M1234567890", IdKind.hk_macao_permit),
        ("12345678", IdKind.taiwan_permit),
        ("USA110079805", IdKind.passport),
        ("USA123456789012", IdKind.foreign_permanent_old),
        ("91350100M000100Y43", IdKind.credit_code),
    ],
)
def test_numbers_without_a_check_character_are_known_by_their_shape(number: str, kind: IdKind) -> None:
    found = identify(number)
    assert found.ok and found.kind == kind


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no number could be read"),
        ("12", "not an identity number of a kind we know"),
        ("11010519870315001８", "holds characters that are no digits or Latin letters"),
        ("110105198703150018", "check character does not match (GB 11643)"),
        ("110105198702300013", "is not a real birth date"),
        ("91350100M000100Y44", "check character does not match (GB 32100)"),
        ("91350100I000100Y43", "not 18 characters of a unified social credit code"),
    ],
)
def test_bad_numbers_get_a_message_and_no_kind_is_guessed_for_them(text: str, message: str) -> None:
    found = identify(text)
    assert not found.ok and message in found.problem


def test_the_api_refuses_an_unknown_or_failing_number_with_its_message() -> None:
    from starlette.exceptions import HTTPException

    from routes.deps import checked_number

    assert checked_number("customer_id", " 91350100m000100y43 ") == "91350100M000100Y43"
    assert checked_number("customer_id", "E12345678") == "E12345678"
    for raw, message in (("12", "kind we know"), ("91350100M000100Y44", "GB 32100")):
        with pytest.raises(HTTPException) as refused:
            checked_number("customer_id", raw)
        assert refused.value.status_code == 422 and message in refused.value.detail
        assert "nothing is filed under it" in refused.value.detail
