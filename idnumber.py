"""The resident ID number (公民身份号码), GB 11643-1999: 6-digit region, 8-digit birth date, 3-digit
sequence (odd for men, even for women) and an ISO 7064 MOD 11-2 check character (X for 10)."""

from __future__ import annotations

import re
from datetime import date

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
