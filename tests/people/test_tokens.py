"""API tokens for machines and people, made and revoked at runtime, against real Redis, S3 and real
`imaging api` processes."""

from __future__ import annotations

import hashlib
import time
from datetime import timedelta

import httpx
from fastapi.testclient import TestClient
from redis import Redis

from models import Scan, find
from people import tokens
from roles import Role
from settings import Settings
from storage import open_store
from tests.conftest import ADMIN_KEY, SCANNER_KEY, run_cli, running_api
from tests.people.conftest import add_person
from vocabulary import utcnow

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def _make(client: TestClient, **body) -> dict:
    answer = client.post("/v1/tokens", json=body, headers={"X-API-Key": ADMIN_KEY})
    assert answer.status_code == 201, answer.text
    return answer.json()


def test_a_token_made_at_runtime_works_at_once_and_only_its_hash_is_kept(
    client: TestClient, settings: Settings
) -> None:
    made = _make(client, kind="service", owner="scanner-8611-01", roles=["scanner"], branch="8611", days=30)
    token = made["token"]
    assert token.startswith("imt_") and made["branch"] == "8611"
    raw = open_store(settings).get(f"people/tokens/{made['token_id']}.json").decode()
    assert token not in raw and hashlib.sha256(token.encode()).hexdigest() in raw
    listed = client.get("/v1/tokens", headers={"X-API-Key": ADMIN_KEY}).json()
    assert [t["owner"] for t in listed] == ["scanner-8611-01"] and "token" not in listed[0]
    # The scan belongs to the station and its branch, not to a key's hash.
    answer = client.post("/v1/scans?mode=batch", content=PNG, headers={"X-API-Key": token})
    assert answer.status_code == 202, answer.text
    scan = find(open_store(settings), Scan, answer.json()["scan_id"])
    assert (scan.uploaded_by, scan.branch) == ("scanner-8611-01", "8611")
    assert client.get(f"/v1/scans/{scan.scan_id}", headers={"X-API-Key": token}).status_code == 200
    # The station's token rotated: its earlier scans stay its own.
    rotated = _make(client, kind="service", owner="scanner-8611-01", roles=["scanner"], branch="8611")[
        "token"
    ]
    assert (
        client.delete(f"/v1/tokens/{made['token_id']}", headers={"X-API-Key": ADMIN_KEY}).status_code == 200
    )
    assert client.get(f"/v1/scans/{scan.scan_id}", headers={"X-API-Key": rotated}).status_code == 200
    # Another station does not see it.
    other = _make(client, kind="service", owner="scanner-8612-01", roles=["scanner"], branch="8612")["token"]
    assert client.get(f"/v1/scans/{scan.scan_id}", headers={"X-API-Key": other}).status_code == 404
    # A token cannot do more than its roles.
    assert (
        client.get("/v1/documents?policy_no=TB2026001234", headers={"X-API-Key": rotated}).status_code == 403
    )


def test_expired_revoked_and_forged_tokens_are_refused(client: TestClient, settings: Settings) -> None:
    store = open_store(settings)
    made = _make(client, kind="service", owner="core-claims", roles=["claims"], branch="86")
    token, token_id = made["token"], made["token_id"]
    url = "/v1/documents?claim_no=LP2026000077"
    assert client.get(url, headers={"X-API-Key": token}).status_code == 200
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert client.get(url, headers={"X-API-Key": forged}).status_code == 401
    record = find(store, tokens.ApiToken, token_id)
    expired = record.model_copy(update={"expires_at": utcnow() - timedelta(seconds=1)})
    store.put(expired.key, expired.to_json(), "application/json")
    time.sleep(tokens.CACHE_SECONDS + 0.1)
    assert client.get(url, headers={"X-API-Key": token}).status_code == 401
    # Service tokens are for machines: they neither key nor administer.
    refused = client.post(
        "/v1/tokens",
        json={"kind": "service", "owner": "bot", "roles": ["keyer"], "branch": "86"},
        headers={"X-API-Key": ADMIN_KEY},
    )
    assert refused.status_code == 422 and "people" in refused.json()["detail"]
    assert client.post("/v1/tokens", json={}, headers={"X-API-Key": SCANNER_KEY}).status_code == 403


def test_a_personal_token_acts_as_its_person_and_stops_when_the_account_is_locked(
    client: TestClient, settings: Settings, redis_conn: Redis
) -> None:
    store = open_store(settings)
    add_person(store, redis_conn, "chen.er", Role.underwriter, branch="8611")
    refused = client.post(
        "/v1/tokens",
        json={"kind": "personal", "owner": "chen.er", "roles": ["admin"]},
        headers={"X-API-Key": ADMIN_KEY},
    )
    assert refused.status_code == 422  # not a role the person holds
    token = _make(client, kind="personal", owner="chen.er", roles=["underwriter"])["token"]
    url = "/v1/documents?policy_no=TB2026001234"
    assert client.get(url, headers={"X-API-Key": token}).status_code == 200
    assert run_cli(settings, "users", "lock", "chen.er").returncode == 0
    time.sleep(tokens.CACHE_SECONDS + 0.1)
    assert client.get(url, headers={"X-API-Key": token}).status_code == 401


def test_a_token_revoked_on_one_api_process_is_refused_by_another_within_a_second(settings: Settings) -> None:
    made = run_cli(
        settings, "tokens", "add", "scanner-8611-02", "--service", "--role", "scanner", "--branch", "8611"
    )
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    token_id = token.split("_")[1]
    with running_api(settings) as first, running_api(settings) as second, httpx.Client(timeout=10) as http:
        assert (
            http.get(
                f"{second}/v1/scans/s20261123101500abcdefabcdef", headers={"X-API-Key": token}
            ).status_code
            == 404
        )
        revoked = http.delete(f"{first}/v1/tokens/{token_id}", headers={"X-API-Key": ADMIN_KEY})
        assert revoked.status_code == 200 and revoked.json()["revoked_by"].startswith("k")
        start = time.monotonic()
        while True:
            answer = http.post(f"{second}/v1/scans?mode=batch", content=PNG, headers={"X-API-Key": token})
            if answer.status_code == 401:
                break
            assert time.monotonic() - start < 1.0, "the other process still takes the revoked token"
            time.sleep(0.05)
    listed = run_cli(settings, "tokens", "list")
    assert (
        f"{token_id}\tservice\tscanner-8611-02\tscanner\t8611" in listed.stdout and "revoked" in listed.stdout
    )
