"""The role table of every endpoint, tested both ways: each role the table allows gets past authorization,
every other role gets 403, and no key gets 401. A new endpoint fails here until it is in the table."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from api import create_app
from roles import Role
from settings import Settings
from tests.conftest import (
    ADMIN_KEY,
    AUDITOR_KEY,
    CLAIMS_KEY,
    KEYER_KEY,
    MANAGER_KEY,
    SALES_KEY,
    SCANNER_KEY,
    SERVICING_KEY,
    UNDERWRITER_KEY,
)

KEYS = {
    Role.scanner: SCANNER_KEY,
    Role.keyer: KEYER_KEY,
    Role.underwriter: UNDERWRITER_KEY,
    Role.servicing: SERVICING_KEY,
    Role.claims: CLAIMS_KEY,
    Role.sales: SALES_KEY,
    Role.admin: ADMIN_KEY,
    Role.auditor: AUDITOR_KEY,
    Role.manager: MANAGER_KEY,
}
READERS = {Role.underwriter, Role.servicing, Role.claims, Role.admin}
STAFF = {Role.sales, Role.underwriter, Role.servicing, Role.admin}
PUBLIC = None  # no key needed

# (method, path as in the OpenAPI schema): the roles allowed.
TABLE: dict[tuple[str, str], set[Role] | None] = {
    ("get", "/healthz"): PUBLIC,
    ("get", "/livez"): PUBLIC,
    ("get", "/readyz"): PUBLIC,
    ("get", "/metrics"): PUBLIC,
    ("get", "/v1/health"): {Role.admin},
    ("post", "/v1/scans"): {Role.scanner, Role.admin},
    ("get", "/v1/scans"): {Role.scanner, Role.admin},
    ("get", "/v1/scans/{scan_id}"): {Role.scanner, Role.admin},
    # An admin keys nothing (separation of duties).
    ("get", "/v1/keyentry/next"): {Role.keyer},
    ("post", "/v1/keyentry/{task_id}"): {Role.keyer},
    ("get", "/v1/keyentry/{task_id}/image"): {Role.keyer},
    ("get", "/v1/keyentry/{task_id}/strip"): {Role.keyer},
    ("get", "/v1/keyentry/today"): {Role.keyer},
    ("get", "/v1/jobs/failed"): {Role.admin},
    ("post", "/v1/jobs/requeue"): {Role.admin},
    ("post", "/v1/jobs/discard"): {Role.admin},
    ("get", "/v1/operations"): {Role.admin},
    ("get", "/v1/documents"): READERS,
    ("get", "/v1/claims/{claim_no}"): {Role.claims, Role.admin},
    ("get", "/v1/documents/{doc_id}"): READERS,
    ("get", "/v1/documents/{doc_id}/pages/{n}"): READERS,
    ("get", "/v1/documents/{doc_id}/thumbnail"): READERS,
    ("get", "/v1/documents/{doc_id}/fields/{name}"): READERS,
    ("get", "/v1/documents/{doc_id}/original"): {Role.underwriter, Role.claims, Role.admin},
    ("get", "/v1/customers/{customer_id}/idcard"): READERS,
    ("get", "/v1/customers/{customer_id}/signature"): READERS,
    ("get", "/v1/customers/{customer_id}/links"): READERS,
    ("get", "/v1/customers/{customer_id}"): READERS,
    ("post", "/v1/links"): {Role.servicing, Role.claims, Role.admin},
    ("get", "/v1/access"): {Role.admin},
    ("get", "/v1/reviews"): {Role.underwriter, Role.admin},
    ("post", "/v1/reviews/{review_id}"): {Role.underwriter, Role.admin},
    ("post", "/v1/epolicies"): {Role.sales, Role.admin},
    ("get", "/v1/epolicies/{policy_no}"): STAFF,
    ("get", "/v1/epolicies/{policy_no}/pdf"): STAFF,
    ("post", "/v1/epolicies/{policy_no}/resend"): STAFF,
    ("post", "/v1/epolicies/{policy_no}/links/revoke"): STAFF,
    ("post", "/v1/verify"): {Role.underwriter, Role.servicing, Role.claims, Role.sales, Role.admin},
    ("get", "/v1/users"): {Role.admin},
    ("post", "/v1/users"): {Role.admin},
    ("post", "/v1/users/{username}/lock"): {Role.admin},
    ("post", "/v1/users/{username}/unlock"): {Role.admin},
    ("post", "/v1/users/{username}/password"): {Role.admin},
    ("put", "/v1/users/{username}/roles"): {Role.admin},
    ("get", "/v1/tokens"): {Role.admin},
    ("post", "/v1/tokens"): {Role.admin},
    ("delete", "/v1/tokens/{token_id}"): {Role.admin},
    ("get", "/v1/audit"): {Role.admin, Role.auditor},
    ("get", "/v1/documents/{doc_id}/values"): READERS,
    ("get", "/v1/events"): {Role.admin},
    ("get", "/v1/events/{event_id}"): {Role.admin},
    ("post", "/v1/events/{event_id}/replay"): {Role.admin},
    ("get", "/v1/figures"): {Role.manager, Role.admin},
    ("get", "/v1/figures.csv"): {Role.manager, Role.admin},
}
SAMPLE = {
    "scan_id": "s20261123101500abcdefabcdef",
    "task_id": "d20261123101500abcdefabcdef001.applicant_name",
    "doc_id": "d20261123101500abcdefabcdef001",
    "n": "1",
    "name": "applicant_name",
    "customer_id": "110105198703150013",
    "policy_no": "P2026110000123",
    "claim_no": "LP202600000001",
    "review_id": "d20261123101500abcdefabcdef001.keyed_conflict",
    "username": "zhang.san",
    "token_id": "0123456789ab",
    "event_id": "document.completed-d20261123101500abcdefabcdef001",
}


@pytest.fixture
def client(settings: Settings) -> TestClient:
    return TestClient(create_app(settings))


def _url(path: str) -> str:
    url = re.sub(r"\{(\w+)\}", lambda m: SAMPLE[m.group(1)], path)
    return url + ("?policy_no=P2026110000123" if path == "/v1/documents" else "")


def test_every_endpoint_is_in_the_role_table(client: TestClient) -> None:
    endpoints = {(m, p) for p, item in client.app.openapi()["paths"].items() for m in item}
    assert endpoints == set(TABLE), "add new endpoints to TABLE, remove gone ones"


@pytest.mark.parametrize(("method", "path"), sorted(TABLE))
def test_each_role_is_allowed_or_refused_as_the_table_says(
    client: TestClient, method: str, path: str
) -> None:
    allowed = TABLE[(method, path)]
    url = _url(path)
    anonymous = client.request(method, url)
    if allowed is PUBLIC:
        assert anonymous.status_code not in (401, 403)
        return
    assert anonymous.status_code == 401, (path, anonymous.text)
    for role, key in KEYS.items():
        response = client.request(method, url, headers={"X-API-Key": key})
        if role in allowed:
            assert response.status_code not in (401, 403), (path, role, response.text)
        else:
            assert response.status_code == 403, (path, role, response.status_code, response.text)
            assert response.json()["error"] == "forbidden"
