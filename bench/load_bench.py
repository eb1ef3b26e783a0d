"""Load: scans from concurrent clients through the real service until every one is read; nothing lost.

    .venv/bin/python bench/load_bench.py [--scans 200] [--clients 8] [--workers 2] [--backend s3|local]
    .venv/bin/python bench/load_bench.py --small        # 20 scans, a quick check

Starts Redis, the object store (SeaweedFS S3 by default, as production runs MinIO; or the local
directory store), `imaging api` and ``--workers`` `imaging worker` processes, each on loopback in a
temporary directory. The scans are generated before the clock starts: application forms, ID card pages
(front and back) and the two together, as JPEG, PNG, multi-page TIFF stacks with a separator sheet and
two-page PDFs, each with its own random values and scan degradation; one in four is sent in immediate
mode. ``--clients`` threads upload them as fast as each gets its 202 (`POST /v1/scans`, one scanner
key a client), then one poller reads `GET /v1/scans/{id}` until every scan is captured or failed.

Upload latency is the time to the 202. End to end is from the upload's start to the moment the worker
wrote the captured record (the record's ``updated_at``; the same clock, so polling does not blur it);
queue wait and processing come from the RQ job. Then every acknowledged scan is checked in the store:
its record, its originals, exactly the documents expected and no others under its ids, its job run
once (the workers' logs). Exits 1 if a scan is lost, failed or read twice, if an upload got a 5xx or
was refused, or if ``--deadline`` passes first (it then lists what is missing).
"""

from __future__ import annotations

import argparse
import io
import math
import os
import random
import re
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from rq.exceptions import NoSuchJobError  # noqa: E402
from rq.job import Job, JobStatus  # noqa: E402

import queues  # noqa: E402
from models import DocumentRecord, Scan, load, scan_key  # noqa: E402
from routes.scans import ScanView  # noqa: E402
from settings import Settings  # noqa: E402
from storage import ObjectStore, open_store  # noqa: E402
from tests.conftest import running_api, running_workers  # noqa: E402
from tests.servers import S3Server, redis_server  # noqa: E402

SCANNER_KEYS = [f"load-scanner-{i:02d}-" + "s" * 16 for i in range(64)]
# kind -> (pages, documents): what capture must find in it
KINDS = {
    "form": (1, 1),  # an application form, JPEG
    "cards": (1, 2),  # an ID card's front and back on one flatbed page, JPEG
    "counter": (2, 3),  # the counter's pair: form page (PNG) and ID card page (JPEG) as two files
    "stack": (5, 4),  # a back-office TIFF: two forms, a separator sheet, two more forms
    "pdf": (2, 3),  # a scanner's PDF: a form page and an ID card page
}
IMMEDIATE_KINDS = ("counter", "counter", "cards", "form")  # what the counter sends while a customer waits
BATCH_KINDS = ("form", "form", "stack", "pdf", "cards", "counter")


@dataclass(frozen=True)
class Upload:
    """One prepared upload: its files, mode, form fields and what capture must find in it."""

    number: int
    kind: str
    mode: str
    files: list[tuple[str, bytes]]
    form: dict[str, str]

    @property
    def pages(self) -> int:
        return KINDS[self.kind][0]

    @property
    def documents(self) -> int:
        return KINDS[self.kind][1]

    @property
    def size(self) -> int:
        return sum(len(data) for _, data in self.files)


@dataclass
class Outcome:
    """What happened to one upload: the answer, then the scan as the service last reported it."""

    upload: Upload
    client: int
    started: float = 0.0  # wall clock (time.time), comparable with the records' timestamps
    answered: float = 0.0
    status_code: int | None = None
    error: str | None = None
    scan_id: str | None = None
    scan: ScanView | None = None
    queue_wait: float | None = None
    processing: float | None = None
    job_status: str | None = None
    job_times: tuple[datetime | None, datetime | None] = (None, None)  # enqueued, started
    problems: list[str] = field(default_factory=list)

    @property
    def acknowledged(self) -> bool:
        return self.status_code == 202 and self.scan_id is not None

    @property
    def finished(self) -> bool:
        return self.scan is not None and self.scan.status in ("captured", "failed")

    @property
    def end_to_end(self) -> float | None:
        if self.scan is None or self.scan.status != "captured" or self.scan.updated_at is None:
            return None
        return self.scan.updated_at.timestamp() - self.started


# ---- the scans, made before the clock starts --------------------------------------------------------


def _plan(count: int, seed: int) -> list[tuple[str, str]]:
    """Return (kind, mode) for each upload, one in four immediate, in a shuffled order."""
    plan = [
        ("immediate", IMMEDIATE_KINDS[i // 4 % len(IMMEDIATE_KINDS)])
        if i % 4 == 0
        else ("batch", BATCH_KINDS[(i - i // 4 - 1) % len(BATCH_KINDS)])  # the batch uploads before it
        for i in range(count)
    ]
    random.Random(seed).shuffle(plan)
    return [(kind, mode) for mode, kind in plan]


def _make(job: tuple[int, str, str, int]) -> Upload:
    """Return upload number n of the plan, generated from its own seed (runs in a pool process)."""
    from capture.render import render_form, render_idcard, render_separator
    from capture.specimens import card_values, form_values
    from capture.templates import latest
    from tests.capture.scans import place_cards, scan_page

    number, kind, mode, seed = job
    rng, values = np.random.default_rng([seed, number]), random.Random(seed * 100_003 + number)

    def form_page(dpi: int | None = None) -> tuple[np.ndarray, int]:
        dpi = dpi or int(rng.choice([240, 300]))
        page, _ = scan_page(render_form(latest("application_form"), form_values(values)), rng, dpi=dpi,
                            angle=float(rng.uniform(-4, 4)), blur=float(rng.uniform(0, 0.8)),
                            noise=float(rng.uniform(2, 5)), light=bool(rng.random() < 0.3))  # fmt: skip
        return page, dpi

    def cards_page() -> tuple[np.ndarray, dict[str, str]]:
        v = card_values(values)
        sides = [render_idcard(latest("idcard_front"), v), render_idcard(latest("idcard_back"), v)]
        page, _ = place_cards(sides, rng, dpi=300, noise=float(rng.uniform(2, 4)))
        return page, v

    def encoded(image: np.ndarray, dpi: int, fmt: str) -> bytes:
        out = io.BytesIO()
        extra = {"quality": int(rng.integers(80, 93))} if fmt == "JPEG" else {}
        Image.fromarray(image).save(out, format=fmt, dpi=(dpi, dpi), **extra)
        return out.getvalue()

    form: dict[str, str] = {"mode": mode}
    if kind == "form":
        page, dpi = form_page()
        files = [("form.jpg", encoded(page, dpi, "JPEG"))]
    elif kind == "cards":
        page, v = cards_page()
        files = [("cards.jpg", encoded(page, 300, "JPEG"))]
        form["customer_id"] = v["id_number"]
    elif kind == "counter":
        (page, dpi), (cards, v) = form_page(), cards_page()
        files = [("form.png", encoded(page, dpi, "PNG")), ("cards.jpg", encoded(cards, 300, "JPEG"))]
        form |= {"policy_no": f"P2026{number:07d}", "customer_id": v["id_number"], "stage": "new_business"}
    elif kind == "stack":
        sheets = [Image.fromarray(form_page(300)[0]).convert("L") for _ in range(4)]
        separator = Image.fromarray(render_separator(300)).convert("L")
        out = io.BytesIO()
        sheets[0].save(out, format="TIFF", save_all=True, append_images=[sheets[1], separator, *sheets[2:]],
                       dpi=(300, 300), compression="tiff_jpeg", quality=85)  # fmt: skip
        files = [("stack.tif", out.getvalue())]
    else:  # pdf
        page, cards = Image.fromarray(form_page()[0]), Image.fromarray(cards_page()[0])
        out = io.BytesIO()
        page.save(out, format="PDF", save_all=True, append_images=[cards], resolution=300.0, quality=85)
        files = [("scan.pdf", out.getvalue())]
    return Upload(number, kind, mode, files, form)


def prepare(count: int, seed: int) -> list[Upload]:
    """Return the uploads, generated on every core."""
    jobs = [(n, kind, mode, seed) for n, (kind, mode) in enumerate(_plan(count, seed))]
    with ProcessPoolExecutor() as pool:
        return list(pool.map(_make, jobs, chunksize=4))


# ---- the service ------------------------------------------------------------------------------------


@contextmanager
def service_settings(backend: str, directory: Path) -> Iterator[Settings]:
    """Yield settings for a private Redis and the store asked for, both running until the block ends."""
    keys = ",".join(f"{key}:scanner" for key in SCANNER_KEYS)
    with redis_server(directory) as redis:
        common = {"data_dir": directory / "var", "redis_url": redis.url, "api_keys": keys}
        if backend == "local":
            yield Settings(**common)
            return
        s3 = S3Server(directory / "s3")
        s3.start()
        try:
            yield Settings(
                **common,
                s3_endpoint=s3.endpoint,
                s3_access_key="load",
                s3_secret_key="load",
                s3_bucket="load",
            )
        finally:
            s3.stop()


# ---- the clients ------------------------------------------------------------------------------------


def upload_all(url: str, uploads: list[Upload], clients: int) -> list[Outcome]:
    """Return the outcomes after clients threads have sent every upload, each taking the next in turn."""
    outcomes = [Outcome(u, client=0) for u in uploads]
    turn = iter(range(len(outcomes)))
    lock = threading.Lock()

    def client(number: int) -> None:
        with httpx.Client(base_url=url, headers={"X-API-Key": SCANNER_KEYS[number]}, timeout=120) as http:
            while True:
                with lock:
                    i = next(turn, None)
                if i is None:
                    return
                outcome = outcomes[i]
                outcome.client = number
                outcome.started = time.time()
                try:
                    response = http.post(
                        "/v1/scans",
                        data=outcome.upload.form,
                        files=[("file", (name, data)) for name, data in outcome.upload.files],
                    )
                except httpx.HTTPError as exc:
                    outcome.error = f"{type(exc).__name__}: {exc}"
                    continue
                finally:
                    outcome.answered = time.time()
                outcome.status_code = response.status_code
                if response.status_code == 202:
                    outcome.scan_id = response.json()["scan_id"]
                else:
                    outcome.error = response.text[:300]

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def await_all(url: str, outcomes: list[Outcome], deadline: float) -> tuple[int, Counter]:
    """Poll every acknowledged scan until it is captured or failed or the deadline passes; return the
    number of status reads and the reads that got no answer, by error. A sweep reads each open scan once,
    then rests: about 10 reads a second at most, so the poller takes little of the workers' CPU (the
    finish time comes from the record, not the poll)."""
    open_ = [o for o in outcomes if o.acknowledged]
    reads, unanswered = 0, Counter()
    with ExitStack() as stack:
        clients = {  # each scanner sees only its own scans
            n: stack.enter_context(httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=30))
            for n, key in enumerate(SCANNER_KEYS[: max(o.client for o in outcomes) + 1])
        }
        while open_ and time.time() < deadline:
            for o in open_:
                reads += 1
                try:
                    response = clients[o.client].get(f"/v1/scans/{o.scan_id}")
                except httpx.HTTPError as exc:  # read again in the next sweep
                    unanswered[type(exc).__name__] += 1
                    continue
                if response.status_code == 200:
                    o.scan = ScanView.model_validate(response.json())
                else:
                    o.problems.append(f"GET answered {response.status_code}: {response.text[:200]}")
            open_ = [o for o in open_ if not o.finished]
            if open_:
                time.sleep(max(2.0, len(open_) / 10))
    return reads, unanswered


# ---- checks -----------------------------------------------------------------------------------------

JOB_LINE = re.compile(r"(Job OK|worker\.capture_scan\(.*?\)) \((capture-s[0-9a-f]+)\)")


def job_runs(logs: list[Path]) -> tuple[Counter, Counter]:
    """Return how often each capture job was started and finished OK, from the workers' logs."""
    started, done = Counter(), Counter()
    for path in logs:
        for kind, job_id in JOB_LINE.findall(re.sub(r"\x1b\[[0-9;]*m", "", path.read_text(errors="replace"))):
            (done if kind == "Job OK" else started)[job_id] += 1
    return started, done


def check(store: ObjectStore, settings: Settings, outcomes: list[Outcome], logs: list[Path]) -> None:
    """Note on each acknowledged outcome its job's state and timings, and what does not hold in the store,
    the queue and the workers' logs."""
    conn = queues.connect(settings.redis_url)
    started, done = job_runs(logs)
    for o in outcomes:
        if not o.acknowledged:
            continue
        job_id = f"capture-{o.scan_id}"
        try:
            job = Job.fetch(job_id, connection=conn)
            o.job_status = job.get_status().value
            o.job_times = (job.enqueued_at, job.started_at)
            if job.started_at and job.enqueued_at:
                o.queue_wait = (job.started_at - job.enqueued_at).total_seconds()
            if job.started_at and job.ended_at:
                o.processing = (job.ended_at - job.started_at).total_seconds()
        except NoSuchJobError:
            o.job_status = "no such job"
        if not o.finished:
            if not store.exists(scan_key(o.scan_id)):
                o.problems.append("no scan record in the store")
            continue
        if o.job_status != JobStatus.FINISHED.value:
            o.problems.append(f"job {job_id} is {o.job_status}")
        if started[job_id] != 1 or done[job_id] != 1:
            o.problems.append(f"job run {started[job_id]} times, finished OK {done[job_id]} times")
        stored = load(store, Scan, o.scan_id)
        missing = [f.sha256[:12] for f in stored.files if not store.exists(f"originals/{f.sha256}")]
        if missing or len(stored.files) != len(o.upload.files):
            o.problems.append(f"{len(stored.files)} files recorded, originals missing: {missing}")
        if stored.status != "captured":
            continue
        if stored.pages != o.upload.pages or len(stored.documents) != o.upload.documents:
            o.problems.append(
                f"{stored.pages} pages, {len(stored.documents)} documents; expected "
                f"{o.upload.pages} and {o.upload.documents}"
            )
        if [d.doc_id for d in o.scan.documents] != stored.documents:
            o.problems.append("the API showed other documents than the record holds")
        on_disk = {  # every document record under the scan's ids: a second run would leave more
            info.key.split("/")[1]
            for info in store.list(f"documents/d{o.scan_id[1:]}")
            if info.key.endswith("/record.json")
        }
        if len(set(stored.documents)) != len(stored.documents) or on_disk != set(stored.documents):
            o.problems.append(f"documents in the store {sorted(on_disk)} != recorded {stored.documents}")
        for doc_id in stored.documents:
            record = load(store, DocumentRecord, doc_id)
            if record.scan_id != o.scan_id:
                o.problems.append(f"{doc_id} belongs to {record.scan_id}")


# ---- the report -------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Return the nearest-rank q-th percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def row(name: str, values: list[float]) -> str:
    if not values:
        return f"| {name} | - | - | - | - | 0 |"
    cells = " | ".join(f"{percentile(values, q):.2f} s" for q in (50, 95, 99, 100))
    return f"| {name} | {cells} | {len(values)} |"


def report(
    args: argparse.Namespace, outcomes: list[Outcome], upload_seconds: float, reads: int, unanswered: Counter
) -> bool:
    """Print the tables; return True if nothing was lost, failed, refused or done twice."""
    acked = [o for o in outcomes if o.acknowledged]
    captured = [o for o in acked if o.scan and o.scan.status == "captured"]
    failed = [o for o in acked if o.scan and o.scan.status == "failed"]
    lost = [o for o in acked if not o.finished]
    server_errors = [o for o in outcomes if (o.status_code or 0) >= 500 or o.error and not o.status_code]
    wrong = [o for o in acked if o.problems and o.finished]
    immediate = [o for o in outcomes if o.upload.mode == "immediate"]
    pages = sum(o.scan.pages for o in captured)
    documents = sum(len(o.scan.documents) for o in captured)
    fields = sum(len(d.fields) for o in captured for d in o.scan.documents)
    pending = sum(o.scan.fields_pending for o in captured)
    begin = min(o.started for o in outcomes)
    end = max([o.scan.updated_at.timestamp() for o in captured] or [time.time()])
    minutes = (end - begin) / 60
    mib = sum(o.upload.size for o in outcomes) / 2**20

    print(f"\n{len(outcomes)} scans ({len(immediate)} immediate, {len(outcomes) - len(immediate)} batch; "
          f"{sum(o.upload.pages for o in outcomes)} pages, {sum(o.upload.documents for o in outcomes)} "
          f"documents expected; {mib:.0f} MiB) from {args.clients} clients, {args.workers} workers, "
          f"{args.backend} store\n")  # fmt: skip
    print("| latency | p50 | p95 | p99 | max | scans |")
    print("|---|---:|---:|---:|---:|---:|")
    print(row("upload (to the 202)", [o.answered - o.started for o in acked]))
    for mode in ("immediate", "batch"):
        mine = [o for o in captured if o.upload.mode == mode]
        print(row(f"end to end, {mode}", [o.end_to_end for o in mine]))
        print(row(f"- queue wait, {mode}", [o.queue_wait for o in mine if o.queue_wait is not None]))
        print(row(f"- processing, {mode}", [o.processing for o in mine if o.processing is not None]))
    print("\n| kind | scans | pages / documents each | processing p50 | per page | end to end p50 |")
    print("|---|---:|---:|---:|---:|---:|")
    for kind, (kind_pages, kind_docs) in KINDS.items():
        mine = [o for o in captured if o.upload.kind == kind]
        if mine:
            work = percentile([o.processing for o in mine if o.processing is not None] or [math.nan], 50)
            waited = percentile([o.end_to_end for o in mine], 50)
            print(f"| {kind} | {len(mine)} | {kind_pages} / {kind_docs} | {work:.2f} s "
                  f"| {work / kind_pages:.2f} s | {waited:.1f} s |")  # fmt: skip
    # With immediate first, a batch job starts while an immediate one waits only if it was taken from the
    # queue just before the immediate one came: its start then trails that arrival by the dequeue-to-start
    # time (fork, job set-up), a fraction of a second.
    waits = [o.job_times for o in captured if o.upload.mode == "immediate" and None not in o.job_times]
    lags = [
        min((b - e).total_seconds() for e, s in waits if e < b < s)
        for o in captured
        if o.upload.mode == "batch" and (b := o.job_times[1]) and any(e < b < s for e, s in waits)
    ]
    print(f"\nbatch jobs started while an immediate scan was queued: {len(lags)}"
          + (f", at most {max(lags):.2f} s after it was queued" if lags else ""))  # fmt: skip
    print(f"uploads took {upload_seconds:.1f} s ({mib / upload_seconds:.1f} MiB/s); first upload to last "
          f"capture {minutes * 60:.0f} s: {len(captured) / minutes:.1f} scans/min, {pages / minutes:.1f} "
          f"pages/min, {documents / minutes:.1f} documents/min; {pending} of {fields} fields sent to "
          f"key-entry; {reads} status reads, unanswered: {dict(unanswered) or 'none'}")  # fmt: skip
    print(f"\nuploaded {len(outcomes)}, acknowledged {len(acked)}, captured {len(captured)}, failed "
          f"{len(failed)}, lost {len(lost)}, 5xx or no answer {len(server_errors)}, "
          f"wrong in the store or run twice {len(wrong)}")  # fmt: skip
    if lost:
        print(f"  {len(lost)} acknowledged scans not finished {args.deadline:.0f} s after the first upload")
    troubled = {id(o): o for o in [o for o in outcomes if not o.acknowledged] + failed + lost + wrong}
    for o in troubled.values():
        state = o.scan.status if o.scan else "never seen" if o.acknowledged else f"HTTP {o.status_code}"
        if o.acknowledged and not o.finished:
            state += f", job {o.job_status}"
        detail = "; ".join(o.problems) or (o.scan.error if o.scan else o.error) or ""
        print(f"  #{o.upload.number} {o.upload.kind}/{o.upload.mode} {o.scan_id or '-'}: {state} {detail}")
    return not (lost or failed or server_errors or wrong or len(acked) != len(outcomes))


def watch_queues(url: str, stop: threading.Event, rows: list[tuple[float, dict[str, float]]]) -> None:
    """Scrape the API's /metrics every second until stop: queue depth per queue, workers, jobs done."""
    from prometheus_client.parser import text_string_to_metric_families

    began = time.perf_counter()
    while not stop.wait(1.0):
        try:
            text = httpx.get(url + "/metrics", timeout=5).text
        except httpx.HTTPError:
            continue
        sample: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name == "imaging_queue_depth":
                    sample[s.labels["queue"]] = s.value
                elif s.name == "imaging_jobs_total" and s.labels.get("outcome") == "ok":
                    sample["done"] = sample.get("done", 0) + s.value
        rows.append((time.perf_counter() - began, sample))


def queue_svg(rows: list[tuple[float, dict[str, float]]], title: str) -> str:
    """Return an SVG line chart of the batch and immediate queues' depth over time."""
    width, height, pad = 720, 300, 50
    end = max(t for t, _ in rows) or 1
    top = max(max(r.get("batch", 0), r.get("immediate", 0)) for _, r in rows) or 1

    def xy(t: float, v: float) -> str:
        return f"{pad + t / end * (width - 2 * pad):.1f},{height - pad - v / top * (height - 2 * pad):.1f}"

    lines = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif"'
        ' font-size="12">',
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text x="{pad}" y="20">{title}</text>',
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="black"/>',
        f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="black"/>',
        f'<text x="{width - pad}" y="{height - pad + 20}" text-anchor="end">{end:.0f} s</text>',
        f'<text x="{pad - 5}" y="{pad + 4}" text-anchor="end">{top:.0f}</text>',
        f'<text x="{pad - 5}" y="{height - pad + 4}" text-anchor="end">0</text>',
    ]
    for n, (queue, colour) in enumerate((("batch", "#1f77b4"), ("immediate", "#d62728"))):
        points = " ".join(xy(t, r.get(queue, 0)) for t, r in rows)
        lines.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}"/>')
        lines.append(
            f'<text x="{width - pad - 140}" y="{pad + 16 * n}" fill="{colour}">{queue} queue depth</text>'
        )
    lines.append("</svg>")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scans", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--backend", choices=["s3", "local"], default="s3")
    parser.add_argument("--small", action="store_true", help="20 scans: a quick check")
    parser.add_argument("--deadline", type=float, default=20 * 60, help="seconds from the first upload")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--plot", type=Path, help="scrape /metrics each second; draw the queues' depth (SVG)")
    args = parser.parse_args()
    if args.small:
        args.scans = 20
    if args.clients > len(SCANNER_KEYS):
        parser.error(f"at most {len(SCANNER_KEYS)} clients")
    began = time.perf_counter()
    uploads = prepare(args.scans, args.seed)
    print(f"prepared {len(uploads)} scans in {time.perf_counter() - began:.0f} s", flush=True)
    with (
        tempfile.TemporaryDirectory(prefix="load-") as tmp,
        service_settings(args.backend, Path(tmp)) as settings,
    ):
        with running_api(settings) as url, running_workers(settings, args.workers, Path(tmp)):
            logs = sorted(Path(tmp).glob("worker-*.log"))
            load_before = os.getloadavg()  # the service idle: what else runs on the machine
            stop, rows = threading.Event(), []
            watcher = threading.Thread(target=watch_queues, args=(url, stop, rows), daemon=True)
            if args.plot:
                watcher.start()
            began = time.perf_counter()
            outcomes = upload_all(url, uploads, args.clients)
            upload_seconds = time.perf_counter() - began
            print(f"uploaded in {upload_seconds:.1f} s; waiting for the workers", flush=True)
            reads, unanswered = await_all(url, outcomes, min(o.started for o in outcomes) + args.deadline)
            if args.plot:
                time.sleep(2)
                stop.set()
                watcher.join()
                title = f"{args.scans} scans, {args.clients} clients, {args.workers} workers"
                args.plot.write_text(queue_svg(rows, title))
                peak = max(r.get("batch", 0) for _, r in rows)
                print(f"plot: {args.plot} ({len(rows)} scrapes, batch queue peak {peak:.0f})", flush=True)
            check(open_store(settings), settings, outcomes, logs)
            load_after = os.getloadavg()
        ok = report(args, outcomes, upload_seconds, reads, unanswered)
    before, after = (" ".join(f"{x:.2f}" for x in load) for load in (load_before, load_after))
    print(f"load average (1, 5, 15 min) before the uploads, the service idle: {before}; at the end {after}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
