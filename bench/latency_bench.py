"""Immediate-mode latency, upload to result, on an idle service and behind a batch backlog.

    .venv/bin/python bench/latency_bench.py [--backlog 50] [--samples 5] [--workers 2]

Runs the whole service as `imaging up` does (private Redis, local store, API, workers) in a temporary
directory, then times `POST /v1/scans?mode=immediate&wait=60` for a generated form with its ID card
until the answer holds every field's decision. First on the idle service, then right after queueing
`--backlog` batch forms. `imaging up` keeps IMAGING_IMMEDIATE_WORKERS workers (1) for immediate scans
only, and batch captures run niced and wait between pages while an immediate scan is captured
(queues.taking_turns), so behind a backlog an immediate scan should take about its idle time.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from capture.render import render_form, render_idcard  # noqa: E402
from capture.specimens import card_values, form_values  # noqa: E402
from capture.templates import latest  # noqa: E402
from supervisor import free_port  # noqa: E402
from tests.capture.scans import place_cards, scan_page  # noqa: E402

KEY = "bench-scanner-key-" + "b" * 16


def _png(image: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(image).save(out, format="PNG", dpi=(300, 300))
    return out.getvalue()


def _form(rng: np.random.Generator, values_rng: random.Random) -> bytes:
    page, _ = scan_page(render_form(latest("application_form"), form_values(values_rng)), rng, dpi=300,
                        angle=float(rng.uniform(-3, 3)), noise=3, jpeg=85)  # fmt: skip
    return _png(page)


def _cards(rng: np.random.Generator, values_rng: random.Random) -> bytes:
    v = card_values(values_rng)
    page, _ = place_cards([render_idcard(latest("idcard_front"), v), render_idcard(latest("idcard_back"), v)],
                          rng, dpi=300)  # fmt: skip
    return _png(page)


def _immediate(client: httpx.Client, form: bytes, cards: bytes) -> float:
    started = time.perf_counter()
    response = client.post(
        "/v1/scans",
        params={"wait": 60},
        data={"mode": "immediate"},
        files=[("file", ("form.png", form)), ("file", ("cards.png", cards))],
    )
    elapsed = time.perf_counter() - started
    body = response.json()
    if response.status_code != 200 or len(body["documents"]) != 3:
        raise SystemExit(f"unexpected answer {response.status_code}: {str(body)[:300]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backlog", type=int, default=50)
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    rng, values = np.random.default_rng(3), random.Random(3)
    # One pair more for the warm-up: the same bytes sent again would be answered with the first scan.
    immediate = [(_form(rng, values), _cards(rng, values)) for _ in range(args.samples * 2 + 1)]
    batch = [_form(rng, values) for _ in range(min(args.backlog, 10))]
    with tempfile.TemporaryDirectory(prefix="latency-") as tmp:
        port = free_port()
        env = {**os.environ, "IMAGING_DATA_DIR": tmp, "IMAGING_API_KEYS": f"{KEY}:scanner",
               "IMAGING_MAX_UPLOAD_BYTES": str(64 * 1024 * 1024), "OMP_THREAD_LIMIT": "1"}  # fmt: skip
        service = subprocess.Popen(
            [sys.executable, "-m", "cli", "up", "--port", str(port), "--workers", str(args.workers)],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        try:
            client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": KEY}, timeout=90)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.3)
            _immediate(client, *immediate[-1])  # warm-up: workers load tesseract's models once
            idle = [_immediate(client, *pair) for pair in immediate[: args.samples]]
            started = time.perf_counter()
            for i in range(args.backlog):
                # A policy number of its own: the same bytes with the same numbers are one upload.
                form = {"mode": "batch", "policy_no": f"BENCH{i:06d}"}
                r = client.post("/v1/scans", data=form, files={"file": ("b.png", batch[i % len(batch)])})
                assert r.status_code == 202, r.text
            queued = time.perf_counter() - started
            behind = [_immediate(client, *pair) for pair in immediate[args.samples : 2 * args.samples]]
        finally:
            os.killpg(service.pid, signal.SIGTERM)
            service.wait(60)

    def row(name: str, values: list[float]) -> str:
        return f"| {name} | {statistics.median(values):.2f} s | {max(values):.2f} s | {len(values)} |"

    print(f"{args.workers} workers; a form page and an ID card page (front and back) per immediate scan\n")
    print("| immediate scan | median | worst | samples |")
    print("|---|---:|---:|---:|")
    print(row("idle service", idle))
    print(row(f"behind {args.backlog} batch forms", behind))
    print(f"\n{args.backlog} batch uploads queued in {queued:.1f} s; ratio behind/idle (median) "
          f"{statistics.median(behind) / statistics.median(idle):.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
