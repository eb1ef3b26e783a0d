"""Varied specimen values for the sample generator: names, valid ID numbers, dates, amounts, addresses.

Everything is drawn from the random generator given, so a seed gives the same values every time.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

from stdnum import luhn

import idnumber
from printing import group_card_number

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡"
    "余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯"
    "龙史黎贺顾毛郝龚邵万钱覃武戴孔欧阳"
)
GIVEN = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉萍红辉鹏飞建国志宏海燕雪梅文斌"
    "婷宇浩然子轩欣怡晨阳思雨嘉佳琪博涵俊峰凯瑞晓东丹亮春兰金凤"
)
ETHNICITIES = ["汉", "汉", "汉", "汉", "回", "满", "蒙古", "壮", "苗", "维吾尔", "土家", "彝", "藏", "朝鲜"]
REGIONS = {
    "110105": ("北京市朝阳区", "北京市公安局朝阳分局"),
    "310104": ("上海市徐汇区", "上海市公安局徐汇分局"),
    "440106": ("广东省广州市天河区", "广州市公安局天河分局"),
    "330106": ("浙江省杭州市西湖区", "杭州市公安局西湖分局"),
    "510107": ("四川省成都市武侯区", "成都市公安局武侯区分局"),
    "420106": ("湖北省武汉市武昌区", "武汉市公安局武昌分局"),
    "370702": ("山东省潍坊市潍城区", "潍坊市公安局潍城分局"),
    "610113": ("陕西省西安市雁塔区", "西安市公安局雁塔分局"),
}
ROADS = [
    "建国路",
    "人民路",
    "解放大道",
    "中山北路",
    "和平街",
    "长江路",
    "文化路",
    "新华西街",
    "滨江东路",
    "学府路",
]
PRODUCTS = [
    "康宁终身重大疾病保险",
    "福禄双喜两全保险",
    "鑫享年金保险（分红型）",
    "少儿教育金保险",
    "意外伤害保险",
    "定期寿险",
]


def _name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice([1, 2, 2])))


def _person(rng: random.Random, youngest: int = 18, oldest: int = 65) -> dict[str, str]:
    region = rng.choice(list(REGIONS))
    born = date(2026, 1, 1) - timedelta(days=rng.randint(youngest * 365, oldest * 365))
    number = idnumber.make(region, born, rng.randint(1, 999))
    return {
        "name": _name(rng),
        "id_number": number,
        "sex": idnumber.sex(number),
        "birth_date": born.isoformat(),
        "region": region,
    }


def _address(rng: random.Random, region: str) -> str:
    place = REGIONS[region][0]
    tail = f"{rng.choice(ROADS)}{rng.randint(1, 999)}号"
    if rng.random() < 0.6:
        tail += f"{rng.randint(1, 30)}栋{rng.randint(1, 6)}单元{rng.randint(1, 33)}{rng.randint(1, 4):02d}室"
    return place + tail


def form_values(rng: random.Random) -> dict[str, str]:
    """Return values for every field of the application form, consistent with each other."""
    applicant = _person(rng)
    insured = applicant if rng.random() < 0.4 else _person(rng, 0, 70)
    sum_insured = rng.choice([50_000, 100_000, 200_000, 300_000, 500_000, 1_000_000]) * rng.choice([1, 1, 2])
    premium = round(sum_insured * rng.uniform(0.004, 0.05), 2)
    values = {
        "application_no": f"TB{rng.randint(2020, 2026)}{rng.randint(0, 99_999_999):08d}",
        "applicant_name": applicant["name"],
        "applicant_sex": applicant["sex"],
        "applicant_birth_date": applicant["birth_date"],
        "applicant_id_number": applicant["id_number"],
        "applicant_phone": "1" + rng.choice("3456789") + "".join(rng.choice("0123456789") for _ in range(9)),
        "applicant_address": _address(rng, applicant["region"]),
        "insured_name": insured["name"],
        "insured_id_number": insured["id_number"],
        "beneficiary_name": _name(rng) if rng.random() < 0.7 else "法定",
        "product_name": rng.choice(PRODUCTS),
        "sum_insured": f"{sum_insured:.2f}",
        "premium": f"{premium:.2f}",
        "payment_years": str(rng.choice([1, 3, 5, 10, 15, 20, 30])),
        "applicant_signature": applicant["name"],
    }
    # The tick boxes, drawn last so the values above stay those of each seed: paid once (趸交) for one year.
    once = values["payment_years"] == "1"
    values["payment_method"] = "趸交" if once else rng.choice(["年交", "年交", "月交"])
    values["insured_smoker"] = rng.choice(["是", "否", "否", "否"])
    values["insured_hospitalised"] = rng.choice(["是", "否", "否", "否", "否"])
    return values


def card_values(rng: random.Random) -> dict[str, str]:
    """Return values for both sides of an ID card."""
    person = _person(rng)
    issued = date(2026, 1, 1) - timedelta(days=rng.randint(0, 19 * 365))
    age = (issued - date.fromisoformat(person["birth_date"])).days // 365
    years = 5 if age < 16 else 10 if age < 26 else 20 if age < 46 else None
    valid_to = issued.replace(year=issued.year + years).isoformat() if years else "长期"
    return {
        "name": person["name"],
        "sex": person["sex"],
        "ethnicity": rng.choice(ETHNICITIES),
        "birth_date": person["birth_date"],
        "address": _address(rng, person["region"]),
        "id_number": person["id_number"],
        "issuing_authority": REGIONS[person["region"]][1],
        "valid_from": issued.isoformat(),
        "valid_to": valid_to,
    }


# ---- claims material ------------------------------------------------------------------------------

BANKS = {  # issuer prefixes (BIN) of UnionPay debit cards, 19 digits with the Luhn check digit
    "中国工商银行": "622202",
    "中国农业银行": "622848",
    "中国银行": "621661",
    "中国建设银行": "621700",
    "招商银行": "622588",
    "交通银行": "622260",
    "中国邮政储蓄银行": "621799",
}
HOSPITALS = [
    "北京协和医院",
    "复旦大学附属中山医院",
    "四川大学华西医院",
    "浙江大学医学院附属第一医院",
    "武汉大学人民医院",
    "中山大学附属第一医院",
    "山东大学齐鲁医院",
    "西安交通大学第一附属医院",
]
EVENT_TYPES = ["疾病住院", "意外住院", "疾病门诊", "意外门诊"]


def _invoice_items() -> tuple[str, ...]:
    """Return the invoice template's charge items (ocr/validate.py checks that they add up to the total)."""
    from capture.templates import latest

    return tuple(f.name for f in latest("medical_invoice").fields if f.name.startswith("item_"))


def card_number(rng: random.Random, prefix: str, length: int = 19) -> str:
    """Return a card number of the given length starting with prefix, ending in its Luhn check digit."""
    body = prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix) - 1))
    return body + luhn.calc_check_digit(body)


def invoice_values(rng: random.Random, patient: str, admitted: date, inpatient: bool) -> dict[str, str]:
    """Return a medical invoice's values: charge items (0.00 where not charged) adding up to the total."""
    discharged = admitted + timedelta(days=rng.randint(1, 20) if inpatient else 0)
    names = _invoice_items()
    items = {name: 0 for name in names}
    charged = rng.sample(names[:5] if not inpatient else names, rng.randint(2, 4))
    for name in charged:
        items[name] = rng.randint(500, 800_000 if inpatient else 120_000)  # in fen
    values = {
        "invoice_no": f"{rng.randint(0, 9_999_999_999):010d}",
        "invoice_date": (discharged + timedelta(days=rng.randint(0, 3))).isoformat(),
        "hospital": rng.choice(HOSPITALS),
        "patient_name": patient,
        "admission_date": admitted.isoformat(),
        "discharge_date": discharged.isoformat(),
    }
    values.update({name: f"{fen // 100}.{fen % 100:02d}" for name, fen in items.items()})
    total = sum(items.values())
    values["total_amount"] = f"{total // 100}.{total % 100:02d}"
    return values


def claim_values(rng: random.Random, invoices: int = 2) -> dict:
    """Return one claim's material, consistent throughout: the insured's ID card (front and back values),
    the claim form, the medical invoices and the bank card of the claimant the claim is paid to."""
    idcard = card_values(rng)
    claimant = (
        {"name": idcard["name"], "id_number": idcard["id_number"]} if rng.random() < 0.7 else _person(rng)
    )
    bank = rng.choice(list(BANKS))
    number = card_number(rng, BANKS[bank])
    event = date(2026, 1, 1) + timedelta(days=rng.randint(0, 300))
    inpatient = rng.random() < 0.6
    bills = [
        invoice_values(rng, idcard["name"], event + timedelta(days=i * rng.randint(0, 10)), inpatient)
        for i in range(invoices)
    ]
    total = sum(int(b["total_amount"].replace(".", "")) for b in bills)
    last = max(date.fromisoformat(b["invoice_date"]) for b in bills)
    form = {
        "claim_no": f"LP{event.year}{rng.randint(0, 99_999_999):08d}",
        "policy_no": f"P{rng.randint(2018, 2025)}{rng.randint(0, 999_999_999):09d}",
        "claimant_name": claimant["name"],
        "claimant_phone": "1" + rng.choice("3456789") + "".join(rng.choice("0123456789") for _ in range(9)),
        "claimant_id_number": claimant["id_number"],
        "insured_name": idcard["name"],
        "insured_id_number": idcard["id_number"],
        "event_date": event.isoformat(),
        "event_type": rng.choice(EVENT_TYPES[:2] if inpatient else EVENT_TYPES[2:]),
        "hospital": bills[0]["hospital"],
        "claim_amount": f"{total // 100}.{total % 100:02d}",
        "claim_date": (last + timedelta(days=rng.randint(1, 30))).isoformat(),
        "account_name": claimant["name"],
        "bank_name": bank,
        "account_number": group_card_number(number),  # as people write it
        "claimant_signature": claimant["name"],
    }
    return {
        "claim_form": form,
        "invoices": bills,
        "bank_card": {"bank_name": bank, "card_number": number},
        "idcard": idcard,
    }
