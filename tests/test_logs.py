"""ID numbers never reach a log whole: the API as a real process, its log read after requests that carry
ID numbers in their URLs."""

from __future__ import annotations

import contextlib
import io
import logging
import urllib.error
import urllib.request
from pathlib import Path

import idnumber
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


def test_names_and_id_numbers_are_masked_in_messages_arguments_and_tracebacks() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(idnumber.MaskIdNumbers())
    logger = logging.getLogger("imaging.test_logs")
    logger.addHandler(handler)
    try:
        logger.warning("holder %s (%s) at 北京市朝阳区", "张三丰", ID)
        try:
            raise ValueError(f"bad value 李四 {ID}")
        except ValueError:
            logger.exception("render failed for scan s1")
    finally:
        logger.removeHandler(handler)
    text = out.getvalue()
    assert "holder 张** (110105********0013) at 北****" in text
    assert "bad value 李* 110105********0013" in text and "render failed for scan s1" in text
    assert not any(word in text for word in ("张三丰", "李四", "朝阳", ID))
