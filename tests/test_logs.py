"""ID numbers never reach a log whole: the API as a real process, its log read after requests that carry
ID numbers in their URLs."""

from __future__ import annotations

import contextlib
import urllib.error
import urllib.request
from pathlib import Path

from settings import Settings
from tests.conftest import ADMIN_KEY, running_api

ID = "110105198703150013"


def test_id_numbers_in_request_urls_are_masked_in_the_api_log(settings: Settings, tmp_path: Path) -> None:
    with (tmp_path / "api.log").open("wb") as log, running_api(settings, log) as base:
        for path in (f"/v1/customers/{ID}/idcard", f"/v1/documents?customer_id={ID}"):
            request = urllib.request.Request(base + path, headers={"X-API-Key": ADMIN_KEY})
            with contextlib.suppress(urllib.error.HTTPError):  # 404, nothing on file: logged all the same
                urllib.request.urlopen(request, timeout=10)
    text = (tmp_path / "api.log").read_text()
    assert "/v1/customers/110105********0013/idcard" in text, text
    assert "customer_id=110105********0013" in text
    assert ID not in text
