"""The e-policy request: what the sale system sends once the premium is paid, validated field by field."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

import idnumber
from vocabulary import BUSINESS_NO_PATTERN

NAME_PATTERN = r"^[\u3400-\u9fff·A-Za-z][\u3400-\u9fff·A-Za-z .'-]{0,39}$"
# One addr-spec (RFC 5322 3.4.1) and nothing else: a dot-atom local part and a host name. No quoted local
# part, comment, display name, angle bracket, comma, semicolon or space: the mail's To header is built
# from it, and `x,attacker@evil.example` there would be two recipients.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
ADDR_SPEC = rf"{_ATEXT}+(?:\.{_ATEXT}+)*@{_LABEL}(?:\.{_LABEL})+"


def _one_line(value: str) -> str:
    """Return the text if it holds no line break or other control character (CR, LF, NEL, U+2028...)."""
    if any(unicodedata.category(char) in ("Cc", "Zl", "Zp") for char in value):
        raise ValueError(
            "must be one line: no line break or control character (it goes into the mail's headers)"
        )
    return value


# Text that goes into a header of the mail to the holder (esign/letter.py: Subject, To, the file name); the
# holder's email is held to one address, which has no room for a line break either.
HeaderText = Annotated[str, AfterValidator(_one_line)]


class Frequency(StrEnum):
    single = "single"  # 趸交
    annual = "annual"  # 年交
    semiannual = "semiannual"
    quarterly = "quarterly"
    monthly = "monthly"


FREQUENCY_LABELS = {
    Frequency.single: "趸交",
    Frequency.annual: "年交",
    Frequency.semiannual: "半年交",
    Frequency.quarterly: "季交",
    Frequency.monthly: "月交",
}


class Person(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: HeaderText = Field(pattern=NAME_PATTERN, examples=["张三丰"])
    id_number: str = Field(description="18-character ID number (GB 11643)", examples=["110105198703150013"])

    @field_validator("id_number")
    @classmethod
    def _id_number(cls, value: str) -> str:
        value = value.strip().upper()
        if not idnumber.is_valid(value):
            raise ValueError("not an 18-character ID number with a valid check digit")
        return value


class Holder(Person):
    email: str = Field(
        max_length=254,
        json_schema_extra={"pattern": f"^{ADDR_SPEC}$"},
        description="one address, name@example.com: no display name, list or angle brackets",
        examples=["zhang.sanfeng@example.com"],
    )
    phone: str | None = Field(None, pattern=r"^1[3-9][0-9]{9}$")

    @field_validator("email")
    @classmethod
    def _one_address(cls, value: str) -> str:
        if not re.fullmatch(ADDR_SPEC, value) or len(value.partition("@")[0]) > 64:
            raise ValueError(
                "must be one e-mail address such as name@example.com: no comma, semicolon, space, quotes, "
                "angle brackets, display name or line break"
            )
        return value


class Beneficiary(Person):
    relation: str = Field(max_length=20, examples=["配偶"])
    share: int = Field(ge=1, le=100, description="percent of the benefit; all shares add up to 100")


class EPolicyRequest(BaseModel):
    """One sold policy; the same data sent twice is one version, changed data the next version."""

    model_config = ConfigDict(extra="forbid")

    policy_no: HeaderText = Field(pattern=BUSINESS_NO_PATTERN, examples=["P2026110000123"])
    product_code: str = Field(pattern=r"^[A-Z0-9]{2,20}$", examples=["KN01"])
    product_name: HeaderText = Field(min_length=1, max_length=60, examples=["康宁终身重大疾病保险"])
    holder: Holder
    insured: Person
    beneficiaries: list[Beneficiary] = Field(
        default_factory=list, max_length=10, description="none: the legal heirs (法定)"
    )
    sum_insured: Decimal = Field(gt=0, max_digits=14, decimal_places=2, examples=["500000.00"])
    premium: Decimal = Field(gt=0, max_digits=12, decimal_places=2, examples=["12345.00"])
    payment_frequency: Frequency = Frequency.annual
    payment_years: int = Field(ge=1, le=100, examples=[20])
    effective_date: date
    expiry_date: date | None = Field(None, description="none: whole life (终身)")

    @model_validator(mode="after")
    def _consistent(self) -> EPolicyRequest:
        if self.beneficiaries and sum(b.share for b in self.beneficiaries) != 100:
            raise ValueError("beneficiaries' shares must add up to 100")
        if self.expiry_date is not None and self.expiry_date <= self.effective_date:
            raise ValueError("expiry_date must be after effective_date")
        if self.payment_frequency == Frequency.single and self.payment_years != 1:
            raise ValueError("a single premium is paid in 1 year")
        return self

    def digest(self) -> str:
        """Return the SHA-256 of the policy data in a canonical form: the same data, the same digest."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()


def customer_password(policy: EPolicyRequest, rule: str) -> tuple[str, str]:
    """Return the password the customer opens the PDF with, and how the letter describes it."""
    if rule == "birth":
        return idnumber.birth_date(policy.holder.id_number).strftime(
            "%Y%m%d"
        ), "投保人出生日期（8位数字，如19870315）"
    return policy.holder.id_number[-6:], "投保人身份证号码的后六位"


def sample_request() -> EPolicyRequest:
    """Return a complete example request (README, `imaging samples epolicy`, tests)."""
    return EPolicyRequest(
        policy_no="P2026110000123",
        product_code="KN01",
        product_name="康宁终身重大疾病保险",
        holder=Holder(
            name="张三丰",
            id_number="110105198703150013",
            email="zhang.sanfeng@example.com",
            phone="13812345678",
        ),
        insured=Person(name="李四", id_number="110105201001010010"),
        beneficiaries=[
            Beneficiary(name="王五", id_number="110105199001010010", relation="配偶", share=60),
            Beneficiary(name="张小六", id_number="110105201505050016", relation="子女", share=40),
        ],
        sum_insured=Decimal("500000.00"),
        premium=Decimal("12345.00"),
        payment_frequency=Frequency.annual,
        payment_years=20,
        effective_date=date(2026, 11, 24),
        expiry_date=None,
    )
