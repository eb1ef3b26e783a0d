"""The object store: one interface, two backends (S3 through minio, a local directory)."""

from __future__ import annotations

from settings import Settings
from storage.base import (
    ORIGINALS,
    BadKey,
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    check_key,
    check_prefix,
)
from storage.local import LocalStore


def open_store(settings: Settings) -> ObjectStore:
    """Return the S3 store if an endpoint is set, else the local directory store under the data dir."""
    store = _backend(settings)
    store.name_key = settings.index_key()
    return store


def _backend(settings: Settings) -> ObjectStore:
    if settings.s3_endpoint:
        from storage.s3 import S3Store  # minio is imported only when S3 is configured

        return S3Store(
            settings.s3_endpoint,
            settings.s3_access_key,
            settings.s3_secret_key.get_secret_value(),
            settings.s3_bucket,
            secure=settings.s3_secure,
            region=settings.s3_region,
            sse=settings.s3_sse,
        )
    return LocalStore(settings.objects_dir)


__all__ = [
    "ORIGINALS",
    "BadKey",
    "LocalStore",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectStore",
    "check_key",
    "check_prefix",
    "open_store",
]
