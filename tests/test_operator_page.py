"""The operator page in a real headless Chromium, against `imaging api` as a real process: an admin signed
in sees queues, workers, key-entry, today's straight-through rate, recent scans, and puts failed jobs back
or discards them; without a session the page leads to /login and back; anyone else sees the refusal."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client import generate_latest
from pydantic import SecretStr
from redis import Redis
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

import events
import metrics
import queues
from models import DocumentRecord
from settings import Settings
from storage import open_store
from supervisor import free_port
from tests.conftest import (
    SCANNER_KEY,
    add_staff,
    axe_violations,
    browser_sign_in,
    csp_violations,
    needs_chromium,
    run_worker_burst,
)
from tests.ocr.conftest import document  # noqa: F401  (the fixture: one field accepted, two to key)
from tests.samples import sample_png
from vocabulary import EventKind

pytestmark = needs_chromium


def _path(browser) -> str:
    return "/" + browser.current_url.split("/", 3)[3].split("?")[0]


def _cells(browser, table: str) -> list[list[str]]:
    """Return the table's cells, read in one step (the page redraws its tables every five seconds)."""
    rows = f"[...document.querySelectorAll('#{table} tbody tr')]"
    return browser.execute_script(f"return {rows}.map(r => [...r.cells].map(c => c.textContent))")


def test_an_operator_sees_the_service_and_puts_back_or_discards_a_failed_job(
    api_server: str,
    browser,
    document: DocumentRecord,  # noqa: F811
    settings: Settings,
) -> None:
    conn = Redis.from_url(settings.redis_url)
    metrics.count_fields(conn, document)  # today: one field accepted, two sent to key-entry
    headers = {"X-API-Key": SCANNER_KEY, "Content-Type": "application/pdf"}
    broken = httpx.post(api_server + "/v1/scans?mode=batch", content=b"%PDF-1.7\n%broken", headers=headers)
    assert broken.status_code == 202, broken.text
    assert run_worker_burst(settings).returncode == 0
    queued = httpx.post(
        api_server + "/v1/scans?mode=batch",
        content=sample_png(),
        headers={"X-API-Key": SCANNER_KEY, "Content-Type": "image/png"},
    ).json()["scan_id"]
    (failed_job,) = [f.job_id for f in queues.failed_jobs(conn)]

    wait = WebDriverWait(browser, 20)
    browser.get(api_server + "/operator")  # no session: the sign-in page, which leads back here
    assert _path(browser) == "/login" and "next=%2Foperator" in browser.current_url
    browser_sign_in(browser, api_server, add_staff(settings, "ops.admin", "admin"), "/operator")
    assert browser.find_element(By.ID, "person").text == "ops.admin"
    wait.until(lambda d: _cells(d, "failed"))
    assert not browser.execute_script("return 'imaging-key' in sessionStorage || sessionStorage.length")
    assert _cells(browser, "queues")[3][:2] == ["batch", "1"]
    assert browser.find_element(By.ID, "backlog").text == "2"
    assert browser.find_element(By.ID, "rate").text == "33.3 %"
    scans = {row[0]: row[2] for row in _cells(browser, "scans")}
    assert scans[queued] == "queued" and scans[broken.json()["scan_id"]].startswith("failed: ")
    assert _cells(browser, "failed")[0][0] == failed_job

    browser.find_element(By.CSS_SELECTOR, f"#failed button[data-job='{failed_job}']").click()  # requeue
    wait.until(lambda d: not _cells(d, "failed") and _cells(d, "queues")[3][1] == "2")
    assert run_worker_burst(settings).returncode == 0  # it fails again: the file is broken
    wait.until(lambda d: _cells(d, "failed"))  # the page refreshes itself
    discard = f"#failed button[data-job='{failed_job}']:nth-of-type(2)"
    browser.find_element(By.CSS_SELECTOR, discard).click()
    wait.until(lambda d: not _cells(d, "failed"))
    assert queues.failed_jobs(conn) == []
    assert csp_violations(browser) == []
    counted = generate_latest(metrics.service_registry(conn)).decode()
    assert 'imaging_jobs_total{kind="capture_scan",outcome="failed"} 2.0' in counted, "both runs, for good"

    # A webhook delivery that failed for good is on the page, and its replay queues it again.
    hooked = settings.model_copy(
        update={"webhooks": f"*=http://127.0.0.1:{free_port()}/x", "webhook_secret": SecretStr("s" * 20)}
    )
    event, _ = events.emit(conn, open_store(hooked), hooked, EventKind.document_completed, "d1", {"v": 1})
    with pytest.raises(events.WebhookUnavailable):
        events.deliver(conn, open_store(hooked), hooked, event.event_id, 0, last=True)
    wait.until(lambda d: _cells(d, "events"))
    row = _cells(browser, "events")[0]
    assert row[0] == event.event_id and row[3] == "failed" and row[4] == "1: no answer", row
    browser.find_element(By.CSS_SELECTOR, f"#events button[data-event='{event.event_id}']").click()
    wait.until(lambda d: _cells(d, "events")[0][3] == "pending")
    assert _cells(browser, "events")[0][4] == "1: no answer (replayed 1)"
    assert csp_violations(browser) == [] and axe_violations(browser) == []


def test_a_person_signed_in_who_is_not_an_admin_sees_the_refusal(
    api_server: str, browser, settings: Settings
) -> None:
    person = add_staff(settings, "ops.keyer", "keyer", "underwriter")
    browser_sign_in(browser, api_server, person, "/operator")
    refused = WebDriverWait(browser, 15).until(ec.visibility_of_element_located((By.ID, "refused")))
    assert "ops.keyer may not use the operator page" in refused.text
    assert "allowed: admin" in refused.text, refused.text  # the API's own words
    assert not browser.find_element(By.ID, "board").is_displayed()
    browser.find_element(By.CSS_SELECTOR, "#logout button").click()  # signs out as on the key-entry page
    WebDriverWait(browser, 15).until(lambda d: _path(d) == "/login")
    browser.get(api_server + "/operator")
    assert _path(browser) == "/login"
    assert csp_violations(browser) == []
