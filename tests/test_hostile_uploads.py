"""The hostile corpus (tests/hostile.py) through the API and a real worker: each file is refused at the
door with a clear 4xx, or stored and then read or failed with a clear reason; the worker survives them
all and reads the good scan sent after them in the same run."""

from __future__ import annotations

import mimetypes
import re

from fastapi.testclient import TestClient

from api import create_app
from settings import Settings
from tests.conftest import SCANNER_KEY, run_cli
from tests.hostile import SLOW_OR_BIG, Hostile, by_name, corpus
from tests.samples import sample_png
from vocabulary import ScanStatus

UNCLEAR = re.compile(r"internal error|Traceback|\bat 0x[0-9a-f]+|Error\(", re.IGNORECASE)


def _post(client: TestClient, hostile: Hostile, multipart: bool):
    """Return the answer to uploading the file, in the body or as a multipart part under its lying name."""
    media = mimetypes.guess_type(hostile.filename)[0] or "application/octet-stream"
    headers = {"X-API-Key": SCANNER_KEY}
    if multipart:
        return client.post(
            "/v1/scans", files={"file": (hostile.filename, hostile.data, media)}, headers=headers
        )
    return client.post("/v1/scans", content=hostile.data, headers={**headers, "Content-Type": media})


def test_hostile_uploads_are_refused_or_fail_clearly_and_the_worker_goes_on(settings: Settings) -> None:
    # pdf_flate_bomb_image reads in about 3 s on a quiet machine: the limit leaves room for a busy one.
    settings = settings.model_copy(update={"page_seconds": 8.0})
    client = TestClient(create_app(settings), raise_server_exceptions=False)
    wrong: list[str] = []
    queued: dict[str, tuple[Hostile, str]] = {}
    for hostile in corpus():
        for multipart in (False, True):
            how = f"{hostile.name} ({'multipart as ' + hostile.filename if multipart else 'body'})"
            response = _post(client, hostile, multipart)
            body = response.json()
            if hostile.refused:
                expected = (422, "empty") if not hostile.data else (415, "not a file we read")
                if response.status_code != expected[0] or expected[1] not in str(body["detail"]):
                    wrong.append(f"{how}: {response.status_code} {body}, expected {expected}")
            elif response.status_code != 202:
                wrong.append(f"{how}: {response.status_code} {body}, expected 202")
            else:
                queued[body["scan_id"]] = (hostile, how)
    good = client.post(
        "/v1/scans", content=sample_png(), headers={"X-API-Key": SCANNER_KEY, "Content-Type": "image/png"}
    )
    assert good.status_code == 202, good.text

    burst = run_cli(settings, "worker", "--burst", timeout=900)
    assert burst.returncode == 0, burst.stderr[-3000:]

    for scan_id, (hostile, how) in queued.items():
        scan = client.get(f"/v1/scans/{scan_id}", headers={"X-API-Key": SCANNER_KEY}).json()
        if hostile.error:
            if scan["status"] != ScanStatus.failed or not re.search(hostile.error, scan["error"] or ""):
                wrong.append(f"{how}: {scan['status']} {scan['error']!r}, expected failed /{hostile.error}/")
            elif UNCLEAR.search(scan["error"]):
                wrong.append(f"{how}: unclear error {scan['error']!r}")
        elif scan["status"] != ScanStatus.captured and not (
            hostile.or_slow and re.search(SLOW_OR_BIG, scan["error"] or "")
        ):
            wrong.append(f"{how}: {scan['status']} {scan['error']!r}, expected captured")
    assert wrong == [], "\n".join(wrong)
    scan = client.get(f"/v1/scans/{good.json()['scan_id']}", headers={"X-API-Key": SCANNER_KEY}).json()
    assert (scan["status"], scan["pages"], scan["error"]) == (ScanStatus.captured, 1, None)


def test_a_scan_that_outlasts_the_job_timeout_fails_naming_the_setting(settings: Settings) -> None:
    settings = settings.model_copy(update={"job_timeout": 5, "page_seconds": 60.0})
    client = TestClient(create_app(settings), raise_server_exceptions=False)
    headers = {"X-API-Key": SCANNER_KEY, "Content-Type": "application/pdf"}
    slow = client.post("/v1/scans", content=by_name("pdf_100000_strokes").data, headers=headers).json()
    good = client.post("/v1/scans", content=sample_png(), headers={**headers, "Content-Type": "image/png"})

    burst = run_cli(settings, "worker", "--burst", timeout=300)
    assert burst.returncode == 0, burst.stderr[-3000:]
    scan = client.get(f"/v1/scans/{slow['scan_id']}", headers=headers).json()
    assert scan["status"] == ScanStatus.failed
    assert (
        "longer than 5 s (IMAGING_JOB_TIMEOUT)" in scan["error"]
    )  # was "internal error (JobTimeoutException)"
    scan = client.get(f"/v1/scans/{good.json()['scan_id']}", headers=headers).json()
    assert scan["status"] == ScanStatus.captured
