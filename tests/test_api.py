"""The HTTP API against real Redis and a real S3 server: auth, errors as JSON, limits, uploads."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from redis import Redis
from rq import Queue

from api import create_app
from settings import Settings
from storage import open_store
from supervisor import free_port
from tests.conftest import ADMIN_KEY, KEYER_KEY, SCANNER2_KEY, SCANNER_KEY
from tests.samples import sample_png
from tests.snapshots import snapshot


@pytest.fixture
def client(settings: Settings) -> TestClient:
    return TestClient(create_app(settings), raise_server_exceptions=False)


def _upload(client: TestClient, data: bytes, key: str = SCANNER_KEY, mode: str = "immediate", **kw):
    headers = {"X-API-Key": key, "Content-Type": "application/octet-stream", **kw.pop("headers", {})}
    return client.post(f"/v1/scans?mode={mode}", content=data, headers=headers, **kw)


def _nothing_stored_or_queued(settings: Settings, redis_conn: Redis) -> None:
    assert snapshot(open_store(settings)) == {}
    assert all(Queue(q, connection=redis_conn).count == 0 for q in ("immediate", "batch"))


def _health(app_settings: Settings) -> tuple[object, object]:
    """Return what anyone and what an admin are told of the service's health."""
    client = TestClient(create_app(app_settings))
    return client.get("/healthz"), client.get("/v1/health", headers={"X-API-Key": ADMIN_KEY})


def test_healthz_reports_both_parts_up(settings: Settings) -> None:
    public, admin = _health(settings)
    assert (public.status_code, public.json()) == (200, {"status": "ok"})
    idle = dict.fromkeys(("immediate", "esign", "mail", "batch"), 0)  # no worker runs in this test
    expected = {"status": "ok", "redis": "ok", "storage": "ok", "workers": idle}
    assert (admin.status_code, admin.json()) == (200, expected)


def test_health_names_redis_when_it_is_down_to_admins_alone(settings: Settings) -> None:
    port = free_port()
    public, admin = _health(settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{port}/0"}))
    assert (public.status_code, public.json()) == (503, {"status": "down"}), "no address, no error text"
    assert admin.status_code == 503
    body = admin.json()
    assert body["redis"].startswith("down") and str(port) in body["redis"] and body["storage"] == "ok"


def test_health_names_storage_when_it_is_down_to_admins_alone(settings: Settings) -> None:
    port = free_port()
    public, admin = _health(settings.model_copy(update={"s3_endpoint": f"127.0.0.1:{port}"}))
    assert (public.status_code, public.json()) == (503, {"status": "down"}), "no address, no error text"
    body = admin.json()
    assert admin.status_code == 503 and body["storage"].startswith("down") and body["redis"] == "ok"


def test_the_service_is_ready_only_while_a_worker_takes_every_queue(settings: Settings, tmp_path) -> None:
    from tests.conftest import running_workers

    client = TestClient(create_app(settings))
    assert client.get("/livez").json() == {"status": "alive"}
    alone = client.get("/readyz")
    assert (alone.status_code, alone.json()) == (503, {"status": "not_ready"}), "no worker: not ready"
    with running_workers(settings, 1, tmp_path / "logs"):
        ready = client.get("/readyz")
        assert (ready.status_code, ready.json()) == (200, {"status": "ready"})
        detail = client.get("/v1/health", headers={"X-API-Key": ADMIN_KEY}).json()
        assert detail["workers"] == dict.fromkeys(("immediate", "esign", "mail", "batch"), 1)
    assert client.get("/readyz").status_code == 503, "the worker stopped: not ready again"


def test_the_health_detail_is_for_admins(client: TestClient) -> None:
    assert client.get("/v1/health").status_code == 401
    assert client.get("/v1/health", headers={"X-API-Key": SCANNER_KEY}).status_code == 403


def test_an_upload_is_stored_and_queued_on_its_mode(
    client: TestClient, settings: Settings, redis_conn: Redis
) -> None:
    data = sample_png()
    response = _upload(client, data, mode="immediate")
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "queued" and body["mode"] == "immediate"
    store = open_store(settings)
    assert store.get_original(body["files"][0]["sha256"]) == data
    assert Queue("immediate", connection=redis_conn).job_ids == [f"capture-{body['scan_id']}"]
    status = client.get(body["status_url"], headers={"X-API-Key": SCANNER_KEY})
    assert status.status_code == 200 and status.json()["files"][0]["content_type"] == "image/png"


@pytest.mark.parametrize(
    ("headers", "status", "error"),
    [
        ({}, 401, "unauthorized"),
        ({"X-API-Key": "x" * 30}, 401, "unauthorized"),
        ({"X-API-Key": KEYER_KEY}, 403, "forbidden"),
    ],
)
def test_uploads_without_the_scanner_role_are_refused_and_nothing_is_stored(
    client: TestClient, settings: Settings, redis_conn: Redis, headers: dict, status: int, error: str
) -> None:
    response = client.post("/v1/scans", content=sample_png(), headers=headers)
    assert response.status_code == status
    assert response.json()["error"] == error
    _nothing_stored_or_queued(settings, redis_conn)


def test_a_body_over_the_limit_is_refused_from_its_content_length(
    client: TestClient, settings: Settings, redis_conn: Redis
) -> None:
    response = _upload(client, b"\x89PNG\r\n\x1a\n" + b"\0" * (settings.max_upload_bytes + 1))
    assert response.status_code == 413
    assert "IMAGING_MAX_UPLOAD_BYTES" in response.json()["detail"]
    _nothing_stored_or_queued(settings, redis_conn)


def test_a_streamed_body_over_the_limit_is_refused_while_it_arrives(
    client: TestClient, settings: Settings, redis_conn: Redis
) -> None:
    sent = []

    def chunks():
        for _ in range(64):
            sent.append(1)
            yield b"\x89PNG\r\n\x1a\n" + b"\0" * 65536

    response = _upload(client, chunks())  # no Content-Length: chunked transfer
    assert response.status_code == 413
    assert response.json()["error"] == "too_large"
    _nothing_stored_or_queued(settings, redis_conn)


@pytest.mark.parametrize(
    ("data", "status", "error"),
    [(b"", 422, "invalid_request"), (b"hello, not a scan", 415, "unsupported_media_type")],
)
def test_an_empty_or_unknown_body_is_refused(
    client: TestClient, settings: Settings, redis_conn: Redis, data: bytes, status: int, error: str
) -> None:
    response = _upload(client, data)
    assert (response.status_code, response.json()["error"]) == (status, error)
    _nothing_stored_or_queued(settings, redis_conn)


def test_a_bad_mode_is_a_422_naming_the_parameter(client: TestClient) -> None:
    response = _upload(client, sample_png(), mode="sometime")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "mode"]


def test_an_upload_is_refused_with_503_when_redis_is_down_and_nothing_is_stored(
    settings: Settings, redis_conn: Redis
) -> None:
    down = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    response = _upload(TestClient(create_app(down)), sample_png())
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"
    assert response.json()["error"] == "queue_unavailable"
    assert snapshot(open_store(settings)) == {}


def test_an_upload_whose_job_redis_will_not_take_is_refused_and_leaves_no_scan(
    client: TestClient, settings: Settings, redis_conn: Redis
) -> None:
    # Redis answers PING but refuses writes (as a primary that lost its replicas does): the scan record
    # is written before the job is queued, and must be taken back when the queueing fails.
    redis_conn.config_set("min-replicas-to-write", 1)
    try:
        response = _upload(client, sample_png())
    finally:
        redis_conn.config_set("min-replicas-to-write", 0)
    assert response.status_code == 503 and response.json()["error"] == "queue_unavailable"
    assert not [key for key in snapshot(open_store(settings)) if key.startswith("scans/")]


def test_unknown_routes_and_methods_get_json_errors(client: TestClient) -> None:
    response = client.get("/v1/nothing-here")
    assert (response.status_code, response.json()["error"]) == (404, "not_found")
    response = client.delete("/v1/scans", headers={"X-API-Key": ADMIN_KEY})
    assert (response.status_code, response.json()["error"]) == (405, "method_not_allowed")


def test_malformed_json_is_a_422(client: TestClient) -> None:
    response = client.post(
        "/v1/jobs/requeue",
        content=b'{"job_ids": [',
        headers={"X-API-Key": ADMIN_KEY, "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"


def test_a_scanner_sees_only_its_own_scans_and_an_admin_sees_all(client: TestClient) -> None:
    url = _upload(client, sample_png()).json()["status_url"]
    assert client.get(url, headers={"X-API-Key": SCANNER_KEY}).status_code == 200
    other = client.get(url, headers={"X-API-Key": SCANNER2_KEY})
    assert (other.status_code, other.json()["error"]) == (404, "not_found")
    assert client.get(url, headers={"X-API-Key": ADMIN_KEY}).status_code == 200


def test_a_malformed_scan_id_is_a_422_and_an_unknown_one_a_404(client: TestClient) -> None:
    headers = {"X-API-Key": ADMIN_KEY}
    assert client.get("/v1/scans/..%2F..%2Fetc", headers=headers).status_code in (404, 422)
    assert client.get("/v1/scans/not-a-scan", headers=headers).status_code == 422
    assert client.get("/v1/scans/s20260101000000" + "0" * 12, headers=headers).status_code == 404


def test_the_openapi_page_documents_the_routes(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/healthz", "/v1/scans", "/v1/scans/{scan_id}", "/v1/jobs/failed", "/v1/jobs/requeue"} <= set(
        paths
    )
