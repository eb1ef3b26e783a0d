"""An e-policy from the sale system's request to the customer's mailbox and download page: a real worker
process, real S3, Redis and SMTP servers; the PDF judged by pyHanko and pdfsig."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api import create_app
from esign.epolicy import sample_request
from esign.keys import init_test_keys
from esign.tokens import LinkToken, check_token, make_token, new_link
from esign.verify import load_roots, verify
from indexing.index import lookup
from settings import Settings
from tests.conftest import (
    ADMIN_KEY,
    SALES_KEY,
    SCANNER_KEY,
    SERVICING_KEY,
    UNDERWRITER_KEY,
    run_worker_burst,
    running_workers,
)
from tests.servers import MailServer

PASSWORD = "150013"


def roots_of(settings: Settings) -> list:
    return load_roots(settings.trust_roots_path)


@pytest.fixture
def mail_settings(settings: Settings, smtp_srv: MailServer) -> Settings:
    smtp_srv.messages.clear()
    configured = settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": smtp_srv.port})
    init_test_keys(configured.keys_dir)
    return configured


def _post(client: TestClient, body: dict, key: str = SALES_KEY):
    return client.post("/v1/epolicies", json=body, headers={"X-API-Key": key})


def mailed_token(message) -> str:
    """Return the token of the customer's link in an e-policy mail."""
    found = re.search(r"/epolicy/(\S+)", message.get_body(("plain",)).get_content())
    assert found, message
    return found.group(1)


def test_an_epolicy_is_signed_encrypted_mailed_and_offered_to_the_customer(
    mail_settings: Settings, smtp_srv: MailServer, tsa, tmp_path: Path
) -> None:
    from storage import open_store

    # PAdES B-T: time-stamped by the TSA; the roots file holds both the signer's and the TSA's root.
    mail_settings = mail_settings.model_copy(update={"tsa_url": tsa.url})
    roots = mail_settings.trust_roots_path
    roots.write_bytes(roots.read_bytes() + tsa.root.read_bytes())

    client = TestClient(create_app(mail_settings), client=("203.0.113.7", 50000))
    body = sample_request().model_dump(mode="json")
    first = _post(client, body)
    assert first.status_code == 202, first.text
    assert (first.json()["version"], first.json()["new"]) == (1, True)
    again = _post(client, body)
    assert (again.json()["version"], again.json()["new"]) == (1, False), "the same data is the same version"
    endorsed = _post(client, {**body, "premium": "13000.00"})
    assert (endorsed.json()["version"], endorsed.json()["new"]) == (2, True)
    assert _post(client, body, SCANNER_KEY).status_code == 403
    result = run_worker_burst(mail_settings)
    assert result.returncode == 0, result.stderr

    status = client.get("/v1/epolicies/P2026110000123", headers={"X-API-Key": SERVICING_KEY}).json()
    assert status["status"] == "sent" and status["current_version"] == 2, status
    assert [v["status"] for v in status["versions"]] == ["sent", "sent"]
    assert [(d["version"], d["status"]) for d in status["deliveries"]] == [(1, "sent"), (2, "sent")]
    assert len(smtp_srv.messages) == 2, "one mail a version, exactly once"

    message = smtp_srv.messages[-1]
    assert message["Subject"].startswith("您的电子保单 P2026110000123")
    assert message["To"].addresses[0].addr_spec == "zhang.sanfeng@example.com"
    text = message.get_body(("plain",)).get_content()
    assert "身份证号码的后六位" in text and PASSWORD not in text
    assert message.get_body(("html",)) is not None
    (attachment,) = list(message.iter_attachments())
    pdf = attachment.get_content()
    checked = verify(pdf, load_roots(mail_settings.trust_roots_path), PASSWORD)
    assert checked.ok and checked.encrypted and checked.signatures[0].certified, checked
    assert checked.signatures[0].timestamp is not None, "PAdES B-T"
    (tmp_path / "mailed.pdf").write_bytes(pdf)
    report = subprocess.run(
        ["pdfsig", "-upw", PASSWORD, str(tmp_path / "mailed.pdf")], capture_output=True, text=True
    ).stdout
    assert "Signature is Valid." in report and "Total document signed" in report, report

    # Filed under the policy and the holder, beside the scanned images.
    store = open_store(mail_settings)
    assert [e.type for e in lookup(store, "policy", "P2026110000123")] == ["epolicy", "epolicy"]
    assert {e.type for e in lookup(store, "customer", "110105198703150013")} == {"epolicy"}
    found = client.get("/v1/documents?policy_no=P2026110000123", headers={"X-API-Key": SERVICING_KEY}).json()
    pdf_urls = [d["pdf_url"] for d in found["documents"]]
    assert pdf_urls == ["/v1/epolicies/P2026110000123/pdf?version=2"], "servicing sees the endorsement"
    assert verify(
        client.get(pdf_urls[0], headers={"X-API-Key": SERVICING_KEY}).content, roots_of(mail_settings)
    ).ok

    staff = client.get("/v1/epolicies/P2026110000123/pdf?version=1", headers={"X-API-Key": UNDERWRITER_KEY})
    assert staff.status_code == 200 and verify(staff.content, load_roots(mail_settings.trust_roots_path)).ok
    # The first version is new business: servicing does not see it, and every read of a PDF is logged.
    refused = client.get("/v1/epolicies/P2026110000123/pdf?version=1", headers={"X-API-Key": SERVICING_KEY})
    assert refused.status_code == 404
    reads = client.get("/v1/access", headers={"X-API-Key": ADMIN_KEY}).json()
    assert [r["part"] for r in reads if r["part"].startswith("pdf")] == ["pdf v1", "pdf v2"]

    # The customer's page from the link in the mail: versions, current or superseded, the PDF.
    link = re.search(r"https?://\S+/epolicy/(\S+)", text)
    assert link, text
    token = link.group(1)
    page = client.get(f"/epolicy/{token}")
    assert page.status_code == 200
    assert page.text.count("signature valid") == 2 and "当前版本" in page.text and "已被替代" in page.text
    download = client.get(f"/epolicy/{token}/pdf")
    assert download.status_code == 200 and download.content == store.get("epolicies/P2026110000123/v2.pdf")
    downloads = client.get("/v1/epolicies/P2026110000123", headers={"X-API-Key": ADMIN_KEY}).json()[
        "downloads"
    ]
    assert [(d["version"], d["address"]) for d in downloads] == [(2, "203.0.113.7")]


def test_a_customer_link_opens_its_own_policy_only_and_bad_links_are_slowed(
    mail_settings: Settings, smtp_srv: MailServer
) -> None:
    client = TestClient(create_app(mail_settings), client=("198.51.100.9", 40000))
    assert _post(client, sample_request().model_dump(mode="json")).status_code == 202
    assert run_worker_burst(mail_settings).returncode == 0
    good = mailed_token(smtp_srv.messages[-1])
    secret, link = mail_settings.token_key(), check_token(mail_settings.token_key(), good)
    # Signed with our secret, but never mailed: for a policy that is not there, or one that is.
    other = make_token(secret, LinkToken("P2026110000999", link.link_id, link.expires))
    assert client.get(f"/epolicy/{other}").status_code == 403
    assert client.get(f"/epolicy/{make_token(secret, new_link('P2026110000123', 3600))}").status_code == 403
    expired = make_token(secret, LinkToken("P2026110000123", link.link_id, link.expires - 86400 * 365))
    refused = client.get(f"/epolicy/{expired}")
    assert refused.status_code == 403 and "expired" in refused.text
    assert refused.headers["content-type"].startswith("text/html"), "a customer sees a page, not JSON"
    altered = good[:-1] + ("A" if good[-1] != "A" else "B")
    assert client.get(f"/epolicy/{altered}").status_code == 403
    assert client.get(f"/epolicy/{good.replace('0123', '0124', 1)}").status_code == 403  # another policy
    # Five failures on this policy (one was for P2026110000124); then it is refused, but not its live link.
    for _ in range(2):
        assert client.get(f"/epolicy/{make_token(secret, new_link('P2026110000123', 60))}").status_code == 403
    flood = client.get(f"/epolicy/{make_token(secret, new_link('P2026110000123', 60))}")
    assert flood.status_code == 429 and flood.headers["retry-after"] == "600"
    assert client.get(f"/epolicy/{good}").status_code == 200, "a live link opens from the same address"
    # A token that failed five times is refused without a look; another one from the address is not.
    assert [client.get("/epolicy/not-a-token").status_code for _ in range(6)] == [403] * 5 + [429]
    assert client.get("/epolicy/another-bad-token").status_code == 403


def test_bad_requests_name_each_bad_field(mail_settings: Settings) -> None:
    client = TestClient(create_app(mail_settings))
    body = sample_request().model_dump(mode="json")
    body["holder"]["id_number"] = "110105198703150012"
    body["holder"]["email"] = "not-an-address"
    body["policy_no"] = "../x"
    body["beneficiaries"][0]["share"] = 70
    response = _post(client, body)
    assert response.status_code == 422
    locations = {".".join(map(str, d["loc"])) for d in response.json()["detail"]}
    assert {"body.holder.id_number", "body.holder.email", "body.policy_no"} <= locations, locations


@pytest.mark.parametrize(
    "email",
    [
        "x,attacker@evil.example",  # two recipients in the To header
        "x@example.com;attacker@evil.example",
        "x@example.com attacker@evil.example",
        "Zhang San <x@example.com>",
        "<x@example.com>",
        '"x y"@example.com',
        "x@example.com\r\nBcc: attacker@evil.example",
    ],
)
def test_the_holder_s_email_must_be_one_address(mail_settings: Settings, redis_conn, email: str) -> None:
    from rq import Queue

    client = TestClient(create_app(mail_settings))
    body = sample_request().model_dump(mode="json")
    body["holder"]["email"] = email
    response = _post(client, body)
    assert response.status_code == 422, response.text
    (problem,) = response.json()["detail"]
    assert problem["loc"] == ["body", "holder", "email"] and "one e-mail address" in problem["msg"]
    assert Queue("esign", connection=redis_conn).count == 0, "nothing issued"
    body["holder"]["email"] = "zhang.sanfeng+policy@mail.example.com"
    assert _post(client, body).status_code == 202, "one address, with a tag and a subdomain, is taken"


def test_line_breaks_in_any_text_of_the_mail_s_headers_are_refused(
    mail_settings: Settings, redis_conn
) -> None:
    from rq import Queue

    client = TestClient(create_app(mail_settings))
    # What esign/letter.py writes into Subject, To and the attachment's name.
    places = {
        ("product_name",): "康宁终身重大疾病保险\r\nBcc: attacker@evil.example",
        ("policy_no",): "P2026110000123\nBcc: attacker@evil.example",
        ("holder", "name"): "张三丰\r\nBcc: attacker@evil.example",
        ("holder", "email"): "zhang.sanfeng@example.com\nBcc: attacker@evil.example",
    }
    breaks = ["\r\n", "\n", "\r", "\u2028", "\x85"]  # CRLF, LF, CR, the line separator, NEL
    for path, bad in places.items():
        for line_break in breaks:
            body = sample_request().model_dump(mode="json")
            parent = body["holder"] if len(path) == 2 else body
            parent[path[-1]] = bad.replace("\r\n", line_break).replace("\n", line_break)
            response = _post(client, body)
            assert response.status_code == 422, (path, line_break, response.text)
            assert [d["loc"] for d in response.json()["detail"]] == [["body", *path]], response.text
    assert Queue("esign", connection=redis_conn).count == 0, "nothing issued"


def test_verify_api_reports_a_tampered_copy(mail_settings: Settings) -> None:
    from esign.render import render
    from esign.sign import load_pkcs12, seal

    signer = load_pkcs12(mail_settings.pkcs12_path, mail_settings.pkcs12_passphrase())
    archive = seal(render(sample_request(), 1, "https://x/v"), signer, PASSWORD, "o").archive
    client = TestClient(create_app(mail_settings))
    headers = {"X-API-Key": SERVICING_KEY, "Content-Type": "application/pdf"}
    good = client.post("/v1/verify", content=archive, headers=headers).json()
    assert good["ok"] is True and good["signatures"][0]["trusted"] is True
    tampered = bytearray(archive)
    tampered[len(tampered) // 3] ^= 1
    bad = client.post("/v1/verify", content=bytes(tampered), headers=headers).json()
    assert bad["ok"] is False and "changed after signing" in bad["signatures"][0]["problems"][0]


def test_verify_api_takes_the_customer_s_password_in_a_header_never_in_the_url(
    mail_settings: Settings,
) -> None:
    from esign.render import render
    from esign.sign import load_pkcs12, seal

    signer = load_pkcs12(mail_settings.pkcs12_path, mail_settings.pkcs12_passphrase())
    customer = seal(render(sample_request(), 1, "https://x/v"), signer, PASSWORD, "o").customer
    client = TestClient(create_app(mail_settings))
    headers = {"X-API-Key": SERVICING_KEY, "Content-Type": "application/pdf"}
    opened = client.post("/v1/verify", content=customer, headers={**headers, "X-PDF-Password": PASSWORD})
    assert opened.status_code == 200, opened.text
    assert opened.json()["ok"] is True and opened.json()["encrypted"] is True
    wrong = client.post("/v1/verify", content=customer, headers={**headers, "X-PDF-Password": "000000"})
    assert (wrong.status_code, wrong.json()["error"]) == (422, "wrong_password")
    # The right password in the query string is refused all the same: URLs are logged.
    in_url = client.post(f"/v1/verify?password={PASSWORD}", content=customer, headers=headers)
    assert in_url.status_code == 422 and "X-PDF-Password header" in in_url.json()["detail"]


def test_resend_mails_the_current_version_again_once(mail_settings: Settings, smtp_srv: MailServer) -> None:
    client = TestClient(create_app(mail_settings))
    headers = {"X-API-Key": SERVICING_KEY}
    assert _post(client, sample_request().model_dump(mode="json")).status_code == 202
    early = client.post("/v1/epolicies/P2026110000123/resend", headers=headers)
    assert early.status_code == 409, "not signed yet"
    assert run_worker_burst(mail_settings).returncode == 0
    resent = client.post("/v1/epolicies/P2026110000123/resend", headers=headers)
    assert resent.status_code == 200, resent.text
    assert [d["status"] for d in resent.json()["deliveries"]] == ["sent", "queued"]
    assert run_worker_burst(mail_settings).returncode == 0
    assert run_worker_burst(mail_settings).returncode == 0  # nothing left to do: no third mail
    assert len(smtp_srv.messages) == 2
    final = client.get("/v1/epolicies/P2026110000123", headers=headers).json()
    assert [d["status"] for d in final["deliveries"]] == ["sent", "sent"] and final["status"] == "sent"
    assert client.post("/v1/epolicies/P2026110000999/resend", headers=headers).status_code == 404


def test_smtp_down_shows_delivery_failed_then_sent_exactly_once(settings: Settings, tmp_path: Path) -> None:
    from supervisor import free_port
    from tests.servers import wait_until

    port = free_port()
    down = settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "smtp_timeout": 2.0,
            "retry_intervals": "1,1,1,1,1,1,1,1",
        }
    )
    init_test_keys(down.keys_dir)
    client = TestClient(create_app(down))
    headers = {"X-API-Key": SERVICING_KEY}
    assert _post(client, sample_request().model_dump(mode="json")).status_code == 202

    def status() -> dict:
        return client.get("/v1/epolicies/P2026110000123", headers=headers).json()

    smtp = MailServer(port=port)
    try:
        with running_workers(down, 1, tmp_path / "workers"):
            wait_until(lambda: status()["status"] == "delivery_failed", 60, "the failed delivery")
            failed = status()
            assert "unreachable" in failed["reason"] and failed["reason"].endswith("(retrying)")
            assert failed["deliveries"][0]["status"] == "retrying"
            smtp.start()
            wait_until(lambda: status()["status"] == "sent", 60, "the retried delivery")
    finally:
        smtp.stop()
    assert len(smtp.messages) == 1
    final = status()
    assert [d["status"] for d in final["deliveries"]] == ["sent"] and final["reason"] is None
