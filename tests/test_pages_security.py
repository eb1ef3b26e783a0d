"""The HTML pages' security headers, read from the app against real Redis and S3, and their
Content-Security-Policy at work in a real headless Chromium against the API as a real server process:
no page runs code it did not load from the service, and /docs needs nothing from outside."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from api import create_app
from errors import ConfigError
from esign.epolicy import sample_request
from esign.tokens import make_token, new_link
from models import CustomerLink, EPolicy, EPolicyVersion, epolicy_file
from routes.headers import page_headers
from settings import Settings, load_settings
from storage import open_store
from tests.conftest import ROOT, add_staff, browser_sign_in, csp_violations, needs_chromium

POLICY = "P2026110000777"
LINK = new_link(POLICY, 3600)  # recorded in the fixture's policy record, as a mailed link is
STRICT = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' blob: data:",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}


@pytest.fixture
def client(settings: Settings) -> TestClient:
    """The app with one policy whose first version is signed, for the customer's page and /verify."""
    signed = EPolicyVersion(
        version=1,
        digest="0" * 64,
        requested_at=datetime.now(UTC),
        status="signed",
        signed_at=datetime.now(UTC),
    )
    request = sample_request().model_copy(update={"policy_no": POLICY})
    store = open_store(settings)
    store.put(epolicy_file(POLICY, 1, "request"), request.model_dump_json().encode(), "application/json")
    link = CustomerLink(
        link_id=LINK.link_id,
        version=1,
        to=request.holder.email,
        issued_at=datetime.now(UTC),
        expires_at=datetime.fromtimestamp(LINK.expires, UTC),
    )
    policy = EPolicy(policy_no=POLICY, versions=[signed], links=[link])
    store.put(EPolicy.key_of(POLICY), policy.to_json(), "application/json")
    return TestClient(create_app(settings), raise_server_exceptions=False)


def _pages(settings: Settings) -> dict[str, tuple[str, int]]:
    """Return every kind of HTML page the service answers with: its path and status, by what it is."""
    secret = settings.token_key()
    return {
        "key-entry": ("/keyentry", 200),
        "viewer": ("/viewer", 200),
        "operator (to sign-in first)": ("/operator", 200),
        "counter (to sign-in first)": ("/counter", 200),
        "sign-in": ("/login", 200),
        "staff accounts (to sign-in first)": ("/admin/users", 200),
        "managers' figures (to sign-in first)": ("/figures", 200),
        "docs": ("/docs", 200),
        "customer's page": (f"/epolicy/{make_token(secret, LINK)}", 200),
        "customer's page, no such policy": (
            f"/epolicy/{make_token(secret, new_link('P2026110000999', 60))}",
            403,
        ),
        "customer's page, bad link": ("/epolicy/not-a-token", 403),
        "public check": (f"/verify/{POLICY}", 200),
        "public check of a file": ("/verify", 200),
        "public check, no such policy": ("/verify/P2026110000999", 404),
    }


def _policy(header: str) -> dict[str, str]:
    """Return a Content-Security-Policy header's directives: their values by name."""
    return {d.split(" ", 1)[0]: d.split(" ", 1)[1] for d in (p.strip() for p in header.split(";")) if d}


def test_every_page_answers_with_the_security_headers(client: TestClient, settings: Settings) -> None:
    for what, (path, status) in _pages(settings).items():
        response = client.get(path)
        assert response.status_code == status, (what, response.text)
        assert response.headers["content-type"].startswith("text/html"), what
        assert _policy(response.headers["content-security-policy"]) == STRICT, what
        assert response.headers["x-frame-options"] == "DENY", what
        assert response.headers["referrer-policy"] == "no-referrer", what
        assert response.headers["x-content-type-options"] == "nosniff", what
        if what != "docs":  # every page but the API's own description shows someone's data
            assert response.headers["cache-control"] == "no-store", what


def test_answers_that_are_not_pages_are_not_sniffed_nor_referred(client: TestClient) -> None:
    for path in ("/healthz", "/openapi.json", "/v1/documents?policy_no=P1", "/static/viewer.js"):
        response = client.get(path)
        assert response.headers["x-content-type-options"] == "nosniff", path
        assert response.headers["referrer-policy"] == "no-referrer", path
        assert "content-security-policy" not in response.headers, path  # a PDF or image opens as it is


class _InlineCode(HTMLParser):
    """Collect what a strict CSP refuses in a page: inline scripts and styles, on...= and style= attrs."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._open: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found += [f"<{tag} {name}=>" for name, _ in attrs if name.startswith("on") or name == "style"]
        if tag in ("script", "style") and not dict(attrs).get("src"):
            self._open = tag

    def handle_data(self, data: str) -> None:
        if self._open and data.strip():
            self.found.append(f"inline <{self._open}>: {data.strip()[:40]}")

    def handle_endtag(self, tag: str) -> None:
        self._open = None


def test_no_page_carries_inline_script_style_or_event_handler_attributes(
    client: TestClient, settings: Settings
) -> None:
    for what, (path, _) in _pages(settings).items():
        parser = _InlineCode()
        parser.feed(client.get(path).text)
        assert parser.found == [], what


# What the CSP refuses in a script, beside inline code: string-evaluated code and style set as markup.
REFUSED_IN_SCRIPTS = re.compile(
    r"\beval\(|new Function\(|set(Timeout|Interval)\(\s*[\"'`]|setAttribute\(\s*[\"'](style|on\w+)[\"']"
    r"|innerHTML\s*\+?=\s*[^;]*(style=|on\w+=)|insertAdjacentHTML|document\.write",
)


def test_the_pages_scripts_use_nothing_the_csp_refuses() -> None:
    scripts = sorted((ROOT / "web" / "static").glob("*.js"))
    assert {p.name for p in scripts} >= {"keyentry.js", "viewer.js", "docs.js", "verify.js"}
    for path in scripts:
        found = REFUSED_IN_SCRIPTS.search(path.read_text(encoding="utf-8"))
        assert found is None, f"{path.name}: {found and found.group(0)}"


def test_static_serves_the_pages_files_with_their_types_and_nothing_else(client: TestClient) -> None:
    for path, media_type in [
        ("/static/keyentry.js", "text/javascript"),
        ("/static/viewer.css", "text/css"),
        ("/static/swagger-ui/swagger-ui-bundle.js", "text/javascript"),
        ("/static/swagger-ui/swagger-ui.css", "text/css"),
    ]:
        response = client.get(path)
        assert response.status_code == 200 and response.headers["content-type"].startswith(media_type), path
    for path in ("/static/../settings.py", "/static/%2e%2e/api.py", "/static/swagger-ui/redoc.standalone.js"):
        assert client.get(path).status_code == 404, path


@pytest.mark.parametrize(
    ("setting", "framing"),
    [
        ("'self'", "SAMEORIGIN"),
        ("'self'  https://core.insurer.example:8443", None),
        ("https://*.insurer.example", None),
    ],
)
def test_the_sites_that_may_frame_the_pages_are_a_setting(settings: Settings, setting: str, framing) -> None:
    client = TestClient(create_app(Settings(**(settings.model_dump() | {"frame_ancestors": setting}))))
    headers = client.get("/viewer").headers
    assert _policy(headers["content-security-policy"])["frame-ancestors"] == " ".join(setting.split())
    assert headers.get("x-frame-options") == framing  # it cannot name another site: frame-ancestors rules
    # only the viewer (and the sign-in it leads to) may be framed: pages with buttons to press never are
    login = client.get("/login").headers["content-security-policy"]
    assert _policy(login)["frame-ancestors"] == " ".join(setting.split())
    framed = Settings(**(settings.model_dump() | {"frame_ancestors": setting}))
    for page in ("/keyentry", "/operator", "/admin"):
        refused = page_headers(framed, page)
        assert _policy(refused["Content-Security-Policy"])["frame-ancestors"] == "'none'", page
        assert refused["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "*",
        "https://a.example, https://b.example",
        "'none'; script-src *",
        "'none' 'self'",
        "javascript:x",
    ],
)
def test_a_frame_setting_that_would_open_or_bend_the_policy_is_refused(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("IMAGING_FRAME_ANCESTORS", value)
    with pytest.raises(ConfigError, match="IMAGING_FRAME_ANCESTORS"):
        load_settings()


# ---- in the browser ---------------------------------------------------------------------------------


@needs_chromium
def test_the_browser_refuses_code_the_page_did_not_ship(api_server: str, browser, settings: Settings) -> None:
    browser_sign_in(browser, api_server, add_staff(settings, "under.one", "underwriter"))
    WebDriverWait(browser, 15).until(lambda d: d.execute_script("return typeof search") == "function")
    assert csp_violations(browser) == []
    # What an injected name or field value would try: an inline script, an event handler attribute.
    browser.execute_script(
        "const s = document.createElement('script'); s.textContent = 'window.ran = 1';"
        "document.head.append(s);"
        "document.getElementById('results').innerHTML = '<img src=/nothing onerror=\"window.ran = 2\">';"
    )
    refused: list[str] = []

    def both_refused(driver) -> bool:
        refused.extend(csp_violations(driver))
        return len(refused) >= 2

    WebDriverWait(browser, 10).until(both_refused, "no refusal of both the script and the handler")
    assert browser.execute_script("return window.ran") is None
    assert any("inline script" in m for m in refused) and any("event handler" in m for m in refused), refused


@needs_chromium
def test_docs_render_from_the_service_alone_with_the_network_closed(api_server: str, browser) -> None:
    browser.get(api_server + "/docs")
    wait = WebDriverWait(browser, 30)
    title = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#swagger-ui .info .title"))[0]
    assert title.text.startswith("Imaging and e-policy service")
    assert wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#swagger-ui .opblock"))
    loaded = browser.execute_script(
        "return [...document.querySelectorAll('script[src], link[href]')].map(e => e.src || e.href)"
        ".concat(performance.getEntriesByType('resource').map(r => r.name))"
    )
    outside = [u for u in loaded if not u.startswith((api_server + "/", "data:", "blob:"))]
    assert len(loaded) >= 4 and outside == [], loaded
    assert csp_violations(browser) == []
