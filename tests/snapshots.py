"""Snapshots of the object store, to show that a step stored, changed or left alone what it should."""

from __future__ import annotations

from storage import ObjectStore


def snapshot(store: ObjectStore, prefix: str = "") -> dict[str, tuple[int, str]]:
    """Return {key: (size, etag)} for every object under prefix."""
    return {o.key: (o.size, o.etag) for o in store.list(prefix)}
