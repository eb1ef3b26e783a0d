"""read: one prepared field image in, text with per-character confidences out. PaddleOCR's PP-OCRv6 small
recognition model, run through rapidocr, as an OCR engine beside tesseract (ocr/engine.py Engine: this
module's `read` and `preload`), and the only module that talks to rapidocr, onnxruntime or OpenVINO.

Only the recognition model is loaded (the wheel carries it: nothing is fetched at run time), once per
process: a worker loads it before RQ forks its jobs. One thread: throughput comes from worker processes,
as for tesseract. The input is not padded to the model's 320 px width: measured on 56 field crops,
16.6 ms a field of CPU instead of 25.5 ms, the same 56 values read.

On a CPU that computes bfloat16 natively (Intel AMX or AVX-512 BF16: OpenVINO's CPU lists BF16 among
its capabilities) the model runs in bfloat16 through OpenVINO instead of float32 through onnxruntime:
on the 97 lines PP-OCR reads on bench/page_speed_bench.py's 12 pages, 7.2 ms a line of CPU against 14.1 ms,
the same 97 texts. Each line is padded on the right to a multiple of BUCKET px (as the model pads a
batch), so that OpenVINO reuses the kernels of a few widths instead of building them for each new one
(17.8 ms a read unpadded); what the padding adds to the model's output is cut off again. OpenVINO in
float32 was slower than onnxruntime here (18-19 ms), so without native bfloat16 onnxruntime runs it.

It fails differently from tesseract (another network, other training data, no page segmentation): a
value both engines read alike is strong evidence (ocr/decide.py). Its scores do not see a character it
dropped or one outside its set (王赟 read 王 at 0.999): its score alone proves nothing. Its one read of a
name, an address, a text or a number settles a field only with the print checks (the line and each
character drawn in the page's face against the ink: a dropped character leaves ink unmatched); anything
else needs tesseract's agreement (ocr/decide.py PPOCR_ALONE_KINDS).
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from ocr.engine import OcrConfig, OcrText

NAME = "ppocr"
MIN_WIDTH = 16  # px at the model's 48 px height: no padding to 320 (see above)
BUCKET = 64  # px: OpenVINO's input width is a multiple of this (see above)
WARM_WIDTHS = range(BUCKET, 1025, BUCKET)  # the widths preload runs once, before a worker forks its jobs
_recognizer = None


class _Bfloat16:
    """The recognition model run by OpenVINO in bfloat16, called as rapidocr calls its onnxruntime
    session: a batch of normalised lines in, the model's output per time step out."""

    def __init__(self, model: Path) -> None:
        import openvino

        core = openvino.Core()
        hints = {"INFERENCE_NUM_THREADS": 1, "NUM_STREAMS": 1, "INFERENCE_PRECISION_HINT": "bf16"}
        self.request = core.compile_model(core.read_model(model), "CPU", hints).create_infer_request()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        width = batch.shape[3]
        padded = np.zeros((*batch.shape[:3], -(-width // BUCKET) * BUCKET), np.float32)
        padded[..., :width] = batch
        return self.request.infer({0: padded})[0][:, : time_steps(width)].copy()


def time_steps(width: int) -> int:
    """Return how many time steps the model gives for a line `width` px wide (its convolutions' strides;
    the same as onnxruntime's output from 16 to 1600 px: tests/ocr/test_ppocr.py)."""
    return (width + 3) // 8


def native_bfloat16() -> bool:
    """Return whether this CPU computes bfloat16 natively, as OpenVINO sees it."""
    try:
        import openvino
    except ImportError:
        return False
    return "BF16" in openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def runtime() -> str:
    """Return what runs the model in this process: "openvino-bf16" or "onnxruntime"."""
    return runtime_of(recognizer())


def runtime_of(recognizer) -> str:
    """Return what runs a recogniser's model: "openvino-bf16" or "onnxruntime"."""
    return "openvino-bf16" if isinstance(recognizer.session, _Bfloat16) else "onnxruntime"


def recognizer():
    """Return this process's PP-OCR text recogniser, loading it on first use (about 0.5 s, 40 MB): in
    bfloat16 through OpenVINO where the CPU computes it natively, else in onnxruntime."""
    global _recognizer
    if _recognizer is None:
        _recognizer = load(native_bfloat16())
    return _recognizer


def load(bfloat16: bool):
    """Return a new PP-OCR text recogniser, its model run in bfloat16 through OpenVINO or in onnxruntime."""
    import rapidocr
    from rapidocr.ch_ppocr_rec import TextRecognizer
    from rapidocr.utils.parse_parameters import ParseParams

    root = Path(rapidocr.__file__).parent
    logging.getLogger("RapidOCR").setLevel(logging.WARNING)
    cfg = ParseParams.load(root / "config.yaml")
    engine = cfg.EngineConfig.onnxruntime
    engine.intra_op_num_threads = 1
    engine.inter_op_num_threads = 1
    cfg.Rec.engine_cfg = engine
    cfg.Rec.model_root_dir = str(root / "models")
    cfg.Rec.model_path = str(next((root / "models").glob("*_rec_*.onnx")))  # the one the wheel carries
    cfg.Rec.font_path = None
    cfg.Rec.rec_img_shape = [3, 48, MIN_WIDTH]
    made = TextRecognizer(cfg.Rec)  # its onnxruntime session also gives it the model's characters
    if bfloat16:
        made.session = _Bfloat16(Path(cfg.Rec.model_path))
    return made


def preload(runtime: str = "auto") -> None:
    """Load the recognition model in this process (`auto`: in bfloat16 where the CPU computes it natively;
    `onnxruntime`: in onnxruntime always, IMAGING_PPOCR_RUNTIME), and run it once at each of WARM_WIDTHS
    (OpenVINO builds its kernels for a width on first use): processes forked from it share both."""
    global _recognizer
    if runtime == "onnxruntime" and (_recognizer is None or runtime_of(_recognizer) != runtime):
        _recognizer = load(bfloat16=False)
    session = recognizer().session
    if isinstance(session, _Bfloat16):
        for width in WARM_WIDTHS:
            session(np.zeros((1, 3, 48, width), np.float32))


def read(image: np.ndarray, config: OcrConfig) -> OcrText:
    """Return what PP-OCR reads in one prepared field image (one line; the configuration's whitelist
    does not apply: the validators normalise what it reads)."""
    from rapidocr.ch_ppocr_rec import TextRecInput

    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    parts = _lines(grey) if config.psm == 6 else [grey]  # psm 6: a block of lines (a card's address)
    texts, chars = [], []
    for part in parts:
        bgr = np.ascontiguousarray(cv2.cvtColor(part, cv2.COLOR_GRAY2BGR))
        out = recognizer()(TextRecInput(img=bgr, return_word_box=True))
        text = (out.txts[0] if out.txts else "").strip()
        if not text:
            continue
        info = out.word_results[0] if out.word_results else None
        letters = [c for word in (info.words if info else []) for c in word]
        confs = [float(c) * 100 for c in (info.confs if info else [])]
        if len(letters) != len(confs) or not confs:
            letters, confs = [text], [float(out.scores[0]) * 100]
        texts.append(text)
        chars += zip(letters, confs, strict=True)
    if not texts:
        return OcrText("", 0.0, (), NAME)
    return OcrText("\n".join(texts), min(c for _, c in chars), tuple(chars), NAME)


def _lines(grey: np.ndarray) -> list[np.ndarray]:
    """Return the field cut into its text lines at runs of blank rows (a gap of a quarter of the
    tallest line's height or more), each with a white border."""
    _, binary = cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    rows = (binary < 128).any(axis=1)
    runs, start = [], None
    for y, ink in enumerate([*rows, False]):
        if ink and start is None:
            start = y
        elif not ink and start is not None:
            runs.append([start, y])
            start = None
    if not runs:
        return [grey]
    gap = max(b - a for a, b in runs) / 4
    merged = [runs[0]]
    for a, b in runs[1:]:
        if a - merged[-1][1] < gap:
            merged[-1][1] = b
        else:
            merged.append([a, b])
    pad = 8
    return [
        cv2.copyMakeBorder(grey[a:b], pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=255) for a, b in merged
    ]
