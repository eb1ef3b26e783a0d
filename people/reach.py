"""Which branches' cases a caller sees: their own branch and those below it, unless their role sees every
branch (roles.py ``every_branch``: admin, auditor). A case of a branch they may not see answers 404.
The one place that decides it: routes ask ``reaches``."""

from __future__ import annotations

from people.branches import BranchTree
from people.identity import Caller
from roles import every_branch


def covers(tree: BranchTree | None, person_branch: str, case_branch: str) -> bool:
    """Whether a person of ``person_branch`` sees a case of ``case_branch``: the same branch or one below.

    Below is what the branch tree says (IMAGING_BRANCHES, people/branches.py; a code not in it covers
    itself only). With no tree configured, a branch is below another when its code extends it, as 机构
    codes do (86 the head office, 8611 a province, 861101 a city under it)."""
    if tree is None or not tree.codes:
        return case_branch.startswith(person_branch)
    return tree.covers(person_branch, case_branch)


def sees_every_branch(who: Caller) -> bool:
    """Whether the caller sees every branch: a bootstrap key (the root) or a role with that reach."""
    return who.branch is None or every_branch(who.role)


def reaches(who: Caller, case_branch: str | None) -> bool:
    """Whether the caller may see a case uploaded by ``case_branch``. A case with no branch (uploaded
    before branches, or with a bootstrap key of IMAGING_API_KEYS; an e-policy from the sale system) is
    not held back by branch; the bootstrap keys stand at the root of the tree and see every branch."""
    return case_branch is None or sees_every_branch(who) or covers(who.tree, who.branch, case_branch)
