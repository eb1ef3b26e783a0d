"""Hostile input to the capture room: the corpus of tests/hostile.py through decode (read or refused with a
clear error, in bounded memory and time, each measured in a process of its own), and the odd pages and
stacks that get past decode."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from capture.decode import Page, UnreadableScan, decode, iter_pages
from capture.model import DocType, Document
from capture.pipeline import MAX_DOCUMENT_BYTES, PageOutcome, capture, split_documents
from tests.conftest import ROOT
from tests.hostile import SLOW_OR_BIG, corpus

PAGE_SECONDS = 5
MAX_RSS_MIB = 1536  # the decoder may grow 1 GiB beyond the worker; the worker's own share is a page or two


@pytest.fixture(scope="module")
def measured() -> dict[str, dict]:
    """What decoding each file did and cost, from one fresh process that forks a caller per file."""
    run = subprocess.run(
        [sys.executable, "-m", "tests.hostile", "--page-seconds", str(PAGE_SECONDS)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    return {m["name"]: m for m in map(json.loads, run.stdout.splitlines())}


def test_every_hostile_file_is_read_or_refused_with_a_clear_error(measured: dict[str, dict]) -> None:
    wrong = []
    for hostile in corpus():
        m = measured[hostile.name]
        if hostile.refused:
            ok = m["outcome"] == "unreadable" and re.search(r"empty|first bytes", m["detail"])
        elif hostile.error:
            ok = m["outcome"] == "unreadable" and re.search(hostile.error, m["detail"])
        else:
            ok = m["outcome"] == "read" or (
                hostile.or_slow and m["outcome"] == "unreadable" and re.search(SLOW_OR_BIG, m["detail"])
            )
        if not ok:
            wrong.append(f"{hostile.name}: {m['outcome']}: {m['detail']}")
    assert wrong == [], "\n".join(wrong)


def test_decoding_any_hostile_file_stays_within_bounded_memory_and_time(measured: dict[str, dict]) -> None:
    costly = [
        f"{m['name']}: {m['seconds']:.1f} s, decoder {m['decoder_mib']:.0f} MiB, "
        f"caller {m['caller_mib']:.0f} MiB"
        for m in measured.values()
        if m["seconds"] > PAGE_SECONDS + 5 or max(m["decoder_mib"], m["caller_mib"]) > MAX_RSS_MIB
    ]
    assert costly == [], "\n".join(costly)


def test_a_16_bit_grey_scan_keeps_its_tones() -> None:
    tones = np.array([[0, 4096, 32768, 65535]], np.uint16)
    out = io.BytesIO()
    Image.frombytes("I;16", (4, 1), tones.tobytes()).save(out, format="PNG")
    (page,) = decode(out.getvalue())
    assert page.image.tolist() == [[0, 16, 128, 255]]  # was [[0, 255, 255, 255]]: Pillow clips to L


def test_a_stack_over_the_page_limit_is_refused_before_its_first_page_is_read() -> None:
    stack = io.BytesIO()
    page = Image.new("L", (20, 20), 255)
    page.save(stack, format="TIFF", save_all=True, append_images=[page] * 4)
    pages = iter_pages(stack.getvalue(), max_pages=3)
    with pytest.raises(UnreadableScan, match="has 5 pages, more than 3"):
        next(pages)  # the first page: the count comes before it


def test_a_long_run_of_other_pages_goes_on_in_a_new_document_past_the_memory_budget() -> None:
    a4_colour = (3508, 2480, 3)  # 26 MB at 300 dpi; np.zeros leaves it unallocated until written
    outcomes = [
        PageOutcome(n, "other", [Document(DocType.other, [n], images=[np.zeros(a4_colour, np.uint8)])])
        for n in range(1, 41)
    ]
    documents = list(split_documents(outcomes))
    assert [p for d in documents for p in d.pages] == list(range(1, 41))
    assert len(documents) == 4
    assert all(sum(i.nbytes for i in d.images) <= MAX_DOCUMENT_BYTES for d in documents)


@pytest.mark.parametrize("shape", [(1, 1), (1, 3000), (3000, 1), (2, 3_000_000), (1, 1, 3)])
def test_a_page_a_pixel_or_two_across_is_captured_not_crashed(shape: tuple[int, ...]) -> None:
    # Detection shrinks pages to ~150 dpi; OpenCV raised on a strip that shrank to nothing.
    stripes = np.indices(shape).sum(axis=0) % 2 * 255
    documents = capture([Page(1, stripes.astype(np.uint8), 300.0)])
    assert [str(d.type) for d in documents] in ([], ["other"])
