"""The key-entry page in a real headless Chromium (Debian's chromium and chromium-driver), against the
API running as a real server process: keyboard only, Enter submits and loads the next field, 1 or 2 picks
a value in arbitration; the strip of the page around the field, the party in the label, the counts and
the empty state; no serious accessibility violation (axe-core)."""

from __future__ import annotations

import numpy as np
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

import keyentry
from models import DocumentRecord, load
from settings import Settings
from storage import open_store
from tests.conftest import ROOT, add_staff, axe_violations, browser_sign_in, csp_violations, needs_chromium
from tests.ocr.conftest import DOC

pytestmark = needs_chromium


LOADED = "const i = document.getElementById(arguments[0]); return i.complete && i.naturalWidth;"


def test_a_keyer_keys_a_document_with_the_keyboard_alone(
    api_server: str, browser, document_with_page: DocumentRecord, settings: Settings
) -> None:
    wait = WebDriverWait(browser, 15)
    browser_sign_in(browser, api_server, add_staff(settings, "keyer.one", "keyer"), "/keyentry")

    value = wait.until(ec.visibility_of_element_located((By.ID, "value")))
    seen, axe_checked = {}, False
    for _ in range(2):
        wait.until(lambda d: d.find_element(By.ID, "label").text)
        label = browser.find_element(By.ID, "label").text
        assert browser.switch_to.active_element == value  # focus is in the input: no mouse needed
        wait.until(lambda d: d.execute_script(LOADED, "image") == 300)
        wait.until(lambda d: d.execute_script(LOADED, "strip") == 1240)  # the page's width at 150 dpi
        seen[label] = (value.get_attribute("value"), browser.find_element(By.ID, "yours").text)
        if not axe_checked:
            assert axe_violations(browser) == []
            browser.save_screenshot(str(ROOT / "docs" / "keyentry.png"))
            axe_checked = True
        if label == "投保人姓名":
            assert value.get_attribute("value") == "张三半"  # prefilled with OCR's suggestion
            value.send_keys(Keys.ESCAPE)
            value.send_keys("张三丰", Keys.ENTER)
        else:
            assert value.get_attribute("value") == ""  # blind double entry: no suggestion
            value.send_keys("110105198703150018", Keys.ENTER)  # a wrong check digit first
            wait.until(lambda d: "校验码不符" in d.find_element(By.ID, "error").text)
            value.clear()
            value.send_keys("110105198703150013", Keys.ENTER)
        wait.until(
            lambda d, before=label: d.find_element(By.ID, "label").text != before or not value.is_displayed()
        )
    assert sorted(seen) == ["投保人姓名", "投保人证件号码"]  # the party named, not "姓名"
    assert {w for _, w in seen.values()} <= {"1", "2"}
    # The blind field waits for a second keyer; this keyer has nothing left, and is told who has it.
    wait.until(ec.visibility_of_element_located((By.ID, "empty")))
    assert browser.find_element(By.ID, "empty-title").text == "暂无待录入字段"
    assert "另有 1 个字段等待其他录入员" in browser.find_element(By.ID, "empty-others").text
    counts = [browser.find_element(By.ID, name).text for name in ("yours", "others")]
    assert counts == ["0", "1"]
    assert not browser.find_element(By.ID, "label").text  # nothing of the last field stays
    assert browser.find_element(By.ID, "image").get_attribute("src") in (None, "")
    wait.until(lambda d: d.find_element(By.ID, "today-count").text == "2")
    assert axe_violations(browser) == []
    browser.save_screenshot(str(ROOT / "docs" / "keyentry-empty.png"))
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
    blank = browser.find_element(By.ID, "blank")
    assert blank.is_displayed() and not blank.is_enabled(), "no field of this form may be left blank"
    assert browser.find_element(By.ID, "illegible").is_displayed()
    first = browser.find_element(By.ID, "label").text
    value.send_keys(Keys.F4)
    wait.until(lambda d: d.find_element(By.ID, "label").text != first or not value.is_displayed())
    record = load(open_store(settings), DocumentRecord, DOC)
    illegible = [n for n, f in record.fields.items() if f.status == "illegible"]
    assert len(illegible) == 1 and not record.complete and record.status == "exception"
    assert csp_violations(browser) == []


def test_an_arbiter_picks_the_second_keyers_value_with_the_2_key(
    api_server: str, browser, document: DocumentRecord, settings: Settings, redis_conn
) -> None:
    store = open_store(settings)
    blind = keyentry.task_id_for(DOC, "applicant_id_number")
    for keyer, number in (("keyer-a", "110105198703150013"), ("keyer-b", "11010519491231002X")):
        held = keyentry.lease(redis_conn, keyer, store=store)
        while held.task_id != blind:  # the name field goes to the pool again when its lease is dropped
            keyentry.submit(redis_conn, store, held.task_id, keyer, "张三丰")
            held = keyentry.lease(redis_conn, keyer, store=store)
        keyentry.submit(redis_conn, store, blind, keyer, number)
    wait = WebDriverWait(browser, 15)
    browser_sign_in(browser, api_server, add_staff(settings, "keyer.three", "keyer"), "/keyentry")
    wait.until(ec.visibility_of_element_located((By.ID, "choices")))
    assert browser.find_element(By.ID, "round").text == "仲裁"
    assert browser.switch_to.active_element == browser.find_element(By.ID, "choice-1")
    choices = [browser.find_element(By.ID, f"choice-{n}").text for n in (1, 2)]
    assert choices == ["1\u3000110105198703150013", "2\u300011010519491231002X"]
    assert axe_violations(browser) == []
    browser.save_screenshot(str(ROOT / "docs" / "keyentry-arbitration.png"))
    browser.switch_to.active_element.send_keys("2")
    # the arbitration is done and the next field (the name, keyed by nobody yet) comes up
    wait.until(lambda d: d.find_element(By.ID, "label").text == "投保人姓名")
    assert not browser.find_element(By.ID, "choices").is_displayed()
    record = load(store, DocumentRecord, DOC)
    assert record.fields["applicant_id_number"].value == "11010519491231002X"
    rounds = [e.round for e in record.fields["applicant_id_number"].entries]
    assert rounds == ["blind", "blind", "arbitration"]


def test_a_keyer_answers_a_tick_box_field_with_its_number_key(
    api_server: str, browser, settings: Settings, redis_conn
) -> None:
    """A choice field comes with its options as buttons, not a text box: 2 picks the second."""
    from capture.decode import encode_png
    from models import FieldRecord, document_key
    from vocabulary import utcnow

    store = open_store(settings)
    doc = DOC.replace("001", "019")
    key = f"documents/{doc}/fields/payment_method.png"
    store.put(key, encode_png(np.full((60, 300), 255, np.uint8)), "image/png")
    field = FieldRecord(
        box=[0, 0, 300, 60], quad=[[0, 0], [300, 0], [300, 60], [0, 60]], page=1, image=key, kind="choice",
        confidence=0.0, status="key_entry", reasons=["nothing ticked"],
    )  # fmt: skip
    record = DocumentRecord(
        doc_id=doc, scan_id="s20261123101500abcdefabcd19", type="application_form",
        template="application_form/1", source_pages=[1], pages=[], status="ok",
        fields={"payment_method": field}, captured_at=utcnow(),
    )  # fmt: skip
    store.put(document_key(doc), record.to_json(), "application/json")
    assert keyentry.add_tasks(redis_conn, record, immediate=False) == 1
    wait = WebDriverWait(browser, 15)
    browser_sign_in(browser, api_server, add_staff(settings, "keyer.four", "keyer"), "/keyentry")
    wait.until(ec.visibility_of_element_located((By.ID, "options")))
    assert not browser.find_element(By.ID, "value").is_displayed()  # no text box to type into
    buttons = [browser.find_element(By.ID, f"option-{n}").text for n in (1, 2, 3)]
    assert buttons == ["1\u3000年交", "2\u3000月交", "3\u3000趸交"]
    assert browser.switch_to.active_element == browser.find_element(By.ID, "option-1")
    assert "未勾选" in browser.find_element(By.ID, "reasons").text
    assert axe_violations(browser) == []
    browser.save_screenshot(str(ROOT / "docs" / "keyentry-choice.png"))
    browser.switch_to.active_element.send_keys("2")
    wait.until(ec.visibility_of_element_located((By.ID, "empty")))
    assert load(store, DocumentRecord, doc).fields["payment_method"].value == "月交"
    assert csp_violations(browser) == []
