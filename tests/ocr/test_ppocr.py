"""PP-OCR (ocr/ppocr.py) runs in bfloat16 through OpenVINO where the CPU computes bfloat16 natively, and
reads there what onnxruntime reads in float32: the same text, character by character, on the fields of
scanned forms printed in two faces."""

from __future__ import annotations

import random
import subprocess
import sys

import numpy as np
import pytest

from capture.decode import Page
from capture.pipeline import capture
from capture.render import render_form
from capture.specimens import form_values
from capture.templates import latest
from ocr import ppocr
from ocr.pipeline import ocr_config
from ocr.reads import SECOND_HEIGHT, prepare
from tests.capture.scans import scan_page
from tests.conftest import ROOT

FORM = latest("application_form")


@pytest.fixture(scope="module")
def fields() -> list:
    out, rng = [], np.random.default_rng(8101)
    for i, face in enumerate((None, "zenhei")):
        form = render_form(FORM, form_values(random.Random(8100 + i)), 300, face)
        page, _ = scan_page(form, rng, dpi=300, angle=float(rng.uniform(-2, 2)), noise=3, jpeg=85)
        (doc,) = capture([Page(1, page, 300.0)])
        for name, field in doc.fields.items():
            if field.text is None and not field.marks:
                prepared = prepare(field.ocr_image, SECOND_HEIGHT, binarise=False)
                if prepared is not None:
                    out.append((prepared, ocr_config(FORM.field(name))))
    return out


def test_bfloat16_through_openvino_reads_what_onnxruntime_reads(fields, monkeypatch) -> None:
    if not ppocr.native_bfloat16():
        pytest.skip("no native bfloat16 on this CPU (AMX, AVX-512 BF16): onnxruntime runs the model here")
    assert ppocr.runtime() == "openvino-bf16"
    reads = {}
    for bfloat16 in (False, True):
        monkeypatch.setattr(ppocr, "_recognizer", ppocr.load(bfloat16))
        assert ppocr.runtime() == ("openvino-bf16" if bfloat16 else "onnxruntime")
        reads[bfloat16] = [ppocr.read(image, config) for image, config in fields]
    assert len(fields) >= 20 and sum(bool(r.text) for r in reads[False]) >= 20
    assert [r.text for r in reads[True]] == [r.text for r in reads[False]]
    assert [[c for c, _ in r.words] for r in reads[True]] == [[c for c, _ in r.words] for r in reads[False]]


def test_a_line_padded_to_its_bucket_gives_as_many_time_steps_as_unpadded() -> None:
    if not ppocr.native_bfloat16():
        pytest.skip("no native bfloat16 on this CPU (AMX, AVX-512 BF16): onnxruntime runs the model here")
    padded, plain = ppocr.load(bfloat16=True).session, ppocr.load(bfloat16=False).session
    for width in [*range(16, 140), 700, 1023, 1600]:
        line = np.random.default_rng(width).uniform(-1, 1, (1, 3, 48, width)).astype(np.float32)
        assert padded(line).shape == plain(line).shape == (1, ppocr.time_steps(width), plain(line).shape[2])


def test_a_worker_told_to_runs_pp_ocr_in_onnxruntime_and_otherwise_as_the_cpu_allows() -> None:
    # In fresh processes, as workers start: which runtime a process holds is its own state.
    code = (
        "import sys, worker_process; from ocr import ppocr; from settings import Settings;"
        "worker_process.preload(Settings(ppocr_runtime=sys.argv[1])); print(ppocr.runtime())"
    )
    told = {}
    for runtime in ("onnxruntime", "auto"):
        done = subprocess.run(
            [sys.executable, "-c", code, runtime], capture_output=True, text=True, timeout=120, cwd=ROOT
        )
        assert done.returncode == 0, done.stderr
        told[runtime] = done.stdout.split()[-1]
    assert told["onnxruntime"] == "onnxruntime"
    assert told["auto"] == ("openvino-bf16" if ppocr.native_bfloat16() else "onnxruntime")
