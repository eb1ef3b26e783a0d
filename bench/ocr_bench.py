"""OCR accuracy, straight-through rate and speed on generated, degraded forms and ID cards.

    .venv/bin/python bench/ocr_bench.py [--forms 30] [--seed 7]          # the tables
    .venv/bin/python bench/ocr_bench.py --calibrate --forms 40 --seed 11  # propose ocr/decide.py thresholds
    .venv/bin/python bench/ocr_bench.py --compare 8                       # also the three OCR methods
    .venv/bin/python bench/ocr_bench.py --forms 10 --seed 31 --mild --faces uming,zenhei,ukai,noto-serif
                                         # straight-through and precision by the face values are printed in

Every form and card pair has its own values (capture/specimens.py) and its own scan: 240-400 dpi,
turned up to 5 degrees, noise, blur, JPEG, uneven light. A quarter of the forms have one or two fields
written by an unsteady hand (tests/capture/scans.py `handwrite`) and a quarter one smudged field: those
must go to key-entry, never through. One core: OMP_THREAD_LIMIT=1.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

os.environ["OMP_THREAD_LIMIT"] = "1"
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from capture.decode import Page  # noqa: E402
from capture.pipeline import capture  # noqa: E402
from capture.render import render_form, render_idcard  # noqa: E402
from capture.specimens import card_values, form_values  # noqa: E402
from capture.templates import latest  # noqa: E402
from ocr.decide import THRESHOLDS  # noqa: E402
from ocr.engine import OcrConfig  # noqa: E402
from ocr.pipeline import ocr_config, read_and_decide  # noqa: E402
from ocr.reads import read_fields  # noqa: E402
from ocr.validate import validate  # noqa: E402
from tests.capture.scans import handwrite, place_cards, scan_page, smudge  # noqa: E402
from vocabulary import FieldStatus  # noqa: E402

FORM, FRONT, BACK = latest("application_form"), latest("idcard_front"), latest("idcard_back")


def samples(n: int, seed: int, face: str | None = None, mild: bool = False):
    """Yield (page image, dpi, truth per field, condition per field) for n forms and n card pages, their
    values printed in a face (printing.FACES; ours when None). mild: lighter scans (300 dpi, up to 2
    degrees, light noise, JPEG 90 or none, no blur or uneven light), the same share of handwritten and
    smudged fields."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        values = form_values(random.Random(seed * 100_003 + i))
        condition = {name: "printed" for name in values}
        blank = dict(values)
        draw = rng.random()
        names = [f.name for f in FORM.fields if f.name != "application_no" and not f.options]  # no tick box
        chosen = list(rng.choice(names, size=int(rng.integers(1, 3)), replace=False))
        if draw < 0.25:
            for name in chosen:
                blank[name] = ""
                condition[name] = "handwritten"
        page = render_form(FORM, blank, 300, face)
        if draw < 0.25:
            for name in chosen:
                page = handwrite(page, FORM.field(name).box, values[name], rng)
        elif draw < 0.5:
            page = smudge(page, FORM.field(chosen[0]).box, rng)
            condition[chosen[0]] = "smudged"
        dpi = float(rng.choice([240, 300, 300, 400])) if not mild else 300.0
        scan, _ = scan_page(
            page,
            rng,
            dpi=dpi,
            angle=float(rng.uniform(-5, 5) if not mild else rng.uniform(-2, 2)),
            perspective=float(rng.choice([0, 0, 0.005])) if not mild else 0.0,
            blur=float(rng.choice([0, 0, 0.5, 0.8])) if not mild else 0.0,
            noise=float(rng.uniform(2, 6) if not mild else rng.uniform(1, 3)),
            jpeg=(int(rng.choice([0, 70, 85, 95])) if not mild else int(rng.choice([0, 90]))) or None,
            light=bool(rng.random() < 0.3) and not mild,
        )
        yield scan, dpi, values, condition
        card = card_values(random.Random(seed * 100_019 + i))
        dpi = float(rng.choice([300, 300, 400])) if not mild else 300.0
        page, _ = place_cards(
            [render_idcard(FRONT, card, face=face), render_idcard(BACK, card, face=face)],
            rng,
            dpi=dpi,
            blur=float(rng.choice([0, 0.5])) if not mild else 0.0,
            noise=float(rng.uniform(2, 6) if not mild else rng.uniform(1, 3)),
            jpeg=(int(rng.choice([0, 75, 90])) if not mild else int(rng.choice([0, 90]))) or None,
        )
        yield page, dpi, card, {name: "printed" for name in card}


def config(template, name: str) -> OcrConfig:
    return ocr_config(template.field(name))


def run(n: int, seed: int, every_read: bool = False, face: str | None = None, mild: bool = False):
    """Return one row per field: (kind, name, condition, truth, reads, decision, image), the OCR seconds
    (reading and deciding) and the number of fields. every_read: read every field eight times (for
    --calibrate), not only those its first two reads do not settle."""
    import ocr.decide

    if every_read:
        ocr.decide.settled = lambda kind, reads, image, name="": False
    rows, ocr_seconds, fields_read, reads_taken = [], 0.0, 0, 0
    for image, dpi, truth, condition in samples(n, seed, face, mild):
        for doc in capture([Page(1, image, dpi)]):
            template = doc.template
            if template is None:
                continue
            names = list(doc.fields)
            started = time.perf_counter()
            decisions, read = read_and_decide(doc)
            ocr_seconds += time.perf_counter() - started
            reads = [read.get(n, ()) for n in names]  # a tick box is read by its marks, no reads
            kinds = {n: str(template.field(n).kind) for n in names}
            fields_read += len(names)
            reads_taken += sum(len(r) for r in reads)
            for name, r in zip(names, reads, strict=True):
                right = validate(kinds[name], truth[name], name).value
                image = doc.fields[name].ocr_image
                rows.append((kinds[name], name, condition[name], right, r, decisions[name], image))
    return rows, ocr_seconds, fields_read, reads_taken


def by_face(n: int, seed: int, faces: list[str], mild: bool) -> None:
    """Print, per face the values are printed in, the straight-through rate and precision of printed
    fields, the handwritten and smudged fields accepted, and reads and ms a field."""
    print(f"{n} forms and {n} card pages per face, seed {seed}, {'mild' if mild else 'hard'} scans\n")
    print("| face | printed fields | straight through | accepted and right | precision "
          "| handwritten/smudged accepted | reads a field | ms a field |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for face in faces:
        rows, seconds, fields, reads = run(n, seed, face=face, mild=mild)
        printed = [r for r in rows if r[2] == "printed"]
        accepted = [r for r in printed if r[5].status == FieldStatus.accepted]
        right = sum(r[5].value == r[3] for r in accepted)
        others = [r for r in rows if r[2] != "printed"]
        through = sum(r[5].status == FieldStatus.accepted for r in others)
        wrong = [(r[1], r[5].value, r[3]) for r in accepted if r[5].value != r[3]]
        print(
            f"| {face} | {len(printed)} | {len(accepted) / len(printed):.1%} | {right} | "
            f"{right / max(len(accepted), 1):.2%} | {through}/{len(others)} | {reads / fields:.2f} | "
            f"{1000 * seconds / fields:.1f} |",
            flush=True,
        )
        if wrong:
            print(f"  wrong values accepted in {face}: {wrong}", flush=True)


def report(rows) -> None:
    by_kind: dict[str, Counter] = defaultdict(Counter)
    wrong, through = [], []
    for kind, name, condition, truth, _, d, _ in rows:
        c = by_kind[kind if condition == "printed" else condition]
        c["fields"] += 1
        c["read right"] += bool(d.value == truth or d.suggestion == truth)
        if d.status == FieldStatus.accepted:
            c["accepted"] += 1
            c["accepted right"] += d.value == truth
            if condition != "printed":
                through.append((name, condition, d.value, d.confidence))
            if d.value != truth:
                wrong.append((name, condition, d.value, truth, d.confidence))
    print("| kind | fields | read right | accepted | accepted and right | precision |")
    print("|---|---:|---:|---:|---:|---:|")
    total = Counter()
    for kind in sorted(by_kind):
        c = by_kind[kind]
        if kind not in ("handwritten", "smudged"):
            total.update(c)
        print(
            f"| {kind} | {c['fields']} | {c['read right'] / c['fields']:.1%} | "
            f"{c['accepted'] / c['fields']:.1%} | {c['accepted right']} | "
            f"{c['accepted right'] / max(c['accepted'], 1):.2%} |"
        )
    print(
        f"| **printed, all kinds** | {total['fields']} | {total['read right'] / total['fields']:.1%} | "
        f"{total['accepted'] / total['fields']:.1%} | {total['accepted right']} | "
        f"{total['accepted right'] / max(total['accepted'], 1):.2%} |"
    )
    print("\nwrong values accepted:", wrong or "none")
    print("handwritten or smudged fields accepted:", through or "none")


def calibrate(rows) -> None:
    """Print, per kind, from fields read eight times: the lowest confidence threshold at which the first
    two reads alone (agreeing, valid, looking printed) accepted no wrong value; what the eight reads
    decide; and how the characters of right and wrong values match the ink (ocr/printed.py)."""
    from ocr.decide import _decide_by_votes, print_problems
    from ocr.printed import char_scores

    print(
        "| kind | threshold now | lowest safe (two reads) | accepted at lowest safe | eight reads: accepted "
        "| right value's lowest character match | wrong value's highest |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    by_kind = defaultdict(list)
    for kind, name, condition, truth, reads, _, image in rows:
        if condition != "printed" or not reads:
            continue
        checked = [validate(kind, r.text, name) for r in reads[:2]]
        proven = all(c.ok and c.value == checked[0].value for c in checked)
        proven = proven and not print_problems(kind, reads[0].text, image)
        confidence = min(r.confidence for r in reads[:2])
        voted = _decide_by_votes(kind, name, reads, image)
        value = voted.value or voted.suggestion
        text = next((r.text for r in reads if validate(kind, r.text, name).value == value), "")
        match = min(char_scores(image, text.replace(" ", "") if kind != "text" else text), default=-1.0)
        by_kind[kind].append(
            (proven, confidence, proven and checked[0].value == truth, voted, truth, value, match)
        )
    for kind, items in sorted(by_kind.items()):
        safe = next(
            t for t in range(0, 101, 5) if all(ok for agree, conf, ok, *_ in items if agree and conf >= t)
        )
        accepted = sum(1 for agree, conf, *_ in items if agree and conf >= safe)
        voted = [(v, t) for *_, v, t, _, _ in items if v.status == FieldStatus.accepted]
        right = [m for *_, t, value, m in items if value == t]
        wrong = [m for *_, t, value, m in items if value and value != t]
        print(
            f"| {kind} | {THRESHOLDS.get(kind)} | {safe} | {accepted}/{len(items)} | "
            f"{len(voted)}/{len(items)}, {sum(v.value == t for v, t in voted)} right | "
            f"{min(right, default=float('nan')):.3f} | {max(wrong, default=float('nan')):.3f} |"
        )


def compare(n: int, seed: int) -> None:
    """Print field throughput and accuracy of three ways to OCR the same captured forms."""
    import pytesseract

    from capture.align import OUTPUT_DPI

    docs = []
    for image, dpi, truth, condition in samples(n, seed):
        for doc in capture([Page(1, image, dpi)]):
            if doc.type == "application_form":
                docs.append((doc, truth, condition))
    names = [f.name for f in FORM.fields]
    results = {}
    # 1. ours: in-process, both reads, per-field configuration
    started, right, count = time.perf_counter(), 0, 0
    for doc, truth, condition in docs:
        reads = read_fields([(doc.fields[n].ocr_image, config(FORM, n)) for n in names])
        for n, r in zip(names, reads, strict=True):
            if condition[n] == "printed":
                count += 1
                right += (
                    bool(r)
                    and validate(config(FORM, n).kind, r[0].text, n).value
                    == validate(config(FORM, n).kind, truth[n], n).value
                )
    results["in-process (tesserocr), two reads a field (eight if unsettled)"] = (
        time.perf_counter() - started,
        right,
        count,
    )
    # 2. one pytesseract call (one process) per field
    started, right, count = time.perf_counter(), 0, 0
    for doc, truth, condition in docs:
        for n in names:
            c = config(FORM, n)
            whitelist = f" -c tessedit_char_whitelist={c.charset}" if c.charset else ""
            text = pytesseract.image_to_string(
                doc.fields[n].ocr_image, lang=c.lang, config=f"--psm {c.psm}{whitelist}"
            )
            if condition[n] == "printed":
                count += 1
                right += validate(c.kind, text.strip(), n).value == validate(c.kind, truth[n], n).value
    results["one pytesseract process per field"] = (time.perf_counter() - started, right, count)
    # 3. full-page OCR of the rectified page, then the words inside each field's box
    started, right, count = time.perf_counter(), 0, 0
    k = OUTPUT_DPI / 25.4
    for doc, truth, condition in docs:
        data = pytesseract.image_to_data(
            doc.images[0], lang="chi_sim+eng", output_type=pytesseract.Output.DICT
        )
        for n in names:
            b = FORM.field(n).box
            # The printed box's sides come back as "|" words: drop them, as any extraction would.
            words = [
                data["text"][i].strip("|[]")
                for i in range(len(data["text"]))
                if data["text"][i].strip("|[] ")
                and b.x * k <= data["left"][i] + data["width"][i] / 2 <= (b.x + b.w) * k
                and b.y * k <= data["top"][i] + data["height"][i] / 2 <= (b.y + b.h) * k
            ]
            if condition[n] == "printed":
                count += 1
                kind = config(FORM, n).kind
                right += validate(kind, "".join(words), n).value == validate(kind, truth[n], n).value
    results["full-page OCR, then words by box"] = (time.perf_counter() - started, right, count)
    print(f"\n{len(docs)} forms, {len(names)} fields each, printed fields only for accuracy\n")
    print("| method | fields/s | right |")
    print("|---|---:|---:|")
    for method, (seconds, right, count) in results.items():
        print(
            f"| {method} | {len(docs) * len(names) / seconds:.1f} | {right}/{count} = {right / count:.1%} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--forms", type=int, default=30, help="forms, and as many card pages")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--calibrate", action="store_true")
    parser.add_argument("--faces", help="comma-separated printing.FACES: a table by face")
    parser.add_argument("--mild", action="store_true", help="lighter scans (300 dpi, up to 2 degrees)")
    parser.add_argument("--compare", type=int, default=0, metavar="N", help="compare OCR methods on N forms")
    args = parser.parse_args()
    if args.faces:
        by_face(args.forms, args.seed, args.faces.split(","), args.mild)
        return
    if args.forms == 0 and args.compare:
        compare(args.compare, args.seed + 1)
        return
    rows, seconds, fields, reads = run(args.forms, args.seed, every_read=args.calibrate)
    print(f"{args.forms} forms and {args.forms} card pages, seed {args.seed}: {fields} fields")
    print(f"OCR {1000 * seconds / fields:.1f} ms a field ({reads / fields:.2f} reads a field), one core\n")
    report(rows)
    if args.calibrate:
        print()
        calibrate(rows)
    if args.compare:
        compare(args.compare, args.seed + 1)


if __name__ == "__main__":
    main()
