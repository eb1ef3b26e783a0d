"""The viewer's identity panel in a real headless Chromium against the API as a real server process: the
customer archive's current card and signature on top, its disagreements (信息核对) visible."""

from __future__ import annotations

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from settings import Settings
from storage import open_store
from tests.conftest import add_staff, browser_sign_in, csp_violations, needs_chromium
from tests.indexing.conftest import APPLICANT
from tests.indexing.test_archive import put_archive_case

pytestmark = needs_chromium
LOADED = "return [...document.querySelectorAll(arguments[0])].map(i => i.complete && i.naturalWidth > 0)"


def test_the_identity_panel_shows_the_current_card_and_signature_on_top_and_the_disagreements(
    api_server: str, browser, settings: Settings
) -> None:
    docs = put_archive_case(open_store(settings))
    wait = WebDriverWait(browser, 15)
    browser_sign_in(browser, api_server, add_staff(settings, "admin.one", "admin"))
    wait.until(ec.visibility_of_element_located((By.ID, "search"))).send_keys(APPLICANT, Keys.ENTER)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#identity .disagreements li"))

    person = browser.find_element(By.CSS_SELECTOR, "#identity .person")
    assert person.get_attribute("data-customer") == APPLICANT
    captions = [c.text for c in person.find_elements(By.CSS_SELECTOR, ".caption")]
    assert captions == ["身份证正面", "身份证背面", "签名"]
    wait.until(lambda d: all(d.execute_script(LOADED, "#identity img")))
    sources = [i.get_attribute("src") for i in person.find_elements(By.TAG_NAME, "img")]
    assert all(s.startswith("blob:") for s in sources), "images fetched as blobs, never by their URL"
    # each is a button named by its caption (the image inside is decoration): Tab reaches it, Enter opens it
    buttons = [b.text for b in person.find_elements(By.CSS_SELECTOR, "button.doc")]
    assert buttons == captions
    lines = [li.text for li in person.find_elements(By.CSS_SELECTOR, ".disagreements li")]
    assert any(line.startswith("信息核对 姓名：") and "张三峰" in line and "张三丰" in line for line in lines)
    assert any("联系地址" in line and "上海市徐汇区漕溪北路100号" in line for line in lines)
    assert any("旧证件 2 份" in line for line in lines)
    # The current card is the renewed one: the panel fetched its page, not the old card's (the result
    # list below shows thumbnails).
    urls = browser.execute_script("return window.performance.getEntries().map(e => e.name)")
    assert any(f"/v1/documents/{docs['front'].doc_id}/pages/1" in u for u in urls)
    assert not any(f"/v1/documents/{docs['old_front'].doc_id}/pages/1" in u for u in urls)
    assert csp_violations(browser) == []
