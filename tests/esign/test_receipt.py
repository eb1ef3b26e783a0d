"""Receipt (签收): the customer's page with the policy's key facts, each version's state and Beijing
times, and "I have received it" recorded once with the time, version and link; the staff's view of
delivered, opened, downloaded, acknowledged; one reminder mail through the mail job (aiosmtpd); the page
at a phone's size in headless Chromium."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
from fastapi.testclient import TestClient
from redis import Redis
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

import epolicies
import events
from api import create_app
from esign.epolicy import sample_request
from esign.tokens import check_token
from intake.contacts import find_contact
from settings import Settings
from storage import open_store
from tests.conftest import SALES_KEY, SERVICING_KEY, needs_chromium, run_worker_burst, running_api
from tests.esign.test_epolicy_flow import mail_settings, mailed_token  # noqa: F401  (the fixture)
from tests.servers import MailServer

POLICY = "P2026110000123"
STAFF = {"X-API-Key": SERVICING_KEY}
CHECK = re.compile(r'name="version" value="(\d+)"><input type="hidden" name="check" value="([0-9a-f]+)"')


def _issue(client: TestClient, settings: Settings, **changes: str) -> None:
    body = {**sample_request().model_dump(mode="json"), **changes}
    assert client.post("/v1/epolicies", json=body, headers={"X-API-Key": SALES_KEY}).status_code == 202
    done = run_worker_burst(settings)
    assert done.returncode == 0, done.stderr


def _receipts(client: TestClient) -> list[dict]:
    return client.get(f"/v1/epolicies/{POLICY}", headers=STAFF).json()["receipts"]


def test_the_customer_acknowledges_receipt_once_and_staff_see_each_step(
    mail_settings: Settings,  # noqa: F811
    smtp_srv: MailServer,
) -> None:
    client = TestClient(create_app(mail_settings), client=("203.0.113.9", 50000))
    _issue(client, mail_settings)
    token = mailed_token(smtp_srv.messages[-1])
    (before,) = _receipts(client)
    assert before["delivered_at"] and before["state"] == "current"
    assert before["opened_at"] is None and before["acknowledged_at"] is None

    page = client.get(f"/epolicy/{token}")
    assert page.status_code == 200
    for fact in (
        "康宁终身重大疾病保险",
        "李四",
        "2026-11-24 至 终身 whole life",
        "¥500,000.00",
        "¥12,345.00",
    ):
        assert fact in page.text, fact
    signed_at = datetime.fromisoformat(
        client.get(f"/v1/epolicies/{POLICY}", headers=STAFF).json()["versions"][0]["signed_at"]
    )
    assert f"{signed_at.astimezone(ZoneInfo('Asia/Shanghai')):%Y-%m-%d %H:%M} 北京时间" in page.text
    assert "当前版本 current" in page.text and "已签收" not in page.text
    version, check = CHECK.search(page.text).groups()
    assert _receipts(client)[0]["opened_at"] is not None

    assert client.get(f"/epolicy/{token}/pdf").status_code == 200
    assert _receipts(client)[0]["downloaded_at"] is not None

    forged = client.post(f"/epolicy/{token}/receipt", data={"version": version, "check": "0" * 32})
    elsewhere = client.post(
        f"/epolicy/{token}/receipt",
        data={"version": version, "check": check},
        headers={"Origin": "https://attacker.example"},
    )
    assert forged.status_code == 403 and elsewhere.status_code == 403
    assert _receipts(client)[0]["acknowledged_at"] is None

    done = client.post(
        f"/epolicy/{token}/receipt", data={"version": version, "check": check}, follow_redirects=False
    )
    assert done.status_code == 303 and done.headers["location"] == f"/epolicy/{token}#v1"
    first = _receipts(client)[0]
    assert (
        first["acknowledged_at"]
        and first["acknowledged_link"] == check_token(mail_settings.token_key(), token).link_id
    )
    again = client.post(
        f"/epolicy/{token}/receipt", data={"version": version, "check": check}, follow_redirects=False
    )
    assert again.status_code == 303 and _receipts(client)[0]["acknowledged_at"] == first["acknowledged_at"]
    assert "已签收 Received" in client.get(f"/epolicy/{token}").text
    # Core systems hear of it once (events.py): one event for the version, whatever the presses.
    store = open_store(mail_settings)
    told = [
        e
        for e in events.recent(Redis.from_url(mail_settings.redis_url), store)
        if e.kind == "epolicy.acknowledged"
    ]
    assert [e.event_id for e in told] == [f"epolicy.acknowledged-{POLICY}-v1"]
    when = told[0].data["acknowledged_at"]
    assert told[0].data["policy_no"] == POLICY and told[0].data["version"] == 1
    assert datetime.fromisoformat(when) == datetime.fromisoformat(first["acknowledged_at"])
    # The holder's address is a known customer's: their mail is taken in (intake/contacts.py).
    contact = find_contact(store, sample_request().holder.email)
    assert contact.policies == [POLICY] and contact.customers == [sample_request().holder.id_number]

    _issue(client, mail_settings, premium="13000.00")  # an endorsement: version 2
    shown = client.get(f"/epolicy/{mailed_token(smtp_srv.messages[-1])}").text
    assert shown.index("第 2 版") < shown.index("第 1 版")
    assert "已被替代 superseded" in shown and "¥13,000.00" in shown
    assert [r["state"] for r in _receipts(client)] == ["superseded", "current"]


def test_one_reminder_goes_out_after_the_set_days_through_the_mail_job(
    mail_settings: Settings,  # noqa: F811
    smtp_srv: MailServer,
    redis_conn,
) -> None:
    settings = mail_settings.model_copy(update={"epolicy_reminder_days": 3})
    client = TestClient(create_app(settings))
    _issue(client, settings)
    store = open_store(settings)
    now = datetime.now().astimezone()
    assert epolicies.remind_due(redis_conn, store, settings, now + timedelta(days=2)) == []
    (mail_id,) = epolicies.remind_due(redis_conn, store, settings, now + timedelta(days=4))
    assert run_worker_burst(settings).returncode == 0
    reminder = smtp_srv.messages[-1]
    assert reminder["Subject"].startswith("请签收您的电子保单") and reminder["To"].endswith(
        "zhang.sanfeng@example.com>"
    )
    link = mailed_token(reminder)
    assert "我已收到" in client.get(f"/epolicy/{link}").text, "the reminder's link opens the page"
    (receipt,) = _receipts(client)
    assert receipt["reminded_at"] is not None
    sent = len(smtp_srv.messages)
    assert epolicies.remind_due(redis_conn, store, settings, now + timedelta(days=30)) == []
    assert run_worker_burst(settings).returncode == 0 and len(smtp_srv.messages) == sent, "sent once"
    assert mail_id.startswith("m")

    # Acknowledged before it is due, or superseded: no reminder.
    _issue(client, settings, premium="13000.00")
    token = mailed_token(smtp_srv.messages[-1])
    version, check = CHECK.search(client.get(f"/epolicy/{token}").text).groups()
    assert (
        client.post(f"/epolicy/{token}/receipt", data={"version": version, "check": check}).status_code == 200
    )
    assert epolicies.remind_due(redis_conn, store, settings, now + timedelta(days=60)) == []
    redis_conn.zadd(epolicies.AWAITING_RECEIPT, {"P2026119999999:1": 0})  # a policy no longer stored
    assert epolicies.remind_due(redis_conn, store, settings, now + timedelta(days=60)) == []
    assert redis_conn.zcard(epolicies.AWAITING_RECEIPT) == 0, "every version due was looked at once"


@needs_chromium
def test_the_customer_page_works_at_a_phone_s_size(
    mail_settings: Settings,  # noqa: F811
    smtp_srv: MailServer,
    browser,
) -> None:
    with running_api(mail_settings) as url:
        body = sample_request().model_dump(mode="json")
        assert (
            httpx.post(f"{url}/v1/epolicies", json=body, headers={"X-API-Key": SALES_KEY}).status_code == 202
        )
        assert run_worker_burst(mail_settings).returncode == 0
        token = mailed_token(smtp_srv.messages[-1])
        browser.set_window_size(390, 844)
        browser.get(f"{url}/epolicy/{token}")
        wait = WebDriverWait(browser, 20)
        button = wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, ".version form button")))
        summary = browser.find_element(By.ID, "summary").text
        assert "李四" in summary and "¥500,000.00" in summary
        fits = "return document.documentElement.scrollWidth <= window.innerWidth"
        assert browser.execute_script(fits), "the page is wider than a phone's screen"
        assert button.size["height"] >= 30, "the button is too small to press with a finger"
        button.click()
        received = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, ".received")))
        assert "已签收" in received.text and "北京时间" in received.text
        status = httpx.get(f"{url}/v1/epolicies/{POLICY}", headers=STAFF).json()["receipts"][0]
        assert status["acknowledged_at"] is not None and browser.execute_script(fits)
