"""The public check page in a real headless Chromium against the API as a real server process: a
customer's encrypted copy with its password, a tampered copy and an unencrypted copy, each answered
in words, Chinese first; at a phone's size too."""

from __future__ import annotations

from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from esign.epolicy import sample_request
from esign.keys import init_test_keys
from esign.render import render
from esign.sign import load_pkcs12, seal
from settings import Settings
from tests.conftest import csp_violations, needs_chromium, running_api

pytestmark = needs_chromium
PASSWORD = "150013"


def _check(browser, wait: WebDriverWait, path: Path, password: str = "") -> str:
    """Choose the file on the page, type the password, press the button; return the verdict shown."""
    browser.find_element(By.ID, "file").send_keys(str(path))
    box = browser.find_element(By.ID, "password")
    box.clear()
    if password:
        box.send_keys(password)
    browser.find_element(By.ID, "check").click()
    wait.until(lambda d: d.find_element(By.ID, "check").is_enabled())
    wait.until(ec.visibility_of_element_located((By.ID, "result")))
    wait.until(lambda d: "…" not in d.find_element(By.ID, "verdict").text)
    return browser.find_element(By.ID, "verdict").text


def _reasons(browser) -> list[str]:
    return [li.get_attribute("data-reason") for li in browser.find_elements(By.CSS_SELECTOR, ".problems li")]


def test_the_page_checks_an_encrypted_a_tampered_and_an_unencrypted_copy(
    settings: Settings, browser, tmp_path: Path
) -> None:
    paths = init_test_keys(settings.keys_dir)
    signer = load_pkcs12(paths["pkcs12"], paths["passphrase"].read_bytes())
    copies = seal(render(sample_request(), 1, "https://x/verify/P2026110000123"), signer, PASSWORD, "owner")
    customer, archive, tampered = tmp_path / "customer.pdf", tmp_path / "archive.pdf", tmp_path / "bad.pdf"
    customer.write_bytes(copies.customer)
    archive.write_bytes(copies.archive)
    changed = bytearray(copies.archive)
    changed[len(changed) // 3] ^= 0x01  # one byte inside the signed range
    tampered.write_bytes(bytes(changed))
    with running_api(settings) as url:
        browser.set_window_size(390, 844)  # a phone
        browser.get(url + "/verify")
        wait = WebDriverWait(browser, 30)
        wait.until(ec.visibility_of_element_located((By.ID, "file")))

        asked = _check(browser, wait, customer)
        assert asked.startswith("此 PDF 已加密"), asked

        valid = _check(browser, wait, customer, PASSWORD)
        assert valid.startswith("签名有效"), valid
        shown = browser.find_element(By.ID, "signatures").text
        assert "签署人 signer" in shown and "认证签名：不允许任何修改" in shown and "TEST" in shown
        assert "签名后未作任何修改" in shown and _reasons(browser) == []
        assert "所用根证书 Roots checked against" in browser.find_element(By.ID, "roots").text
        fits = "return document.documentElement.scrollWidth <= window.innerWidth"
        assert browser.execute_script(fits), "the page is wider than a phone's screen"

        bad = _check(browser, wait, tampered)
        assert bad.startswith("签名无效"), bad
        assert "modified" in _reasons(browser)
        assert "签名后内容被修改" in browser.find_element(By.ID, "signatures").text

        plain = _check(browser, wait, archive)
        assert plain.startswith("签名有效"), plain
        assert csp_violations(browser) == []
