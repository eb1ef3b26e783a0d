"""decide: a field's OCR reads in, a value out, accepted by machine only where it can show it is right.

A field is accepted automatically when all of these hold, and goes to key-entry with the reasons
otherwise:
1. its one read carries its own proof (proven_alone: a check digit, the QR code's number, the birth
   date and sex the ID number gives); or one PP-OCR read of a name, an address, a text or a number
   gives it at PP-OCR's confidence (PPOCR_ALONE_KINDS: their print check, item 3, is strict); or
   tesseract and PP-OCR give the same normalised value, each at its confidence (without PP-OCR: two
   tesseract reads at two text sizes, see ocr/reads.py); or, when they do not, the field is read more
   and of the values the reads give, the one whose characters, drawn in the page's face, match the ink
   best is taken, if at least VOTES_MIN reads give it and no other value read matches nearly as well
   (CHAR_MARGIN);
2. every validator of the field's kind passes (check digit, real date, pattern, closed list);
3. the field looks machine-printed with the value taken (ocr/printed.py): the line drawn again matches
   the ink (PRINT_MIN) and so does every character in its own place (CHAR_MIN): handwriting and smudges
   never go through on OCR alone, and a misread character (凤 read 风, 潍 read 滩) does not either;
4. a value of one character (a sex, a one-digit number) is the size and on the line of the document's
   other printed values (lone_glyph_problems): one glyph drawn again matches a careful hand too;
5. the document's cross-checks pass (birth date and sex against the ID number beside them).

Thresholds are per kind, calibrated by `bench/ocr_bench.py --calibrate` on generated, degraded forms and
cards: for each kind the lowest threshold at which the accepted values were all right in the
calibration set, rounded up; kinds with a check digit or a closed list carry their own proof and need
less from the confidence. The character check leans on knowing the face the values are printed in: it is
learned from the page's own fields (learn_face) among the installed faces (printing.FACES); a document
printed in a face not installed has its fields go to key-entry (it fails safe, not wrong).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from ocr.engine import OcrText
from ocr.printed import char_scores, look_alike_lead, print_geometry, print_score, print_scores
from ocr.validate import cross_check, document_checks, validate
from printing import Kept, group_card_number, installed_faces
from vocabulary import FieldStatus

# Calibrated with `.venv/bin/python bench/ocr_bench.py --calibrate --forms 40 --seed 11` (920 fields):
# the lowest threshold at which the first two reads, agreeing and looking printed character by
# character and against look-alikes, accepted no wrong value, plus a margin of 10 where the kind has no
# proof of its own (check digit, closed list, cross-check). That run's lowest safe values: 0 for every
# kind (name 35 before the look-alike check; before the character check address 20, amount 25, name 50,
# text 5). A field under its threshold is not refused: it is read six more times and decided by the
# eight reads (_decide_by_votes).
THRESHOLDS: dict[str, float] = {
    "id_number": 0.0,  # the GB 11643 check digit catches any single misread digit
    "sex": 0.0,  # closed list of two, and cross-checked with the ID number's sex digit
    "phone": 0.0,  # 11 digits starting 13-19, and two reads agree
    "date": 10.0,  # a real date, and two reads agree
    "code": 10.0,
    "integer": 10.0,
    "text": 10.0,
    "address": 10.0,
    "amount": 10.0,
    "name": 10.0,
    "choice": 60.0,
    "card_number": 0.0,  # the Luhn check digit catches any single misread digit
}


# ocr/printed.py: printed fields scored 0.78-0.97, handwritten and smudged ones below 0.3.
PRINT_MIN = 0.6
# Each character, drawn in the print font, against its own column of ink (ocr/printed.py char_scores).
# Calibration forms (seeds 11 and 13): the right value's lowest character scored name 0.886, address
# 0.874, text 0.854, digits 0.63-0.80; misread names scored up to 0.83 (凤 read 风), addresses up to
# 0.77 (潍 read 滩), texts up to 0.51. 字 read for 宇 scores 0.90-0.92 against 0.93-0.95 for 宇: among
# several values read, the best match is taken only when it leads by CHAR_MARGIN.
CHAR_MIN: dict[str, float] = {"name": 0.86, "address": 0.83, "text": 0.75, "sex": 0.9}
DEFAULT_CHAR_MIN = 0.5  # digits: the check digit and the patterns do the rest; handwriting scores < 0.3
CHAR_MARGIN = 0.02
# Every character of a name, an amount, a phone number or a whole number must match its ink better
# than its rivals would in its place, by LOOK_ALIKE_LEAD (ocr/printed.py look_alike_lead; rivals: every
# other digit, the closest look-alikes of a Chinese character): 字 for 宇 passes CHAR_MIN (0.90-0.92)
# and may be what every read gives; so may 3 for 5. Seeds 11 and 13: right names led by >= 0.029 but one
# (0.012, 梁宇 on a card), the 17 misreads of 字/宇 and 风/凤 by <= -0.012; right phones, amounts and
# whole numbers by >= 0.06 (one amount with a stray mark aside), the same values with one digit
# changed (3 for 5, 8 for others) by <= -0.135. Dates are left out: a card prints 1987年3月5日.
LOOK_ALIKE_KINDS = frozenset({"name", "amount", "phone", "integer"})
LOOK_ALIKE_LEAD = 0.02
# A value of one character must also be printed like the document's other values (decide_document):
# its size within 5 % and its baseline within 2 px of another accepted field's. Printed fields of one
# form: sizes 52-61 px, baselines 69.8-73.7 px in 103-104 px crops; a careful hand's 男: 54-95 px.
GLYPH_SIZE = 0.05
GLYPH_LINE = 2.0
# Fields read eight times (ocr/reads.py): the value taken must be given by at least this many reads.
VOTES_MIN: dict[str, int] = {}
DEFAULT_VOTES_MIN = 2
MARGIN_VOTES = 2  # without the image: the value most reads give, by this many reads
# Two engines that fail differently (ocr/reads.py: tesseract and PP-OCR, ocr/ppocr.py) reading the same
# valid value settle a field in two reads; PP-OCR's least character confidence must also clear this
# (0-100). Its score alone proves nothing (it does not see a dropped character): the agreement does.
PPOCR_MIN = 50.0
# Kinds whose value carries its own proof (a check digit, a code the form's QR code repeats) or is all
# digits: the fields the page's face is learned from (learn_face) when both engines read them alike.
PROVEN_KINDS = ("id_number", "card_number", "code", "phone", "date")
_CHINESE = re.compile(r"[\u3400-\u9fff]")
FACE_SAMPLES = 3  # fields the face is learned from: enough to tell the faces apart, few enough to be quick
# Fields one tesseract read may settle without the second engine (proven_alone), because the value read
# carries a proof of its own: a check digit that catches any one digit misread (kinds below), the
# number the form's QR code holds (application_no), the birth date and sex the ID number beside them
# gives (validate.cross_check). The value must still look printed in the page's face, and a number's
# every digit must match its ink better than any other digit would (look_alike_lead): a read with two
# digits wrong passes a check digit one time in eleven, not that too.
CHECK_DIGIT_KINDS = ("id_number", "card_number")
# Kinds one PP-OCR read may settle without tesseract's (ocr/pipeline.py reads them with PP-OCR first,
# and with tesseract too only when that read is not accepted): those whose print check is strict, a
# Chinese character against CHAR_MIN and every digit of a number against every other digit
# (LOOK_ALIKE_KINDS). A date's or a code's digits are not checked against their look-alikes: both
# engines read those. Tuning seeds 41 (hard, 3 faces) and 43 (mild, 5 faces), every field PP-OCR read
# under the rule before (those with no proof of their own, of any kind): the decision in the page's face
# would have accepted its read alone for 918 of 937 printed fields, all right but one, 鑫享年金保险
# (分红型) with a space tesseract does not give (validate.check_text now drops a space beside a Chinese
# character), and for none of 39 handwritten or smudged ones.
PPOCR_ALONE_KINDS = frozenset({"name", "address", "text"}) | LOOK_ALIKE_KINDS


@dataclass
class Decision:
    value: str | None
    confidence: float
    status: str
    reasons: list[str] = field(default_factory=list)
    suggestion: str | None = None  # what OCR read, offered to the keyer
    choices: list[str] | None = None  # a choice field's options, offered to the keyer

    def to_json(self) -> dict:
        out: dict = {"value": self.value, "confidence": round(self.confidence, 1), "status": self.status}
        if self.reasons:
            out["reasons"] = self.reasons
        if self.suggestion is not None:
            out["suggestion"] = self.suggestion
        if self.choices is not None:
            out["choices"] = self.choices
        return out


def _drawn_text(kind: str, text: str) -> str:
    """Return a read's text as it would be printed: no spaces inside values whose kind has none."""
    if kind == "text":
        return text
    if kind == "card_number":  # cards and the claim form print it in groups of four; reads drop the gaps
        return group_card_number(text)
    return "\n".join(line.replace(" ", "") for line in text.split("\n"))


_checked = Kept(256)  # the last answers of print_problems


def print_problems(kind: str, text: str, image: np.ndarray, face: str | None = None) -> list[str]:
    """Return why the field does not look printed with this text (none when it does): the line drawn in
    the print font must match the ink (ocr/printed.py print_score), and so must each character in its
    own place (char_scores) and better than its look-alikes would (look_alike_lead). The answer is kept
    for the same image and text: a field is checked once to decide whether to read it more, then again
    to decide it."""
    key = (kind, text, face, image.shape, hash(image.tobytes()))
    return list(_checked.get_or_make(key, lambda: _print_problems(kind, text, image, face)))


def _print_problems(kind: str, text: str, image: np.ndarray, face: str | None) -> list[str]:
    text = _drawn_text(kind, text)
    if "\n" not in text:
        score = print_score(image, text, face)
        if score < PRINT_MIN:
            return [f"does not look printed (match {score:.2f} < {PRINT_MIN}): handwritten or smudged?"]
    scores = char_scores(image, text, face)
    least = CHAR_MIN.get(kind, DEFAULT_CHAR_MIN)
    if not scores or min(scores) < least:
        worst = min(scores, default=0.0)
        return [f"a character does not look printed as read (match {worst:.2f} < {least})"]
    if kind in LOOK_ALIKE_KINDS:
        lead, char, other = look_alike_lead(image, text, face)
        if lead < LOOK_ALIKE_LEAD:
            return [f"{char} could as well be {other} (the print matches it only {lead:.2f} better)"]
    return []


def _candidates(kind: str, name: str, reads: tuple[OcrText, ...]) -> dict[str, tuple[int, OcrText]]:
    """Return each valid value the reads give: how many reads give it, and the surest read that does."""
    out: dict[str, tuple[int, OcrText]] = {}
    for r in reads:
        checked = validate(kind, r.text, name)
        if not checked.ok:
            continue
        votes, best = out.get(checked.value, (0, r))
        out[checked.value] = (votes + 1, r if r.confidence > best.confidence else best)
    return out


def _decide_by_votes(
    kind: str, name: str, reads: tuple[OcrText, ...], image: np.ndarray | None, face: str | None = None
) -> Decision:
    """Return the decision from more than two reads: each value they give is drawn in the print font and
    compared with the ink character by character; the value that matches best is accepted when at least
    VOTES_MIN reads give it, it looks printed, and no other value read matches nearly as well. Without
    the image, the value most reads give, by a margin of MARGIN_VOTES."""
    candidates = _candidates(kind, name, reads)
    confidence = max((r.confidence for r in reads), default=0.0)
    if not candidates:
        first = validate(kind, reads[0].text, name)
        return Decision(None, 0.0, FieldStatus.key_entry, list(first.problems), first.value or None)
    votes_min = VOTES_MIN.get(kind, DEFAULT_VOTES_MIN)
    if image is None:
        ranked = sorted(candidates.items(), key=lambda c: -c[1][0])
        (value, (votes, surest)), runner_up = ranked[0], ranked[1][1][0] if len(ranked) > 1 else 0
        if votes >= votes_min and votes - runner_up >= MARGIN_VOTES:
            return Decision(value, surest.confidence, FieldStatus.accepted)
        return Decision(
            None, confidence, FieldStatus.key_entry, [f"the reads disagree: {votes} of {len(reads)}"], value
        )
    scored = []
    for value, (votes, surest) in candidates.items():
        scores = char_scores(image, _drawn_text(kind, surest.text), face)
        scored.append((min(scores, default=-1.0), votes, value, surest))
    scored.sort(key=lambda s: -s[0])
    match, votes, value, surest = scored[0]
    reasons = []
    if votes < votes_min:
        reasons.append(f"only {votes} of {len(reads)} reads give {value!r}")
    if len(scored) > 1 and match - scored[1][0] < CHAR_MARGIN:
        reasons.append(f"{value!r} and {scored[1][2]!r} match the ink almost equally")
    if not reasons:
        reasons = print_problems(kind, surest.text, image, face)
    if reasons:
        return Decision(None, confidence, FieldStatus.key_entry, reasons, value)
    return Decision(value, surest.confidence, FieldStatus.accepted)


def two_engines(reads: tuple[OcrText, ...]) -> bool:
    """Return whether the reads are one tesseract read and one PP-OCR read (ocr/reads.py's first two)."""
    return len(reads) == 2 and {r.engine for r in reads} == {"tesseract", "ppocr"}


def _decide_by_agreement(
    kind: str, name: str, reads: tuple[OcrText, ...], image: np.ndarray | None, face: str | None
) -> Decision:
    """Return the decision from one read by each engine: accepted when both give the same value, every
    validator of the kind passes, tesseract's confidence clears the kind's threshold and PP-OCR's least
    character confidence PPOCR_MIN, and (with the image) the value looks printed in the page's face."""
    checked = [validate(kind, r.text, name) for r in reads]
    tess = next(r for r in reads if r.engine == "tesseract")
    pp = next(r for r in reads if r.engine == "ppocr")
    first = checked[0] if checked[0].value else checked[1]
    reasons = list(dict.fromkeys(p for c in checked for p in c.problems))
    if checked[0].value != checked[1].value:
        reasons.append("the two engines disagree: " + " / ".join(repr(c.value) for c in checked))
    threshold = THRESHOLDS.get(kind, 60.0)
    if tess.confidence < threshold:
        reasons.append(f"OCR confidence {tess.confidence:.0f} below {threshold:.0f}")
    if pp.confidence < PPOCR_MIN:
        reasons.append(f"PP-OCR confidence {pp.confidence:.0f} below {PPOCR_MIN:.0f}")
    if not reasons and image is not None:
        reasons = print_problems(kind, pp.text, image, face)
    confidence = min(tess.confidence, pp.confidence)
    if reasons:
        return Decision(None, confidence, FieldStatus.key_entry, reasons, first.value or None)
    return Decision(first.value, confidence, FieldStatus.accepted)


def _decide_by_ppocr_alone(
    kind: str, name: str, read: OcrText, image: np.ndarray | None, face: str | None
) -> Decision:
    """Return the decision from one PP-OCR read: accepted when the kind is one of PPOCR_ALONE_KINDS, every
    validator passes, its least character confidence clears PPOCR_MIN and the value looks printed in
    the page's face (its line, each character in its place and, for LOOK_ALIKE_KINDS, better than any
    look-alike in it). Without the image nothing is accepted: the print is the proof."""
    checked = validate(kind, read.text, name)
    reasons = list(checked.problems)
    if kind not in PPOCR_ALONE_KINDS:
        reasons.append(f"one PP-OCR read does not settle a {kind}: tesseract must read it too")
    if read.confidence < PPOCR_MIN:
        reasons.append(f"PP-OCR confidence {read.confidence:.0f} below {PPOCR_MIN:.0f}")
    if image is None:
        reasons.append("one read, not checked against the print")
    if not reasons:
        reasons = print_problems(kind, read.text, image, face)
    if reasons:
        return Decision(None, read.confidence, FieldStatus.key_entry, reasons, checked.value or None)
    return Decision(checked.value, read.confidence, FieldStatus.accepted)


def decide_field(
    kind: str, name: str, reads: tuple[OcrText, ...], image: np.ndarray | None = None, face: str | None = None
) -> Decision:
    """Return the decision for one field from its reads (no reads: the field is blank) and, when given,
    the image they were read from (to check that it is printed, in the page's face, and to choose
    between values read)."""
    if not reads:
        return Decision(None, 0.0, FieldStatus.key_entry, ["nothing written in the field"], None)
    if len(reads) == 1 and reads[0].engine == "ppocr":
        return _decide_by_ppocr_alone(kind, name, reads[0], image, face)
    if two_engines(reads):
        return _decide_by_agreement(kind, name, reads, image, face)
    if len(reads) > 2:
        return _decide_by_votes(kind, name, reads, image, face)
    checked = [validate(kind, r.text, name) for r in reads]
    confidence = min(r.confidence for r in reads)
    first = checked[0]
    reasons = list(first.problems)
    if any(c.value != first.value for c in checked[1:]):
        reasons.append("two readings disagree: " + " / ".join(repr(c.value) for c in checked))
    threshold = THRESHOLDS.get(kind, 60.0)
    if confidence < threshold:
        reasons.append(f"OCR confidence {confidence:.0f} below {threshold:.0f}")
    if not reasons and image is not None:
        reasons = print_problems(kind, reads[0].text, image, face)
    if not reasons and image is not None and len(reads) == 1 and kind in CHECK_DIGIT_KINDS:
        lead, char, other = look_alike_lead(image, _drawn_text(kind, reads[0].text), face)
        if lead < LOOK_ALIKE_LEAD:
            reasons = [f"{char} could as well be {other} (the print matches it only {lead:.2f} better)"]
    if reasons:
        return Decision(None, confidence, FieldStatus.key_entry, reasons, first.value or None)
    return Decision(first.value, confidence, FieldStatus.accepted)


def settled(kind: str, reads: tuple[OcrText, ...], image: np.ndarray | None, name: str = "") -> bool:
    """Return whether a field's first two reads are enough: they would be accepted as they are (used by
    ocr/reads.py to read the field more times when not). Two engines' reads are judged without the
    print check: the page's face is learned from all its fields after reading (learn_face)."""
    if two_engines(reads):
        image = None
    return decide_field(kind, name, reads, image).status == FieldStatus.accepted


def tesseract_first(fields: dict[str, str]) -> set[str]:
    """Return the fields (name: kind) tesseract reads first: those of a kind one PP-OCR read does not
    settle (not PPOCR_ALONE_KINDS). Among them are all whose one read may prove itself (proven_alone:
    check-digit numbers, the QR code's application number, the birth date and sex an ID number gives);
    the others are read by both engines. PP-OCR reads the rest first."""
    return {name for name, kind in fields.items() if kind not in PPOCR_ALONE_KINDS}


def proven_alone(fields: dict[str, tuple[str, tuple[OcrText, ...]]], qr: str | None = None) -> set[str]:
    """Return the fields (name: (kind, reads)) whose one read carries its own proof (CHECK_DIGIT_KINDS, the
    QR code's application number, a birth date or sex the proven ID number beside it gives): they need
    no second engine (ocr/pipeline.py); the decision still checks they look printed."""
    values = {}
    for name, (kind, reads) in fields.items():
        checked = validate(kind, reads[0].text, name) if len(reads) == 1 else None
        if checked is not None and checked.ok:
            values[name] = (kind, checked.value)
    proven = {n for n, (kind, _) in values.items() if kind in CHECK_DIGIT_KINDS}
    if qr and values.get("application_no", ("", None))[1] == validate("code", qr).value:
        proven.add("application_no")
    numbers = {n: v for n, (_, v) in values.items() if n in proven and n.endswith("id_number")}
    for number_field, number in numbers.items():
        prefix = number_field.removesuffix("id_number")
        for name in (f"{prefix}birth_date", f"{prefix}sex"):
            if name in values and name not in cross_check({number_field: number, name: values[name][1]}):
                proven.add(name)
    return proven


def enough_reads(
    kind: str, name: str, reads: tuple[OcrText, ...], image: np.ndarray | None, face: str | None
) -> bool:
    """Return whether a field's extra reads may stop here (ocr/reads.py more_reads): the decision accepts
    them and a read of the second engine gives the value taken. A value only tesseract's reads give is
    decided on all of them: a rival that matches the ink as well may not have been read yet (武候 for
    武侯 in ukai, seed 31: taken after four reads, sent to a person after nine)."""
    decision = decide_field(kind, name, reads, image, face)
    if decision.status != FieldStatus.accepted:
        return False
    return any(
        r.engine != "tesseract" and validate(kind, r.text, name).value == decision.value for r in reads
    )


def learn_face(
    fields: dict[str, tuple[str, tuple[OcrText, ...]]], images: dict[str, np.ndarray]
) -> str | None:
    """Return the installed face (printing.FACES) the document's values are printed in: the one whose
    drawing of the values both engines read alike (fields with their own proof first, PROVEN_KINDS)
    matches their ink best; None (the print font) when no field was read alike."""
    samples = []
    for name, (kind, reads) in fields.items():
        # one read: tesseract's of a field proven alone (proven_alone), or PP-OCR's, still to be checked
        alone = len(reads) == 1 and validate(kind, reads[0].text, name).ok
        if name not in images or not (alone or two_engines(reads) and settled(kind, reads, None, name)):
            continue
        text = _drawn_text(kind, reads[-1].text).strip()
        if text and "\n" not in text:
            samples.append((kind not in PROVEN_KINDS, -len(text), images[name], text))
    if not samples:
        return None
    samples = sorted(samples, key=lambda s: s[:2])
    chosen = samples[:FACE_SAMPLES]
    # Digits tell some faces apart poorly (AR PL UMing and UKai share theirs): a form's ID and application
    # numbers chose UKai for 3 of 12 forms printed in UMing. One sample with two Chinese characters or
    # more, the shortest (a name: drawn in every face, a long address doubled learn_face's time), takes
    # the last place when none of the others has one.
    chinese = [s for s in samples if len(_CHINESE.findall(s[3])) >= 2]
    if chinese and not any(_CHINESE.search(s[3]) for s in chosen):
        chosen[-1:] = [min(chinese, key=lambda s: len(s[3]))]
    samples = chosen
    faces = tuple(installed_faces())
    score = dict.fromkeys(faces, 0.0)
    for *_, image, text in samples:  # each sample's ink found once for all the faces
        for f, s in zip(faces, print_scores(image, text, faces), strict=True):
            score[f] += s
    return max(faces, key=lambda f: score[f])


def _printed_text(kind: str, name: str, reads: tuple[OcrText, ...], value: str) -> str | None:
    """Return the text of the read behind an accepted value, as it would be printed."""
    for r in reads:
        if validate(kind, r.text, name).value == value:
            return _drawn_text(kind, r.text).strip()
    return None


def lone_glyph_problems(
    fields: dict[str, tuple[str, tuple[OcrText, ...]]],
    decisions: dict[str, Decision],
    images: dict[str, np.ndarray],
    face: str | None = None,
) -> dict[str, list[str]]:
    """Return, per accepted field of one character (a sex, a one-digit number), why it is not shown to be
    printed: one glyph drawn again matches a careful hand as well as print (handwritten 男 0.14-0.98,
    printed 0.92-0.99), so it must also sit in the document's print run: the size and the line of
    another accepted field of several characters in a box of the same height (ocr/printed.py
    print_geometry), within GLYPH_SIZE and GLYPH_LINE. Without such a field, a person looks."""
    geometry = {}
    for name, d in decisions.items():
        image = images.get(name)
        if d.status != FieldStatus.accepted or not d.value or image is None:
            continue
        kind, reads = fields[name]
        text = _printed_text(kind, name, reads, d.value)
        if text and "\n" not in text:
            found = print_geometry(image, text, face)
            if found:
                geometry[name] = (len(text.replace(" ", "")), image.shape[0], *found)
    problems = {}
    for name, (length, height, size, line) in geometry.items():
        if length != 1:
            continue
        if not any(
            n != name
            and k > 1
            and abs(h - height) <= 2
            and abs(s / size - 1) <= GLYPH_SIZE
            and abs(b - line) <= GLYPH_LINE
            for n, (k, h, s, b) in geometry.items()
        ):
            problems[name] = [
                "one character, not the size or on the line of the document's other printed values: "
                "handwritten?"
            ]
    return problems


def decide_document(
    fields: dict[str, tuple[str, tuple[OcrText, ...]]],
    images: dict[str, np.ndarray] | None = None,
    face: str | None = None,
) -> dict[str, Decision]:
    """Return a decision per field of one document (name: (kind, reads)), cross-checks applied; with
    the field images (name: image read), each accepted field is also checked to be printed, in the face
    the document's values are printed in (given, else learn_face's)."""
    images = images or {}
    face = face or (learn_face(fields, images) if images else None)
    decisions = {
        name: decide_field(kind, name, reads, images.get(name), face)
        for name, (kind, reads) in fields.items()
    }
    for name, problems in lone_glyph_problems(fields, decisions, images, face).items():
        d = decisions[name]
        decisions[name] = Decision(None, d.confidence, FieldStatus.key_entry, problems, d.value)
    accepted = {n: d.value for n, d in decisions.items() if d.status == FieldStatus.accepted and d.value}
    for name, problems in document_checks(accepted).items():
        d = decisions[name]
        decisions[name] = Decision(None, d.confidence, FieldStatus.key_entry, problems, d.value)
    return decisions
