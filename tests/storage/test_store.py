"""The object store interface, on the local directory and on a real S3 server (SeaweedFS)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from errors import CorruptObject, StorageUnavailable
from storage import BadKey, LocalStore, ObjectNotFound, ObjectStore
from storage.s3 import S3Store
from supervisor import free_port


def test_put_then_get_stat_returns_bytes_type_and_unicode_metadata(store: ObjectStore) -> None:
    info = store.put(
        "documents/d1/record.json", b'{"a": 1}', "application/json", {"holder": "张三", "n": "7"}
    )
    assert info.size == 8
    assert store.get("documents/d1/record.json") == b'{"a": 1}'
    stat = store.stat("documents/d1/record.json")
    assert (stat.size, stat.content_type) == (8, "application/json")
    assert stat.metadata == {"holder": "张三", "n": "7"}
    assert stat.etag == hashlib.md5(b'{"a": 1}').hexdigest()


def test_put_replaces_the_whole_object(store: ObjectStore) -> None:
    store.put("k/a", b"first version, longer")
    store.put("k/a", b"second")
    assert store.get("k/a") == b"second"
    assert store.stat("k/a").size == 6


def test_list_by_prefix_returns_only_that_prefix_in_key_order(store: ObjectStore) -> None:
    for key in [
        "index/policy/P2/d2",
        "index/policy/P1/d9",
        "index/policy/P1/d1",
        "index/claim/C1/d1",
        "other",
    ]:
        store.put(key, key.encode())
    keys = [o.key for o in store.list("index/policy/P1/")]
    assert keys == ["index/policy/P1/d1", "index/policy/P1/d9"]
    assert [o.size for o in store.list("index/policy/P1/")] == [18, 18]
    assert len(list(store.list("index/"))) == 4
    assert list(store.list("nothing/")) == []


def test_missing_object_raises_not_found_and_delete_is_idempotent(store: ObjectStore) -> None:
    with pytest.raises(ObjectNotFound):
        store.get("absent/key")
    with pytest.raises(ObjectNotFound):
        store.stat("absent/key")
    assert not store.exists("absent/key")
    store.put("present/key", b"x")
    store.delete("present/key")
    store.delete("present/key")
    assert not store.exists("present/key")


def test_stream_yields_the_object_in_chunks(store: ObjectStore) -> None:
    data = os.urandom(700_000)
    store.put("big/blob", data, "application/octet-stream")
    chunks = list(store.stream("big/blob", chunk_size=256 * 1024))
    assert b"".join(chunks) == data
    assert len(chunks) >= 3


@pytest.mark.parametrize(
    "key", ["../etc/passwd", "a/../../b", "/abs", "a//b", ".hidden", "a/.tmp", "", "a b", "a\\b"]
)
def test_unsafe_keys_are_refused_before_reaching_the_backend(store: ObjectStore, key: str) -> None:
    with pytest.raises(BadKey):
        store.put(key, b"x")
    with pytest.raises(BadKey):
        store.get(key)


def test_originals_are_content_addressed_stored_once_and_verified(store: ObjectStore) -> None:
    data = b"%PDF-1.7 scanned stack"
    digest = store.put_original(data, "application/pdf")
    assert digest == hashlib.sha256(data).hexdigest()
    first = store.stat("originals/" + digest)
    assert store.put_original(data, "application/pdf") == digest
    assert store.stat("originals/" + digest).modified == first.modified  # not written again
    assert store.get_original(digest) == data


def test_a_damaged_original_is_detected_when_read(store: ObjectStore) -> None:
    digest = store.put_original(b"original bytes", "image/png")
    store.put("originals/" + digest, b"other bytes", "image/png")  # bit rot, or someone overwrote it
    with pytest.raises(CorruptObject, match=digest):
        store.get_original(digest)


def test_local_write_that_fails_midway_leaves_no_object_and_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalStore(tmp_path / "objects")
    store.put("scans/s1.json", b"old")

    def crash(src: str, dst: str) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(StorageUnavailable, match="Input/output error"):
        store.put("scans/s1.json", b"new")
    with pytest.raises(StorageUnavailable):
        store.put("scans/s2.json", b"new")
    monkeypatch.undo()
    assert store.get("scans/s1.json") == b"old"
    assert not store.exists("scans/s2.json")
    assert sorted(p.name for p in (tmp_path / "objects" / "scans").iterdir()) == ["s1.json"]


def test_local_store_ignores_temporary_files_of_writes_in_progress(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "objects")
    store.put("a/b", b"1")
    (tmp_path / "objects" / "a" / ".b.x1y2.tmp").write_bytes(b"half")
    assert [o.key for o in store.list("a/")] == ["a/b"]


def test_s3_store_creates_its_bucket_on_first_use(s3_store: S3Store) -> None:
    assert not s3_store.client.bucket_exists(s3_store.bucket)
    s3_store.put("first/object", b"1")
    assert s3_store.client.bucket_exists(s3_store.bucket)


def test_s3_store_that_is_unreachable_raises_storage_unavailable() -> None:
    store = S3Store(f"127.0.0.1:{free_port()}", "k", "s", "nobucket", connect_timeout=0.5)
    with pytest.raises(StorageUnavailable, match="cannot"):
        store.put("a/b", b"x")
    with pytest.raises(StorageUnavailable):
        store.ping()


def test_s3_presigned_url_serves_the_object_without_credentials(s3_store: S3Store) -> None:
    import urllib.request

    s3_store.put("documents/d1/pages/1.png", b"\x89PNG fake", "image/png")
    url = s3_store.presigned_url("documents/d1/pages/1.png", 60)
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.read() == b"\x89PNG fake"


def test_local_store_has_no_presigned_url(tmp_path: Path) -> None:
    assert LocalStore(tmp_path).presigned_url("a/b") is None


def test_objects_are_encrypted_at_rest_by_the_s3_server_when_asked(s3_srv, bucket: str) -> None:
    from storage.s3 import S3Store

    plain = S3Store(s3_srv.endpoint, "test", "test", bucket)
    sealed = S3Store(s3_srv.endpoint, "test", "test", bucket, sse="s3")
    plain.put("a/plain", b"x")
    sealed.put("a/sealed", b"secret page")
    assert sealed.get("a/sealed") == b"secret page"
    headers = {k.lower(): v for k, v in sealed.client.stat_object(bucket, "a/sealed").metadata.items()}
    assert headers.get("x-amz-server-side-encryption") == "AES256"
    plain_headers = {k.lower(): v for k, v in plain.client.stat_object(bucket, "a/plain").metadata.items()}
    assert "x-amz-server-side-encryption" not in plain_headers
