"""The branch (机构) tree: a person sees the cases of their branch and of every branch below it.

The tree is written as entries ``parent:child,child``, separated by ``;`` or new lines, in
``IMAGING_BRANCHES`` or ``IMAGING_BRANCHES_FILE`` (``#`` starts a comment), e.g.
``86:8611,8612;8611:861101,861102``: the head office 86 above two branches, the first with two
sub-branches. A parent may have several entries. The tree has one root, the head office (the one code
that is nobody's child); a branch has one parent, and none is below itself. Without either setting
there is no tree: a person sees their own branch only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Protocol

from errors import ConfigError

# 机构 codes are digits in most insurers (86, 8611, 861101); letters, '-' and '_' are allowed too.
CODE = re.compile(r"[A-Za-z0-9_-]{1,32}")


@dataclass(frozen=True)
class BranchTree:
    """The branches by their parent; ``root`` is the head office (None for an empty tree). Made by
    ``parse``, which refuses cycles."""

    parents: Mapping[str, str] = field(default_factory=dict)
    root: str | None = None

    def covers(self, person_branch: str, case_branch: str) -> bool:
        """Whether a person of ``person_branch`` sees a case of ``case_branch``: the same branch, or one
        below it. A code not in the tree covers itself only."""
        return person_branch == case_branch or person_branch in self.above(case_branch)

    def above(self, branch: str) -> list[str]:
        """Return the branches above ``branch``, its parent first and the root last."""
        chain = []
        while (branch := self.parents.get(branch)) is not None:
            chain.append(branch)
        return chain

    def below(self, branch: str) -> frozenset[str]:
        """Return every branch below ``branch`` (children, their children...), not the branch itself."""
        found: list[str] = []
        todo = [branch]
        while todo:
            children = self._children.get(todo.pop(), [])
            found += children
            todo += children
        return frozenset(found)

    @cached_property
    def _children(self) -> dict[str, list[str]]:
        children: dict[str, list[str]] = {}
        for child, parent in self.parents.items():
            children.setdefault(parent, []).append(child)
        return children

    @property
    def codes(self) -> frozenset[str]:
        """Return every branch in the tree."""
        return frozenset(self.parents) | ({self.root} if self.root else frozenset())


def parse(text: str) -> BranchTree:
    """Return the tree written in ``text`` (see the module's docstring); raises ValueError naming the
    entry or branch that is wrong: a malformed entry or code, two parents, a cycle, a second root."""
    parents: dict[str, str] = {}
    named: list[str] = []
    for line in text.splitlines():
        for entry in line.split("#", 1)[0].split(";"):
            if entry.strip():
                parent, children = _entry(entry.strip())
                named.append(parent)
                for child in children:
                    if parents.get(child, parent) != parent:
                        raise ValueError(f"branch {child} is under both {parents[child]} and {parent}")
                    parents[child] = parent
    for code in parents:
        _refuse_cycle(parents, code)
    roots = sorted(dict.fromkeys(code for code in named if code not in parents))
    if len(roots) > 1:
        raise ValueError(
            f"branches {', '.join(roots)} are each under no other branch, but the tree has one root "
            "(the head office): list all but one of them as another branch's child"
        )
    return BranchTree(MappingProxyType(parents), roots[0] if roots else None)


def _entry(entry: str) -> tuple[str, list[str]]:
    parent, sep, rest = entry.partition(":")
    children = [c.strip() for c in rest.split(",") if c.strip()]
    if not sep or not children:
        raise ValueError(f"'{entry}' is not parent:child,child (e.g. 86:8611,8612)")
    for code in (parent.strip(), *children):
        if not CODE.fullmatch(code):
            raise ValueError(f"'{code}' in '{entry}' is not a branch code (letters, digits, - and _, 1-32)")
    return parent.strip(), children


def _refuse_cycle(parents: Mapping[str, str], code: str) -> None:
    path = [code]
    while (code := parents.get(code)) is not None:
        if code in path:
            loop = path[path.index(code) :] + [code]
            raise ValueError(f"branch {code} is below itself: {' > '.join(reversed(loop))} (parent > child)")
        path.append(code)


def read(text: str, file: Path | None) -> BranchTree:
    """Return the tree of IMAGING_BRANCHES and IMAGING_BRANCHES_FILE together; raises ValueError."""
    if file is not None:
        try:
            text = text + "\n" + file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"cannot read {file}: {exc.strerror}") from None
    return parse(text)


class Source(Protocol):
    """What ``tree`` reads of the settings (settings.py imports this module, so not the other way)."""

    branches: str
    branches_file: Path | None


def tree(settings: Source) -> BranchTree:
    """Return the branch tree of the settings; raises ConfigError naming the variable."""
    try:
        return read(settings.branches, settings.branches_file)
    except ValueError as exc:
        variable = "IMAGING_BRANCHES_FILE" if settings.branches_file else "IMAGING_BRANCHES"
        raise ConfigError(f"{variable}: {exc}") from None
