"""Lookup by policy number with 1,000 and with 100,000 documents in an S3 store, and images served per second.

    .venv/bin/python bench/index_bench.py [--small 1000] [--large 100000] [--lookups 30] [--seconds 10]

Starts SeaweedFS (S3) and Redis in a temporary directory. One case (a policy with an application form,
two ID card sides and a servicing document, real-size page images) is looked up while the store holds
``--small`` and then ``--large`` other documents (each a record and its policy and customer entries).
Measured side by side: the index lookup (one prefix listing), the API's `GET /v1/documents?policy_no=`
(the listing plus reading the records on the page), and a store-wide listing of every document record,
which is what finding a policy's documents costs without an index. Then `imaging api` runs as its own
process and threads fetch page images and thumbnails through it for ``--seconds``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

import idnumber  # noqa: E402
from api import create_app  # noqa: E402
from capture.decode import encode_png, thumbnail_png  # noqa: E402
from capture.render import render_form, render_idcard  # noqa: E402
from capture.templates import latest  # noqa: E402
from indexing.index import enter, lookup  # noqa: E402
from models import DocumentRecord, document_key  # noqa: E402
from settings import Settings  # noqa: E402
from storage.s3 import S3Store  # noqa: E402
from tests.conftest import running_api  # noqa: E402
from tests.servers import S3Server, redis_server  # noqa: E402
from vocabulary import utcnow  # noqa: E402

KEY = "bench-admin-key-" + "a" * 16
POLICY = "TB2026777777"
VALUES = json.loads((ROOT / "capture" / "sample_values.json").read_text())


def _doc_id(n: int) -> str:
    return f"d20261123{n // 1_000_000 % 1_000_000:06d}abcdef{n % 1_000_000:06d}001"


def _record(n: int, doc_type: str, stage: str, keys: dict, pages=(), thumbnail=None) -> DocumentRecord:
    return DocumentRecord(
        doc_id=_doc_id(n),
        scan_id="s" + _doc_id(n)[1:27],
        type=doc_type,
        source_pages=[1],
        pages=list(pages),
        thumbnail=thumbnail,
        status="ok",
        captured_at=utcnow(),
        stage=stage,
        keys=keys,
        complete=True,
    )


def _store_record(store: S3Store, record: DocumentRecord) -> None:
    record = enter(store, record)
    store.put(document_key(record.doc_id), record.to_json(), "application/json")


def _case(store: S3Store) -> list[str]:
    """Store the looked-up case with real page images; return the keys of its page images."""
    customer = VALUES["applicant_id_number"]
    images = {
        "application_form": render_form(latest("application_form"), VALUES, 300),
        "idcard_front": render_idcard(latest("idcard_front"), VALUES, 300),
        "idcard_back": render_idcard(latest("idcard_back"), VALUES, 300),
        "other": render_form(latest("application_form"), VALUES, 200),
    }
    pages = []
    for i, (doc_type, image) in enumerate(images.items()):
        n = 900_000_000 + i
        base = f"documents/{_doc_id(n)}"
        store.put(f"{base}/pages/1.png", encode_png(image), "image/png")
        store.put(f"{base}/thumbnail.png", thumbnail_png(image), "image/png")
        stage = "servicing" if doc_type == "other" else "new_business"
        keys = {"policy": [POLICY], "customer": [customer]}
        record = _record(n, doc_type, stage, keys, [f"{base}/pages/1.png"], f"{base}/thumbnail.png")
        _store_record(store, record)
        pages.append(_doc_id(n))
    return pages


def _fill(store: S3Store, start: int, stop: int, threads: int = 16) -> float:
    """Store documents start..stop-1 (record, policy and customer entries); return documents a second."""

    def one(n: int) -> None:
        policy = f"TB{n // 3:010d}"  # three documents a policy
        customer = idnumber.make("110105", date(1960 + n % 40, 1 + n % 12, 1 + n % 28), n % 999)
        keys = {"policy": [policy], "customer": [customer]}
        _store_record(store, _record(n, "other", "new_business", keys))

    began = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        for _ in pool.map(one, range(start, stop), chunksize=64):
            pass
    return (stop - start) / (time.perf_counter() - began)


def _timed(fn, repeat: int) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1 if len(times) > 1 else 0]


def _measure(store: S3Store, client: TestClient, lookups: int, total: int) -> dict:
    def api() -> None:
        response = client.get(f"/v1/documents?policy_no={POLICY}", headers={"X-API-Key": KEY})
        assert response.status_code == 200 and response.json()["total"] == 4, response.text

    assert len(lookup(store, "policy", POLICY)) == 4
    index_median, index_p95 = _timed(lambda: lookup(store, "policy", POLICY), lookups)
    api_median, api_p95 = _timed(api, lookups)
    scan_median, _ = _timed(lambda: sum(1 for _ in store.list("documents/")), 3 if total < 20_000 else 1)
    return {
        "documents": total,
        "index_ms": (index_median * 1000, index_p95 * 1000),
        "api_ms": (api_median * 1000, api_p95 * 1000),
        "full_listing_ms": scan_median * 1000,
    }


def _serve(settings: Settings, doc_ids: list[str], seconds: float, threads: int) -> dict:
    with running_api(settings) as url:
        out = {}
        for label, path in (("page", "pages/1"), ("thumbnail", "thumbnail")):
            counts, sizes, stop = [0] * threads, [0] * threads, time.perf_counter() + seconds

            def fetch(i: int, path=path, stop=stop, counts=counts, sizes=sizes) -> None:
                with httpx.Client(base_url=url, headers={"X-API-Key": KEY}) as http:
                    while time.perf_counter() < stop:
                        doc = doc_ids[counts[i] % len(doc_ids)]
                        response = http.get(f"/v1/documents/{doc}/{path}")
                        assert response.status_code == 200, response.text
                        counts[i] += 1
                        sizes[i] += len(response.content)

            workers = [threading.Thread(target=fetch, args=(i,)) for i in range(threads)]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            out[label] = (sum(counts) / seconds, sum(sizes) / max(1, sum(counts)) / 1024)
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--lookups", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=4, help="concurrent image clients")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, redis_server(Path(tmp)) as redis:
        s3 = S3Server(Path(tmp) / "s3")
        s3.start()
        try:
            settings = Settings(
                data_dir=Path(tmp) / "var",
                redis_url=redis.url,
                s3_endpoint=s3.endpoint,
                s3_access_key="bench",
                s3_secret_key="bench",
                s3_bucket="bench",
                api_keys=f"{KEY}:admin",
            )
            store = S3Store(s3.endpoint, "bench", "bench", "bench")
            store.name_key = b"bench-index-secret"
            client = TestClient(create_app(settings))
            doc_ids = _case(store)
            rows = []
            rate = _fill(store, 0, args.small - len(doc_ids))
            rows.append(_measure(store, client, args.lookups, args.small))
            print(f"filled {args.small} documents at {rate:.0f}/s: {rows[-1]}", flush=True)
            rate = _fill(store, args.small, args.large - len(doc_ids))
            rows.append(_measure(store, client, args.lookups, args.large))
            print(f"filled {args.large} documents at {rate:.0f}/s: {rows[-1]}", flush=True)
            served = _serve(settings, doc_ids, args.seconds, args.threads)
        finally:
            s3.stop()
    print()
    print("| documents in the store | index lookup, median (p95) | GET /v1/documents, median (p95) "
          "| listing every record (no index) |")  # fmt: skip
    print("|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['documents']:,} | {r['index_ms'][0]:.1f} ms ({r['index_ms'][1]:.1f}) "
            f"| {r['api_ms'][0]:.1f} ms ({r['api_ms'][1]:.1f}) | {r['full_listing_ms']:.0f} ms |"
        )
    small, large = rows
    print(
        f"\nlarge/small: index lookup {large['index_ms'][0] / small['index_ms'][0]:.2f}x, API "
        f"{large['api_ms'][0] / small['api_ms'][0]:.2f}x, listing every record "
        f"{large['full_listing_ms'] / small['full_listing_ms']:.1f}x"
    )
    clients = f"{args.threads} clients, {args.seconds:.0f} s"
    print(f"\n| image through `imaging api` ({clients}) | per second | size |")
    print("|---|---:|---:|")
    for label, (per_second, kib) in served.items():
        print(f"| {label} | {per_second:.0f} | {kib:.0f} KiB |")


if __name__ == "__main__":
    main()
