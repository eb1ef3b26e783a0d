"""read_document: a captured document in, a decision per field out. Reads as the process:

template fields -> how each is read (ocr_config) -> reads on two engines (ocr/reads.py: tesseract and
PP-OCR) -> the page's face learned, the decisions, cross-checks applied (ocr/decide.py). Fields from a
born-digital PDF's text layer are validated, not read.
"""

from __future__ import annotations

from capture.model import Document
from capture.templates import FieldSpec
from ocr import ppocr, printed, tesseract
from ocr.choice import decide_choice
from ocr.decide import (
    Decision,
    decide_document,
    decide_field,
    enough_reads,
    learn_face,
    proven_alone,
    tesseract_first,
)
from ocr.engine import Engine, OcrConfig, OcrText
from ocr.reads import first_read, read_field, second_read
from ocr.validate import document_checks, validate
from printing import installed_faces
from vocabulary import FieldStatus


def ocr_config(spec: FieldSpec) -> OcrConfig:
    """Return how an engine reads a template field."""
    return OcrConfig(spec.lang, spec.psm, spec.charset or "", str(spec.kind), spec.name)


def read_document(document: Document, engine: Engine = tesseract) -> dict[str, Decision]:
    """Return the decision for each field of a captured document (none for a page of no template).
    Fields from a born-digital PDF's text layer are validated, not read."""
    return read_and_decide(document, engine)[0]


def read_and_decide(
    document: Document, engine: Engine = tesseract
) -> tuple[dict[str, Decision], dict[str, tuple[OcrText, ...]]]:
    """Return read_document's decisions and the reads behind them, per field read."""
    template = document.template
    if template is None or not document.fields:
        return {}, {}
    names = [n for n, f in document.fields.items() if f.text is None and not f.marks]
    configs = [ocr_config(template.field(n)) for n in names]
    images = {n: document.fields[n].ocr_image for n in names}
    # One read of every field first: by PP-OCR where one PP-OCR read may settle the kind (names,
    # addresses, texts, numbers: ocr/decide.py PPOCR_ALONE_KINDS), by tesseract where its one read may
    # carry its own proof (ocr/decide.py proven_alone) or both engines must read it. The second engine
    # then for the tesseract reads that do not carry their own proof; the page's face learned from the
    # fields settled so far; tesseract for the PP-OCR reads not accepted in that face alone; more reads of
    # the fields the two engines do not settle, each field's stopping once the decision in that face
    # accepts it. A field read once that the decision does not accept (a digit too close to its
    # look-alike) is then read as the others were, and the document decided again.
    configs_by_name = dict(zip(names, configs, strict=True))
    kinds = {n: c.kind for n, c in configs_by_name.items()}
    tesseract_reads = tesseract_first(kinds)
    reads = {
        n: first_read(images[n], c, engine, None if n in tesseract_reads else ppocr)
        for n, c in configs_by_name.items()
    }
    alone = proven_alone({n: (kinds[n], r) for n, r in reads.items()}, document.application_no)
    for n in names:
        if reads[n] and n in tesseract_reads and n not in alone:
            reads[n] += (second_read(images[n], configs_by_name[n], engine),)
    face = learn_face({n: (kinds[n], r) for n, r in reads.items()}, images)
    for n in names:
        if n in tesseract_reads or not reads[n]:
            continue
        if decide_field(kinds[n], n, reads[n], images[n], face).status != FieldStatus.accepted:
            reads[n] += (second_read(images[n], configs_by_name[n], engine, first=reads[n][0]),)

    def read_more(name: str) -> tuple[OcrText, ...]:
        kind, image = kinds[name], images[name]
        enough = lambda r: enough_reads(kind, name, r, image, face)  # noqa: E731
        return read_field(image, configs_by_name[name], engine, reads=reads[name], enough=enough)

    for n in names:
        if len(reads[n]) == 2:
            reads[n] = read_more(n)
    decisions = decide_document({n: (kinds[n], r) for n, r in reads.items()}, images, face)
    # Not the application number the QR code proves: _qr_proof below accepts it on any read that gives it
    # (tesseract's confidence may be 0 on a right read), and more reads would change nothing.
    qr_proven = {"application_no"} if document.application_no else set()
    again = [n for n in alone - qr_proven if decisions[n].status != FieldStatus.accepted]
    for n in again:
        reads[n] = read_more(n)
    if again:
        decisions = decide_document({n: (kinds[n], r) for n, r in reads.items()}, images, face)
    if document.application_no and "application_no" in names:
        decisions["application_no"] = _qr_proof(
            document.application_no, reads["application_no"], decisions["application_no"]
        )
    for name, f in document.fields.items():
        if f.marks:  # tick boxes: read as marks, not text (ocr/choice.py), cross-checked below
            decisions[name] = decide_choice(str(template.field(name).kind), name, f.marks)
        elif f.text is not None:
            checked = validate(str(template.field(name).kind), f.text, name)
            decisions[name] = (
                Decision(checked.value, 100.0, FieldStatus.accepted)
                if checked.ok
                else Decision(None, 100.0, FieldStatus.key_entry, list(checked.problems), checked.value)
            )
    ticked = [n for n, f in document.fields.items() if f.marks]
    accepted = {n: d.value for n, d in decisions.items() if d.status == FieldStatus.accepted and d.value}
    for name, problems in document_checks(accepted).items():
        if name in ticked:  # a sex ticked against the ID number's sex digit, as a sex read is
            d = decisions[name]
            decisions[name] = Decision(
                None, d.confidence, FieldStatus.key_entry, problems, d.value, d.choices
            )
    return decisions, reads


def _qr_proof(number: str, reads: tuple[OcrText, ...], decision: Decision) -> Decision:
    """Return the application number's decision with the form's QR code as its proof: accepted when a
    read gives the number the code holds, to key-entry when the value read differs (the T of TB read as
    1 by both reads, in a face the look-alike check did not know)."""
    given = {validate("code", r.text).value for r in reads}
    number = validate("code", number).value
    if number in given:
        return Decision(number, 100.0, FieldStatus.accepted)
    if decision.status != FieldStatus.accepted:
        return decision
    return Decision(
        None,
        decision.confidence,
        FieldStatus.key_entry,
        [f"differs from the form's QR code ({number})"],
        decision.value,
    )


def preload(engine: Engine = tesseract, ppocr_runtime: str = "auto") -> None:
    """Load the engines (tesseract's languages, PP-OCR's recognition model in the runtime told:
    ocr/ppocr.py), the look-alike table ocr/decide.py checks names against (read from its file) and the
    installed faces the print checks draw in, once per worker process, before it forks a job."""
    engine.preload()
    ppocr.preload(ppocr_runtime)
    printed.preload((None, *installed_faces()))
