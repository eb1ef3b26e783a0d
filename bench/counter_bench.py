"""How long the counter waits: `imaging scan form.jpg cards.jpg --mode immediate` against a real `imaging api`
and one real worker (a private redis-server, the local store), from the command's start to its summary, and
in the service from the upload to the scan being read (the scan record's uploaded_at to updated_at).

    .venv/bin/python bench/counter_bench.py [--runs 5]

Each run sends the same form and card page under another policy number, so each is a new scan (the cards
are found on file after the first run, as at a real counter for a returning customer)."""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from capture.render import render_form, render_idcard  # noqa: E402
from capture.templates import latest  # noqa: E402
from models import Scan, load  # noqa: E402
from settings import Settings  # noqa: E402
from storage import open_store  # noqa: E402
from tests.capture.scans import place_cards, scan_page  # noqa: E402
from tests.conftest import API_KEYS, SCANNER_KEY, running_api, running_workers, settings_env  # noqa: E402
from tests.servers import redis_server  # noqa: E402
from tests.test_counter import _encode  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    values = json.loads((ROOT / "capture" / "sample_values.json").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "redis").mkdir()
        measure(Path(tmp), runs, values)


def measure(folder: Path, runs: int, values: dict[str, str]) -> None:
    with redis_server(folder / "redis") as redis:
        form, _ = scan_page(
            render_form(latest("application_form"), values, 300), np.random.default_rng(3), dpi=300, angle=1.5
        )
        sides = [render_idcard(latest("idcard_front"), values), render_idcard(latest("idcard_back"), values)]
        cards, _ = place_cards(sides, np.random.default_rng(4), dpi=300)
        (folder / "form.jpg").write_bytes(_encode(form, "JPEG"))
        (folder / "cards.jpg").write_bytes(_encode(cards, "JPEG"))
        settings = Settings(
            data_dir=folder / "var", redis_url=redis.url, api_keys=API_KEYS, max_upload_bytes=32 << 20
        )
        command, service = [], []
        with running_api(settings) as url, running_workers(settings, 1, folder / "workers"):
            for run in range(runs):
                started = time.monotonic()
                options = ["--key", SCANNER_KEY, "--mode", "immediate", "--policy-no", f"P20263999{run:02d}"]
                files = [str(folder / "form.jpg"), str(folder / "cards.jpg")]
                result = subprocess.run(
                    [sys.executable, "-m", "cli", "scan", "--url", url, *options, *files],
                    env=settings_env(settings), cwd=ROOT, capture_output=True, text=True, timeout=300,
                )  # fmt: skip
                command.append(time.monotonic() - started)
                scan_id = re.search(r"^扫描 (s\w+)：", result.stdout, re.M).group(1)
                scan = load(open_store(settings), Scan, scan_id)
                service.append((scan.updated_at - scan.uploaded_at).total_seconds())
                took = f"command {command[-1]:.1f} s, service {service[-1]:.1f} s"
                print(f"run {run + 1}: exit {result.returncode}, {took}")
    medians = f"command {statistics.median(command):.1f} s, upload to read {statistics.median(service):.1f} s"
    print(f"median of {runs}: {medians} (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
