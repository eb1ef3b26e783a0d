"""The accessibility check the page tests rely on finds what it should: a page with an unlabelled input and
a button without a name has serious violations, the same page mended has none."""

from __future__ import annotations

from tests.conftest import axe_violations, needs_chromium

pytestmark = needs_chromium

BROKEN = '<html lang="zh-CN"><title>t</title><main><input id="q"><button></button></main></html>'
MENDED = (
    '<html lang="zh-CN"><title>t</title><main><label for="q">保单号</label><input id="q">'
    "<button>查询</button></main></html>"
)


def test_axe_names_an_unlabelled_input_and_a_nameless_button(browser) -> None:
    browser.get("data:text/html;charset=utf-8," + BROKEN)
    found = axe_violations(browser)
    assert {v.split(":")[0] for v in found} >= {"label", "button-name"}, found
    browser.get("data:text/html;charset=utf-8," + MENDED)
    assert axe_violations(browser) == []
