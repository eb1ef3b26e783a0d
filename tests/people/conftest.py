"""Staff accounts made straight in the store, and signing in through the real /login form."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from redis import Redis

from api import create_app
from people import changes
from roles import Role
from settings import Settings
from storage import ObjectStore, open_store

PASSWORD = "correct horse battery"


@pytest.fixture
def people_store(settings: Settings) -> ObjectStore:
    return open_store(settings)


@pytest.fixture
def client(settings: Settings) -> TestClient:
    return TestClient(create_app(settings))


def add_person(
    store: ObjectStore,
    conn: Redis,
    username: str,
    *roles: Role,
    branch: str = "8611",
    password: str = PASSWORD,
) -> None:
    changes.add_user(store, conn, "test", username, username.title(), list(roles), branch, password)


def login_csrf(client: TestClient) -> str:
    page = client.get("/login")
    assert page.status_code == 200
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def sign_in(client: TestClient, username: str, password: str = PASSWORD, next_: str = "/viewer"):
    """Sign in through the login form as a browser would; return the answer (303 on success)."""
    token = login_csrf(client)
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token, "next": next_},
        follow_redirects=False,
    )


def page_csrf(client: TestClient, path: str = "/viewer") -> str:
    """Return the session's CSRF token as a staff page carries it."""
    page = client.get(path)
    assert page.status_code == 200, page.text
    return re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)
