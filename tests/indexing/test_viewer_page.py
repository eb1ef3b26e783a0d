"""The viewer page in a real headless Chromium against the API as a real server process: one search box,
the ID card and signature on top for servicing, results grouped by type, a full view with zoom and rotate."""

from __future__ import annotations

import httpx
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from settings import Settings
from tests.conftest import (
    SERVICING_KEY,
    add_staff,
    browser_sign_in,
    csp_violations,
    needs_chromium,
)
from tests.indexing.conftest import APPLICANT, POLICY

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
    wait.until(lambda d: "document" in d.find_element(By.ID, "status").text)


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
    assert browser.find_element(By.ID, "status").text == "3 document(s)"
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#identity figure"))
    person = browser.find_element(By.CSS_SELECTOR, "#identity .person")
    assert person.get_attribute("data-customer") == APPLICANT
    captions = [c.text for c in person.find_elements(By.TAG_NAME, "figcaption")]
    assert captions == ["身份证正面 ID card front", "身份证背面 ID card back", "签名 signature"]
    wait.until(lambda d: all(d.execute_script(LOADED, "#identity img")))
    # Grouped by type; the application form is not servicing's to see.
    groups = _groups(browser)
    assert groups == ["idcard_front", "idcard_back", "other"]
    wait.until(lambda d: all(d.execute_script(LOADED, "#results img")))

    browser.find_element(By.CSS_SELECTOR, f"figure[data-doc-id='{case['request']}']").click()
    wait.until(ec.visibility_of_element_located((By.ID, "full")))
    wait.until(lambda d: d.execute_script("return document.getElementById('full-image').naturalWidth"))
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys("r")
    body.send_keys("+")
    style = browser.find_element(By.ID, "full-image").get_attribute("style")
    assert "rotate(90deg)" in style and "scale(1.25)" in style
    body.send_keys(Keys.ESCAPE)
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
    assert browser.find_element(By.ID, "status").text == "3 document(s)"
    groups = _groups(browser)
    assert groups == ["idcard_front", "idcard_back", "application_form"]
    assert csp_violations(browser) == []
