"""Known customer addresses: each e-mail address a customer gave on an e-policy, with the people and the
policies it belongs to, so that mail from it can be taken in (intake/take.py).

``contacts/<HMAC of the address>.json``: the address is personal, so it is named by the store's keyed
hash, as ID numbers are. Written as each e-policy version is issued (worker.issue_epolicy); e-policies
issued before this version of the service have no contact until they are issued again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager

from pydantic import BaseModel, Field

from models import read
from storage import ObjectNotFound, ObjectStore

Lock = Callable[[str], AbstractContextManager]


class Contact(BaseModel):
    schema_: int = Field(1, alias="schema")
    email: str
    customers: list[str] = Field(default_factory=list, description="identity numbers of its people")
    policies: list[str] = Field(default_factory=list, description="the policies it was given on")

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True, indent=1).encode()


def normalised(address: str) -> str:
    return address.strip().lower()


def contact_key(store: ObjectStore, address: str) -> str:
    return f"contacts/{store.private_name('mail:' + normalised(address))}.json"


def find_contact(store: ObjectStore, address: str) -> Contact | None:
    """Return what is known of an address, or None when no customer gave it."""
    try:
        return read(store, Contact, contact_key(store, address))
    except ObjectNotFound:
        return None


def note(store: ObjectStore, address: str, customer: str, policy_no: str, lock: Lock | None = None) -> None:
    """Record that a customer gave this address on a policy (written only when it adds something)."""
    lock = lock or (lambda _key: contextlib.nullcontext())
    key = contact_key(store, address)
    with lock(key):
        known = find_contact(store, address) or Contact(email=normalised(address))
        update = {
            "customers": sorted({*known.customers, customer}),
            "policies": sorted({*known.policies, policy_no}),
        }
        if known.model_copy(update=update) != known:
            store.put(key, known.model_copy(update=update).to_json(), "application/json")
