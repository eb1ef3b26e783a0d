"""`imaging migrate`: every stored record of an older schema rewritten at this code's, with the steps in
``models.UPGRADES`` (the same steps upgrade a record whenever it is read, so migrating is for the store's
sake, not for the code's: old records are never a problem to read, only a cost)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

from errors import CorruptObject
from models import DocumentRecord, EPolicy, Mail, Scan
from storage import ObjectStore

log = logging.getLogger("imaging.migrations")


@dataclass
class MigrationReport:
    records: int = 0
    upgraded: list[str] = field(default_factory=list)
    newer: list[str] = field(default_factory=list)  # written by a newer version: left alone
    unreadable: list[str] = field(default_factory=list)  # key and why


KINDS = [
    ("scans/", ".json", Scan),
    ("documents/", "/record.json", DocumentRecord),
    ("mail/", ".json", Mail),
    ("epolicies/", "/policy.json", EPolicy),
]


def migrate(store: ObjectStore, dry_run: bool = False) -> MigrationReport:
    """Return what was found after rewriting every stored record of an older schema at this code's own
    (with its object metadata). Running it again finds nothing to do."""
    report = MigrationReport()
    for prefix, suffix, model in KINDS:
        for info in store.list(prefix):
            if not info.key.endswith(suffix) or (suffix == ".json" and info.key.count("/") != 1):
                continue
            report.records += 1
            try:
                data = store.get(info.key)
                version = json.loads(data).get("schema", 1)
                if version > model.current_schema():
                    report.newer.append(info.key)
                    continue
                if version == model.current_schema():
                    continue
                record = model.from_stored(data, info.key)
            except (ValueError, AttributeError, CorruptObject) as exc:
                report.unreadable.append(f"{info.key}: {getattr(exc, 'message', exc)}")
                continue
            if not dry_run:
                meta = store.stat(info.key).metadata
                store.put(info.key, record.to_json(), "application/json", meta or None)
                log.info("%s upgraded from schema %s to %s", info.key, version, model.current_schema())
            report.upgraded.append(info.key)
    return report
