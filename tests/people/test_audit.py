"""Branches and the audit trail against real Redis and S3: a branch's underwriter sees only their own
branch's cases and those below; every read is in the trail with person, branch and reason, and the trail
answers the same after Redis is flushed."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from redis import Redis

from api import create_app
from indexing import archive
from models import DocumentRecord, load
from people import audit
from roles import Role
from settings import Settings
from storage import open_store
from tests.conftest import ADMIN_KEY, UNDERWRITER_KEY, run_cli, run_worker_burst
from tests.indexing.conftest import APPLICANT, POLICY, case  # noqa: F401  (the fixture)
from tests.people.conftest import add_person, sign_in


def _branch(settings: Settings, doc_ids: list[str], branch: str) -> None:
    store = open_store(settings)
    for doc_id in doc_ids:
        record = load(store, DocumentRecord, doc_id).model_copy(update={"branch": branch})
        store.put(record.key, record.to_json(), "application/json")


def _person(settings: Settings, username: str) -> TestClient:
    client = TestClient(create_app(settings))
    assert sign_in(client, username).status_code == 303
    return client


def test_a_branch_underwriter_cannot_see_another_branch_s_case(
    settings: Settings,
    redis_conn: Redis,
    case: dict[str, str],  # noqa: F811
) -> None:
    _branch(settings, list(case.values()), "8611")
    store = open_store(settings)
    for doc_id in case.values():  # the customer's archive, as the worker keeps it when it files them
        archive.file(store, load(store, DocumentRecord, doc_id))
    add_person(store, redis_conn, "uw.beijing", Role.underwriter, branch="8611")
    add_person(store, redis_conn, "uw.haidian", Role.underwriter, branch="861101")
    add_person(store, redis_conn, "uw.tianjin", Role.underwriter, branch="8612")
    add_person(store, redis_conn, "uw.head", Role.underwriter, branch="86")
    front = f"/v1/documents/{case['front']}/pages/1"
    lookup = f"/v1/documents?policy_no={POLICY}"
    for who, sees in (("uw.beijing", True), ("uw.head", True), ("uw.tianjin", False), ("uw.haidian", False)):
        client = _person(settings, who)
        assert client.get(front).status_code == (200 if sees else 404), who
        found = client.get(lookup).json()["documents"]
        assert (case["front"] in [d["doc_id"] for d in found]) is sees, who
        assert client.get(f"/v1/customers/{APPLICANT}/idcard").status_code == (200 if sees else 404), who
        assert client.get(f"/v1/customers/{APPLICANT}").status_code == (200 if sees else 404), who
    # The bootstrap keys stand at the root; admin sees every branch.
    assert (
        TestClient(create_app(settings)).get(front, headers={"X-API-Key": UNDERWRITER_KEY}).status_code == 200
    )


def test_the_audit_lists_every_read_of_a_customer_s_card_by_person_even_after_redis_is_flushed(
    settings: Settings,
    redis_conn: Redis,
    case: dict[str, str],  # noqa: F811
) -> None:
    _branch(settings, list(case.values()), "8611")
    store = open_store(settings)
    add_person(store, redis_conn, "uw.a", Role.underwriter, branch="8611")
    add_person(store, redis_conn, "uw.b", Role.underwriter, branch="86")
    add_person(store, redis_conn, "au.a", Role.auditor, branch="86")
    admin = TestClient(create_app(settings))
    made = admin.post(
        "/v1/tokens",
        json={"kind": "personal", "owner": "au.a", "roles": ["auditor"]},
        headers={"X-API-Key": ADMIN_KEY},
    )
    auditor = {"X-API-Key": made.json()["token"]}
    a, b = _person(settings, "uw.a"), _person(settings, "uw.b")
    assert a.get(f"/v1/documents/{case['front']}/pages/1", headers={"X-Reason": POLICY}).status_code == 200
    assert (
        b.get(f"/v1/documents/{case['back']}/thumbnail", headers={"X-Reason": "TB2026009999"}).status_code
        == 200
    )
    assert a.get(f"/v1/documents/{case['form']}/fields/applicant_signature").status_code == 200
    assert a.get(f"/v1/documents/{case['request']}/pages/1").status_code == 404  # servicing's: not read

    def card_reads() -> list[tuple]:
        answer = admin.get(f"/v1/audit?customer_id={APPLICANT}", headers=auditor)
        assert answer.status_code == 200, answer.text
        return [
            (e["person"], e["branch"], e["object"], e["reason"])
            for e in answer.json()
            if e["action"] == "read"
        ]

    expected = [
        ("uw.a", "8611", f"{case['front']} page 1", POLICY),
        ("uw.b", "86", f"{case['back']} thumbnail", "TB2026009999"),
        ("uw.a", "8611", f"{case['form']} applicant_signature", ""),
    ]
    assert card_reads() == expected
    assert audit.archive(redis_conn, store) > 0
    first_objects = [i.key for i in store.list(audit.PREFIX)]
    assert len(first_objects) == 1 and audit.archive(redis_conn, store) == 0  # nothing new: nothing written
    redis_conn.flushdb()  # Redis lost: the trail stays in the store
    assert card_reads() == expected
    did = admin.get("/v1/audit?person=uw.a", headers=auditor).json()
    assert [e["action"] for e in did] == ["signin", "read", "read"]
    # The next archive is a new object; the first one is never rewritten.
    assert audit.archive(redis_conn, store) > 0  # the auditor's own queries, audited too
    assert set(first_objects) < {i.key for i in store.list(audit.PREFIX)}
    # Anyone else is refused the trail.
    assert admin.get("/v1/audit?person=uw.a", headers={"X-API-Key": UNDERWRITER_KEY}).status_code == 403


def test_keys_tokens_and_accounts_changes_are_audited_with_who_made_them(
    settings: Settings, redis_conn: Redis
) -> None:
    admin = TestClient(create_app(settings))
    headers = {"X-API-Key": ADMIN_KEY}
    body = {"username": "new.one", "name": "新人", "roles": ["keyer"], "branch": "8611", "password": "x" * 12}
    assert admin.post("/v1/users", json=body, headers=headers).status_code == 201
    assert admin.post("/v1/users", json=body, headers=headers).status_code == 422  # taken
    assert (
        admin.put("/v1/users/new.one/roles", json={"roles": ["underwriter"]}, headers=headers).status_code
        == 200
    )
    made = admin.post(
        "/v1/tokens", json={"kind": "personal", "owner": "new.one", "roles": ["underwriter"]}, headers=headers
    )
    token_id = made.json()["token_id"]
    assert admin.delete(f"/v1/tokens/{token_id}", headers=headers).status_code == 200
    assert admin.post("/v1/users/new.one/lock", headers=headers).status_code == 200
    events = audit.query(redis_conn, open_store(settings))
    assert [(e.action, e.object) for e in events] == [
        ("account_add", "new.one"),
        ("account_roles", "new.one"),
        ("token_add", token_id),
        ("token_revoke", token_id),
        ("account_lock", "new.one"),
    ]
    assert {e.person for e in events} == {next(iter({e.person for e in events}))} and events[
        0
    ].person.startswith("k")


def test_a_worker_archives_the_trail_into_the_store_by_itself(settings: Settings, redis_conn: Redis) -> None:
    audit.record(redis_conn, person="someone", action="read", object="d1 page 1", customers=["abc"])
    done = run_worker_burst(settings)
    assert done.returncode == 0, done.stderr[-2000:]
    store = open_store(settings)
    [archived] = [i.key for i in store.list(audit.PREFIX)]
    assert redis_conn.xlen(audit.STREAM) == 0
    redis_conn.flushdb()
    assert [(e.person, e.customers) for e in audit.query(redis_conn, store)] == [("someone", ["abc"])]


def test_the_command_line_changes_roles_archives_and_reads_the_trail(
    settings: Settings, redis_conn: Redis
) -> None:
    store = open_store(settings)
    add_person(store, redis_conn, "cl.a", Role.keyer, branch="8611")
    changed = run_cli(settings, "users", "roles", "cl.a", "--role", "underwriter", "--branch", "8612")
    assert changed.returncode == 0 and "cl.a\tunderwriter\t8612" in changed.stdout, changed.stderr
    assert run_cli(settings, "audit", "archive").returncode == 0
    redis_conn.flushdb()
    lines = run_cli(settings, "audit", "query", "--person", "test").stdout.splitlines()
    assert [json.loads(line)["action"] for line in lines] == ["account_add"]
    everything = [json.loads(line) for line in run_cli(settings, "audit", "query").stdout.splitlines()]
    assert [(e["action"], e["object"]) for e in everything] == [
        ("account_add", "cl.a"),
        ("account_roles", "cl.a"),
    ]
    assert everything[1]["person"].startswith("cli:")
