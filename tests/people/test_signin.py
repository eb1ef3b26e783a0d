"""Local accounts and sign-in against real Redis and S3: the CLI, the login form, the session cookie,
CSRF, idle timeout, logout, lock-out after bad passwords."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient
from redis import Redis

from api import create_app
from people import accounts, audit, sessions
from roles import Role
from settings import Settings
from supervisor import start_redis
from tests.conftest import ROOT, run_cli
from tests.people.conftest import PASSWORD, add_person, page_csrf, sign_in


def test_an_account_made_by_the_cli_signs_in_and_survives_a_redis_flush(
    settings: Settings, redis_conn: Redis, tmp_path: Path
) -> None:
    secret = tmp_path / "password"
    secret.write_text(PASSWORD + "\n")
    made = run_cli(
        settings, "users", "add", "li.si", "--role", "underwriter", "--role", "servicing",
        "--branch", "8611", "--name", "李四", "--password-file", str(secret),
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    listed = run_cli(settings, "users", "list")
    assert "li.si\tservicing,underwriter\t8611\tactive\t李四" in listed.stdout
    stored = accounts.get(accounts_store(settings), "li.si")
    assert stored.password_hash.startswith("$argon2id$") and PASSWORD not in stored.to_json().decode()

    redis_conn.flushall()  # accounts live in the object store: a Redis flush loses none
    client = TestClient(create_app(settings))
    answer = sign_in(client, "li.si", next_="/keyentry")
    assert answer.status_code == 303 and answer.headers["location"] == "/keyentry"
    cookie = answer.headers["set-cookie"]
    assert "imaging_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie  # plain http here; over https it is Secure (below)
    assert client.get("/viewer").status_code == 200
    events = audit.query(redis_conn, accounts_store(settings), person="li.si")
    assert [e.action for e in events] == ["signin"]


def accounts_store(settings: Settings):
    from storage import open_store

    return open_store(settings)


def test_the_session_cookie_is_secure_when_the_service_is_reached_over_https(
    settings: Settings, redis_conn: Redis
) -> None:
    store = accounts_store(settings)
    add_person(store, redis_conn, "wang.wu", Role.underwriter)
    client = TestClient(create_app(settings), base_url="https://imaging.example")
    answer = sign_in(client, "wang.wu")
    assert answer.status_code == 303
    assert "Secure" in answer.headers["set-cookie"]


def test_pages_without_a_session_go_to_login_and_come_back_after(
    settings: Settings, redis_conn: Redis
) -> None:
    add_person(accounts_store(settings), redis_conn, "zhao.liu", Role.keyer)
    client = TestClient(create_app(settings))
    for page in ("/viewer", "/keyentry"):
        answer = client.get(page, follow_redirects=False)
        assert answer.status_code == 303
        assert answer.headers["location"] == f"/login?next=%2F{page[1:]}"
    # An API key does not open a page: pages are for people.
    from tests.conftest import ADMIN_KEY

    assert client.get("/viewer", headers={"X-API-Key": ADMIN_KEY}, follow_redirects=False).status_code == 303
    assert sign_in(client, "zhao.liu", next_="/keyentry").headers["location"] == "/keyentry"
    page = client.get("/keyentry")
    assert page.status_code == 200 and "Zhao.Liu" not in page.text and "zhao.liu" in page.text
    assert 'id="key"' not in page.text  # no pasted API key any more
    # Only this site's paths: a "next" elsewhere goes to the viewer.
    client.cookies.clear()
    assert sign_in(client, "zhao.liu", next_="//evil.example/").headers["location"] == "/viewer"


def test_a_session_must_send_its_csrf_token_to_change_anything(settings: Settings, redis_conn: Redis) -> None:
    add_person(accounts_store(settings), redis_conn, "qian.qi", Role.keyer)
    client = TestClient(create_app(settings))
    sign_in(client, "qian.qi")
    assert client.get("/v1/keyentry/next").status_code == 200  # reading needs no token
    task = "d20261123101500abcdefabcdef001.applicant_name"
    refused = client.post(f"/v1/keyentry/{task}", json={"value": "张三"})
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    token = page_csrf(client)
    allowed = client.post(f"/v1/keyentry/{task}", json={"value": "张三"}, headers={"X-CSRF-Token": token})
    assert allowed.status_code == 404  # past the gate: there is no such task
    # The login form refuses a post without the token of its own cookie (another site's form).
    forged = TestClient(create_app(settings)).post(
        "/login",
        data={"username": "qian.qi", "password": PASSWORD, "csrf_token": "x"},
        follow_redirects=False,
    )
    assert forged.status_code == 403 and "imaging_session" not in forged.headers.get("set-cookie", "")


def test_logout_ends_the_session_and_the_idle_timeout_is_set(settings: Settings, redis_conn: Redis) -> None:
    settings = settings.model_copy(update={"session_idle_minutes": 2})
    add_person(accounts_store(settings), redis_conn, "sun.ba", Role.underwriter)
    client = TestClient(create_app(settings))
    sign_in(client, "sun.ba")
    [key] = [k.decode() for k in redis_conn.scan_iter(sessions.PREFIX + "*")]
    assert 100 < redis_conn.ttl(key) <= 120
    redis_conn.expire(key, 5)
    client.get("/viewer")  # a request pushes the idle deadline back
    assert redis_conn.ttl(key) > 100
    token = page_csrf(client)
    assert client.post("/logout", data={"csrf_token": "wrong"}).status_code == 403
    out = client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert redis_conn.exists(key) == 0
    assert client.get("/viewer", follow_redirects=False).status_code == 303
    # Idle too long: the session is gone and the API says to sign in again.
    sign_in(client, "sun.ba")
    [key] = [k.decode() for k in redis_conn.scan_iter(sessions.PREFIX + "*")]
    redis_conn.delete(key)
    assert client.get("/v1/documents?policy_no=TB2026001234").status_code == 401


def test_bad_passwords_lock_the_account_for_a_while_and_are_logged(
    settings: Settings, redis_conn: Redis, caplog
) -> None:
    settings = settings.model_copy(update={"signin_lock_after": 3, "signin_lock_minutes": 1})
    store = accounts_store(settings)
    add_person(store, redis_conn, "zhou.jiu", Role.underwriter)
    client = TestClient(create_app(settings))
    with caplog.at_level(logging.INFO, logger="imaging.signin"):
        for _ in range(3):
            answer = sign_in(client, "zhou.jiu", password="wrong password!")
            assert answer.status_code == 401 and "wrong username or password" in answer.text
    assert "zhou.jiu locked for 1 minutes after 3 bad passwords" in caplog.text
    locked = sign_in(client, "zhou.jiu")  # the right password, but locked for a while
    assert locked.status_code == 401 and "locked" in locked.text
    assert 0 < redis_conn.ttl("signin:locked:zhou.jiu") <= 60
    actions = [e.action for e in audit.query(redis_conn, store, person="zhou.jiu")]
    assert actions == ["signin_refused"] * 3 + ["signin_locked", "signin_refused"]
    # An unknown name is counted the same way, so the answer does not tell which names exist.
    assert "wrong username or password" in sign_in(client, "nobody.here").text
    # The admin's unlock lifts it.
    assert run_cli(settings, "users", "unlock", "zhou.jiu").returncode == 0
    assert sign_in(client, "zhou.jiu").status_code == 303


def test_an_admin_lock_ends_the_sessions_and_refuses_sign_in(settings: Settings, redis_conn: Redis) -> None:
    store = accounts_store(settings)
    add_person(store, redis_conn, "wu.shi", Role.underwriter)
    client = TestClient(create_app(settings))
    sign_in(client, "wu.shi")
    assert client.get("/viewer").status_code == 200
    locked = run_cli(settings, "users", "lock", "wu.shi")
    assert locked.returncode == 0, locked.stderr
    assert client.get("/viewer", follow_redirects=False).status_code == 303
    assert "locked" in sign_in(client, "wu.shi").text
    new_password = Path(settings.data_dir.parent / "pw")
    new_password.write_text("another long password")
    assert run_cli(settings, "users", "unlock", "wu.shi").returncode == 0
    assert run_cli(settings, "users", "reset", "wu.shi", "--password-file", str(new_password)).returncode == 0
    assert sign_in(client, "wu.shi").status_code == 401
    assert sign_in(client, "wu.shi", password="another long password").status_code == 303
    changes = [e.action for e in audit.query(redis_conn, store) if e.object == "wu.shi"]
    assert changes == ["account_add", "account_lock", "account_unlock", "account_reset"]


def test_admin_commands_beside_imaging_up_find_its_redis_and_store_by_the_data_dir(tmp_path: Path) -> None:
    """`imaging users` (and `imaging jobs`) run with only IMAGING_DATA_DIR, as beside `imaging up`."""
    data = tmp_path / "var"
    settings = Settings(data_dir=data)
    settings.redis_socket.parent.mkdir(parents=True, mode=0o700)
    proc, _ = start_redis(settings.redis_socket)
    try:
        env = {"PATH": "/usr/bin:/bin", "IMAGING_DATA_DIR": str(data), "PYTHONPATH": str(ROOT)}
        secret = tmp_path / "pw"
        secret.write_text(PASSWORD)
        cli = [sys.executable, "-m", "cli"]
        add = [
            *cli,
            "users",
            "add",
            "he.yi",
            "--role",
            "keyer",
            "--branch",
            "86",
            "--password-file",
            str(secret),
        ]
        made = subprocess.run(add, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert made.returncode == 0, made.stderr
        assert (data / "objects" / "people" / "accounts" / "he.yi.json").exists()
        failed = subprocess.run([*cli, "jobs", "failed"], env=env, cwd=ROOT, capture_output=True, text=True)
        assert failed.returncode == 0 and "0 failed job(s)" in failed.stderr, failed.stderr
        conn = Redis(unix_socket_path=str(settings.redis_socket))
        assert [e.action for e in audit.query(conn, accounts_store(settings))] == ["account_add"]
    finally:
        proc.terminate()
        proc.wait(10)


def test_the_admin_page_is_for_admins_and_its_forms_need_the_csrf_token(
    settings: Settings, redis_conn: Redis
) -> None:
    store = accounts_store(settings)
    add_person(store, redis_conn, "boss.z", Role.admin)
    add_person(store, redis_conn, "clerk.z", Role.underwriter)
    clerk = TestClient(create_app(settings))
    sign_in(clerk, "clerk.z")
    assert clerk.get("/admin/users").status_code == 403
    boss = TestClient(create_app(settings))
    sign_in(boss, "boss.z")
    page = boss.get("/admin/users")
    assert page.status_code == 200 and "clerk.z" in page.text
    assert boss.post("/admin/users/clerk.z/lock", data={"csrf_token": "x"}).status_code == 403
    token = page_csrf(boss, "/admin/users")
    short = boss.post("/admin/users/clerk.z/password", data={"csrf_token": token, "password": "short"})
    assert short.status_code == 422 and "shorter than" in short.text
    locked = boss.post("/admin/users/clerk.z/lock", data={"csrf_token": token}, follow_redirects=False)
    assert locked.status_code == 303 and accounts.get(store, "clerk.z").state == "locked"


def test_the_gate_refuses_a_session_without_its_csrf_token_before_reading_the_body(
    settings: Settings, redis_conn: Redis
) -> None:
    add_person(accounts_store(settings), redis_conn, "big.body", Role.sales)
    client = TestClient(create_app(settings))
    sign_in(client, "big.body")
    huge = b'{"policy_no": "' + b"P" * (settings.max_json_bytes * 4) + b'"}'
    refused = client.post("/v1/epolicies", content=huge, headers={"Content-Type": "application/json"})
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]  # not 413: refused first
    token = page_csrf(client)
    too_big = client.post(
        "/v1/epolicies", content=huge, headers={"Content-Type": "application/json", "X-CSRF-Token": token}
    )
    assert too_big.status_code == 413
    client.cookies.clear()
    assert client.post("/v1/epolicies", content=huge).status_code == 401
