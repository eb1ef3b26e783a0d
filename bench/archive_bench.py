"""The customer archive on a generated population: the right disagreements and the right current card for
every customer, and ``GET /v1/customers/{id}`` as fast with 20,000 documents in the store as with 1,000.

Each visit of a customer files three documents as the worker does (index entries, record, then the scan
settled by indexing/case.py, which supersedes and folds the archives): an application form naming the
customer as applicant and the next customer as insured, and an ID card front and back. Some customers give
another contact address on each visit (the information check must list it), some renew their card (the
newest must be current, the older ones superseded). The store is the local one; Redis is a real
redis-server (the access log of each read).

    .venv/bin/python bench/archive_bench.py --customers 2000 --documents 20000 --small 1000 --reads 200
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastapi.testclient import TestClient  # noqa: E402

import idnumber  # noqa: E402
from api import create_app  # noqa: E402
from indexing.case import file_archives, settle  # noqa: E402
from indexing.index import document_keys, enter  # noqa: E402
from models import DocumentRecord, FieldRecord, Scan, ScanFile  # noqa: E402
from settings import Settings  # noqa: E402
from storage import open_store  # noqa: E402
from tests.servers import redis_server  # noqa: E402

KEY = "bench-admin-key-" + "a" * 16
SURNAMES, GIVEN = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗", "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平"
STREETS = ["建国路", "人民路", "中山路", "解放路", "长江路", "和平路", "新华路", "滨江路"]


def person(n: int) -> dict[str, str]:
    rng = random.Random(n)
    born = date(1950, 1, 1) + timedelta(days=rng.randrange(20_000))
    number = idnumber.make(rng.choice(["110105", "310104", "440106"]), born, rng.randrange(1000))
    return {
        "id_number": number,
        "name": rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(GIVEN),
        "sex": idnumber.sex(number),
        "birth_date": born.isoformat(),
        "address": f"北京市朝阳区{rng.choice(STREETS)}{rng.randrange(1, 300)}号",
        "phone": f"13{rng.randrange(10**9):09d}",
    }


def fields(values: dict[str, str]) -> dict[str, FieldRecord]:
    return {
        name: FieldRecord(box=[0, 0, 1, 1], quad=[], page=1, image="", value=value, status="accepted")
        for name, value in values.items()
    }


def visit(store, n: int, customers: int, k: int, conflicted: bool, renewed: bool) -> list[str]:
    """File one visit (the k-th) of customer n: form, card front, card back; return the doc ids."""
    me, insured = person(n), person((n + 1) % customers)
    at = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=k * customers + n)
    scan_id = "s" + at.strftime("%Y%m%d%H%M%S") + f"{n:012x}"
    address = me["address"] + (f"{k + 1}号楼" if conflicted else "")
    issued = 2016 + (k if renewed else 0)
    form = {
        "application_no": f"TB{n:06d}{k:04d}",
        "applicant_name": me["name"],
        "applicant_sex": me["sex"],
        "applicant_birth_date": me["birth_date"],
        "applicant_id_number": me["id_number"],
        "applicant_phone": me["phone"],
        "applicant_address": address,
        "insured_name": insured["name"],
        "insured_id_number": insured["id_number"],
    }
    front = {k2: me[k2] for k2 in ("name", "sex", "birth_date", "id_number")} | {"address": me["address"]}
    back = {"valid_from": f"{issued}-03-01", "valid_to": f"{issued + 20}-03-01"}
    docs = []
    for i, (doc_type, values) in enumerate(
        (("application_form", form), ("idcard_front", front), ("idcard_back", back)), start=1
    ):
        doc_id = f"d{scan_id[1:]}{i:03d}"
        record = DocumentRecord(
            doc_id=doc_id,
            scan_id=scan_id,
            type=doc_type,
            source_pages=[i],
            pages=[f"documents/{doc_id}/pages/1.png"],
            status="ok",
            application_no=form["application_no"] if doc_type == "application_form" else None,
            fields=fields(values),
            regions=fields({"applicant_signature": ""}) if doc_type == "application_form" else {},
            captured_at=at,
            stage="new_business",
            person=me["id_number"] if doc_type != "application_form" else None,
            complete=True,
        )
        record = enter(store, record.model_copy(update={"keys": document_keys(record, None)}))
        store.put(record.key, record.to_json(), "application/json")
        docs.append(doc_id)
    scan = Scan(
        scan_id=scan_id,
        mode="batch",
        files=[ScanFile(sha256="0" * 64, content_type="image/jpeg", size=1)],
        uploaded_by="bench",
        uploaded_at=at,
        status="captured",
        documents=docs,
    )
    store.put(scan.key, scan.to_json(), "application/json")
    changed, scan = settle(store, scan)
    file_archives(store, scan, changed, lambda _key: _NoLock())
    return docs


class _NoLock:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def populate(store, customers: int, start: int, stop: int, expected: dict) -> None:
    """File visits round-robin over the customers until ``stop`` documents are in the store."""
    for doc in range(start, stop, 3):
        visit_no = doc // 3
        n, k = visit_no % customers, visit_no // customers
        docs = visit(store, n, customers, k, conflicted=n % 10 == 3, renewed=n % 5 == 1)
        expected[n] = {"front": docs[1], "back": docs[2], "visits": k + 1}


def reads(client: TestClient, numbers: list[str]) -> list[float]:
    times = []
    for number in numbers:
        started = time.perf_counter()
        response = client.get(f"/v1/customers/{number}", headers={"X-API-Key": KEY})
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text
    return times


def check(client: TestClient, customers: int, expected: dict) -> tuple[int, int]:
    """Return how many archives are right (current card, disagreements) and how many were checked."""
    right = 0
    for n, want in expected.items():
        body = client.get(f"/v1/customers/{person(n)['id_number']}", headers={"X-API-Key": KEY}).json()
        card = body["card"]
        fields_in_conflict = {d["field"] for d in body["disagreements"]}
        want_conflict = {"address"} if n % 10 == 3 and want["visits"] > 1 else set()
        ok = (card["front"]["doc_id"], card["back"]["doc_id"]) == (want["front"], want["back"])
        ok = ok and fields_in_conflict == want_conflict and card["valid"] is True
        ok = ok and len(body["superseded_cards"]) == 2 * (want["visits"] - 1)
        right += ok
    return right, len(expected)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--documents", type=int, default=20000)
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--reads", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, redis_server(Path(tmp)) as redis:
        settings = Settings(
            data_dir=Path(tmp) / "var", redis_url=redis.url, api_keys=f"{KEY}:admin", index_secret="b" * 32
        )
        store = open_store(settings)
        client = TestClient(create_app(settings))
        expected: dict[int, dict] = {}
        started = time.perf_counter()
        populate(store, args.customers, 0, args.small, expected)
        sample = sorted(expected)[: args.reads]
        numbers = [person(n)["id_number"] for n in sample]
        reads(client, numbers)  # warm up
        small = reads(client, numbers)
        small_right = check(client, args.customers, expected)
        populate(store, args.customers, args.small, args.documents, expected)
        filing = time.perf_counter() - started
        large = reads(client, numbers)
        right = check(client, args.customers, expected)
    p50s, p50l = statistics.median(small), statistics.median(large)
    print(f"filed {args.documents} documents for {args.customers} customers in {filing:.0f} s")
    print(f"archives right at {args.small} documents: {small_right[0]} of {small_right[1]}")
    print(f"archives right at {args.documents} documents: {right[0]} of {right[1]}")
    print(f"GET /v1/customers/{{id}} median at {args.small} documents: {p50s:.1f} ms")
    ratio = p50l / p50s
    print(f"GET /v1/customers/{{id}} median at {args.documents} documents: {p50l:.1f} ms (ratio {ratio:.2f})")


if __name__ == "__main__":
    main()
