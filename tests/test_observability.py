"""What an operator watches: /metrics on the API and on each worker during a real batch, the request id from
the upload into the job's log lines, and JSON logs that stay redacted."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis

import keyentry
from settings import Settings
from supervisor import free_port
from tests.conftest import ADMIN_KEY, ROOT, SCANNER_KEY, running_api, running_workers, settings_env
from tests.esign.test_epolicy_flow import mail_settings  # noqa: F401  (the fixture)
from tests.samples import sample_stack
from tests.servers import wait_until

ID = "110105198703150013"


def handwritten_form() -> bytes:
    """Return a form page (PNG, 200 dpi) whose applicant's name is handwritten: it goes to key-entry."""
    import numpy as np
    from PIL import Image

    from capture.render import render_form
    from capture.templates import latest
    from tests.capture.scans import handwrite

    values = json.loads((ROOT / "capture" / "sample_values.json").read_text())
    form = latest("application_form")
    page = render_form(form, {**values, "applicant_name": ""}, 200)
    page = handwrite(
        page, form.field("applicant_name").box, values["applicant_name"], np.random.default_rng(5)
    )
    out = io.BytesIO()
    Image.fromarray(page).save(out, format="PNG", dpi=(200, 200))
    return out.getvalue()


def samples_of(text: str) -> dict[tuple[str, tuple], float]:
    """Return every sample of a metrics page by (name, sorted labels)."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    return samples_of(urllib.request.urlopen(url, timeout=10).read().decode())


def test_metrics_show_a_batch_fill_the_queue_and_drain_through_the_worker(
    settings: Settings, tmp_path: Path
) -> None:
    page = handwritten_form()  # fields the machine accepts, and one it sends to key-entry
    conn = Redis.from_url(settings.redis_url)
    with running_api(settings) as base:
        before = scrape(base + "/metrics")
        assert before[("imaging_redis_up", ())] == 1
        assert before[("imaging_queue_depth", (("queue", "batch"),))] == 0
        assert before[("imaging_workers_alive", (("queue", "batch"),))] == 0
        for n in range(3):  # the same page under three policies (the same bytes and numbers are one scan)
            sent = httpx.post(
                base + "/v1/scans",
                files={"file": ("page.png", page, "image/png")},
                data={"mode": "batch", "policy_no": f"P202611000070{n}"},
                headers={"X-API-Key": SCANNER_KEY},
            )
            assert sent.status_code == 202, sent.text
        time.sleep(1.1)
        filled = scrape(base + "/metrics")
        assert filled[("imaging_queue_depth", (("queue", "batch"),))] == 3
        assert filled[("imaging_queue_oldest_job_age_seconds", (("queue", "batch"),))] >= 1
        assert filled[("imaging_uploads_total", (("mode", "batch"),))] == 3

        port = free_port()
        log = (tmp_path / "worker.log").open("wb")
        worker = subprocess.Popen(
            [sys.executable, "-m", "cli", "worker", "--name", "metered", "--metrics-port", str(port)],
            env=settings_env(settings),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until(
                lambda: (
                    scrape(base + "/metrics")[("imaging_queue_depth", (("queue", "batch"),))] == 0
                    and scrape(base + "/metrics").get(
                        ("imaging_jobs_total", (("kind", "capture_scan"), ("outcome", "ok")))
                    )
                    == 3
                ),
                240,
                "the batch to drain",
            )
            drained = scrape(base + "/metrics")
            own = scrape(f"http://127.0.0.1:{port}/metrics")
        finally:
            worker.terminate()
            worker.wait(60)
            log.close()
    assert drained[("imaging_workers_alive", (("queue", "batch"),))] == 1
    assert drained[("imaging_job_duration_seconds_count", (("kind", "capture_scan"),))] == 3
    assert drained[("imaging_job_duration_seconds_sum", (("kind", "capture_scan"),))] > 0
    accepted = drained[("imaging_fields_total", (("decision", "accepted"),))]
    keyed = drained[("imaging_fields_total", (("decision", "key_entry"),))]
    assert accepted > 0 and keyed > 0, (accepted, keyed)
    # The same form three times: each later scan supersedes the one before, whose fields are withdrawn
    # from key-entry (only the last scan's wait), though all three were counted as sent there.
    assert drained[("imaging_keyentry_backlog", ())] == keyentry.waiting(conn)
    assert 0 < keyentry.waiting(conn) <= keyed
    assert drained[("imaging_keyentry_oldest_task_age_seconds", ())] > 0
    assert own[("imaging_worker_jobs_total", (("outcome", "ok"), ("worker", "metered")))] == 3
    assert own[("process_resident_memory_bytes", ())] > 10_000_000


def test_a_request_id_is_echoed_and_carried_into_the_jobs_log_lines(
    settings: Settings, tmp_path: Path
) -> None:
    with (tmp_path / "api.log").open("wb") as api_log, running_api(settings, api_log) as base:
        given = httpx.get(base + "/livez", headers={"X-Request-ID": "lb-7f3a.42"})
        assert given.headers["x-request-id"] == "lb-7f3a.42"
        made = httpx.get(base + "/livez").headers["x-request-id"]
        hostile = httpx.get(base + "/livez", headers={"X-Request-ID": "a b\tc" + "x" * 200})
        assert len(made) == 16 and hostile.headers["x-request-id"] not in ("", "a b\tc" + "x" * 200)
        refused = httpx.post(base + "/v1/scans", content=b"x", headers={"X-Request-ID": "refused-1"})
        assert refused.status_code == 401 and refused.headers["x-request-id"] == "refused-1"
        sent = httpx.post(
            base + "/v1/scans?mode=batch",
            content=sample_stack(),
            headers={
                "X-API-Key": SCANNER_KEY,
                "Content-Type": "image/tiff",
                "X-Request-ID": "counter-17-req",
            },
        )
        assert sent.status_code == 202 and sent.headers["x-request-id"] == "counter-17-req"
        scan_id = sent.json()["scan_id"]
        with running_workers(settings, 1, tmp_path / "logs"):
            wait_until(
                lambda: (
                    httpx.get(base + f"/v1/scans/{scan_id}", headers={"X-API-Key": ADMIN_KEY}).json()[
                        "status"
                    ]
                    == "captured"
                ),
                240,
                "the scan to be captured",
            )
    api_text = (tmp_path / "api.log").read_text()
    assert "[request=counter-17-req]" in api_text and f"scan {scan_id} stored" in api_text
    worker_text = (tmp_path / "logs" / "worker-0.log").read_text()
    job_lines = [line for line in worker_text.splitlines() if "request=counter-17-req" in line]
    assert job_lines and all(f"scan={scan_id}" in line for line in job_lines), worker_text[-3000:]


def test_json_logs_are_one_object_a_line_with_the_ids_and_stay_redacted(
    settings: Settings, tmp_path: Path
) -> None:
    json_settings = settings.model_copy(update={"log_format": "json"})
    with (tmp_path / "api.log").open("wb") as api_log, running_api(json_settings, api_log) as base:
        httpx.get(
            base + f"/v1/customers/{ID}/idcard", headers={"X-API-Key": ADMIN_KEY, "X-Request-ID": "j-1"}
        )
    lines = [json.loads(line) for line in (tmp_path / "api.log").read_text().splitlines() if line.strip()]
    assert lines and all({"time", "level", "process", "event"} <= set(line) for line in lines)
    access = [line for line in lines if "/idcard" in line["event"]]
    assert access and access[0]["request_id"] == "j-1" and access[0]["logger"] == "uvicorn.access"
    assert "110105********0013" in access[0]["event"]
    assert ID not in (tmp_path / "api.log").read_text()


def test_epolicies_issued_and_mailed_are_counted_once(mail_settings: Settings) -> None:  # noqa: F811
    from fastapi.testclient import TestClient
    from prometheus_client import generate_latest

    import metrics
    from api import create_app
    from esign.epolicy import sample_request
    from tests.conftest import SALES_KEY, run_worker_burst

    client = TestClient(create_app(mail_settings))
    body = sample_request().model_dump(mode="json")
    for _ in range(2):  # the same data twice is one version: issued once
        assert client.post("/v1/epolicies", json=body, headers={"X-API-Key": SALES_KEY}).status_code == 202
    assert run_worker_burst(mail_settings).returncode == 0
    conn = Redis.from_url(mail_settings.redis_url)
    found = samples_of(generate_latest(metrics.service_registry(conn)).decode())
    assert found[("imaging_epolicies_total", (("event", "issued"),))] == 1
    assert found[("imaging_epolicies_total", (("event", "mailed"),))] == 1
    assert found[("imaging_jobs_total", (("kind", "issue_epolicy"), ("outcome", "ok")))] == 1
    # the mail went in the job that signed the policy: no mail job
    assert ("imaging_jobs_total", (("kind", "deliver_mail"), ("outcome", "ok"))) not in found


def test_a_job_whose_dependency_is_down_is_counted_as_retried(mail_settings: Settings) -> None:  # noqa: F811
    from fastapi.testclient import TestClient
    from prometheus_client import generate_latest

    import metrics
    from api import create_app
    from esign.epolicy import sample_request
    from tests.conftest import SALES_KEY, run_worker_burst

    no_smtp = mail_settings.model_copy(update={"smtp_port": free_port()})  # nobody listens there
    client = TestClient(create_app(no_smtp))
    body = sample_request().model_dump(mode="json")
    assert client.post("/v1/epolicies", json=body, headers={"X-API-Key": SALES_KEY}).status_code == 202
    assert run_worker_burst(no_smtp).returncode == 0
    found = samples_of(generate_latest(metrics.service_registry(Redis.from_url(no_smtp.redis_url))).decode())
    assert found[("imaging_jobs_total", (("kind", "deliver_mail"), ("outcome", "retried")))] >= 1
    assert ("imaging_jobs_total", (("kind", "deliver_mail"), ("outcome", "ok"))) not in found
    assert found[("imaging_epolicies_total", (("event", "issued"),))] == 1
