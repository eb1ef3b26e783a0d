"""normalise and validate: OCR or keyed text in, a canonical value and the reasons it cannot be trusted out.

A value is trusted only when every check of its kind passes; the reasons name what failed, for the
key-entry operator and for the decision. Rules by field kind (see capture/templates.py).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date

from stdnum import luhn

import idnumber

# Confusables OCR produces in digit-only fields. Letters are mapped only where the kind has no letters.
_DIGIT_CONFUSABLES = str.maketrans(
    {"O": "0", "o": "0", "D": "0", "Q": "0", "l": "1", "I": "1", "|": "1", "i": "1",
     "Z": "2", "S": "5", "s": "5", "B": "8", "g": "9", "q": "9"}
)  # fmt: skip
_SEPARATORS = re.compile(r"[\s\u3000_—–\-‐,，、'`]+")
_BESIDE_CJK = re.compile(r"(?<=[\u3400-\u9fff]) | (?=[\u3400-\u9fff])")
_CJK_NAME = re.compile(r"^[\u4e00-\u9fff\u3400-\u4dbf]+([·•][\u4e00-\u9fff\u3400-\u4dbf]+)*$")
_DATE_PATTERNS = (
    re.compile(r"^([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})$"),
    re.compile(r"^([0-9]{4})[./]([0-9]{1,2})[./]([0-9]{1,2})$"),
    re.compile(r"^([0-9]{4})年([0-9]{1,2})月([0-9]{1,2})日?$"),
    re.compile(r"^([0-9]{4})([0-9]{2})([0-9]{2})$"),
)
LONG_TERM = "长期"  # an ID card valid for life prints 长期 as its end date
# The 56 nationalities an ID card's 民族 line can hold (GB 3304).
ETHNICITIES = frozenset(
    (
        "汉", "蒙古", "回", "藏", "维吾尔", "苗", "彝", "壮", "布依", "朝鲜", "满", "侗",
        "瑶", "白", "土家", "哈尼", "哈萨克", "傣", "黎", "傈僳", "佤", "畲", "高山", "拉祜",
        "水", "东乡", "纳西", "景颇", "柯尔克孜", "土", "达斡尔", "仫佬", "羌", "布朗", "撒拉", "毛南",
        "仡佬", "锡伯", "阿昌", "普米", "塔吉克", "怒", "乌孜别克", "俄罗斯", "鄂温克", "德昂", "保安",
        "裕固", "京", "塔塔尔", "独龙", "鄂伦春", "赫哲", "门巴", "珞巴", "基诺",
    )
)  # fmt: skip


@dataclass(frozen=True)
class Checked:
    """A value after normalisation, and why it cannot be trusted (empty when every check passed)."""

    value: str
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


def _clean(text: str) -> str:
    # NFKC turns full-width digits and letters (１２３, ＡＢ) into ASCII, the ideographic space into a space.
    return unicodedata.normalize("NFKC", text or "").strip()


def _digits(text: str) -> str:
    return _SEPARATORS.sub("", _clean(text)).translate(_DIGIT_CONFUSABLES)


def check_id_number(text: str) -> Checked:
    value = _SEPARATORS.sub("", _clean(text))
    # The last character may be X; the 17 before it are digits, so letters there are misread digits.
    value = value[:17].translate(_DIGIT_CONFUSABLES) + value[17:].upper()
    if len(value) != 18:
        return Checked(value, (f"an ID number has 18 characters, this has {len(value)}",))
    if not idnumber.PATTERN.fullmatch(value):
        return Checked(value, ("not the pattern of an ID number (17 digits and a digit or X)",))
    try:
        born = idnumber.birth_date(value)
    except ValueError:
        return Checked(value, (f"{value[6:14]} is not a real birth date",))
    if born > date.today():
        return Checked(value, ("the birth date inside is in the future",))
    if idnumber.check_character(value[:17]) != value[17]:
        return Checked(value, ("the check character does not match (GB 11643)",))
    return Checked(value)


def check_date(text: str, long_term_allowed: bool = False) -> Checked:
    value = re.sub(r"\s+", "", _clean(text))
    if long_term_allowed and value == LONG_TERM:
        return Checked(LONG_TERM)
    value = re.sub(r"[^年月日./\-]", lambda m: m.group(0).translate(_DIGIT_CONFUSABLES), value)
    for pattern in _DATE_PATTERNS:
        match = pattern.fullmatch(value)
        if match:
            try:
                return Checked(date(*(int(g) for g in match.groups())).isoformat())
            except ValueError:
                return Checked(value, (f"{value} is not a real date",))
    return Checked(value, ("not a date (YYYY-MM-DD or 1987年3月15日)",))


# Kinds whose value is kept as read match [0-9], not \d: \d takes any script's digits (٣, ३), which
# would then be stored as the canonical value.
def check_amount(text: str) -> Checked:
    value = _clean(text).replace("元", "").replace("¥", "").replace("￥", "")
    value = re.sub(r"[\s,，]", "", value).translate(_DIGIT_CONFUSABLES)
    if not re.fullmatch(r"[0-9]{1,12}(\.[0-9]{1,2})?", value):
        return Checked(value, ("not an amount (digits with up to two decimals)",))
    return Checked(f"{int(value.split('.')[0])}.{(value.split('.') + [''])[1].ljust(2, '0')}")


def check_integer(text: str) -> Checked:
    value = _digits(text)
    if not re.fullmatch(r"[0-9]{1,9}", value):
        return Checked(value, ("not a whole number",))
    return Checked(str(int(value)))


def check_phone(text: str) -> Checked:
    value = _digits(text).removeprefix("+86")
    if not re.fullmatch(r"1[3-9][0-9]{9}", value):
        return Checked(value, ("a mobile number has 11 digits starting 13-19",))
    return Checked(value)


def check_sex(text: str) -> Checked:
    value = _clean(text).replace(" ", "")
    return Checked(value) if value in {"男", "女"} else Checked(value, ("sex is 男 or 女",))


def check_name(text: str) -> Checked:
    value = re.sub(r"\s+", "", _clean(text)).replace("・", "·").replace(".", "·")
    if not _CJK_NAME.fullmatch(value) or not 2 <= len(value) <= 20:
        return Checked(value, ("a name is 2-20 Chinese characters (· between parts of a minority name)",))
    return Checked(value)


def check_code(text: str) -> Checked:
    value = _SEPARATORS.sub("", _clean(text)).upper()
    if not re.fullmatch(r"[A-Z0-9]{4,32}", value):
        return Checked(value, ("a code is 4-32 letters and digits",))
    return Checked(value)


def check_card_number(text: str) -> Checked:
    value = _digits(text)
    if not re.fullmatch(r"[0-9]{16,19}", value):
        return Checked(value, (f"a card or account number has 16-19 digits, this has {len(value)}",))
    if not luhn.is_valid(value):
        return Checked(value, ("the check digit does not match (Luhn)",))
    return Checked(value)


def check_text(text: str) -> Checked:
    # Chinese is written without spaces: one beside a Chinese character is the reader's (PP-OCR reads
    # 鑫享年金保险 (分红型) where tesseract's words join as printed).
    value = _BESIDE_CJK.sub("", re.sub(r"\s+", " ", _clean(text)))
    return Checked(value) if value else Checked(value, ("empty",))


def check_address(text: str) -> Checked:
    value = re.sub(r"\s+", "", _clean(text))
    if len(value) < 4 or not re.search(r"[\u4e00-\u9fff]", value):
        return Checked(value, ("an address is at least 4 characters, in Chinese",))
    return Checked(value)


CHECKS = {
    "id_number": check_id_number,
    "date": check_date,
    "amount": check_amount,
    "integer": check_integer,
    "phone": check_phone,
    "sex": check_sex,
    "name": check_name,
    "code": check_code,
    "text": check_text,
    "address": check_address,
    "choice": check_text,
    "card_number": check_card_number,
}


def validate(kind: str, text: str, field_name: str = "") -> Checked:
    """Return the normalised value of a field of this kind and the reasons it cannot be trusted."""
    if kind == "date":
        return check_date(text, long_term_allowed=field_name == "valid_to")
    checked = CHECKS[kind](text)
    if field_name == "ethnicity" and checked.ok and checked.value.removesuffix("族") not in ETHNICITIES:
        return Checked(checked.value, ("not one of the 56 nationalities",))
    if field_name == "ethnicity":
        return Checked(checked.value.removesuffix("族"), checked.problems)
    return checked


def cross_check(values: dict[str, str]) -> dict[str, list[str]]:
    """Return, per field, the disagreements between fields of one document: a birth date or sex that
    does not match the ID number beside it (`applicant_birth_date` with `applicant_id_number`, and on
    a card `birth_date` and `sex` with `id_number`). Values are normalised ones."""
    problems: dict[str, list[str]] = {}
    for name, number in values.items():
        if not name.endswith("id_number") or not idnumber.is_valid(number or ""):
            continue
        prefix = name.removesuffix("id_number")
        born, sex = values.get(f"{prefix}birth_date"), values.get(f"{prefix}sex")
        if born and born != idnumber.birth_date(number).isoformat():
            problems.setdefault(f"{prefix}birth_date", []).append(f"does not match the birth date in {name}")
        if sex and sex != idnumber.sex(number):
            problems.setdefault(f"{prefix}sex", []).append(f"does not match the sex digit of {name}")
    return problems


def document_checks(values: dict[str, str]) -> dict[str, list[str]]:
    """Return, per field, why a document's trusted values do not hold together: ``cross_check`` (birth
    date and sex against the ID number beside them), and dates in order (a card's validity begins before
    it ends). Run on machine values by the decision and again on keyed ones by key-entry."""
    problems = cross_check(values)
    start, end = values.get("valid_from"), values.get("valid_to")
    if start and end and end != LONG_TERM and end <= start:
        problems.setdefault("valid_to", []).append(f"ends ({end}) before it begins (valid_from {start})")
    for name, reasons in dates_in_order(values).items():
        problems.setdefault(name, []).extend(reasons)
    for name, reasons in items_add_up(values).items():
        problems.setdefault(name, []).extend(reasons)
    return problems


# Dates of one document that come in this order (the later may equal the earlier): a stay is admitted
# before it is discharged and invoiced, an event happens before its claim is made.
DATE_ORDER = (
    ("admission_date", "discharge_date"),
    ("discharge_date", "invoice_date"),
    ("admission_date", "invoice_date"),
    ("event_date", "claim_date"),
)
# A medical invoice's charge items (capture/templates/medical_invoice_v1.toml) and their total.
INVOICE_ITEMS = (
    "item_western_medicine",
    "item_examination",
    "item_treatment",
    "item_chinese_medicine",
    "item_laboratory",
    "item_bed",
)
TOTAL = "total_amount"


def _cents(amount: str) -> int:
    whole, _, fraction = amount.partition(".")
    return int(whole) * 100 + int(fraction.ljust(2, "0")[:2])


def dates_in_order(values: dict[str, str]) -> dict[str, list[str]]:
    """Return, per field, the dates of one document out of order (both dates of a pair are named: either
    may be the misread one). Values are normalised ISO dates."""
    problems: dict[str, list[str]] = {}
    for first, then in DATE_ORDER:
        a, b = values.get(first), values.get(then)
        if a and b and b < a:
            problems.setdefault(first, []).append(f"{first} {a} is after {then} {b}")
            problems.setdefault(then, []).append(f"{then} {b} is before {first} {a}")
    return problems


def items_add_up(values: dict[str, str]) -> dict[str, list[str]]:
    """Return, for an invoice's items and total, that the items do not add up to the total (every one is
    named: any of them may be the misread one). Checked only when the total and the items are all known."""
    items = {n: values[n] for n in INVOICE_ITEMS if values.get(n)}
    total = values.get(TOTAL)
    if len(items) < len(INVOICE_ITEMS) or not total:
        return {}
    cents = sum(_cents(v) for v in items.values())
    if cents == _cents(total):
        return {}
    reason = f"the items add up to {cents // 100}.{cents % 100:02d}, not the total {total}"
    return {name: [reason] for name in (*items, TOTAL)}


# The form's parties and what the form says of each: the card must carry the party's number, and may
# not disagree with what the form says of them (the form prints a birth date and sex for the applicant
# only).
PARTIES = {
    "applicant": {"id_number": "applicant_id_number", "name": "applicant_name",
                  "birth_date": "applicant_birth_date", "sex": "applicant_sex"},
    "insured": {"id_number": "insured_id_number", "name": "insured_name"},
}  # fmt: skip
_SAID = {"name": "name", "birth_date": "birth date", "sex": "sex"}


@dataclass(frozen=True)
class CardMatch:
    """Which party of a form an ID card front is (None: neither), and where they disagree."""

    party: str | None
    problems: tuple[str, ...] = ()


def match_card(form: dict[str, str], card: dict[str, str]) -> CardMatch:
    """Return which party of the application form (applicant or insured) the ID card front is, by its ID
    number, and the disagreements of name, birth date and sex with what the form says of that party.
    Values are trusted, normalised ones; a value either side has not got is not compared."""
    number = card.get("id_number")
    for party, names in PARTIES.items():
        if number and number == form.get(names["id_number"]):
            problems = tuple(
                f"the {_SAID[what]} on the ID card ({card[what]}) differs from the {party}'s on the form "
                f"({form[name]})"
                for what, name in names.items()
                if what != "id_number" and card.get(what) and form.get(name) and card[what] != form[name]
            )
            return CardMatch(party, problems)
    shown = idnumber.mask(number) if number else "unread"
    return CardMatch(None, (f"the ID card ({shown}) is neither the applicant's nor the insured's",))


def match_idcard(form: dict[str, str], card: dict[str, str]) -> list[str]:
    """Return the disagreements between an application form and the ID card front in the same scan."""
    return list(match_card(form, card).problems)
