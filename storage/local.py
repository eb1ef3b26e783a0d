"""Objects as files under one directory: the embedded default, no server needed.

Each object is one file: a JSON header line (content type, metadata, etag) and then the bytes. One
file per object makes a write atomic as a whole: it is written to a hidden temporary file in the
same directory, flushed to disk and renamed over the key (POSIX rename is atomic), so a reader sees
the old object or the new one, never half of either.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from errors import StorageUnavailable
from storage.base import ObjectInfo, ObjectNotFound, ObjectStore, check_key, check_prefix


class LocalStore(ObjectStore):
    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put(
        self,
        key: str,
        data: bytes,
        content_type: str = "application/octet-stream",
        metadata: dict[str, str] | None = None,
    ) -> ObjectInfo:
        path = self._path(key)
        etag = hashlib.md5(data, usedforsecurity=False).hexdigest()
        header = {"content_type": content_type, "metadata": dict(metadata or {}), "etag": etag}
        line = json.dumps(header, ensure_ascii=True, separators=(",", ":")).encode() + b"\n"
        tmp_name = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            with os.fdopen(fd, "wb") as out:
                out.write(line)
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp_name, path)
            tmp_name = None
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise StorageUnavailable(
                    f"local store {self.root}: the disk is full, {key} was not written "
                    "(an object already there is unchanged): free space on that filesystem"
                ) from exc
            raise StorageUnavailable(f"local store {self.root}: cannot write {key}: {exc.strerror}") from exc
        finally:
            if tmp_name:
                Path(tmp_name).unlink(missing_ok=True)
        return ObjectInfo(key, len(data), etag, content_type, dict(metadata or {}), _mtime(path))

    def _open(self, key: str):
        path = self._path(key)
        try:
            if not path.is_file():
                raise ObjectNotFound(f"no object {key}")
            return path.open("rb")
        except OSError as exc:
            raise StorageUnavailable(f"local store {self.root}: cannot read {key}: {exc.strerror}") from exc

    def _read_header(self, key: str, handle) -> tuple[dict, int]:
        line = handle.readline(1 << 20)
        try:
            return json.loads(line), len(line)
        except ValueError as exc:
            raise StorageUnavailable(f"local store: object {key} has no readable header") from exc

    def get(self, key: str) -> bytes:
        with self._open(key) as handle:
            self._read_header(key, handle)
            return handle.read()

    def stat(self, key: str) -> ObjectInfo:
        with self._open(key) as handle:
            header, offset = self._read_header(key, handle)
            size = os.fstat(handle.fileno()).st_size - offset
        return ObjectInfo(
            key, size, header["etag"], header["content_type"], header["metadata"], _mtime(self._path(key))
        )

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        check_prefix(prefix)
        # Walk only the directory the prefix names, so a listing costs what its answer holds.
        base = self.root / prefix.rsplit("/", 1)[0] if "/" in prefix else self.root
        if not base.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            rel_dir = os.path.relpath(dirpath, self.root)
            for name in sorted(filenames):
                if name.startswith("."):
                    continue  # temporary files of writes in progress
                key = name if rel_dir == "." else f"{rel_dir}/{name}"
                if key.startswith(prefix):
                    try:
                        info = self.stat(key)
                    except ObjectNotFound:
                        continue  # deleted while we walked
                    yield ObjectInfo(info.key, info.size, info.etag, modified=info.modified)

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink(missing_ok=True)
        except OSError as exc:
            raise StorageUnavailable(f"local store {self.root}: cannot delete {key}: {exc.strerror}") from exc

    def stream(self, key: str, chunk_size: int = 256 * 1024) -> Iterator[bytes]:
        handle = self._open(key)
        self._read_header(key, handle)

        def chunks() -> Iterator[bytes]:
            with handle:
                while chunk := handle.read(chunk_size):
                    yield chunk

        return chunks()

    def ping(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            if not os.access(self.root, os.W_OK):
                raise StorageUnavailable(f"local store {self.root} is not writable")
        except OSError as exc:
            raise StorageUnavailable(f"local store {self.root}: {exc.strerror}") from exc


def _mtime(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC)
