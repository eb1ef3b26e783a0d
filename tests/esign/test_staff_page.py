"""The staff's e-policy page (/epolicies) in a real headless Chromium against `imaging api` as a real
process: a servicing clerk signed in finds a policy by its number, reads each version's delivered, opened,
downloaded and acknowledged times in Beijing time, revokes the customer's links and mails the current
version again, with the keyboard only; axe-core finds no serious violation. Refusals without a browser."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from api import create_app
from settings import Settings
from tests.conftest import (
    SERVICING_KEY,
    STAFF_PASSWORD,
    add_staff,
    axe_violations,
    browser_sign_in,
    csp_violations,
    needs_chromium,
    running_api,
)
from tests.esign.test_epolicy_flow import mail_settings, mailed_token  # noqa: F401  (the fixture)
from tests.esign.test_receipt import CHECK, POLICY, _issue
from tests.servers import MailServer

STAFF = {"X-API-Key": SERVICING_KEY}


def _beijing(value: str) -> str:
    return f"{datetime.fromisoformat(value).astimezone(ZoneInfo('Asia/Shanghai')):%Y-%m-%d %H:%M:%S}"


def _cells(browser, table: str) -> list[list[str]]:
    rows = f"[...document.querySelectorAll('#{table} tbody tr')]"
    return browser.execute_script(f"return {rows}.map(r => [...r.cells].map(c => c.textContent.trim()))")


def _focus(browser, element_id: str):
    """Tab through the page until the element has the focus (the keyboard only); return it."""
    for _ in range(40):
        active = browser.switch_to.active_element
        if active.get_attribute("id") == element_id:
            return active
        active.send_keys(Keys.TAB)
    raise AssertionError(f"#{element_id} never had the focus")


def _press(browser, element_id: str) -> None:
    _focus(browser, element_id).send_keys(Keys.ENTER)


@needs_chromium
def test_a_clerk_finds_a_policy_reads_its_receipts_and_revokes_and_resends_by_keyboard(
    mail_settings: Settings,  # noqa: F811
    smtp_srv: MailServer,
    browser,
) -> None:
    client = TestClient(create_app(mail_settings), client=("203.0.113.9", 50000))
    _issue(client, mail_settings)
    token = mailed_token(smtp_srv.messages[-1])
    version, check = CHECK.search(client.get(f"/epolicy/{token}").text).groups()
    assert client.get(f"/epolicy/{token}/pdf").status_code == 200
    assert client.post(f"/epolicy/{token}/receipt", data={"version": version, "check": check}).is_success
    (receipt,) = client.get(f"/v1/epolicies/{POLICY}", headers=STAFF).json()["receipts"]

    with running_api(mail_settings) as base:
        browser_sign_in(browser, base, add_staff(mail_settings, "svc.clerk", "servicing"), "/epolicies")
        wait = WebDriverWait(browser, 15)
        _focus(browser, "policy_no").send_keys(POLICY.lower(), Keys.ENTER)
        wait.until(lambda d: d.find_elements(By.ID, "receipts"))
        ((label, state, signed, delivered, opened, downloaded, acknowledged, reminded),) = _cells(
            browser, "receipts"
        )
        assert (label, state) == ("第 1 版", "当前 current，sent")
        assert delivered == _beijing(receipt["delivered_at"]) and opened == _beijing(receipt["opened_at"])
        assert downloaded == _beijing(receipt["downloaded_at"])
        assert acknowledged == _beijing(receipt["acknowledged_at"]) and reminded == "—"
        assert signed != "—"
        assert axe_violations(browser) == []
        assert _cells(browser, "links")[0][-1] == "有效 live"

        _press(browser, "revoke")
        wait.until(lambda d: "done=revoked" in d.current_url)
        assert browser.find_element(By.ID, "message").text.startswith("已撤销全部客户链接")
        assert _cells(browser, "links")[0][-1].startswith("已撤销 revoked")
        assert client.get(f"/epolicy/{token}").status_code == 403, "the revoked link opens nothing"

        mails = len(smtp_srv.messages)
        _press(browser, "resend")
        wait.until(lambda d: "done=resent" in d.current_url)
        links = _cells(browser, "links")
        assert len(links) == 2 and links[1][-1] == "有效 live", "the resent mail carries a new link"
        assert len(smtp_srv.messages) == mails, "queued on the mail queue, not sent by the page"
        assert axe_violations(browser) == [] and csp_violations(browser) == []

        browser.get(base + "/epolicies?policy_no=P2026999999999")
        assert "未找到保单 P2026999999999" in browser.find_element(By.ID, "message").text


def test_the_page_leads_to_sign_in_and_refuses_staff_who_do_not_handle_epolicies(settings: Settings) -> None:
    username = add_staff(settings, "page.scanner", "scanner")
    client = TestClient(create_app(settings), base_url="https://testserver")
    away = client.get("/epolicies?policy_no=P2026110000123", follow_redirects=False)
    assert away.status_code == 303 and away.headers["location"].startswith("/login?next=%2Fepolicies")
    csrf = client.get("/login").text.split('name="csrf_token" value="')[1].split('"')[0]
    signed_in = client.post(
        "/login", data={"username": username, "password": STAFF_PASSWORD, "csrf_token": csrf}
    )
    assert signed_in.status_code == 200, signed_in.text
    refused = client.get("/epolicies")
    assert refused.status_code == 403 and "e-policies" in refused.text


def test_a_bad_or_unknown_policy_number_is_said_on_the_page_not_as_a_traceback(settings: Settings) -> None:
    username = add_staff(settings, "page.servicing", "servicing")
    client = TestClient(create_app(settings), base_url="https://testserver")
    csrf = client.get("/login").text.split('name="csrf_token" value="')[1].split('"')[0]
    client.post("/login", data={"username": username, "password": STAFF_PASSWORD, "csrf_token": csrf})
    bad = client.get("/epolicies", params={"policy_no": "P2026<script>"})
    assert bad.status_code == 422 and "不是保单号" in bad.text
    assert "&lt;SCRIPT&gt;" in bad.text and "<SCRIPT>" not in bad.text, "escaped"
    unknown = client.get("/epolicies", params={"policy_no": "P2026999999999"})
    assert unknown.status_code == 404 and "未找到保单 P2026999999999" in unknown.text
    session_csrf = unknown.text.split('name="csrf_token" value="')[1].split('"')[0]
    resent = client.post("/epolicies/P2026999999999/resend", data={"csrf_token": session_csrf})
    assert resent.status_code == 404 and "未找到保单 P2026999999999" in resent.text
    forged = client.post("/epolicies/P2026999999999/revoke", data={"csrf_token": "x"})
    assert forged.status_code == 403
