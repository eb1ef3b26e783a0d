"""Roles: which operations each may call and which documents each sees. A new role is one row.

Every route names its operation (``routes/deps.py`` ``require``); the table below says which roles may
call it. What a reader sees of the documents follows its stages, and for identity documents (ID card
sides, signatures) the link of the customer to a policy or a claim (``indexing/access.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from vocabulary import Stage


class Role(StrEnum):
    scanner = "scanner"
    keyer = "keyer"
    underwriter = "underwriter"
    servicing = "servicing"
    claims = "claims"
    sales = "sales"  # the sale system: issues e-policies
    admin = "admin"
    auditor = "auditor"  # reads the audit trail: who saw or changed what
    manager = "manager"  # reads the figures of their branch and those below it (figures.py)


class Operation(StrEnum):
    upload_scans = "upload_scans"  # store scans and queue their capture; a scan's own status
    key_fields = "key_fields"  # lease, key and view the fields OCR could not prove
    read_documents = "read_documents"  # documents, images, customers' ID cards and signatures
    download_originals = "download_originals"  # a document's original upload, as the scanner sent it
    link_customers = "link_customers"  # put a customer on a policy or claim (indexing/links.py)
    read_access_log = "read_access_log"
    issue_epolicies = "issue_epolicies"
    read_epolicies = "read_epolicies"  # status, the staff's PDF, resend
    verify_pdfs = "verify_pdfs"
    manage_jobs = "manage_jobs"  # the failed registry, requeue
    review_cases = "review_cases"  # decide a case's reviews: a card of no party, a keyed conflict
    read_health = "read_health"  # which part of the service is down, and why (internal addresses)
    manage_people = "manage_people"  # staff accounts, their roles, API tokens (people/)
    read_audit = "read_audit"  # the audit trail (people/audit.py)
    read_values = "read_values"  # a document's trusted values, for core systems (/v1/documents/{id}/values)
    see_figures = "see_figures"  # the managers' figures per branch and day (figures.py, /figures)
    read_claims = "read_claims"  # a claim's material, checklist and invoices' total (indexing/claim.py)


@dataclass(frozen=True)
class Row:
    operations: frozenset[Operation]
    stages: frozenset[Stage] = frozenset()  # the stages whose documents the role sees
    # For servicing and claims: identity documents of customers filed under a number of this kind.
    identity_through: str | None = None
    # Sees every branch's cases, not only the person's own branch and those below it (people/reach.py).
    every_branch: bool = False


def _ops(*ops: Operation) -> frozenset[Operation]:
    return frozenset(ops)


# Verifying a PDF is for the staff who handle customers' e-policies, not for scanners and keyers: it runs
# pyHanko on anyone's file (in a limited child process, esign/verify.py), so it is offered only where needed.
TABLE: dict[Role, Row] = {
    Role.scanner: Row(_ops(Operation.upload_scans)),
    Role.keyer: Row(_ops(Operation.key_fields)),
    Role.underwriter: Row(
        _ops(
            Operation.read_documents,
            Operation.download_originals,
            Operation.read_epolicies,
            Operation.verify_pdfs,
            Operation.review_cases,
            Operation.read_values,
        ),
        frozenset({Stage.new_business, Stage.underwriting}),
    ),
    Role.servicing: Row(
        _ops(
            Operation.read_documents,
            Operation.read_epolicies,
            Operation.verify_pdfs,
            Operation.link_customers,
            Operation.read_values,
        ),
        frozenset({Stage.servicing}),
        "policy",
    ),
    Role.claims: Row(
        _ops(
            Operation.read_documents,
            Operation.download_originals,
            Operation.verify_pdfs,
            Operation.link_customers,
            Operation.read_claims,
            Operation.read_values,
        ),
        frozenset({Stage.claims}),
        "claim",
    ),
    # The sale system sees the first version it issued (new business), not later endorsements.
    Role.sales: Row(
        _ops(Operation.issue_epolicies, Operation.read_epolicies, Operation.verify_pdfs),
        frozenset({Stage.new_business}),
    ),
    # An admin manages people and the service but keys nothing (separation of duties: whoever can make
    # accounts and tokens must not also type the values they would then be trusted for).
    Role.admin: Row(frozenset(Operation) - {Operation.key_fields}, frozenset(Stage), every_branch=True),
    Role.auditor: Row(_ops(Operation.read_audit), every_branch=True),
    Role.manager: Row(_ops(Operation.see_figures)),
}


def may(role: Role, operation: Operation) -> bool:
    """Whether the role may call the operation."""
    return operation in TABLE[role].operations


def allowed_roles(operation: Operation) -> list[Role]:
    """Return the roles that may call the operation, in the table's order."""
    return [role for role, row in TABLE.items() if operation in row.operations]


def stages(role: Role) -> frozenset[Stage]:
    """Return the stages whose documents the role sees for their stage alone."""
    return TABLE[role].stages


def every_branch(role: Role) -> bool:
    """Whether the role sees the cases of every branch (otherwise its own and those below it)."""
    return TABLE[role].every_branch


def identity_through(role: Role) -> str | None:
    """Return the kind of number (policy, claim) through which the role sees customers' identity documents."""
    return TABLE[role].identity_through
