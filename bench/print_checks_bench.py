"""The print checks (ocr/printed.py) alone: every call the OCR of some pages makes, recorded once, then
timed again and again in one process, apart from the engines and capture.

    .venv/bin/python bench/print_checks_bench.py --record calls.pkl [--pages 12] [--seeds 41,43]
    .venv/bin/python bench/print_checks_bench.py --replay calls.pkl [--rounds 3]

--record reads the pages (forms and ID card beds in turn, as bench/page_speed_bench.py makes them) and
keeps each call to print_scores, char_scores, look_alike_lead and print_geometry with its answer.
--replay makes the same calls again, each round with the drawn lines forgotten (as in a new job), says
how long each function took (the least of the rounds) and how many answers differ from the recorded
ones by more than 1e-9. Replayed from a worktree of another commit, the same file compares two versions
of the checks on the same calls: the page bench's noise (a whole page's OCR, engines included) hides
a change of a few per cent there. One core: OMP_THREAD_LIMIT=1.
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import time
from collections import Counter
from pathlib import Path

os.environ["OMP_THREAD_LIMIT"] = "1"
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ocr import printed  # noqa: E402

CHECKS = ("print_scores", "char_scores", "look_alike_lead", "print_geometry")


def record(path: Path, pages: int, seeds: list[int]) -> None:
    """Read the pages and keep every call to the checks, with its answer, in the file."""
    from page_speed_bench import pages as scanned_pages

    import ocr.decide
    from capture.decode import Page
    from capture.pipeline import capture
    from ocr.pipeline import read_document
    from worker_process import opencv_on_one_thread, preload

    opencv_on_one_thread()
    preload()
    calls = []
    for name in CHECKS:
        check = getattr(printed, name)

        def kept(*args, _check=check, _name=name):
            answer = _check(*args)
            calls.append((_name, args, answer))
            return answer

        setattr(printed, name, kept)
        if hasattr(ocr.decide, name):  # imported by name there
            setattr(ocr.decide, name, kept)
    for seed in seeds:
        for image, _ in scanned_pages(pages, seed, None):
            for document in capture([Page(1, image, 300.0)]):
                read_document(document)
    path.write_bytes(pickle.dumps(calls))
    print(f"{len(calls)} calls on {pages * len(seeds)} pages: {dict(Counter(c[0] for c in calls))} -> {path}")


def _close(a, b) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= 1e-9
    return a == b


def replay(path: Path, rounds: int) -> None:
    """Make the recorded calls again, `rounds` times, and say how long each check took."""
    from printing import installed_faces

    calls = pickle.loads(path.read_bytes())
    printed.preload((None, *installed_faces()))  # as a worker does before it forks
    best: dict[str, float] = {}
    differ = 0
    for i in range(rounds):
        printed._glyphs.cache_clear()  # noqa: SLF001 (a job starts with no line drawn, no field binarised)
        getattr(printed, "_binaries", {}).clear()
        spent = Counter()
        for name, args, answer in calls:
            start = time.perf_counter()
            got = getattr(printed, name)(*args)
            spent[name] += time.perf_counter() - start
            differ += i == 0 and not _close(got, answer)
        best = {n: min(best.get(n, float("inf")), spent[n]) for n in spent}
    print(f"{len(calls)} calls, {differ} answers differ from the recorded ones; least of {rounds} rounds:")
    for name in CHECKS:
        print(f"  {name}: {best.get(name, 0.0) * 1000:.0f} ms")
    print(f"  all: {sum(best.values()) * 1000:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--record", type=Path, metavar="FILE")
    group.add_argument("--replay", type=Path, metavar="FILE")
    parser.add_argument("--pages", type=int, default=12)
    parser.add_argument("--seeds", default="41,43")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.record:
        sys.path.insert(0, str(ROOT / "bench"))
        record(args.record, args.pages, [int(s) for s in args.seeds.split(",")])
    else:
        replay(args.replay, args.rounds)


if __name__ == "__main__":
    main()
