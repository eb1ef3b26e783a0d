"""Objects in an S3-compatible bucket through the ``minio`` client (MinIO in production).

This is the only module that imports ``minio``. Metadata values travel as ``x-amz-meta-*`` HTTP
headers, which must be ASCII, so they are percent-encoded here and decoded on the way back.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import quote, unquote

import urllib3
from minio import Minio
from minio.error import MinioException, S3Error
from minio.sse import SseKMS, SseS3

from errors import StorageUnavailable
from storage.base import ObjectInfo, ObjectNotFound, ObjectStore, check_key, check_prefix

_MISSING = {"NoSuchKey", "NoSuchObject", "ResourceNotFound"}
_META = "x-amz-meta-"


class S3Store(ObjectStore):
    name = "s3"

    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        secure: bool = False,
        region: str | None = None,
        connect_timeout: float = 3.0,
        read_timeout: float = 60.0,
        sse: str = "",
    ) -> None:
        # Few, quick retries: a store that is down must surface as StorageUnavailable within seconds,
        # so the job is rescheduled with backoff and /healthz answers while the store is away.
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
            retries=urllib3.Retry(total=2, backoff_factor=0.2, status_forcelist=(500, 502, 503, 504)),
            maxsize=16,
        )
        self.endpoint = endpoint
        self.bucket = bucket
        self.client = Minio(
            endpoint,
            access_key=access_key,
            secret_key=secret_key,
            secure=secure,
            region=region,
            http_client=http,
        )
        self._bucket_ready = False
        # Server-side encryption of every object written: "s3" (keys held by the store, SSE-S3) or
        # "kms:<key id>" (the store's KMS, SSE-KMS, which minio sends over TLS only); "" for none.
        self.sse = SseS3() if sse == "s3" else SseKMS(sse.removeprefix("kms:"), {}) if sse else None

    def _unavailable(self, action: str, key: str, exc: Exception) -> StorageUnavailable:
        return StorageUnavailable(f"S3 store {self.endpoint}/{self.bucket}: cannot {action} {key}: {exc}")

    def _ensure_bucket(self) -> None:
        if self._bucket_ready:
            return
        try:
            if not self.client.bucket_exists(self.bucket):
                try:
                    self.client.make_bucket(self.bucket)
                except S3Error as exc:
                    if exc.code not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                        raise
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise self._unavailable("create bucket", self.bucket, exc) from exc
        self._bucket_ready = True

    def put(
        self,
        key: str,
        data: bytes,
        content_type: str = "application/octet-stream",
        metadata: dict[str, str] | None = None,
    ) -> ObjectInfo:
        check_key(key)
        self._ensure_bucket()
        meta = {k: quote(str(v), safe="") for k, v in (metadata or {}).items()}
        try:
            result = self.client.put_object(
                self.bucket,
                key,
                io.BytesIO(data),
                len(data),
                content_type=content_type,
                metadata=meta,
                sse=self.sse,
            )
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise self._unavailable("write", key, exc) from exc
        return ObjectInfo(key, len(data), (result.etag or "").strip('"'), content_type, dict(metadata or {}))

    def _call(self, action: str, key: str, fn):
        self._ensure_bucket()
        try:
            return fn()
        except S3Error as exc:
            if exc.code in _MISSING:
                raise ObjectNotFound(f"no object {key}") from None
            raise self._unavailable(action, key, exc) from exc
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise self._unavailable(action, key, exc) from exc

    def get(self, key: str) -> bytes:
        check_key(key)

        def read() -> bytes:
            response = self.client.get_object(self.bucket, key)
            try:
                return response.read()
            finally:
                response.close()
                response.release_conn()

        return self._call("read", key, read)

    def stat(self, key: str) -> ObjectInfo:
        check_key(key)
        obj = self._call("stat", key, lambda: self.client.stat_object(self.bucket, key))
        metadata = {
            name[len(_META) :].lower(): unquote(value)
            for name, value in (obj.metadata or {}).items()
            if name.lower().startswith(_META)
        }
        return ObjectInfo(
            key,
            obj.size or 0,
            (obj.etag or "").strip('"'),
            obj.content_type or "application/octet-stream",
            metadata,
            obj.last_modified,
        )

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        check_prefix(prefix)
        self._ensure_bucket()
        try:
            for obj in self.client.list_objects(self.bucket, prefix=prefix or None, recursive=True):
                yield ObjectInfo(
                    obj.object_name, obj.size or 0, (obj.etag or "").strip('"'), modified=obj.last_modified
                )
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise self._unavailable("list", prefix or "/", exc) from exc

    def delete(self, key: str) -> None:
        check_key(key)
        self._call("delete", key, lambda: self.client.remove_object(self.bucket, key))

    def stream(self, key: str, chunk_size: int = 256 * 1024) -> Iterator[bytes]:
        check_key(key)
        response = self._call("read", key, lambda: self.client.get_object(self.bucket, key))

        def chunks() -> Iterator[bytes]:
            try:
                yield from response.stream(chunk_size)
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                raise self._unavailable("read", key, exc) from exc
            finally:
                response.close()
                response.release_conn()

        return chunks()

    def ping(self) -> None:
        self._bucket_ready = False
        self._ensure_bucket()

    def presigned_url(self, key: str, expires_seconds: int = 300) -> str | None:
        check_key(key)
        return self._call(
            "sign a URL for",
            key,
            lambda: self.client.presigned_get_object(
                self.bucket, key, expires=timedelta(seconds=expires_seconds)
            ),
        )
