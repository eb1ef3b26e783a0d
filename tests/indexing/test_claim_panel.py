"""The viewer's claim panel in a real headless Chromium against the API as a real server process: claims
staff search a claim number and see the checklist with what is missing, the invoices' total and each
document's state, keyboard only; the page passes axe-core."""

from __future__ import annotations

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from settings import Settings
from storage import open_store
from tests.conftest import add_staff, axe_violations, browser_sign_in, csp_violations, needs_chromium
from tests.indexing.conftest import put_document

pytestmark = needs_chromium
CLAIM = "LP2026000099"


def test_claims_staff_see_the_checklist_the_total_and_what_is_missing(
    api_server: str, browser, settings: Settings
) -> None:
    store = open_store(settings)
    keys = {"claim": [CLAIM]}
    put_document(
        store, 1, "claim_form", "claims", keys, {"claimant_name": "张三丰", "insured_name": "张三丰"}
    )
    for n, (number, total) in enumerate([("0000000001", "1200.50"), ("0000000002", "99.50")], start=2):
        put_document(
            store, n, "medical_invoice", "claims", keys, {"invoice_no": number, "total_amount": total}
        )
    browser_sign_in(browser, api_server, add_staff(settings, "claims.one", "claims"))
    wait = WebDriverWait(browser, 15)
    box = wait.until(ec.visibility_of_element_located((By.ID, "search")))
    box.send_keys(CLAIM.lower(), Keys.ENTER)  # keyboard only: the search box has the focus
    panel = wait.until(ec.visibility_of_element_located((By.ID, "claim")))
    items = {
        li.get_attribute("data-item"): li.text for li in panel.find_elements(By.CSS_SELECTOR, ".checklist li")
    }
    assert list(items) == ["claim_form", "medical_invoice", "insured_idcard", "bank_card"]
    assert items["medical_invoice"].startswith("✓") and items["bank_card"].startswith("✗")
    assert "尚缺 missing: 被保险人身份证 the insured's ID card、银行卡 bank card" in panel.text
    assert "¥1300.00（2 张）" in panel.find_element(By.CSS_SELECTOR, ".total").text
    rows = panel.find_elements(By.CSS_SELECTOR, "tbody tr")
    assert len(rows) == 3 and all("已完成" in r.text for r in rows)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#results section[data-type='medical_invoice']"))
    assert axe_violations(browser) == []
    assert csp_violations(browser) == []
