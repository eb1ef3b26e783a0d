"""The counter, end to end against one real `imaging api` and one real worker shared by this module: `imaging
scan` sending a form and its card pages as one scan and saying in Chinese what was read, a blurred page
ending in the rescan message and exit code 4, a station's folder watched; and the /counter page in a
real headless Chromium, driven by keyboard only, for a clean and a blurred scan."""

from __future__ import annotations

import io
import json
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from redis import Redis
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

import idnumber
from capture.render import render_form, render_idcard
from capture.templates import latest
from models import Scan, load
from settings import Settings
from storage import open_store
from tests.capture.scans import place_cards, scan_page
from tests.conftest import (
    API_KEYS,
    ROOT,
    SCANNER_KEY,
    STAFF_PASSWORD,
    add_staff,
    axe_violations,
    browser_sign_in,
    csp_violations,
    needs_chromium,
    running_api,
    running_workers,
    settings_env,
)

VALUES = json.loads((ROOT / "capture" / "sample_values.json").read_text())
POLICY = "P2026300001"


def _encode(image: np.ndarray, kind: str) -> bytes:
    out = io.BytesIO()
    Image.fromarray(image).convert("RGB").save(out, format=kind, dpi=(300, 300), quality=90)
    return out.getvalue()


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A clean form, the customer's card front and back on one page, a blurred form, a coarse card page."""
    folder = tmp_path_factory.mktemp("pages")
    form = render_form(latest("application_form"), VALUES, 300)
    clean, _ = scan_page(form, np.random.default_rng(3), dpi=300, angle=1.5)
    blurred, _ = scan_page(form, np.random.default_rng(7), dpi=300, angle=2.0, blur=6.0)
    cards, _ = place_cards(
        [render_idcard(latest("idcard_front"), VALUES), render_idcard(latest("idcard_back"), VALUES)],
        np.random.default_rng(4),
        dpi=300,
    )
    # A card scanned at 120 dpi: too coarse to read, so a rescan marked by the card's region on its page.
    # Another person's card, so it is not found on file (a card on file is outlined whole: its boxes are
    # the earlier scan's).
    other = {**VALUES, "name": "赵六", "id_number": idnumber.make("110105", date(1990, 1, 2), 123)}
    front = render_idcard(latest("idcard_front"), other)
    coarse, _ = place_cards([front], np.random.default_rng(4), dpi=120)
    files = {"form.jpg": clean, "cards.jpg": cards, "blurred.jpg": blurred, "coarse.jpg": coarse}
    for name, image in files.items():
        (folder / name).write_bytes(_encode(image, "JPEG"))
    # A card-sized white sheet on a dark desk near the top left, at 150 dpi: card-shaped but no side of
    # the card, so kept as a page with the region passed over and told.
    desk = np.full((1600, 1400, 3), 50, np.uint8)
    desk[60:379, 40:546] = 250
    desk[160:190, 100:440] = 20
    Image.fromarray(desk).save(folder / "sheet.jpg", dpi=(150, 150), quality=90)
    return {name: folder / name for name in [*files, "sheet.jpg"]}


@pytest.fixture(scope="module")
def service(redis_srv, s3_srv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, str]]:
    """One API and one worker for the module, on a Redis database and a bucket of their own."""
    folder = tmp_path_factory.mktemp("counter")
    settings = Settings(
        data_dir=folder / "var",
        redis_url=redis_srv.url.removesuffix("/0") + "/5",
        s3_endpoint=s3_srv.endpoint,
        s3_access_key="test",
        s3_secret_key="test",
        s3_bucket="t" + secrets.token_hex(6),
        api_keys=API_KEYS,
        retry_intervals="1,1,1",
        max_upload_bytes=32 * 1024 * 1024,
    )
    conn = Redis.from_url(settings.redis_url)
    conn.flushdb()
    with running_api(settings) as url, running_workers(settings, 1, folder / "workers"):
        yield settings, url
    conn.flushdb()


def _scan(settings: Settings, url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cli", "scan", "--url", url, "--key", SCANNER_KEY, *args],
        env=settings_env(settings),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_imaging_scan_sends_a_form_and_its_cards_as_one_scan_and_names_the_file_it_cannot_send(
    service, pages, tmp_path: Path
) -> None:
    settings, url = service
    notes = tmp_path / "notes.txt"
    notes.write_text("the customer asked about the premium", encoding="utf-8")
    result = _scan(
        settings, url, str(pages["form.jpg"]), str(pages["cards.jpg"]), str(notes), "--policy-no", POLICY
    )
    assert result.returncode == 2, result.stdout + result.stderr  # a file refused
    out = result.stdout
    assert f"✗ 未发送 {notes}：不是扫描件" in out
    assert "1. 投保单（第1页）" in out and "2. 身份证正面（第2页）" in out and "3. 身份证反面（第2页）" in out
    assert f"✓ 投保单号：{VALUES['application_no']}" in out
    assert "✓ 投保人姓名：" in out and "公民身份号码" in out
    assert VALUES["id_number"] not in out, "ID numbers are masked in the summary"
    assert "个字段已识别" in out and "需重新扫描" not in out
    assert "HTTP Request" not in result.stderr + out, "httpx's request lines stay off the terminal"
    (scan_id,) = re.findall(r"^扫描 (s\w+)：2 个文件$", out, re.M)
    scan = load(open_store(settings), Scan, scan_id)
    assert [f.name for f in scan.files] == ["form.jpg", "cards.jpg"]
    assert [f.pages for f in scan.files] == [1, 1]


def test_a_blurred_page_ends_in_the_rescan_message_and_exit_code_4(service, pages) -> None:
    settings, url = service
    machine = _scan(settings, url, str(pages["blurred.jpg"]), "--json", "--mode", "immediate")
    assert machine.returncode == 4, machine.stdout + machine.stderr
    (answer,) = [json.loads(line) for line in machine.stdout.splitlines()]
    assert answer["exit_code"] == 4 and answer["refused"] == []
    (rescan,) = answer["scan"]["rescans"]
    assert rescan["page"] == 1 and rescan["reason"] == "blurred" and rescan["box"] is None
    assert rescan["zh"] == "第1页模糊，请重新扫描" and "blurred" in rescan["en"]
    person = _scan(settings, url, str(pages["blurred.jpg"]), "--mode", "immediate")  # the same upload again
    assert person.returncode == 4
    assert "已发送过" in person.stdout and "✗ 第1页模糊，请重新扫描" in person.stdout


def test_a_watched_folder_sends_each_batch_once_its_files_stop_growing(
    service, pages, tmp_path: Path
) -> None:
    settings, url = service
    folder = tmp_path / "station"
    folder.mkdir()
    watcher = subprocess.Popen(
        [sys.executable, "-m", "cli", "scan", "--url", url, "--key", SCANNER_KEY, "--watch", str(folder)]
        + ["--settle", "1", "--policy-no", POLICY],
        env=settings_env(settings),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        data = pages["blurred.jpg"].read_bytes()
        with (folder / "page-0001.jpg").open("wb") as growing:  # the scanner writes it in two goes
            growing.write(data[: len(data) // 2])
            growing.flush()
            time.sleep(0.4)
            growing.write(data[len(data) // 2 :])
        (folder / "notes.txt").write_text("not a scan", encoding="utf-8")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not list((folder / "done").glob("*/page-0001.jpg")):
            time.sleep(0.2)
        (sent,) = list((folder / "done").glob("*/page-0001.jpg"))
        assert sent.read_bytes() == data, "sent whole, not half-written"
        (refused,) = list((folder / "failed").glob("*/notes.txt"))
        assert "不是扫描件" in (refused.parent / "why.txt").read_text(encoding="utf-8")
        scan = load(open_store(settings), Scan, sent.parent.name)
        assert scan.policy_no == POLICY and [f.size for f in scan.files] == [len(data)]
        assert set(folder.iterdir()) == {folder / "done", folder / "failed"}, "nothing left behind"
    finally:
        watcher.send_signal(signal.SIGINT)
        out, err = watcher.communicate(timeout=30)
    assert watcher.returncode == 0, err
    assert "第1页模糊，请重新扫描" in out and "HTTP Request" not in err


def _tab_to(driver, wanted: str, limit: int = 40):
    """Press Tab until the element focused is the one wanted (its id or aria-label); return it."""
    for _ in range(limit):
        ActionChains(driver).send_keys(Keys.TAB).perform()
        focused = driver.switch_to.active_element
        if wanted in (focused.get_attribute("id"), focused.get_attribute("aria-label")):
            return focused
    raise AssertionError(f"{wanted} is not reached with Tab")


def _answer(driver, words: str) -> str:
    """Return the answer's text once its status line holds `words` (the page writes the status and the
    documents in one go; the list of recent scans below says 已识别 of its own, sooner or later)."""
    WebDriverWait(driver, 120, 0.2).until(lambda d: words in d.find_element(By.ID, "status").text)
    return driver.find_element(By.ID, "answer").text


@pytest.fixture(scope="module")
def clerk(service) -> str:
    return add_staff(service[0], "counter.clerk", "scanner")


@needs_chromium
def test_the_counter_page_sends_a_form_and_its_cards_as_one_scan_by_keyboard(
    service, pages, clerk: str, browser, tmp_path: Path
) -> None:
    settings, url = service
    browser_sign_in(browser, url, clerk, next_="/counter")
    # Dropped from the scanner's folder: a file that is no scan is named and not added.
    browser.execute_script(
        "const data = new DataTransfer(); data.items.add(new File(['call back'], 'notes.txt'));"
        "const drop = new DragEvent('drop', {dataTransfer: data, bubbles: true});"
        "document.getElementById('drop').dispatchEvent(drop);"
    )
    WebDriverWait(browser, 5).until(
        lambda d: "notes.txt：不是扫描件" in d.find_element(By.ID, "add-message").text
    )
    assert browser.find_elements(By.CSS_SELECTOR, "#pages li") == []
    _tab_to(browser, "policy_no").send_keys("P2026300002")
    _tab_to(browser, "files").send_keys(f"{pages['cards.jpg']}\n{pages['form.jpg']}")
    listed = lambda d: [li.text.split("\n")[0] for li in d.find_elements(By.CSS_SELECTOR, "#pages li")]  # noqa: E731
    WebDriverWait(browser, 10).until(lambda d: len(listed(d)) == 2)
    _tab_to(browser, "上移 form.jpg").send_keys(Keys.ENTER)  # the form first, the card page after it
    assert listed(browser) == ["1. form.jpg", "2. cards.jpg"]
    assert browser.switch_to.active_element.get_attribute("aria-label") == "下移 form.jpg", "focus stays"
    _tab_to(browser, "send").send_keys(Keys.ENTER)
    text = _answer(browser, "已识别")
    assert "1. 投保单（第1页）" in text and "2. 身份证正面（第2页）" in text
    assert "3. 身份证反面（第2页）" in text and "✓ 投保人姓名：" in text
    assert f"✓ 投保单号：{VALUES['application_no']}" in text
    assert "需重新扫描" not in text and browser.find_elements(By.CSS_SELECTOR, "#marked figure") == []
    assert axe_violations(browser) == [] and csp_violations(browser) == []
    browser.set_window_size(1280, 1400)
    browser.save_screenshot(str(tmp_path / "counter.png"))  # docs/counter.png is one of these
    (scan,) = [s for s in _scans(settings) if s.uploaded_by == clerk and s.policy_no == "P2026300002"]
    assert [f.name for f in scan.files] == ["form.jpg", "cards.jpg"] and scan.mode == "immediate"


def _scans(settings: Settings) -> list[Scan]:
    store = open_store(settings)
    ids = [info.key.removeprefix("scans/").removesuffix(".json") for info in store.list("scans/")]
    return [load(store, Scan, scan_id) for scan_id in ids]


@needs_chromium
def test_the_counter_page_asks_to_rescan_a_blurred_page_and_marks_it(
    service, pages, clerk: str, browser, tmp_path: Path
) -> None:
    settings, url = service
    browser_sign_in(browser, url, clerk, next_="/counter")
    files = [pages[name] for name in ("blurred.jpg", "coarse.jpg", "sheet.jpg")]
    _tab_to(browser, "files").send_keys("\n".join(map(str, files)))
    WebDriverWait(browser, 10).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#pages li")) == 3)
    _tab_to(browser, "send").send_keys(Keys.ENTER)
    assert "3 页需重新扫描" in _answer(browser, "需重新扫描")
    told = browser.find_element(By.ID, "rescans").text.splitlines()
    assert told == ["第1页模糊，请重新扫描", "第2页分辨率太低，请用300 dpi重新扫描"]
    passed = "第3页有一处像卡片的区域未能识别（左上），请单独重新扫描该卡片"
    assert browser.find_element(By.ID, "left-out").text.splitlines() == [passed]
    form, card, sheet = browser.find_elements(By.CSS_SELECTOR, "#marked figure")
    (region,) = sheet.find_elements(By.CSS_SELECTOR, ".frame .mark.passed")  # the sheet outlined on its page
    picture = sheet.find_element(By.CSS_SELECTOR, ".frame img").rect
    assert region.rect["x"] - picture["x"] < 0.1 * picture["width"] and passed in sheet.text
    assert 0.3 < region.rect["width"] / picture["width"] < 0.45, (region.rect, picture)
    assert form.find_element(By.CSS_SELECTOR, ".frame.whole img").get_attribute("alt").endswith(told[0])
    assert "第1页（blurred.jpg）：第1页模糊，请重新扫描" in form.text
    (mark,) = card.find_elements(By.CSS_SELECTOR, ".frame .mark")  # the card's region, not the whole page
    frame = card.find_element(By.CSS_SELECTOR, ".frame").rect
    assert 0 < mark.rect["width"] < frame["width"] and 0 < mark.rect["height"] < frame["height"]
    assert card.find_elements(By.CSS_SELECTOR, ".frame.whole") == []
    assert axe_violations(browser) == [] and csp_violations(browser) == []
    browser.set_window_size(1280, 1800)
    browser.save_screenshot(str(tmp_path / "counter-rescan.png"))  # docs/counter-rescan.png is one of these
    # A scan the station's folder sends (imaging scan with the clerk's own token) appears on the page.
    token = _personal_token(settings, clerk)
    blank = tmp_path / "blank.png"  # a page the worker reads at once: the feed is what is tested here
    blank.write_bytes(_encode(np.full((400, 600), 255, np.uint8), "PNG"))
    sent = subprocess.run(
        [sys.executable, "-m", "cli", "scan", "--url", url, "--key", token, str(blank)]
        + ["--policy-no", "P2026300003", "--wait", "0"],
        env=settings_env(settings),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert sent.returncode == 0, sent.stdout + sent.stderr
    scan_id = re.search(r"^扫描 (s\w+)：", sent.stdout, re.M).group(1)
    WebDriverWait(browser, 120, 0.2).until(
        lambda d: f"扫描 {scan_id} 已识别" in d.find_element(By.ID, "status").text
    )
    assert browser.find_elements(By.CSS_SELECTOR, "#rescans li") == [], "the earlier answer is gone"
    assert browser.find_element(By.ID, "left-out").text == "第1页为空白页，已略过"
    recent = [b.get_attribute("aria-label") for b in browser.find_elements(By.CSS_SELECTOR, "#recent button")]
    assert scan_id in recent[0] and len(recent) >= 2, recent
    _tab_to(browser, "next-customer").send_keys(Keys.ENTER)
    assert (
        browser.find_elements(By.CSS_SELECTOR, "#pages li, #marked figure, #rescans li, #left-out li") == []
    )
    assert browser.switch_to.active_element.get_attribute("id") == "policy_no"


def _personal_token(settings: Settings, username: str) -> str:
    from people import changes
    from people.tokens import TokenKind
    from roles import Role

    store, conn = open_store(settings), Redis.from_url(settings.redis_url)
    secret, _ = changes.add_token(
        store,
        conn,
        "test",
        kind=TokenKind.personal,
        owner=username,
        roles=[Role.scanner],
        branch="86",
        days=1,
    )
    return secret


def test_the_counter_page_is_for_people_who_may_upload_scans(service) -> None:
    settings, url = service
    client = httpx.Client(base_url=url, follow_redirects=False)
    assert client.get("/counter").headers["location"] == "/login?next=%2Fcounter"
    keyer = add_staff(settings, "counter.keyer", "keyer")
    form = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    signed = client.post("/login", data={"username": keyer, "password": STAFF_PASSWORD, "csrf_token": token})
    assert signed.status_code == 303
    page = client.get("/counter")
    assert page.status_code == 403 and "没有扫描上传权限" in page.text and "counter.js" not in page.text


def test_a_scanner_s_recent_scans_are_its_own_newest_first_each_once(settings: Settings) -> None:
    from fastapi.testclient import TestClient

    from api import create_app
    from tests.conftest import SCANNER2_KEY

    client = TestClient(create_app(settings))
    mine, theirs = {"X-API-Key": SCANNER_KEY}, {"X-API-Key": SCANNER2_KEY}
    first, second = (_encode(np.full((400, 600), shade, np.uint8), "PNG") for shade in (255, 200))
    ids = [
        client.post("/v1/scans", files=[("file", (f"{i}.png", data))], headers=mine).json()["scan_id"]
        for i, data in enumerate([first, second, first])  # the first again: the same scan, moved up
    ]
    assert ids[2] == ids[0]
    recent = client.get("/v1/scans", headers=mine).json()["scans"]
    assert [s["scan_id"] for s in recent] == [ids[0], ids[1]] and recent[0]["files"] == ["0.png"]
    assert client.get("/v1/scans", headers=theirs).json() == {"scans": []}
