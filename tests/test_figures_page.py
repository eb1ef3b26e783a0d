"""The managers' page in a real headless Chromium against `imaging api` as a real process: a manager of a
province signed in sees their branches' figures with charts and the CSV link, filters by branch and dates with
the keyboard alone, and nothing of another province; axe-core finds no serious violation. Anyone else is
refused, and without a session the page leads to /login."""

from __future__ import annotations

import os
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import httpx
from fastapi.testclient import TestClient
from redis import Redis
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

import figures
from api import create_app
from settings import Settings
from tests.conftest import (
    STAFF_PASSWORD,
    add_staff,
    axe_violations,
    browser_sign_in,
    csp_violations,
    needs_chromium,
)
from tests.people.conftest import sign_in

TODAY = figures.day_of(datetime.now(figures.ZONE))
YESTERDAY = TODAY - timedelta(days=1)


def _seed(conn: Redis) -> None:
    """Two days of two Beijing branches, one of Tianjin, and the e-policies (no branch)."""

    def day(branch: str, when, n: int, keyer: str) -> list[figures.Event]:
        counts = Counter(scans=n, pages=2 * n, documents=2 * n, rescans=1, completed=2 * n - 1)
        counts.update(
            {"rescan|blurred": 1, "field|applicant_name|total": 2 * n, "field|applicant_name|straight": n}
        )
        counts.update({"field|premium|total": 2 * n, "field|premium|straight": 2 * n - 1})
        counts.update({f"keyed|{keyer}": 3 * n, f"checked|{keyer}": 2, f"lost|{keyer}": 1})
        counts.update({f"complete_seconds|{60 * (i + 1)}": 1 for i in range(2 * n - 1)})
        return [figures.Event(f"seed:{branch}:{when}", when, branch, dict(counts))]

    events = [
        *day("861101", YESTERDAY, 3, "li.lu"),
        *day("861101", TODAY, 5, "li.lu"),
        *day("861102", TODAY, 2, "zhao.qian"),
        *day("861201", TODAY, 7, "sun.li"),
        figures.Event(
            "seed:ep",
            TODAY,
            "",
            {"epolicies|issued": 4, "epolicies|delivered": 3, "epolicies|acknowledged": 1},
        ),
    ]
    assert figures.add(conn, events, TODAY) == len(events)


def _cells(browser, table: str) -> list[list[str]]:
    rows = f"[...document.querySelectorAll('#{table} tbody tr')]"
    return browser.execute_script(f"return {rows}.map(r => [...r.cells].map(c => c.textContent.trim()))")


def _press(browser, *keys: str) -> None:
    chain = ActionChains(browser)
    for key in keys:
        chain.send_keys(key)
    chain.perform()


def _focused(browser) -> str:
    return browser.execute_script("return document.activeElement.id")


def _tab_to(browser, element_id: str, most: int = 12) -> None:
    """Press Tab until the element has the focus (a date input takes one Tab per part of the date)."""
    for _ in range(most):
        if _focused(browser) == element_id:
            return
        _press(browser, Keys.TAB)
    assert _focused(browser) == element_id


def _type_date(browser, day) -> None:
    """Type a date into the focused date input as a person would: its digits in the order the browser's
    locale shows the parts (11/30/2026 or 2026/11/30), each part moving on to the next."""
    order = browser.execute_script(
        "return new Intl.DateTimeFormat(navigator.language).formatToParts(new Date(2026, 10, 30))"
        ".map(p => p.type).filter(t => ['year', 'month', 'day'].includes(t))"
    )
    parts = {"year": f"{day.year:04d}", "month": f"{day.month:02d}", "day": f"{day.day:02d}"}
    _press(browser, *"".join(parts[p] for p in order))


@needs_chromium
def test_a_manager_filters_the_figures_of_their_branches_by_keyboard(
    api_server: str, browser, settings: Settings, redis_conn: Redis, tmp_path: Path
) -> None:
    _seed(redis_conn)
    add_staff(settings, "mgr.bj", "manager", branch="8611")
    browser_sign_in(browser, api_server, "mgr.bj", "/figures")
    browser.get(f"{api_server}/figures?from={YESTERDAY}&to={TODAY}")  # a link to two days
    assert browser.find_element(By.ID, "scans").text == "10"  # 3 + 5 + 2: not Tianjin's 7
    assert browser.find_element(By.ID, "documents").text == "20"
    rows = _cells(browser, "rows")
    assert [(r[0], r[1], r[2]) for r in rows] == [
        (str(YESTERDAY), "861101", "3"),
        (str(TODAY), "（无机构）", "0"),
        (str(TODAY), "861101", "5"),
        (str(TODAY), "861102", "2"),
    ]
    assert rows[1][-4:] == ["4", "3", "0", "1"]  # e-policies issued, delivered, downloaded, acknowledged
    charts = browser.find_elements(By.CSS_SELECTOR, "svg[role=img]")
    assert [c.get_attribute("id") for c in charts] == [
        "chart-days",
        "chart-fields",
        "chart-reasons",
        "chart-epolicies",
    ]
    assert len(browser.find_elements(By.CSS_SELECTOR, "#chart-days rect.bar")) == 2
    assert axe_violations(browser) == []

    # Keyboard only: Tab to the branch, pick 861102 with the arrows, Enter sends the filter.
    _tab_to(browser, "branch")
    options = [o.text for o in browser.find_elements(By.CSS_SELECTOR, "#branch option")]
    assert options == ["全部可见机构", "8611", "861101", "861102"]
    _press(browser, Keys.END)
    _tab_to(browser, "apply")
    _press(browser, Keys.ENTER)
    WebDriverWait(browser, 10).until(lambda d: "branch=861102" in d.current_url)
    assert browser.find_element(By.ID, "scans").text == "2"
    assert [(r[1], r[2]) for r in _cells(browser, "rows")] == [("861102", "2")]
    assert _cells(browser, "keyers") == [["zhao.qian", "6", "2", "1", "50.0%"]]
    _tab_to(browser, "csv", 20)
    link = browser.find_element(By.ID, "csv").get_attribute("href")
    assert link.endswith(f"/v1/figures.csv?from={YESTERDAY}&to={TODAY}&branch=861102")
    cookies = {c["name"]: c["value"] for c in browser.get_cookies()}
    exported = httpx.get(link, cookies=cookies)
    assert exported.status_code == 200 and exported.content.startswith(b"\xef\xbb\xbf")
    assert f"{TODAY},861102,scans,,2" in exported.text and "861101" not in exported.text
    assert axe_violations(browser) == [] and csp_violations(browser) == []

    # Back to every branch, and the last day set to yesterday by typing it; Enter in the field sends it.
    _tab_to(browser, "branch", 30)
    _press(browser, Keys.HOME)
    _tab_to(browser, "to")
    _type_date(browser, YESTERDAY)
    _press(browser, Keys.ENTER)
    WebDriverWait(browser, 10).until(lambda d: f"to={YESTERDAY}" in d.current_url)
    assert "branch=&" in browser.current_url or "branch" not in browser.current_url.split("?")[1]
    assert browser.find_element(By.ID, "scans").text == "3"
    assert [(r[0], r[1], r[2]) for r in _cells(browser, "rows")] == [(str(YESTERDAY), "861101", "3")]
    shots = Path(os.environ.get("SCREENSHOTS_DIR", tmp_path))
    browser.get(f"{api_server}/figures?from={YESTERDAY}&to={TODAY}")
    assert browser.save_screenshot(str(shots / "figures.png"))


def test_the_page_is_for_managers_and_a_branch_out_of_reach_is_refused(
    settings: Settings, redis_conn: Redis
) -> None:
    _seed(redis_conn)
    client = TestClient(create_app(settings))
    assert client.get("/figures", follow_redirects=False).headers["location"].startswith("/login?next=")
    add_staff(settings, "keyer.bj", "keyer", branch="8611")
    assert sign_in(client, "keyer.bj", STAFF_PASSWORD).status_code == 303
    refused = client.get("/figures")
    assert refused.status_code == 403 and "管理人员" in refused.text
    manager = TestClient(create_app(settings))
    add_staff(settings, "mgr.bj", "manager", branch="8611")
    assert sign_in(manager, "mgr.bj", STAFF_PASSWORD).status_code == 303
    assert manager.get("/figures?branch=8612").status_code == 403
    wrong = manager.get(f"/figures?from={TODAY}&to={YESTERDAY}")
    assert wrong.status_code == 422 and "结束日期早于开始日期" in wrong.text
    assert manager.get(f"/v1/figures?from={YESTERDAY}&to={TODAY + timedelta(days=400)}").status_code == 422
