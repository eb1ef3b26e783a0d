"""Identity numbers. The resident ID number (公民身份号码), GB 11643-1999: 6-digit region, 8-digit birth
date, 3-digit sequence (odd for men, even for women) and an ISO 7064 MOD 11-2 check character (X for 10);
and the other identity documents a customer may hold (``identify``): the Hong Kong, Macao and Taiwan
residents' residence permit and the foreigner's permanent residence card of 2023, both in the same
18-character shape with the same check; passports; the Hong Kong/Macao and Taiwan travel permits; the old
15-character permanent residence card; and for companies the unified social credit code, GB 32100-2015."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from redaction import Redact

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK = "10X98765432"
# [0-9], not \d: \d also matches other scripts' digits (١, ５), which int() reads but no key may hold.
PATTERN = re.compile(r"^[1-9][0-9]{5}(18|19|20)[0-9]{2}[0-9]{4}[0-9]{3}[0-9X]$")


def check_character(first17: str) -> str:
    """Return the check character for the first 17 digits."""
    return CHECK[sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True)) % 11]


def birth_date(number: str) -> date:
    """Return the birth date held in an 18-character ID number (ValueError if it is not a real date)."""
    return date(int(number[6:10]), int(number[10:12]), int(number[12:14]))


def sex(number: str) -> str:
    """Return 男 or 女 from the sequence digit."""
    return "男" if int(number[16]) % 2 else "女"


def is_valid(number: str) -> bool:
    """Return True for an 18-character number with a real birth date and the right check character."""
    if not PATTERN.fullmatch(number):
        return False
    try:
        born = birth_date(number)
    except ValueError:
        return False
    return born <= date.today() and check_character(number[:17]) == number[17]


def make(region: str, born: date, sequence: int) -> str:
    """Return a valid ID number for a region code, birth date and 3-digit sequence."""
    first17 = f"{region}{born:%Y%m%d}{sequence:03d}"
    return first17 + check_character(first17)


class IdKind(StrEnum):
    resident = "resident_id"  # 居民身份证, GB 11643
    hmt_residence = "hmt_residence_permit"  # 港澳台居民居住证: region 810000/820000/830000, GB 11643 check
    foreign_permanent = "foreign_permanent_residence"  # 外国人永久居留身份证 (2023): 9 first, GB 11643 check
    foreign_permanent_old = "foreign_permanent_residence_2004"  # the 2004 card: 3 letters, 12 digits
    passport = "passport"
    hk_macao_permit = "hk_macao_permit"  # 港澳居民来往内地通行证: H or M, then 8 or 10 digits
    taiwan_permit = "taiwan_permit"  # 台湾居民来往大陆通行证: 8 or 10 digits
    credit_code = "unified_social_credit_code"  # 统一社会信用代码, GB 32100


# GB 32100-2015: 17 characters of this set weighted 3^i mod 31, then the check character (31 - sum mod
# 31) mod 31 from the same set. I, O, Z, S and V are not in it (they read as 1, 0, 2, 5 and U).
CREDIT_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_CREDIT = re.compile(rf"^[0-9A-HJ-NPQRTUWXY]{{2}}[0-9]{{6}}[{CREDIT_CHARS}]{{10}}$")
_SHAPES = (
    (IdKind.hk_macao_permit, re.compile(r"^[HM][0-9]{8}([0-9]{2})?$")),
    (IdKind.taiwan_permit, re.compile(r"^[0-9]{8}([0-9]{2})?$")),
    (IdKind.foreign_permanent_old, re.compile(r"^[A-Z]{3}[0-9]{12}$")),
    # Chinese passports: E or G and 8 digits, or E, a letter (not I or O) and 7 digits; others: the
    # holder's state's own, 5-17 letters and digits with at least one letter, checked only by shape.
    (IdKind.passport, re.compile(r"^([EG][0-9]{8}|E[A-HJ-NP-Z][0-9]{7}|(?=[0-9A-Z]*[A-Z])[0-9A-Z]{5,17})$")),
)


def credit_check_character(first17: str) -> str:
    """Return the GB 32100 check character for the first 17 characters of a unified social credit code."""
    total = sum(CREDIT_CHARS.index(c) * w for c, w in zip(first17, CREDIT_WEIGHTS, strict=True))
    return CREDIT_CHARS[(31 - total % 31) % 31]


@dataclass(frozen=True)
class Identity:
    """An identity number, the kind it is, and why it is not valid (None when it is)."""

    number: str
    kind: IdKind | None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.kind is not None and self.problem is None


def _eighteen(number: str, kind: IdKind) -> str | None:
    """GB 11643's shape and check, for the resident ID and the cards made in its image."""
    first = "9" if kind == IdKind.foreign_permanent else "1-8"
    if not re.fullmatch(rf"[{first}][0-9]{{16}}[0-9X]", number):
        return f"not 18 characters ({first} first, 17 digits and a check digit or X)"
    if kind == IdKind.hmt_residence and number[:2] not in ("81", "82", "83"):
        return "a residence permit's number begins 81 (Hong Kong), 82 (Macao) or 83 (Taiwan)"
    try:
        born = birth_date(number)
    except ValueError:
        return f"{number[6:14]} is not a real birth date"
    if born > date.today():
        return "the birth date inside is in the future"
    if check_character(number[:17]) != number[17]:
        return "the check character does not match (GB 11643)"
    return None


def _credit(number: str) -> str | None:
    if not _CREDIT.fullmatch(number):
        return "not 18 characters of a unified social credit code (digits and letters but I, O, Z, S, V)"
    if credit_check_character(number[:17]) != number[17]:
        return "the check character does not match (GB 32100)"
    return None


def _shape(kind: IdKind):
    pattern = dict(_SHAPES)[kind]
    return lambda number: None if pattern.fullmatch(number) else f"not the shape of a {kind.value}"


CHECKS = {
    IdKind.resident: lambda n: _eighteen(n, IdKind.resident),
    IdKind.hmt_residence: lambda n: _eighteen(n, IdKind.hmt_residence),
    IdKind.foreign_permanent: lambda n: _eighteen(n, IdKind.foreign_permanent),
    IdKind.credit_code: _credit,
    **{kind: _shape(kind) for kind, _ in _SHAPES},
}
KINDS_TEXT = (
    "a resident ID or residence permit (18 characters), a passport, a Hong Kong/Macao (H or M and 8 or 10 "
    "digits) or Taiwan (8 or 10 digits) travel permit, a permanent residence card, or a unified social "
    "credit code (18 characters)"
)


def _guess(number: str) -> list[IdKind]:
    """Return the kinds a number may be by its shape, the likeliest first."""
    if (
        len(number) == 18 and number[:17].isdigit()
    ):  # a card, or a credit code all of digits: the check decides
        if number[0] == "9":
            return [IdKind.foreign_permanent, IdKind.credit_code]
        return [
            IdKind.hmt_residence if number[:2] in ("81", "82", "83") else IdKind.resident,
            IdKind.credit_code,
        ]
    if len(number) == 18:
        return [IdKind.credit_code]
    return [kind for kind, shape in _SHAPES if shape.fullmatch(number)][:1]


def identify(text: str, kind: IdKind | None = None) -> Identity:
    """Return the identity number in text (spaces dropped, letters upper-cased), its kind (the one given,
    or the one its shape says) and what is wrong with it. A number of no kind we know has ``kind`` None:
    nothing is filed under it."""
    number = re.sub(r"\s+", "", text or "").upper()
    if not number:
        return Identity(number, kind, "no number could be read")
    if not re.fullmatch(r"[0-9A-Z]+", number):
        return Identity(number, kind, "holds characters that are no digits or Latin letters")
    kinds = [kind] if kind is not None else _guess(number)
    if not kinds:
        return Identity(number, None, f"not an identity number of a kind we know ({len(number)} characters): "
                        + KINDS_TEXT)  # fmt: skip
    found = [Identity(number, k, CHECKS[k](number)) for k in kinds]
    return next((i for i in found if i.ok), found[0])


ANYWHERE = re.compile(
    r"(?<![0-9])([1-9][0-9]{5})((?:18|19|20)[0-9]{2}[01][0-9][0-3][0-9][0-9]{3})([0-9Xx])(?![0-9])"
)


def mask_all(text: str) -> str:
    """Return text with every ID number in it masked (110105********0013): for log lines and URLs."""
    return ANYWHERE.sub(lambda m: m.group(1) + "*" * 8 + m.group(2)[-3:] + m.group(3), text)


CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]{2,}")


def mask_names(text: str) -> str:
    """Return text with every run of Chinese characters cut to its first (张三丰 → 张**): the service logs in
    English, so Chinese text in a log line is a customer's name or address."""
    return CJK_RUN.sub(lambda m: m.group(0)[0] + "*" * (len(m.group(0)) - 1), text)


def mask_personal(text: str) -> str:
    return mask_names(mask_all(text))


class MaskIdNumbers(Redact):
    """A logging filter that masks ID numbers and names in the message, its arguments (e.g. uvicorn's
    URLs) and its traceback (an exception's message may quote a value)."""

    def __init__(self) -> None:
        super().__init__(mask_personal)


def mask(number: str) -> str:
    """Return the number with its birth date and sequence hidden (110105********0013), for logs."""
    if len(number) <= 10:
        return "*" * len(number)
    return number[:6] + "*" * (len(number) - 10) + number[-4:]
