"""A scan from upload to trusted values: multipart upload, a real worker process, capture, OCR and the
decision per field, answered within the immediate-mode wait."""

from __future__ import annotations

import io
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from api import create_app
from capture.render import render_form, render_idcard
from capture.templates import latest
from ocr.validate import validate
from settings import Settings
from tests.capture.scans import handwrite, place_cards, scan_page
from tests.conftest import ROOT, SCANNER_KEY, running_workers

VALUES = json.loads((ROOT / "capture" / "sample_values.json").read_text())


def _png(image: np.ndarray, dpi: int) -> bytes:
    out = io.BytesIO()
    Image.fromarray(image).save(out, format="PNG", dpi=(dpi, dpi))
    return out.getvalue()


@pytest.fixture
def worker_process(settings: Settings, tmp_path: Path) -> Iterator[subprocess.Popen]:
    with running_workers(settings, 1, tmp_path / "workers") as processes:
        yield processes[0]


def test_an_immediate_upload_answers_with_the_fields_read_and_what_goes_to_key_entry(
    settings: Settings, worker_process, tmp_path: Path
) -> None:
    rng = np.random.default_rng(5)
    form = latest("application_form")
    # The applicant's name is handwritten: it must go to key-entry, never through.
    page = render_form(form, {**VALUES, "applicant_name": ""}, 300)
    page = handwrite(page, form.field("applicant_name").box, VALUES["applicant_name"], rng)
    scan, _ = scan_page(page, rng, dpi=300, angle=2.0, noise=3)
    cards, _ = place_cards(
        [render_idcard(latest("idcard_front"), VALUES), render_idcard(latest("idcard_back"), VALUES)],
        rng,
        dpi=300,
    )
    client = TestClient(create_app(settings.model_copy(update={"max_upload_bytes": 32 * 1024 * 1024})))
    response = client.post(
        "/v1/scans?wait=60",
        files=[
            ("file", ("form.png", _png(scan, 300), "image/png")),
            ("file", ("cards.png", _png(cards, 300))),
        ],
        data={"mode": "immediate", "policy_no": "P2026000123", "customer_id": VALUES["id_number"]},
        headers={"X-API-Key": SCANNER_KEY},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "captured" and body["policy_no"] == "P2026000123"
    assert [f["name"] for f in body["files"]] == ["form.png", "cards.png"]
    types = [d["type"] for d in body["documents"]]
    assert types == ["application_form", "idcard_front", "idcard_back"]
    accepted = wrong = 0
    for document in body["documents"]:
        template = latest(document["type"])
        for name, field in document["fields"].items():
            assert field["status"] in ("accepted", "key_entry")
            if field["status"] == "accepted":
                accepted += 1
                truth = validate(str(template.field(name).kind), VALUES[name], name).value
                wrong += field["value"] != truth
            else:
                assert field["value"] is None and field["reasons"]
    form_fields = body["documents"][0]["fields"]
    assert form_fields["applicant_name"]["status"] == "key_entry"
    assert wrong == 0 and accepted >= 12  # the sample's printed fields mostly go straight through
    assert body["fields_pending"] == sum(
        f["status"] == "key_entry" for d in body["documents"] for f in d["fields"].values()
    )
    # The same scan on GET, for the counter screen that polls instead of waiting.
    again = client.get(f"/v1/scans/{body['scan_id']}", headers={"X-API-Key": SCANNER_KEY}).json()
    assert again["documents"] == body["documents"]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("policy_no", "../../etc", "policy_no"),
        ("customer_id", "110105198703150018", "check character"),
        ("claim_no", "C" * 40, "claim_no"),
        ("stage", "someday", "stage must be one of"),
        ("mode", "later", "mode must be one of"),
    ],
)
def test_bad_index_keys_are_refused_before_anything_is_stored(
    settings: Settings, field: str, value: str, message: str
) -> None:
    client = TestClient(create_app(settings))
    png = _png(np.full((400, 600), 255, np.uint8), 300)
    response = client.post(
        "/v1/scans",
        files=[("file", ("a.png", png, "image/png"))],
        data={field: value},
        headers={"X-API-Key": SCANNER_KEY},
    )
    assert response.status_code == 422 and message in json.dumps(response.json(), ensure_ascii=False)
    from storage import open_store

    assert list(open_store(settings).list("originals/")) == []


def test_a_multipart_upload_without_files_or_with_an_unknown_file_is_refused(settings: Settings) -> None:
    client = TestClient(create_app(settings))
    headers = {"X-API-Key": SCANNER_KEY}
    none = client.post("/v1/scans", data={"mode": "batch"}, files={"other": ("x.txt", b"x")}, headers=headers)
    assert none.status_code == 422 and "file" in none.json()["detail"]
    text = client.post("/v1/scans", files=[("file", ("notes.png", b"not an image at all"))], headers=headers)
    assert text.status_code == 415 and "notes.png" in text.json()["detail"]


def test_imaging_scan_each_sends_a_folder_one_scan_per_file_and_names_the_files_it_could_not_send(
    settings: Settings, api_server: str, tmp_path: Path
) -> None:
    from tests.conftest import run_cli

    folder = tmp_path / "stack"
    (folder / "day2").mkdir(parents=True)
    (folder / "a.png").write_bytes(_png(np.full((400, 600), 255, np.uint8), 300))
    (folder / "day2" / "b.png").write_bytes(_png(np.full((400, 600), 200, np.uint8), 300))
    (folder / "day2" / "c.png").write_bytes(b"this is no picture")
    (folder / "notes.txt").write_text("not a scan")
    options = ["--policy-no", "P2026000777", "--each", "--json", "--wait", "0"]
    result = run_cli(settings, "scan", str(folder), "--url", api_server, "--key", SCANNER_KEY, *options)
    assert result.returncode == 2, result.stderr
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    sent = [a for a in answers if a["files"]]
    assert [Path(a["files"][0]).name for a in sent] == ["a.png", "b.png"]
    refused = {Path(r["file"]).name: r["reason"] for a in answers for r in a["refused"]}
    assert set(refused) == {"c.png", "notes.txt"} and all("not a JPEG" in why for why in refused.values())
    from models import Scan, load
    from storage import open_store

    store = open_store(settings)
    scans = [load(store, Scan, a["scan"]["scan_id"]) for a in sent]
    assert {s.policy_no for s in scans} == {"P2026000777"} and {s.mode for s in scans} == {"batch"}
