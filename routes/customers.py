"""The customer archive (客户档案): one person's documents as one record (indexing/archive.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

import idnumber
from errors import NotFound
from indexing.archive import Archive, ArchiveView, archive_key, load_archive, view
from indexing.links import on_business
from models import DocumentRecord, find
from people.reach import reaches
from roles import Operation, Role, identity_through
from routes.deps import Caller, ErrorBody, RedisConn, Store, checked_number, require
from routes.documents import audit_read

router = APIRouter(tags=["documents"])
Reader = Annotated[Caller, Depends(require(Operation.read_documents))]


@router.get("/v1/customers/{customer_id}", response_model=ArchiveView, responses={404: {"model": ErrorBody}})
def customer(request: Request, customer_id: str, store: Store, conn: RedisConn, who: Reader) -> ArchiveView:
    """The customer's archive: the current ID card (front and back, valid or not) and signature on top,
    the disagreements between their documents (信息核对) with their sources, every name, address, phone and
    date they gave with its source, the policies and claims they are on and as what, the superseded cards
    and signatures. Servicing and claims see it for a customer on one of their policies or claims; staff of
    a branch see it when one of the person's documents is of a branch they reach (people/reach.py). Each
    read is in the audit trail, as an image read is."""
    number = checked_number("customer_id", customer_id)
    through = identity_through(who.role)
    archive = load_archive(store, number)
    if (
        archive is None
        or (who.role != Role.admin and through and not on_business(store, through, number))
        or not _reached(store, who, archive)
    ):
        raise NotFound(f"no archive for customer {idnumber.mask(number)}")
    name = archive_key(store, number).split("/")[1]  # the keyed hash: no number in the trail
    audit_read(request, conn, who, f"{name} customer archive", [name])
    return view(archive)


def _reached(store: Store, who: Caller, archive: Archive) -> bool:
    """Whether the caller reaches, by branch, at least one of the person's documents (people/reach.py); a
    document of no branch, or with no record of its own (an e-policy's parties), holds nobody back."""
    return any(
        reaches(who, record.branch if (record := find(store, DocumentRecord, doc_id)) else None)
        for doc_id in archive.documents
    )
