"""decide: a field's OCR reads in, a value out, accepted by machine only where it can show it is right.

A field is accepted automatically when all of these hold, and goes to key-entry with the reasons
otherwise:
1. both reads (the field at two text sizes, see ocr/tesseract.py) give the same normalised value;
2. every validator of the field's kind passes (check digit, real date, pattern, closed list);
3. the lower word confidence of the two reads clears the kind's threshold;
4. the field looks machine-printed with the text read (ocr/printed.py): handwriting and smudges never
   go through on OCR alone;
5. the document's cross-checks pass (birth date and sex against the ID number beside them).

Thresholds are per kind, calibrated by `bench/ocr_bench.py --calibrate` on generated, degraded forms and
cards: for each kind the lowest threshold at which the accepted values were all right in the
calibration set, rounded up; kinds with a check digit or a closed list carry their own proof and need
less from the confidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ocr.printed import print_score
from ocr.tesseract import OcrConfig, OcrText, read_fields
from ocr.validate import cross_check, validate

# Calibrated with `.venv/bin/python bench/ocr_bench.py --calibrate --forms 40 --seed 11` (920 fields):
# the lowest threshold at which no wrong value was accepted, plus a margin of 10 where the kind has no
# proof of its own (check digit, closed list, cross-check). That run's lowest safe values: address 20,
# amount 25, code 0, date 0, id_number 0, integer 0, name 50, phone 0, sex 0, text 5.
THRESHOLDS: dict[str, float] = {
    "id_number": 0.0,  # the GB 11643 check digit catches any single misread digit
    "sex": 0.0,  # closed list of two, and cross-checked with the ID number's sex digit
    "phone": 0.0,  # 11 digits starting 13-19, and two reads agree
    "date": 10.0,  # a real date, and two reads agree
    "code": 10.0,
    "integer": 10.0,
    "text": 20.0,
    "address": 30.0,
    "amount": 35.0,
    "name": 60.0,
    "choice": 60.0,
}


# ocr/printed.py: printed fields scored 0.78-0.97, handwritten and smudged ones below 0.3.
PRINT_MIN = 0.6


class Status:
    accepted = "accepted"  # by OCR, every check passed
    key_entry = "key_entry"  # waiting for people
    keyed = "keyed"  # typed by people and accepted


@dataclass
class Decision:
    value: str | None
    confidence: float
    status: str
    reasons: list[str] = field(default_factory=list)
    suggestion: str | None = None  # what OCR read, offered to the keyer

    def to_json(self) -> dict:
        out: dict = {"value": self.value, "confidence": round(self.confidence, 1), "status": self.status}
        if self.reasons:
            out["reasons"] = self.reasons
        if self.suggestion is not None:
            out["suggestion"] = self.suggestion
        return out


def decide_field(
    kind: str, name: str, reads: tuple[OcrText, ...], image: np.ndarray | None = None
) -> Decision:
    """Return the decision for one field from its reads (no reads: the field is blank) and, when given,
    the image they were read from (to check that it is printed)."""
    if not reads:
        return Decision(None, 0.0, Status.key_entry, ["nothing written in the field"], None)
    checked = [validate(kind, r.text, name) for r in reads]
    confidence = min(r.confidence for r in reads)
    first = checked[0]
    reasons = list(first.problems)
    if any(c.value != first.value for c in checked[1:]):
        reasons.append("two readings disagree: " + " / ".join(repr(c.value) for c in checked))
    threshold = THRESHOLDS.get(kind, 60.0)
    if confidence < threshold:
        reasons.append(f"OCR confidence {confidence:.0f} below {threshold:.0f}")
    # One line of text can be drawn again and compared; a card's two-line address is always printed.
    if not reasons and image is not None and "\n" not in reads[0].text:
        score = print_score(image, reads[0].text)
        if score < PRINT_MIN:
            reasons.append(
                f"does not look printed (match {score:.2f} < {PRINT_MIN}): handwritten or smudged?"
            )
    if reasons:
        return Decision(None, confidence, Status.key_entry, reasons, first.value or None)
    return Decision(first.value, confidence, Status.accepted)


def decide_document(
    fields: dict[str, tuple[str, tuple[OcrText, ...]]], images: dict[str, np.ndarray] | None = None
) -> dict[str, Decision]:
    """Return a decision per field of one document (name: (kind, reads)), cross-checks applied; with
    the field images (name: image read), each accepted field is also checked to be printed."""
    images = images or {}
    decisions = {
        name: decide_field(kind, name, reads, images.get(name)) for name, (kind, reads) in fields.items()
    }
    accepted = {n: d.value for n, d in decisions.items() if d.status == Status.accepted and d.value}
    for name, problems in cross_check(accepted).items():
        d = decisions[name]
        decisions[name] = Decision(None, d.confidence, Status.key_entry, problems, d.value)
    return decisions


def ocr_config(spec) -> OcrConfig:
    """Return how tesseract reads a template field (capture/templates.py FieldSpec)."""
    return OcrConfig(spec.lang, spec.psm, spec.charset or "", str(spec.kind))


def read_document(document) -> dict[str, Decision]:
    """Return the decision for each field of a captured document (none for a page of no template).
    Fields from a born-digital PDF's text layer are validated, not read."""
    from capture.templates import by_key

    if not document.template or not document.fields:
        return {}
    template = by_key(document.template)
    names = [n for n, f in document.fields.items() if f.text is None]
    configs = [ocr_config(template.field(n)) for n in names]
    images = {n: document.fields[n].ocr_image for n in names}
    reads = read_fields([(images[n], c) for n, c in zip(names, configs, strict=True)])
    decisions = decide_document(
        {n: (c.kind, r) for n, c, r in zip(names, configs, reads, strict=True)}, images
    )
    for name, f in document.fields.items():
        if f.text is not None:
            checked = validate(str(template.field(name).kind), f.text, name)
            decisions[name] = (
                Decision(checked.value, 100.0, Status.accepted)
                if checked.ok
                else Decision(None, 100.0, Status.key_entry, list(checked.problems), checked.value)
            )
    return decisions
