"""Varied specimen values for the sample generator: names, valid ID numbers, dates, amounts, addresses.

Everything is drawn from the random generator given, so a seed gives the same values every time.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

import idnumber

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
    return {
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
