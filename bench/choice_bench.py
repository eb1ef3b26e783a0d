"""Choice fields (tick boxes) of the application form on held-out generated scans: straight-through and
precision, by how the box was ticked.

    .venv/bin/python bench/choice_bench.py --forms 40 --seed 61

Each form has its own values (capture/specimens.py form_values) and its own scan, degraded as in
bench/ocr_bench.py (240-400 dpi, up to 5 degrees, noise, blur, JPEG 70-95, uneven light). Each choice field
is filled one way, drawn at random:
  printed   the sample renderer's tick (as a system printing the form would),
  hand      a pen's mark drawn into the box: a tick or a cross, 0.25-0.6 mm wide, off-centre, a stroke
            running over the box's line,
  none      nothing ticked (must go to key-entry),
  two       two boxes ticked (must go to key-entry),
  wrong-sex the applicant's sex ticked against the ID number's sex digit (must go to key-entry).
Only the marks are decided (capture, then ocr/choice.py and the document's cross-check against the true
ID number and birth date): the text fields' OCR is measured by bench/ocr_bench.py. One core.
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

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from capture.decode import Page  # noqa: E402
from capture.pipeline import capture  # noqa: E402
from capture.render import render_form  # noqa: E402
from capture.specimens import form_values  # noqa: E402
from capture.templates import latest  # noqa: E402
from ocr.choice import decide_choice  # noqa: E402
from ocr.validate import document_checks  # noqa: E402
from tests.capture.scans import scan_page  # noqa: E402
from vocabulary import FieldStatus  # noqa: E402

FORM = latest("application_form")
CHOICES = [f for f in FORM.fields if f.options]
WAYS = ["printed"] * 4 + ["hand"] * 4 + ["none", "two"]


def _px(mm: float) -> int:
    return round(mm / 25.4 * 300)


def hand_mark(page: np.ndarray, box, rng: np.random.Generator) -> None:
    """Draw a pen's tick or cross into a tick box of a 300 dpi page, in place."""
    width = max(2, _px(float(rng.uniform(0.25, 0.6))))
    x, y, s = box.x + float(rng.uniform(-0.4, 0.4)), box.y + float(rng.uniform(-0.4, 0.4)), box.w
    if rng.random() < 0.6:  # a tick: down short, up long, the long stroke often past the box
        pts = [
            (x + 0.15 * s, y + 0.5 * s),
            (x + 0.4 * s, y + 0.9 * s),
            (x + s * rng.uniform(0.9, 1.3), y - 0.2 * s),
        ]
        lines = [pts]
    else:  # a cross
        lines = [
            [(x + 0.1 * s, y + 0.1 * s), (x + 0.9 * s, y + 0.9 * s)],
            [(x + 0.9 * s, y + 0.1 * s), (x + 0.1 * s, y + 0.9 * s)],
        ]
    for line in lines:
        pts = np.array([(_px(a), _px(b)) for a, b in line], np.int32)
        cv2.polylines(page, [pts], False, int(rng.integers(0, 60)), width, cv2.LINE_AA)


def sample(i: int, seed: int, rng: np.random.Generator):
    """Return (scan, dpi, truth per choice field or None when no single answer, way per field, values)."""
    values = form_values(random.Random(seed * 100_003 + i))
    shown, truth, ways, hands = dict(values), {}, {}, []
    for spec in CHOICES:
        way = str(rng.choice(WAYS))
        if spec.name == "applicant_sex" and rng.random() < 0.1:
            way = "wrong-sex"
        labels = [label for label, _ in spec.options]
        truth[spec.name] = values[spec.name]
        if way == "hand":
            shown[spec.name] = ""
            hands.append(dict(spec.options)[values[spec.name]])
        elif way == "none":
            shown[spec.name], truth[spec.name] = "", None
        elif way == "two":
            shown[spec.name], truth[spec.name] = "|".join(rng.choice(labels, 2, replace=False)), None
        elif way == "wrong-sex":
            shown[spec.name] = next(label for label in labels if label != values[spec.name])
            truth[spec.name] = None
        ways[spec.name] = way
    page = render_form(FORM, shown, 300).copy()
    for box in hands:
        hand_mark(page, box, rng)
    dpi = float(rng.choice([240, 300, 300, 400]))
    scan, _ = scan_page(
        page,
        rng,
        dpi=dpi,
        angle=float(rng.uniform(-5, 5)),
        perspective=float(rng.choice([0, 0, 0.005])),
        blur=float(rng.choice([0, 0, 0.5, 0.8])),
        noise=float(rng.uniform(2, 6)),
        jpeg=int(rng.choice([0, 70, 85, 95])) or None,
        light=bool(rng.random() < 0.3),
    )
    return scan, dpi, truth, ways, values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--forms", type=int, default=40)
    parser.add_argument("--seed", type=int, default=61)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    counts: dict[str, Counter] = defaultdict(Counter)
    fills: dict[str, list[float]] = defaultdict(list)
    wrong, lost, started = [], 0, time.process_time()
    for i in range(args.forms):
        scan, dpi, truth, ways, values = sample(i, args.seed, rng)
        docs = [d for d in capture([Page(1, scan, dpi)]) if d.template is not None]
        if not docs:
            lost += 1
            continue
        fields = docs[0].fields
        decisions = {s.name: decide_choice(str(s.kind), s.name, fields[s.name].marks) for s in CHOICES}
        accepted = {n: d.value for n, d in decisions.items() if d.status == FieldStatus.accepted}
        known = {k: values[k] for k in ("applicant_id_number", "applicant_birth_date")}
        for name in document_checks({**known, **accepted}):
            if name in accepted:
                accepted.pop(name)
        for spec in CHOICES:
            way, name = ways[spec.name], spec.name
            c = counts[way]
            c["fields"] += 1
            marked = dict(fields[name].marks)
            if truth[name] is not None:
                fills[way].append(marked[truth[name]])
            if name in accepted:
                c["accepted"] += 1
                c["right"] += accepted[name] == truth[name]
                if accepted[name] != truth[name]:
                    wrong.append((i, name, way, accepted[name], truth[name], fields[name].marks))
    cpu = time.process_time() - started
    print(
        f"{args.forms} forms, seed {args.seed}, {len(CHOICES)} choice fields a form; forms not found: {lost}"
    )
    print("| filled | fields | accepted by machine (straight-through) | accepted and right (precision) |")
    print("| --- | ---: | ---: | ---: |")
    for way in ["printed", "hand", "none", "two", "wrong-sex"]:
        c = counts[way]
        if not c["fields"]:
            continue
        through = f"{c['accepted']} ({100 * c['accepted'] / c['fields']:.1f} %)"
        right = f"{c['right']} of {c['accepted']}" if c["accepted"] else "-"
        print(f"| {way} | {c['fields']} | {through} | {right} |")
    for way, values_ in fills.items():
        print(f"ticked box fill, {way}: min {min(values_):.3f} median {np.median(values_):.3f}")
    for row in wrong:
        print("WRONG", row)
    print(f"CPU {cpu:.1f} s ({cpu / max(1, args.forms):.2f} s a form, capture included)")


if __name__ == "__main__":
    main()
