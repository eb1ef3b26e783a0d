"""Separation of duties, by person: the two blind rounds of a field by two people, arbitration by a third,
and no keying by an administrator, whichever tokens or sessions they come with."""

from __future__ import annotations

from fastapi.testclient import TestClient
from redis import Redis

from api import create_app
from models import DocumentRecord, load
from people import audit
from roles import Role
from settings import Settings
from storage import open_store
from tests.conftest import ADMIN_KEY
from tests.ocr.conftest import DOC, document  # noqa: F401  (the fixture)
from tests.people.conftest import add_person, page_csrf, sign_in

NUMBER = f"{DOC}.applicant_id_number"
NAME = f"{DOC}.applicant_name"


def _token(client: TestClient, owner: str, *roles: str) -> str:
    answer = client.post(
        "/v1/tokens",
        json={"kind": "personal", "owner": owner, "roles": list(roles)},
        headers={"X-API-Key": ADMIN_KEY},
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["token"]


class Keyer:
    """One way in for one person: a personal token, or a browser session with its CSRF token."""

    def __init__(self, settings: Settings, username: str, token: str | None = None) -> None:
        self.client = TestClient(create_app(settings))
        if token:
            self.headers = {"X-API-Key": token}
        else:
            assert sign_in(self.client, username).status_code == 303
            self.headers = {"X-CSRF-Token": page_csrf(self.client, "/keyentry")}

    def next(self) -> str | None:
        answer = self.client.get("/v1/keyentry/next", headers=self.headers)
        assert answer.status_code == 200, answer.text
        task = answer.json()["task"]
        return task["task_id"] if task else None

    def key(self, task_id: str, value: str) -> str:
        answer = self.client.post(f"/v1/keyentry/{task_id}", json={"value": value}, headers=self.headers)
        assert answer.status_code == 200, answer.text
        return answer.json()["status"]


def test_one_person_cannot_key_both_blind_rounds_whichever_token_or_session(
    settings: Settings,
    redis_conn: Redis,
    document: DocumentRecord,  # noqa: F811
) -> None:
    store = open_store(settings)
    for name in ("ke.a", "ke.b", "ke.c"):
        add_person(store, redis_conn, name, Role.keyer)
    admin = TestClient(create_app(settings))
    by_token = Keyer(settings, "ke.a", _token(admin, "ke.a", "keyer"))
    by_session = Keyer(settings, "ke.a")
    second_token = Keyer(settings, "ke.a", _token(admin, "ke.a", "keyer"))

    assert by_token.next() == NUMBER  # the blind field first (task ids sort so)
    assert by_token.key(NUMBER, "110105198703150013") == "waiting"
    # The same person through a session and through another token gets the other field, never the
    # second blind round of the one they keyed.
    assert by_session.next() == NAME
    assert by_session.key(NAME, "张三丰") == "keyed"
    assert by_session.next() is None and second_token.next() is None

    other = Keyer(settings, "ke.b")
    assert other.next() == NUMBER
    assert other.key(NUMBER, "110105198703150021") == "waiting"  # they differ: an arbiter is needed
    assert by_session.next() is None and other.next() is None  # neither blind keyer arbitrates
    arbiter = Keyer(settings, "ke.c", _token(admin, "ke.c", "keyer"))
    assert arbiter.next() == NUMBER
    assert arbiter.key(NUMBER, "110105198703150013") == "keyed"

    field = load(store, DocumentRecord, DOC).fields["applicant_id_number"]
    assert [(e.keyer, e.round) for e in field.entries] == [
        ("ke.a", "blind"),
        ("ke.b", "blind"),
        ("ke.c", "arbitration"),
    ]
    trail = [
        (e.person, e.action, e.object)
        for e in audit.query(redis_conn, store)
        if e.action in ("key", "arbitrate")
    ]
    assert trail == [
        ("ke.a", "key", NUMBER),
        ("ke.a", "key", NAME),
        ("ke.b", "key", NUMBER),
        ("ke.c", "arbitrate", NUMBER),
    ]


def test_an_administrator_cannot_key_with_a_session_or_a_keyer_token(
    settings: Settings,
    redis_conn: Redis,
    document: DocumentRecord,  # noqa: F811
) -> None:
    store = open_store(settings)
    add_person(store, redis_conn, "boss.a", Role.admin, Role.keyer)
    admin = TestClient(create_app(settings))
    token = _token(admin, "boss.a", "keyer")  # a token with the keyer role alone
    assert admin.get("/v1/keyentry/next", headers={"X-API-Key": token}).status_code == 403
    assert admin.get("/v1/keyentry/next", headers={"X-API-Key": ADMIN_KEY}).status_code == 403
    session = TestClient(create_app(settings))
    sign_in(session, "boss.a")
    refused = session.get("/v1/keyentry/next")
    assert refused.status_code == 403 and "separation of duties" in refused.json()["detail"]
    assert session.get("/v1/users").status_code == 200  # the admin role itself works
