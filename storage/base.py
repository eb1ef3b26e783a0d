"""The object store interface every room uses; backends live beside it."""

from __future__ import annotations

import hashlib
import hmac
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from errors import BadInput, ConfigError, CorruptObject, NotFound

# A key is slash-separated segments of safe characters; no segment may be empty or start with a dot,
# so no user input can climb out of its prefix (``..``) or hide next to a backend's own files.
_SEGMENT = r"[A-Za-z0-9_\-][A-Za-z0-9_.\-@=+]{0,199}"
KEY_PATTERN = re.compile(rf"^{_SEGMENT}(/{_SEGMENT}){{0,15}}$")
SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")
ORIGINALS = "originals/"


class ObjectNotFound(NotFound):
    """No object under that key."""

    error = "object_not_found"


class BadKey(BadInput):
    """A key that does not fit KEY_PATTERN; a bug or hostile input, never stored."""

    error = "bad_key"


def check_key(key: str) -> str:
    """Return the key unchanged if it is safe; raise BadKey otherwise."""
    if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
        raise BadKey(f"object key {key!r} is not allowed")
    return key


def check_prefix(prefix: str) -> str:
    """Return a listing prefix if it is a safe key or a safe key followed by '/', or ''."""
    if prefix and not (prefix.endswith("/") and check_key(prefix[:-1])) and not check_key(prefix):
        raise BadKey(f"prefix {prefix!r} is not allowed")
    return prefix


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str
    content_type: str = "application/octet-stream"
    metadata: dict[str, str] = field(default_factory=dict)
    modified: datetime | None = None


class ObjectStore(ABC):
    """Put, get, stat, list, delete and serve objects by key.

    Every method raises ``StorageUnavailable`` when the backend is away (retry later),
    ``ObjectNotFound`` for a missing key and ``BadKey`` for an unsafe key.
    """

    name: str = "store"
    # The secret that names personal numbers in keys (set by open_store from IMAGING_INDEX_SECRET).
    name_key: bytes | None = None

    def private_name(self, value: str) -> str:
        """Return the name a personal number (an ID number) takes in object keys: an HMAC-SHA256 under
        the store's naming key, 128 bits in hex, so directory listings and S3 access logs never show the
        number while a lookup by number still finds its objects."""
        if not self.name_key:
            raise ConfigError("the object store has no naming key for ID numbers (IMAGING_INDEX_SECRET)")
        return hmac.new(self.name_key, value.encode(), hashlib.sha256).hexdigest()[:32]

    @abstractmethod
    def put(
        self,
        key: str,
        data: bytes,
        content_type: str = "application/octet-stream",
        metadata: dict[str, str] | None = None,
    ) -> ObjectInfo:
        """Return the info of the object now stored whole under key (atomically replaced)."""

    @abstractmethod
    def get(self, key: str) -> bytes:
        """Return the object's bytes."""

    @abstractmethod
    def stat(self, key: str) -> ObjectInfo:
        """Return the object's size, etag, content type and metadata."""

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Yield every object whose key starts with prefix, in key order (metadata not filled in)."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object; removing a missing key is not an error."""

    @abstractmethod
    def stream(self, key: str, chunk_size: int = 256 * 1024) -> Iterator[bytes]:
        """Yield the object's bytes in chunks, for serving without holding it whole."""

    @abstractmethod
    def ping(self) -> None:
        """Return if the backend answers; raise StorageUnavailable otherwise."""

    def presigned_url(self, key: str, expires_seconds: int = 300) -> str | None:
        """Return a short-lived URL a browser may fetch directly, or None if the backend has none."""
        return None

    def exists(self, key: str) -> bool:
        """Return True if an object is stored under key."""
        try:
            self.stat(key)
        except ObjectNotFound:
            return False
        return True

    def put_original(self, data: bytes, content_type: str, metadata: dict[str, str] | None = None) -> str:
        """Return the SHA-256 of data after storing it under originals/<sha256> (once, whatever the calls)."""
        digest = hashlib.sha256(data).hexdigest()
        key = ORIGINALS + digest
        if not self.exists(key):
            self.put(key, data, content_type, {**(metadata or {}), "sha256": digest})
        return digest

    def get_original(self, digest: str) -> bytes:
        """Return the original's bytes after checking they still hash to digest."""
        if not SHA256_PATTERN.fullmatch(digest):
            raise BadKey(f"{digest!r} is not a SHA-256 hex digest")
        data = self.get(ORIGINALS + digest)
        actual = hashlib.sha256(data).hexdigest()
        if actual != digest:
            raise CorruptObject(
                f"originals/{digest} hashes to {actual}: the stored copy is damaged; restore it from backup"
            )
        return data
