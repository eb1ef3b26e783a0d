"""Schemathesis against the API's own OpenAPI schema, over HTTP to a real `imaging api` process: no request
the schema allows, and none it forbids, gets a 5xx, and every answer is one the schema documents.

The server runs once for the module on seeded data: indexed documents, a scan, key-entry tasks leased to the
keyer and the admin, and an e-policy. Generated path and query values are swapped for seeded ones part of
the time, so the fuzzing gets past "404 not found" into the code that reads real records. Each case is sent
as admin and as one other role the role table (tests/test_roles.py) lets call the operation. Examples are
derandomized: a failure comes back on every run.

Budget: MAX_EXAMPLES per operation and no coverage phase keep the module near half a minute on two cores.
The coverage phase triples the requests and adds seconds to every collection; exploratory runs with it and
300 examples per operation, on the S3 and the local store, found nothing the fuzzing phase below does not.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import tempfile
import urllib.request
import zlib
from collections.abc import Iterator
from pathlib import Path

import hypothesis
import pytest
import schemathesis
from hypothesis import strategies as st
from PIL import Image
from redis import Redis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

import epolicies
import keyentry
from api import create_app
from esign.epolicy import sample_request
from esign.keys import init_test_keys
from esign.render import render
from esign.sign import load_pkcs12, seal
from models import Scan, ScanFile, document_key
from people.identity import key_id as _key_id
from roles import Role
from settings import Settings
from storage import open_store
from tests.conftest import API_KEYS, SCANNER_KEY, running_api
from tests.indexing.conftest import APPLICANT, CLAIM, INSURED, POLICY, doc_id, put_case, put_document
from tests.test_roles import KEYS, TABLE
from vocabulary import ScanMode, utcnow

MAX_EXAMPLES = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
SCAN_ID = "s20261123101500abcdefabcdef"
EPOLICY = sample_request()
# Key-entry tasks of several kinds; double entry makes the first keyed value wait for a second keyer.
KEYED_FIELDS = {"applicant_name": "name", "applicant_birth_date": "date", "premium": "amount"}
KEYED_DOC = 7
# What the seeded store holds, by the name of the parameter that asks for it.
SEEDED = {
    "scan_id": [SCAN_ID],
    # Every document put_case stores (two of them stamped later), and the one with key-entry tasks.
    "doc_id": [
        *(doc_id(n) for n in (1, 2, 3, 6, KEYED_DOC)),
        doc_id(4, "20261201090000"),
        doc_id(5, "20261202090000"),
    ],
    "task_id": [keyentry.task_id_for(doc_id(KEYED_DOC), name) for name in KEYED_FIELDS],
    "n": [1],
    "name": ["applicant_id_number", "applicant_signature", "id_number"],
    "customer_id": [APPLICANT, INSURED],
    "policy_no": [POLICY, EPOLICY.policy_no],
    "claim_no": [CLAIM],
}


def _settings(**values) -> Settings:
    """Return settings of these values alone: the developer's IMAGING_* variables and .env stay out, as the
    `settings` fixture keeps them out of every test."""
    with pytest.MonkeyPatch.context() as patch:
        for name in [n for n in os.environ if n.startswith("IMAGING_")]:
            patch.delenv(name)
        return Settings(_env_file=None, **values)


def _published_schema() -> dict:
    """Return the OpenAPI document the app serves; FastAPI builds it from the routes alone."""
    return create_app(_settings(redis_url="redis://127.0.0.1:1/0")).openapi()


SCHEMA = schemathesis.openapi.from_dict(_published_schema())
# Security parameters are the caller's key, which the test sets; generated ones would only be refused.
SCHEMA.config.generation.update(with_security_parameters=False)
SCHEMA.config.phases.update(phases=["examples", "fuzzing"])


@SCHEMA.hook
def flatmap_path_parameters(context, path_parameters: dict) -> st.SearchStrategy[dict]:
    return _sometimes_seeded(path_parameters)


@SCHEMA.hook
def flatmap_query(context, query: dict) -> st.SearchStrategy[dict]:
    return _sometimes_seeded(query)


def _sometimes_seeded(values: dict) -> st.SearchStrategy[dict]:
    """Return each value as generated or, as often, a seeded one of that name."""
    return st.fixed_dictionaries(
        {
            name: st.one_of(st.just(value), st.sampled_from(SEEDED[name]))
            if name in SEEDED
            else st.just(value)
            for name, value in (values or {}).items()
        }
    )


def _image(kind: str) -> bytes:
    out = io.BytesIO()
    Image.new("L", (40, 30), 255).save(out, format=kind)
    return out.getvalue()


def _files(sample: bytes) -> st.SearchStrategy[bytes]:
    """Return the sample, its magic number before junk, the sample cut short, or junk."""
    return st.one_of(
        st.just(sample),
        st.binary(max_size=64).map(lambda junk: sample[:8] + junk),
        st.integers(0, len(sample) - 1).map(lambda n: sample[:n]),
        st.binary(max_size=64),
    )


def _signed_pdfs(keys_dir: Path) -> list[bytes]:
    """Return the sample e-policy's archive copy and its encrypted customer copy, signed with test keys made
    in keys_dir."""
    init_test_keys(keys_dir)
    signer = load_pkcs12(keys_dir / "signer.p12", (keys_dir / "signer.pass").read_bytes().strip())
    copies = seal(render(EPOLICY, 1, "https://example.invalid/verify"), signer, "150013", "owner-password")
    return [copies.archive, copies.customer]


# Bodies of the media types the routes take, which parse wholly, partly or not at all. Schemathesis draws
# its explicit examples while collecting, so they are made on import.
SIGNING_KEYS = tempfile.TemporaryDirectory(prefix="imaging-fuzz-keys-")
for _media, _kind in (("image/jpeg", "JPEG"), ("image/png", "PNG"), ("image/tiff", "TIFF")):
    schemathesis.openapi.media_type(_media, _files(_image(_kind)))
schemathesis.openapi.media_type(
    "application/pdf", st.one_of(*(_files(pdf) for pdf in _signed_pdfs(Path(SIGNING_KEYS.name))))
)


def _seed(settings: Settings, conn: Redis) -> None:
    """Store what SEEDED names and lease a key-entry task to the keyer and one to the admin."""
    store = open_store(settings)
    case = put_case(store)
    people = {"policy": [POLICY], "customer": [APPLICANT, INSURED]}
    keyed = put_document(
        store, KEYED_DOC, "application_form", "new_business", people, dict.fromkeys(KEYED_FIELDS, "")
    )
    for name, kind in KEYED_FIELDS.items():
        field = keyed.fields[name]
        field.value, field.status, field.kind = None, "key_entry", kind
        field.double_entry = name == "applicant_name"
    store.put(document_key(keyed.doc_id), keyed.to_json(), "application/json")
    keyentry.add_tasks(conn, keyed, immediate=False)
    for role in (Role.keyer, Role.admin):  # a keyer holds one task at a time: one each, one left waiting
        assert keyentry.lease(conn, _key_id(KEYS[role]), seconds=600)
    png = _image("PNG")
    upload = ScanFile(sha256=store.put_original(png, "image/png"), content_type="image/png", size=len(png))
    scan = Scan(
        scan_id=SCAN_ID,
        mode=ScanMode.batch,
        files=[upload],
        uploaded_by=_key_id(SCANNER_KEY),
        uploaded_at=utcnow(),
        documents=[case["form"], keyed.doc_id],
    )
    store.put(scan.key, scan.to_json(), "application/json")
    epolicies.issue(store, conn, settings, EPOLICY)
    assert set(SEEDED["doc_id"]) == {*case.values(), keyed.doc_id}, "SEEDED must name the stored documents"


# The parameter names the object store; it also gives each operation's test its own id, which pytest 9.2
# builds from the function's name alone for schemathesis' unparametrized items.
@pytest.fixture(scope="module", params=["s3"])
def fuzzed_api(redis_srv, s3_srv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The API as a real server process on seeded data; yields its base URL."""
    settings = _settings(  # as the `settings` fixture's, for a server that outlives one test
        data_dir=tmp_path_factory.mktemp("fuzz"),
        redis_url=redis_srv.url,
        s3_endpoint=s3_srv.endpoint,
        s3_access_key="test",
        s3_secret_key="test",
        s3_bucket="fuzz" + secrets.token_hex(6),
        api_keys=API_KEYS,
        trust_roots=Path(SIGNING_KEYS.name) / "ca.pem",
        max_upload_bytes=2 * 1024 * 1024,
    )
    conn = Redis.from_url(redis_srv.url)
    conn.flushdb()
    _seed(settings, conn)
    with running_api(settings) as url:
        yield url
    conn.flushdb()
    conn.close()


def test_the_fuzzed_schema_is_the_one_the_server_publishes(fuzzed_api: str) -> None:
    with urllib.request.urlopen(fuzzed_api + "/openapi.json") as response:
        assert json.load(response) == SCHEMA.raw_schema


def _callers(case) -> list[Role]:
    """Return admin, who passes every check, and one other role the table allows, varied from case to case
    (and the same for the same case, so a failure shrinks and comes back)."""
    allowed = TABLE[(case.operation.method.lower(), case.operation.path)] or set()
    others = sorted(allowed - {Role.admin})
    if not others:
        return [Role.admin]
    seed = zlib.crc32(repr((case.path_parameters, case.query, case.body)).encode())
    return [Role.admin, others[seed % len(others)]]


def _shorten_wait(case) -> None:
    """No worker runs, so an immediate upload would hold its answer for all of `wait`: cut it to 0.2 s."""
    try:
        if float(case.query["wait"]) > 0.2:
            case.query["wait"] = 0.2
    except (KeyError, TypeError, ValueError):
        pass  # no wait, or not a number: the server refuses it


@SCHEMA.parametrize()
@hypothesis.settings(max_examples=MAX_EXAMPLES, derandomize=True, deadline=None)
def test_no_request_gets_a_server_error_or_an_undocumented_answer(case, fuzzed_api: str) -> None:
    _shorten_wait(case)
    # No worker runs here, so /readyz rightly answers its documented 503 `not_ready`: not a server error.
    checks = (
        [c for c in CHECKS if c is not not_a_server_error] if case.operation.path == "/readyz" else CHECKS
    )
    for role in _callers(case):
        hypothesis.note(f"as {role}")
        case.call_and_validate(base_url=fuzzed_api, headers={"X-API-Key": KEYS[role]}, checks=checks)
