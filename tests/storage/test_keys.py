"""Nothing a user sends can steer an object key outside its prefix: property-based, over any text."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.exceptions import HTTPException

from indexing.index import valid_number
from models import document_key, scan_key
from routes.deps import checked_number
from storage import BadKey, LocalStore, check_key

# Text that leans towards what breaks paths: separators, dots, NUL, backslashes, other scripts' digits.
PIECES = [*"./\\\0 %-_AZaz09X١٣０１\u202e\n", "..", "../", "%2e", "TB2026", "110105198703150013", "scans"]
hostile = st.lists(st.sampled_from(PIECES), max_size=12).map("".join) | st.text(max_size=40)


@settings(max_examples=400, derandomize=True, database=None)
@given(name=st.sampled_from(["policy_no", "claim_no", "customer_id"]), raw=hostile)
def test_a_number_that_passes_the_api_check_is_one_plain_path_segment(name: str, raw: str) -> None:
    try:
        value = checked_number(name, raw)
    except HTTPException as refused:
        assert refused.status_code == 422
        return
    assert set(value) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")
    assert "/" not in value and ".." not in value and value == value.strip()
    kind = {"policy_no": "policy", "claim_no": "claim", "customer_id": "customer"}[name]
    assert valid_number(kind, value)


@settings(max_examples=400, derandomize=True, database=None)
@given(key=hostile)
def test_a_key_the_store_accepts_stays_under_its_root(tmp_path_factory, key: str) -> None:
    root = tmp_path_factory.getbasetemp() / "objects"
    try:
        check_key(key)
    except BadKey:
        return
    path = LocalStore(root)._path(key).resolve()
    assert path.is_relative_to(root.resolve()), key


@settings(max_examples=200, derandomize=True, database=None)
@given(ident=hostile)
def test_keys_built_from_ids_are_checked_before_use(ident: str) -> None:
    for key in (scan_key(ident), document_key(ident)):
        try:
            check_key(key)
        except BadKey:
            continue
        assert Path(key).parts[0] in ("scans", "documents") and ".." not in Path(key).parts
