"""Jobs on a real rq worker process, against real Redis, a real S3 server and a real SMTP server."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from redis import Redis
from rq.job import Job, JobStatus

import epolicies
import queues
import worker
from api import create_app
from models import DocumentRecord, Mail, MailStatus, Scan, load, scan_key
from settings import Settings
from storage import open_store
from supervisor import free_port
from tests.conftest import SCANNER_KEY, run_cli, run_worker_burst, running_workers
from tests.samples import sample_png, sample_stack
from tests.servers import MailServer, wait_until
from tests.snapshots import snapshot
from vocabulary import ScanStatus


def _upload(settings: Settings, data: bytes, mode: str = "immediate") -> str:
    client = TestClient(create_app(settings))
    response = client.post(
        f"/v1/scans?mode={mode}",
        content=data,
        headers={"X-API-Key": SCANNER_KEY, "Content-Type": "image/png"},
    )
    assert response.status_code == 202, response.text
    return response.json()["scan_id"]


def _scan(settings: Settings, scan_id: str) -> Scan:
    return load(open_store(settings), Scan, scan_id)


def test_a_scan_uploaded_through_the_api_is_captured_by_a_real_worker_into_s3(settings: Settings) -> None:
    scan_id = _upload(settings, sample_stack())
    result = run_worker_burst(settings)
    assert result.returncode == 0, result.stderr
    scan = _scan(settings, scan_id)
    assert (scan.status, scan.pages, scan.error, scan.problems) == (ScanStatus.captured, 2, None, [])
    store = open_store(settings)
    records = [load(store, DocumentRecord, d) for d in scan.documents]
    assert [(r.type, r.source_pages) for r in records] == [("application_form", [1]), ("idcard_front", [2])]
    listed = [(p.page, p.outcome, p.documents) for p in scan.page_outcomes]
    assert listed == [(1, "document", scan.documents[:1]), (2, "document", scan.documents[1:])]
    form = records[0]
    assert form.application_no == "TB2026001234"
    assert set(form.fields) >= {"applicant_name", "applicant_id_number", "premium"}
    assert "applicant_signature" in form.regions
    image = store.get(form.fields["applicant_name"].image)
    assert image.startswith(b"\x89PNG")
    assert set(records[1].fields) == {"name", "sex", "ethnicity", "birth_date", "address", "id_number"}


def test_running_the_capture_job_again_changes_nothing(settings: Settings, redis_conn: Redis) -> None:
    store = open_store(settings)
    scan_id = _upload(settings, sample_stack())
    assert run_worker_burst(settings).returncode == 0
    before = snapshot(store)
    record = store.get(scan_key(scan_id))

    # The same job again, as a retry or a second worker would run it.
    Job.fetch(f"capture-{scan_id}", connection=redis_conn).delete()
    queues.enqueue(
        redis_conn, settings, "immediate", worker.capture_scan, scan_id, job_id=f"capture-{scan_id}"
    )
    assert run_worker_burst(settings).returncode == 0
    assert snapshot(store) == before
    assert store.get(scan_key(scan_id)) == record

    # A crash after the images were written but before the scan record said so: the rerun rewrites the
    # same images under the same keys, and no second set of documents appears.
    scan = Scan.model_validate_json(record)
    store.put(
        scan_key(scan_id), scan.model_copy(update={"status": ScanStatus.queued, "documents": []}).to_json()
    )
    Job.fetch(f"capture-{scan_id}", connection=redis_conn).delete()
    queues.enqueue(
        redis_conn, settings, "immediate", worker.capture_scan, scan_id, job_id=f"capture-{scan_id}"
    )
    assert run_worker_burst(settings).returncode == 0
    after = snapshot(store)
    assert set(after) == set(before)
    images = [k for k in before if k.endswith(".png")]
    assert len(images) > 20
    assert {k: after[k] for k in images} == {k: before[k] for k in images}
    assert _scan(settings, scan_id).documents == scan.documents


def test_enqueueing_the_same_job_twice_queues_it_once(settings: Settings, redis_conn: Redis) -> None:
    scan_id = _upload(settings, sample_png())
    again = queues.enqueue(
        redis_conn, settings, "immediate", worker.capture_scan, scan_id, job_id=f"capture-{scan_id}"
    )
    assert again.id == f"capture-{scan_id}"
    from rq import Queue

    assert Queue("immediate", connection=redis_conn).job_ids == [f"capture-{scan_id}"]


def test_immediate_scans_are_served_before_the_batch_backlog(settings: Settings, redis_conn: Redis) -> None:
    batch = [_upload(settings, sample_png(f"batch {i}"), mode="batch") for i in range(3)]
    immediate = _upload(settings, sample_png("counter"), mode="immediate")
    assert run_worker_burst(settings).returncode == 0
    ended = {
        scan_id: Job.fetch(f"capture-{scan_id}", connection=redis_conn).ended_at
        for scan_id in [*batch, immediate]
    }
    assert all(ended[immediate] < ended[b] for b in batch)


def test_a_damaged_scan_fails_for_good_at_once_and_can_be_requeued_from_the_cli(
    settings: Settings, redis_conn: Redis
) -> None:
    truncated = sample_png(size=(1200, 900))[:300]
    scan_id = _upload(settings, truncated)
    assert run_worker_burst(settings).returncode == 0
    job = Job.fetch(f"capture-{scan_id}", connection=redis_conn)
    assert job.get_status() == JobStatus.FAILED  # not scheduled for a retry
    scan = _scan(settings, scan_id)
    assert scan.status == ScanStatus.failed and "damaged image/png" in scan.error

    listed = run_cli(settings, "jobs", "failed")
    assert listed.returncode == 0, listed.stderr
    assert f"capture-{scan_id}\timmediate\tworker.capture_scan" in listed.stdout
    assert "UnreadableScan" in listed.stdout

    requeued = run_cli(settings, "jobs", "requeue", "--all")
    assert requeued.returncode == 0, requeued.stderr
    assert requeued.stdout.split() == [f"capture-{scan_id}"]
    assert Job.fetch(f"capture-{scan_id}", connection=redis_conn).get_status() == JobStatus.QUEUED


def _message(to: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "e-policy@insurer.example", to, "您的电子保单"
    msg.set_content("附件是您的电子保单。")
    return msg


def test_mail_is_retried_while_smtp_is_down_and_sent_exactly_once_when_it_returns(
    settings: Settings, redis_conn: Redis, tmp_path: Path
) -> None:
    port = free_port()
    settings = settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_timeout": 2.0})
    settings = settings.model_copy(update={"retry_intervals": "1,1,1,1,1,1,1,1"})
    store = open_store(settings)
    mail = epolicies.submit_mail(redis_conn, store, settings, _message("holder@example.cn"))

    def record() -> Mail:
        return load(store, Mail, mail.mail_id)

    smtp = MailServer(port=port)
    try:
        with running_workers(settings, 1, tmp_path / "workers"):
            wait_until(lambda: record().attempts >= 1, 60, "the first delivery attempt")
            failed_once = record()
            assert failed_once.status == MailStatus.queued and "unreachable" in failed_once.last_error
            smtp.start()
            wait_until(lambda: record().status == MailStatus.sent, 60, "the retried delivery")
    finally:
        smtp.stop()
    assert len(smtp.messages) == 1
    assert smtp.messages[0]["To"] == "holder@example.cn"
    assert record().delivered_to == f"smtp://127.0.0.1:{port}"

    # Running the job again finds it sent and does not send it twice.
    Job.fetch(f"mail-{mail.mail_id}", connection=redis_conn).delete()
    queues.enqueue(
        redis_conn, settings, "mail", worker.deliver_mail, mail.mail_id, job_id=f"mail-{mail.mail_id}"
    )
    smtp2 = MailServer(port=port)
    smtp2.start()
    try:
        assert run_worker_burst(settings).returncode == 0
    finally:
        smtp2.stop()
    assert smtp2.messages == []


@pytest.mark.parametrize("smtp", [False, True])
def test_mail_goes_to_the_outbox_without_smtp_and_to_the_server_with_it(
    settings: Settings, redis_conn: Redis, smtp_srv: MailServer, smtp: bool
) -> None:
    if smtp:
        settings = settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": smtp_srv.port})
    before = len(smtp_srv.messages)
    mail = epolicies.submit_mail(redis_conn, open_store(settings), settings, _message("a@example.cn"))
    assert run_worker_burst(settings).returncode == 0
    sent = load(open_store(settings), Mail, mail.mail_id)
    assert sent.status == MailStatus.sent and sent.attempts == 1
    outbox = settings.outbox_dir / f"{mail.mail_id}.eml"
    assert outbox.exists() is (not smtp)
    assert len(smtp_srv.messages) - before == (1 if smtp else 0)
