"""The key-entry page in a real headless Chromium (Debian's chromium and chromium-driver), against the
API running as a real server process: keyboard only, Enter submits and loads the next field."""

from __future__ import annotations

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from models import DocumentRecord, load
from settings import Settings
from storage import open_store
from tests.conftest import add_staff, browser_sign_in, csp_violations, needs_chromium
from tests.ocr.conftest import DOC

pytestmark = needs_chromium


def test_a_keyer_keys_a_document_with_the_keyboard_alone(
    api_server: str, browser, document: DocumentRecord, settings: Settings
) -> None:
    wait = WebDriverWait(browser, 15)
    browser_sign_in(browser, api_server, add_staff(settings, "keyer.one", "keyer"), "/keyentry")

    value = wait.until(ec.visibility_of_element_located((By.ID, "value")))
    seen = {}
    for _ in range(2):
        wait.until(lambda d: d.find_element(By.ID, "label").text)
        label = browser.find_element(By.ID, "label").text
        assert browser.switch_to.active_element == value  # focus is in the input: no mouse needed
        image_loaded = browser.execute_script(
            "const i = document.getElementById('image'); return i.complete && i.naturalWidth;"
        )
        assert image_loaded == 300
        seen[label] = (value.get_attribute("value"), browser.find_element(By.ID, "waiting").text)
        if label.startswith("姓名"):
            assert value.get_attribute("value") == "张三半"  # prefilled with OCR's suggestion
            value.send_keys(Keys.ESCAPE)
            value.send_keys("张三丰", Keys.ENTER)
        else:
            assert value.get_attribute("value") == ""  # blind double entry: no suggestion
            value.send_keys("110105198703150018", Keys.ENTER)  # a wrong check digit first
            wait.until(lambda d: "check character" in d.find_element(By.ID, "error").text)
            value.clear()
            value.send_keys("110105198703150013", Keys.ENTER)
        wait.until(
            lambda d, before=label: d.find_element(By.ID, "label").text != before or not value.is_displayed()
        )
    assert sorted(seen) == ["姓名 (name)", "证件号码 (id_number)"]
    assert {w for _, w in seen.values()} <= {"1", "2"}
    # The blind field waits for a second keyer; this keyer has nothing left.
    wait.until(ec.visibility_of_element_located((By.ID, "empty")))
    record = load(open_store(settings), DocumentRecord, DOC)
    assert record.fields["applicant_name"].value == "张三丰"
    assert record.fields["applicant_id_number"].status == "key_entry"
    assert [e.value for e in record.fields["applicant_name"].entries] == ["张三丰"]
    assert csp_violations(browser) == []  # it all ran under the page's Content-Security-Policy


def test_a_keyer_answers_illegible_with_f4_and_blank_is_offered_only_where_the_form_allows_it(
    api_server: str, browser, document: DocumentRecord, settings: Settings
) -> None:
    wait = WebDriverWait(browser, 15)
    browser_sign_in(browser, api_server, add_staff(settings, "keyer.two", "keyer"), "/keyentry")
    value = wait.until(ec.visibility_of_element_located((By.ID, "value")))
    wait.until(lambda d: d.find_element(By.ID, "label").text)
    assert not browser.find_element(By.ID, "blank").is_displayed(), "no field of this form may be left blank"
    assert browser.find_element(By.ID, "illegible").is_displayed()
    first = browser.find_element(By.ID, "label").text
    value.send_keys(Keys.F4)
    wait.until(lambda d: d.find_element(By.ID, "label").text != first or not value.is_displayed())
    record = load(open_store(settings), DocumentRecord, DOC)
    illegible = [n for n, f in record.fields.items() if f.status == "illegible"]
    assert len(illegible) == 1 and not record.complete and record.status == "exception"
    assert csp_violations(browser) == []
