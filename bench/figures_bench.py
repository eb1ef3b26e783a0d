"""The managers' figures: what a month's answer costs with a month of figures in Redis, and with years of
them (the ratio should stay near 1: the answer reads the days asked for, never the store), and what
counting a scan's documents adds to each keyed answer (``figures.note_scan``, local store).

Each day has ``--branches`` branches with a realistic spread of counts (forty fields, a dozen keyers,
two hundred completion times); the manager reaches half of the branches.

    .venv/bin/python bench/figures_bench.py --branches 40 --years 1 --reads 20
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from redis import Redis  # noqa: E402

import figures  # noqa: E402
from storage.local import LocalStore  # noqa: E402
from tests.servers import redis_server  # noqa: E402
from tests.test_figures import UPLOADED, _form, _scan  # noqa: E402


def _day(conn: Redis, day, branches: int) -> None:
    events = []
    for b in range(branches):
        counts = Counter(scans=300, pages=900, documents=800, rescans=20, completed=750)
        counts.update(
            {f"field|f{i}|total": 200 for i in range(40)} | {f"field|f{i}|straight": 170 for i in range(40)}
        )
        counts.update({f"keyed|k{i}": 300 for i in range(12)} | {f"lost|k{i}": 2 for i in range(12)})
        counts.update({f"complete_seconds|{30 * i}": 3 for i in range(200)})
        events.append(figures.Event(f"bench:{day}:{b}", day, f"8611{b:02d}", dict(counts)))
    figures.add(conn, events, day)


def _read_month(conn: Redis, last, reads: int) -> float:
    first = last - timedelta(days=29)
    times = []
    for _ in range(reads):
        start = time.perf_counter()
        figures.read(conn, first, last, lambda code: code[-1] in "02468")
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--branches", type=int, default=40)
    parser.add_argument("--years", type=int, default=1)
    parser.add_argument("--reads", type=int, default=20)
    args = parser.parse_args()
    last = figures.day_of(UPLOADED)
    with tempfile.TemporaryDirectory() as tmp, redis_server(Path(tmp)) as redis:
        conn = Redis.from_url(redis.url)
        for n in range(30):
            _day(conn, last - timedelta(days=n), args.branches)
        month = _read_month(conn, last, args.reads)
        for n in range(30, 365 * args.years):
            _day(conn, last - timedelta(days=n), args.branches)
        years = _read_month(conn, last, args.reads)
        print(
            f"a month's figures ({args.branches} branches, half reached): "
            f"{month * 1000:.0f} ms with a month in Redis"
        )
        print(f"  with {args.years} years in Redis: {years * 1000:.0f} ms (ratio {years / month:.2f})")

        store = LocalStore(Path(tmp) / "objects")
        scan, form = _scan(), _form()
        store.put(scan.key, scan.to_json(), "application/json")
        store.put(form.key, form.to_json(), "application/json")
        times = []
        for _ in range(args.reads * 10):
            start = time.perf_counter()
            figures.note_scan(conn, store, scan.scan_id)
            times.append(time.perf_counter() - start)
        print(
            f"note_scan of a scan of one form, counted before: "
            f"{statistics.median(times) * 1000:.1f} ms median"
        )


if __name__ == "__main__":
    main()
