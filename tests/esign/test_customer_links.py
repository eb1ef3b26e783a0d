"""The customer's links as recorded: each mailed link is in the policy's record, bound to the holder it went
to, revocable by staff; a new holder or address ends the earlier links; the token never reaches the API's
log; and the address recorded for a download is one a trusted proxy vouched for, or the peer's own.
Real worker and API processes, S3, Redis and SMTP servers."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

import idnumber
from api import create_app
from esign.epolicy import sample_request
from esign.tokens import check_token
from settings import Settings
from tests.conftest import SERVICING_KEY, run_worker_burst, running_api
from tests.esign.test_epolicy_flow import _post, mail_settings, mailed_token  # noqa: F401  (the fixture)
from tests.servers import MailServer

POLICY = "P2026110000123"
STAFF = {"X-API-Key": SERVICING_KEY}


def _issue(client: TestClient, settings: Settings, smtp: MailServer, body: dict) -> str:
    """Issue the body, run a worker until the mail went, and return the token in that mail."""
    assert _post(client, body).status_code == 202
    result = run_worker_burst(settings)
    assert result.returncode == 0, result.stderr
    return mailed_token(smtp.messages[-1])


def test_a_link_opens_only_while_recorded_and_staff_can_revoke_it(
    mail_settings: Settings,  # noqa: F811
    smtp_srv: MailServer,
) -> None:
    client = TestClient(create_app(mail_settings), client=("198.51.100.20", 40000))
    first = _issue(client, mail_settings, smtp_srv, sample_request().model_dump(mode="json"))
    status = client.get(f"/v1/epolicies/{POLICY}", headers=STAFF)
    (link,) = status.json()["links"]
    assert link["link_id"] == check_token(mail_settings.token_key(), first).link_id
    assert (link["version"], link["to"], link["revoked_at"]) == (1, "zhang.sanfeng@example.com", None)
    assert link["issued_at"] < link["expires_at"]
    assert first.rsplit(".", 1)[1] not in status.text, "the record names the link, it does not hold it"
    assert client.get(f"/epolicy/{first}").status_code == 200

    revoked = client.post(f"/v1/epolicies/{POLICY}/links/revoke", headers=STAFF)
    assert revoked.status_code == 200, revoked.text
    (link,) = revoked.json()["links"]
    assert link["revoked_at"] and link["revoked_reason"].startswith("revoked by staff (k")
    page = client.get(f"/epolicy/{first}")
    assert page.status_code == 403 and "withdrawn" in page.text
    assert client.get(f"/epolicy/{first}/pdf").status_code == 403

    assert client.post(f"/v1/epolicies/{POLICY}/resend", headers=STAFF).status_code == 200
    assert run_worker_burst(mail_settings).returncode == 0
    second = mailed_token(smtp_srv.messages[-1])
    assert client.get(f"/epolicy/{second}/pdf").status_code == 200
    assert client.get(f"/epolicy/{first}").status_code == 403, "a resend does not bring the old link back"
    final = client.get(f"/v1/epolicies/{POLICY}", headers=STAFF).json()
    assert [k["revoked_at"] is None for k in final["links"]] == [False, True]
    assert [d["link_id"] for d in final["downloads"]] == [final["links"][1]["link_id"]]
    assert client.post("/v1/epolicies/P2026110000999/links/revoke", headers=STAFF).status_code == 404


NEW_HOLDER = idnumber.make("310104", date(1985, 6, 1), 27)


@pytest.mark.parametrize(
    ("change", "first_still_opens", "second_sees"),
    [
        ({"holder": {"email": "new.address@example.com"}}, False, 2),  # the same person, another mailbox
        ({"holder": {"name": "赵六", "id_number": NEW_HOLDER, "email": "zhao.liu@example.com"}}, False, 1),
        ({"premium": "13000.00"}, True, 2),  # an endorsement for the same holder
    ],
    ids=["holder_email", "holder", "premium"],
)
def test_a_new_holder_or_address_ends_the_earlier_links(
    mail_settings: Settings,  # noqa: F811
    smtp_srv: MailServer,
    change: dict,
    first_still_opens: bool,
    second_sees: int,
) -> None:
    client = TestClient(create_app(mail_settings))
    body = sample_request().model_dump(mode="json")
    first = _issue(client, mail_settings, smtp_srv, body)
    changed = {**body, **change}
    if "holder" in change:
        changed["holder"] = {**body["holder"], **change["holder"]}
    second = _issue(client, mail_settings, smtp_srv, changed)
    assert smtp_srv.messages[-1]["To"].addresses[0].addr_spec == changed["holder"]["email"]

    old_page, old_pdf = client.get(f"/epolicy/{first}"), client.get(f"/epolicy/{first}/pdf")
    if first_still_opens:
        assert old_page.status_code == 200 and old_pdf.status_code == 200
    else:
        assert old_page.status_code == 403 and old_pdf.status_code == 403, "the old link opens nothing"
    page = client.get(f"/epolicy/{second}")
    assert page.status_code == 200 and page.text.count("下载 PDF") == second_sees
    pdf = client.get(f"/epolicy/{second}/pdf")
    assert pdf.status_code == 200 and pdf.content == client.app.state.store.get(f"epolicies/{POLICY}/v2.pdf")
    # A new holder's link does not open the earlier holder's version either.
    assert client.get(f"/epolicy/{second}/pdf?version=1").status_code == (200 if second_sees == 2 else 404)
    links = client.get(f"/v1/epolicies/{POLICY}", headers=STAFF).json()["links"]
    assert [k["revoked_at"] is None for k in links] == [first_still_opens, True]
    if not first_still_opens:
        assert links[0]["revoked_reason"] == "version 2 went to another holder or e-mail address"


def test_tokens_stay_out_of_the_api_log_and_only_a_trusted_proxy_names_the_client(
    mail_settings: Settings,  # noqa: F811
    smtp_srv: MailServer,
    tmp_path: Path,
) -> None:
    client = TestClient(create_app(mail_settings))
    token = _issue(client, mail_settings, smtp_srv, sample_request().model_dump(mode="json"))
    forwarded = {"X-Forwarded-For": "203.0.113.9"}
    log_path = tmp_path / "api.log"
    with (
        log_path.open("wb") as log,
        running_api(mail_settings, log) as base,
        httpx.Client(base_url=base, timeout=30) as http,
    ):
        assert http.get(f"/epolicy/{token}", headers=forwarded).status_code == 200
        assert http.get(f"/epolicy/{token}/pdf", headers=forwarded).status_code == 200
        assert http.get(f"/epolicy/{token[:-1]}x/pdf").status_code == 403
    trusting = mail_settings.model_copy(update={"trusted_proxies": "127.0.0.1"})
    with running_api(trusting) as base, httpx.Client(base_url=base, timeout=30) as http:
        assert http.get(f"/epolicy/{token}/pdf", headers=forwarded).status_code == 200

    text = log_path.read_text()
    assert '"GET /epolicy/<redacted> HTTP/1.1" 200' in text, text
    assert '"GET /epolicy/<redacted>/pdf HTTP/1.1" 200' in text and '/pdf HTTP/1.1" 403' in text
    assert token not in text and token.rsplit(".", 1)[1] not in text and token[:-1] not in text
    downloads = client.get(f"/v1/epolicies/{POLICY}", headers=STAFF).json()["downloads"]
    assert [d["address"] for d in downloads] == ["127.0.0.1", "203.0.113.9"], "X-Forwarded-For from a peer"
