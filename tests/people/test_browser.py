"""Signing in, working and signing out in a real headless Chromium against `imaging api` as a real server
process; and a form on another site's page, posted with the person's cookie, refused."""

from __future__ import annotations

import contextlib
import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

from redis import Redis
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

import keyentry
from models import DocumentRecord, FieldRecord, load
from people import accounts, audit
from settings import Settings
from storage import open_store
from supervisor import free_port
from tests.conftest import add_staff, axe_violations, browser_sign_in, csp_violations, needs_chromium
from tests.indexing.conftest import POLICY, case  # noqa: F401  (the fixture)

pytestmark = needs_chromium


def _path(browser) -> str:
    return "/" + browser.current_url.split("/", 3)[3].split("?")[0]


def _field_to_key(settings: Settings, redis_conn: Redis, doc_id: str) -> None:
    """Give the case's form a name field waiting for key-entry, with its task in the pool."""
    store = open_store(settings)
    record = load(store, DocumentRecord, doc_id)
    image = record.fields["applicant_id_number"].image
    record.fields["applicant_name"] = FieldRecord(
        box=[0, 0, 6, 4],
        quad=[[0, 0]] * 4,
        page=1,
        image=image,
        kind="name",
        status="key_entry",
        suggestion="张三半",
    )
    store.put(record.key, record.to_json(), "application/json")
    assert keyentry.add_tasks(redis_conn, record, immediate=False) == 1


def test_sign_in_open_the_viewer_key_a_field_and_sign_out(
    api_server: str,
    browser,
    settings: Settings,
    redis_conn: Redis,
    case: dict[str, str],  # noqa: F811
) -> None:
    _field_to_key(settings, redis_conn, case["form"])
    wait = WebDriverWait(browser, 15)
    for page in ("/viewer", "/keyentry"):  # no session: the sign-in page, which leads back
        browser.get(api_server + page)
        assert _path(browser) == "/login" and "next=%2F" + page[1:] in browser.current_url
    person = add_staff(settings, "staff.a", "underwriter", "keyer", branch="8611")
    browser_sign_in(browser, api_server, person)
    box = wait.until(ec.visibility_of_element_located((By.ID, "search")))
    box.send_keys(POLICY, Keys.ENTER)
    wait.until(lambda d: "份文件" in d.find_element(By.ID, "status").text)
    wait.until(
        lambda d: d.execute_script("return [...document.images].some(i => i.complete && i.naturalWidth)")
    )

    browser.get(api_server + "/keyentry")
    value = wait.until(ec.visibility_of_element_located((By.ID, "value")))
    assert value.get_attribute("value") == "张三半"
    value.clear()
    value.send_keys("张三丰", Keys.ENTER)
    wait.until(ec.visibility_of_element_located((By.ID, "empty")))
    keyed = load(open_store(settings), DocumentRecord, case["form"]).fields["applicant_name"]
    assert (keyed.value, [e.keyer for e in keyed.entries]) == ("张三丰", ["staff.a"])

    browser.find_element(By.CSS_SELECTOR, "#logout button").click()
    wait.until(lambda d: _path(d) == "/login")
    browser.get(api_server + "/keyentry")
    assert _path(browser) == "/login"
    actions = [e.action for e in audit.query(redis_conn, open_store(settings), person="staff.a")]
    assert actions[0] == "signin" and actions[-1] == "signout"
    assert "read" in actions and "key" in actions
    assert csp_violations(browser) == []


ATTACK = """<!doctype html><html><body>
<form id="f" method="post" action="{api}/v1/users/victim.a/lock"><input name="x" value="1"></form>
<form id="g" method="post" action="{api}/logout"><input name="csrf_token" value="guess"></form>
<script>document.getElementById("{which}").submit();</script>
</body></html>"""


@contextlib.contextmanager
def _other_site(folder: Path) -> Iterator[str]:
    """Serve a folder over HTTP on another port: another origin than the API's."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def test_a_form_posted_from_another_site_is_refused(
    api_server: str, browser, settings: Settings, redis_conn: Redis, tmp_path: Path
) -> None:
    add_staff(settings, "victim.a", "underwriter")
    browser_sign_in(browser, api_server, add_staff(settings, "boss.b", "admin"))
    for which in ("f", "g"):
        (tmp_path / f"{which}.html").write_text(ATTACK.format(api=api_server, which=which))
    with _other_site(tmp_path) as other:
        browser.get(f"{other}/f.html")  # posts to the API with the admin's cookie, without the token
        WebDriverWait(browser, 15).until(lambda d: d.current_url.startswith(api_server))
        assert "CSRF" in browser.page_source
        assert accounts.get(open_store(settings), "victim.a").state == "active"
        browser.get(f"{other}/g.html")  # a guessed token does not sign the admin out either
        WebDriverWait(browser, 15).until(lambda d: d.current_url.startswith(api_server))
    browser.get(api_server + "/viewer")
    assert _path(browser) == "/viewer"  # still signed in
    assert not [e for e in audit.query(redis_conn, open_store(settings)) if e.action == "account_lock"]


def test_an_admin_locks_and_resets_an_account_from_the_admin_page(
    api_server: str, browser, settings: Settings, redis_conn: Redis
) -> None:
    add_staff(settings, "clerk.a", "underwriter")
    browser.get(api_server + "/admin/users")
    assert _path(browser) == "/login"
    assert axe_violations(browser) == []
    browser_sign_in(browser, api_server, add_staff(settings, "boss.c", "admin"), "/admin/users")
    # The page is loaded again after each change: an element found a moment ago may be gone (stale), or the
    # browser may be between documents when it is asked (chromedriver's "unhandled inspector error").
    wait = WebDriverWait(browser, 15, ignored_exceptions=(StaleElementReferenceException, WebDriverException))

    def clerk_row(d) -> WebElement | None:
        return next(
            (r for r in d.find_elements(By.CSS_SELECTOR, "#users tbody tr") if "clerk.a" in r.text), None
        )

    def row_says(word: str):
        return lambda d: (r := clerk_row(d)) is not None and word in r.text

    wait.until(row_says("active"))
    assert axe_violations(browser) == []
    wait.until(lambda d: clerk_row(d).find_element(By.XPATH, ".//button[text()='lock']").click() or True)
    wait.until(row_says("locked"))
    store = open_store(settings)
    assert accounts.get(store, "clerk.a").state == "locked"
    new_password = "a new password for clerk"

    def reset(d) -> bool:
        clerk_row(d).find_element(By.NAME, "password").send_keys(new_password, Keys.ENTER)
        return True

    wait.until(reset)
    wait.until(lambda d: _path(d) == "/admin/users" and "clerk.a" in d.page_source)
    assert accounts.password_matches(accounts.get(store, "clerk.a"), new_password)
    changes = [e.action for e in audit.query(redis_conn, store) if e.object == "clerk.a"]
    assert changes == ["account_add", "account_lock", "account_reset"]
    assert csp_violations(browser) == []
