"""The viewer page in a real headless Chromium against the API as a real server process: one search box,
the ID card and signature on top for servicing, results grouped by type, a full view with zoom and rotate."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
from redis import Redis
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from models import DocumentRecord, FieldRecord, Scan, ScanFile, load
from people import audit
from settings import Settings
from storage import open_store
from supervisor import free_port
from tests.conftest import (
    ROOT,
    SERVICING_KEY,
    add_staff,
    axe_violations,
    browser_sign_in,
    csp_violations,
    needs_chromium,
    running_api,
)
from tests.indexing.conftest import APPLICANT, POLICY, put_document

pytestmark = needs_chromium

LOADED = "return [...document.querySelectorAll(arguments[0])].map(i => i.complete && i.naturalWidth > 0)"


def _log_in(browser, api_server: str, settings: Settings, role: str) -> WebDriverWait:
    browser_sign_in(browser, api_server, add_staff(settings, f"{role}.one", role))
    return WebDriverWait(browser, 15)


def _groups(browser) -> list[str]:
    return [s.get_attribute("data-type") for s in browser.find_elements(By.CSS_SELECTOR, "#results section")]


def _search(browser, wait: WebDriverWait, text: str) -> None:
    box = wait.until(ec.visibility_of_element_located((By.ID, "search")))
    box.clear()
    box.send_keys(text, Keys.ENTER)
    wait.until(lambda d: "份文件" in d.find_element(By.ID, "status").text)


def test_servicing_calls_up_a_policy_with_the_id_card_and_signature_on_top(
    api_server: str, browser, case: dict[str, str], settings: Settings
) -> None:
    # Servicing put the applicant on the policy (an issued e-policy naming them would do the same).
    link = {
        "kind": "policy",
        "number": POLICY,
        "customer_id": APPLICANT,
        "reason": "holder, checked in person",
    }
    answer = httpx.post(api_server + "/v1/links", json=link, headers={"X-API-Key": SERVICING_KEY})
    assert answer.status_code == 201, answer.text
    wait = _log_in(browser, api_server, settings, "servicing")
    _search(browser, wait, POLICY.lower())
    assert browser.find_element(By.ID, "status").text == "共 3 份文件"
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#identity button.doc"))
    person = browser.find_element(By.CSS_SELECTOR, "#identity .person")
    assert person.get_attribute("data-customer") == APPLICANT
    captions = [c.text for c in person.find_elements(By.CSS_SELECTOR, ".caption")]
    assert captions == ["身份证正面", "身份证背面", "签名"]
    wait.until(lambda d: all(d.execute_script(LOADED, "#identity img")))
    # Grouped by type; the application form is not servicing's to see.
    groups = _groups(browser)
    assert groups == ["idcard_front", "idcard_back", "other"]
    wait.until(lambda d: all(d.execute_script(LOADED, "#results img")))

    browser.find_element(By.CSS_SELECTOR, f"button[data-doc-id='{case['request']}']").click()
    wait.until(ec.visibility_of_element_located((By.ID, "full")))
    wait.until(lambda d: d.execute_script("return document.getElementById('full-image').naturalWidth"))
    browser.switch_to.active_element.send_keys("r")
    browser.switch_to.active_element.send_keys("+")
    style = browser.find_element(By.ID, "full-image").get_attribute("style")
    assert "rotate(90deg)" in style and "scale(1.25)" in style
    browser.switch_to.active_element.send_keys(Keys.ESCAPE)
    wait.until(ec.invisibility_of_element_located((By.ID, "full")))
    assert csp_violations(browser) == []  # it all ran under the page's Content-Security-Policy


def test_a_bad_number_gets_a_plain_message_and_an_id_number_finds_the_customer(
    api_server: str, browser, case: dict[str, str], settings: Settings
) -> None:
    wait = _log_in(browser, api_server, settings, "admin")
    box = wait.until(ec.visibility_of_element_located((By.ID, "search")))
    box.send_keys("../etc", Keys.ENTER)
    wait.until(lambda d: "letters, digits and dashes" in d.find_element(By.ID, "status").text)
    _search(browser, wait, APPLICANT)
    assert browser.find_element(By.ID, "status").text == "共 3 份文件"
    groups = _groups(browser)
    assert groups == ["idcard_front", "idcard_back", "application_form"]
    assert csp_violations(browser) == []


def _desk_case(store, case: dict[str, str]) -> dict[str, str]:
    """Add to the case what a viewer meets at a desk: four scans of the applicant's ID card front (three
    superseded), a later form still waiting for key-entry, and a page whose rescan was asked for; and the
    upload of the newest front, for its original. Return the doc ids by name."""
    fronts = [case["front"]]
    for n in (7, 8, 9):
        fronts.append(
            put_document(
                store,
                n,
                "idcard_front",
                "new_business",
                {"policy": [POLICY], "customer": [APPLICANT]},
                stamp=f"2026112{n}101500",
            ).doc_id
        )
    for older, newer in zip(fronts, fronts[1:] + [None], strict=True):
        record = load(store, DocumentRecord, older)
        record.fields = {
            "name": record.fields.get(
                "id_number", FieldRecord(box=[0] * 4, quad=[[0, 0]] * 4, page=1, image="x")
            ).model_copy(update={"kind": "name", "value": "张三丰", "status": "accepted"}),
            "id_number": FieldRecord(
                box=[0] * 4,
                quad=[[0, 0]] * 4,
                page=1,
                image="x",
                kind="id_number",
                value=APPLICANT,
                status="accepted",
            ),
        }
        record = record.model_copy(update={"person": APPLICANT, "superseded_by": newer})
        store.put(record.key, record.to_json(), "application/json")
    form = put_document(
        store, 11, "application_form", "new_business", {"policy": [POLICY]}, stamp="20261130104000"
    )
    form.fields["applicant_name"] = FieldRecord(
        box=[0] * 4, quad=[[0, 0]] * 4, page=1, image="x", kind="name", status="key_entry"
    )
    form = form.model_copy(update={"complete": False})
    store.put(form.key, form.to_json(), "application/json")
    blurred = put_document(store, 12, "other", "new_business", {"policy": [POLICY]}, stamp="20261130104000")
    store.put(blurred.key, blurred.model_copy(update={"status": "exception"}).to_json(), "application/json")
    scan = Scan(
        scan_id="s" + fronts[-1][1:27],
        mode="immediate",
        files=[
            ScanFile(
                sha256=store.put_original(b"card", "image/png"),
                content_type="image/png",
                size=4,
                name="card.png",
            )
        ],
        uploaded_by="counter-1",
        uploaded_at=datetime(2026, 11, 29, 10, 15, tzinfo=UTC),
        documents=[fronts[-1]],
    )
    store.put(scan.key, scan.to_json(), "application/json")
    return {"fronts": fronts, "form": form.doc_id, "blurred": blurred.doc_id}


def _tab_to(browser, selector: str, limit: int = 40):
    """Press Tab until the element matching selector has the focus; return it."""
    target = browser.find_element(By.CSS_SELECTOR, selector)
    for _ in range(limit):
        if browser.switch_to.active_element == target:
            return target
        browser.switch_to.active_element.send_keys(Keys.TAB)
    raise AssertionError(f"{selector} not reached with Tab")


def test_a_deep_link_opens_the_case_and_everything_is_done_by_keyboard(
    api_server: str, browser, case: dict[str, str], settings: Settings
) -> None:
    store = open_store(settings)
    desk = _desk_case(store, case)
    wait = _log_in(browser, api_server, settings, "underwriter")
    browser.get(f"{api_server}/viewer?policy_no={POLICY}")  # as a core system's 核保 screen opens it
    wait.until(lambda d: d.find_element(By.ID, "status").text == "共 8 份文件")
    fronts = browser.find_element(By.CSS_SELECTOR, "section[data-type='idcard_front']")
    stacks = fronts.find_elements(By.CSS_SELECTOR, ".stack")
    assert len(stacks) == 1  # four scans of one person's card front: shown once
    top = stacks[0].find_element(By.CSS_SELECTOR, "button.doc")
    assert top.get_attribute("data-doc-id") == desk["fronts"][-1]
    assert top.text.split("\n")[:3] == ["已完成", "姓名 张三丰", "身份证号 110105********0013"]
    states = {
        b.get_attribute("data-doc-id"): b.get_attribute("data-state")
        for b in browser.find_elements(By.CSS_SELECTOR, "#results button.doc")
    }
    assert (states[desk["form"]], states[desk["blurred"]]) == ("key_entry", "rescan")
    assert axe_violations(browser) == []
    browser.save_screenshot(str(ROOT / "docs" / "viewer.png"))

    # the copies behind it, opened with Enter
    more = _tab_to(browser, "section[data-type='idcard_front'] .more")
    assert more.text == "另有 3 份"
    more.send_keys(Keys.ENTER)
    behind = stacks[0].find_elements(By.CSS_SELECTOR, ".behind button.doc")
    assert [b.get_attribute("data-state") for b in behind] == ["superseded"] * 3
    assert all(b.is_displayed() for b in behind) and more.get_attribute("aria-expanded") == "true"

    # the full view from the keyboard, and focus back on the thumbnail it came from
    top = _tab_to(browser, f"button[data-doc-id='{desk['fronts'][-1]}']")
    top.send_keys(Keys.ENTER)
    wait.until(ec.visibility_of_element_located((By.ID, "full")))
    download = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#originals button"))[0]
    assert download.text == "下载原件"
    browser.switch_to.active_element.send_keys("+")
    assert "scale(1.25)" in browser.find_element(By.ID, "full-image").get_attribute("style")
    assert axe_violations(browser) == []
    browser.save_screenshot(str(ROOT / "docs" / "viewer-full.png"))
    _tab_to(browser, "#originals button").send_keys(Keys.ENTER)
    conn = Redis.from_url(settings.redis_url)
    wait.until(
        lambda d: any(e.action == "download" for e in audit.query(conn, store, person="underwriter.one"))
    )
    browser.switch_to.active_element.send_keys(Keys.ESCAPE)
    wait.until(ec.invisibility_of_element_located((By.ID, "full")))
    assert browser.switch_to.active_element.get_attribute("data-doc-id") == desk["fronts"][-1]

    # filters: type by keyboard, then the date
    _tab_to(browser, "#filter-type").send_keys("投保单")
    wait.until(lambda d: _groups(d) == ["application_form"])
    assert browser.find_element(By.ID, "shown").text == "显示 2 份"
    since = _tab_to(browser, "#filter-since")
    # digits in the order the browser's locale shows the date field in; each part moves on by itself
    us = browser.execute_script("return navigator.language") == "en-US"
    since.send_keys("11302026" if us else "20261130")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results button.doc")) == 1)
    assert csp_violations(browser) == []

    # by customer: the link's number is searched as an ID number only
    browser.get(f"{api_server}/viewer?customer={APPLICANT}")
    wait.until(lambda d: d.find_element(By.ID, "status").text.startswith("共"))
    box = browser.find_element(By.ID, "search")
    assert (box.get_attribute("value"), box.get_attribute("data-kind")) == (APPLICANT, "customer")
    person = browser.find_element(By.CSS_SELECTOR, "#identity .person")
    assert person.get_attribute("data-customer") == APPLICANT


@contextlib.contextmanager
def _core_screen(viewer_url: str, port: int = 0) -> Iterator[str]:
    """Serve a core system's screen (a page that frames the viewer beside its own) on a port of its own:
    another origin than the service's, on the same site (127.0.0.1); yield its URL."""
    html = (
        '<!doctype html><html lang="zh-CN"><title>核保</title><h1>核保工作台</h1>'
        f'<iframe id="viewer" title="影像" src="{viewer_url}" width="1200" height="700"></iframe></html>'
    ).encode()

    class Screen(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(html)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Screen)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_a_core_system_listed_in_the_setting_shows_the_viewer_in_its_screen_and_another_cannot(
    browser, case: dict[str, str], settings: Settings
) -> None:
    port = free_port()
    framed = Settings(**(settings.model_dump() | {"frame_ancestors": f"http://127.0.0.1:{port}"}))
    with running_api(framed) as api:
        wait = _log_in(browser, api, settings, "underwriter")
        link = f"{api}/viewer?policy_no={POLICY}"
        with _core_screen(link, port) as listed:
            browser.get(listed)
            browser.switch_to.frame(browser.find_element(By.ID, "viewer"))
            wait.until(lambda d: d.find_element(By.ID, "status").text == "共 3 份文件")
            browser.switch_to.default_content()
        with _core_screen(link) as other:  # an origin the setting does not list: the frame is refused
            browser.get(other)
            browser.switch_to.frame(browser.find_element(By.ID, "viewer"))
            assert not browser.find_elements(By.ID, "status")
            browser.switch_to.default_content()
        assert any("frame-ancestors" in m for m in csp_violations(browser))
