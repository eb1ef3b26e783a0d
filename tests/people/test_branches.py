"""The branch tree: a person sees their branch and every branch below it; a tree that is not one (a cycle,
two parents, two roots) stops start-up with the branch named. Properties over generated trees."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from errors import ConfigError
from people import branches
from people.branches import BranchTree, parse
from settings import Settings, load_settings

CODES = st.from_regex(r"[A-Za-z0-9_-]{1,6}", fullmatch=True)


@st.composite
def trees(draw: st.DrawFn) -> tuple[list[str], dict[str, str], str]:
    """Return (codes, {child: parent}, the tree written as text): the first code is the root, every later
    one hangs under an earlier one; children of one parent may be split over several entries, in any
    order, separated by ';' or new lines, with spaces and comments."""
    codes = draw(st.lists(CODES, min_size=2, max_size=25, unique=True))
    parents = {codes[i]: codes[draw(st.integers(0, i - 1))] for i in range(1, len(codes))}
    entries = []
    for parent in dict.fromkeys(parents.values()):
        children = [c for c, p in parents.items() if p == parent]
        cut = draw(st.integers(1, len(children)))
        for part in (children[:cut], children[cut:]):
            if part:
                entries.append(f"{parent}: {' , '.join(part)}")
    entries = draw(st.permutations(entries))
    separators = st.sampled_from([";", "\n", " # a comment\n", " ;; "])
    text = "".join(entry + draw(separators) for entry in entries)
    return codes, parents, text


def _above_or_self(parents: dict[str, str], code: str) -> list[str]:
    chain = [code]
    while chain[-1] in parents:
        chain.append(parents[chain[-1]])
    return chain


@settings(max_examples=60, deadline=None)
@given(trees())
def test_a_written_tree_reads_back_as_generated(tree: tuple) -> None:
    codes, parents, text = tree
    parsed = parse(text)
    assert dict(parsed.parents) == parents and parsed.root == codes[0]
    assert parsed.codes == set(codes)


@settings(max_examples=60, deadline=None)
@given(trees())
def test_a_branch_covers_exactly_itself_and_the_branches_below_it(tree: tuple) -> None:
    codes, parents, text = tree
    parsed = parse(text)
    for person in codes:
        below = {case for case in codes if case != person and person in _above_or_self(parents, case)}
        assert parsed.below(person) == below
        for case in codes:
            assert parsed.covers(person, case) == (case == person or case in below)
    assert all(parsed.covers(codes[0], case) for case in codes)  # the head office sees every branch


@settings(max_examples=60, deadline=None)
@given(trees(), st.data())
def test_covering_is_a_partial_order(tree: tuple, data: st.DataObject) -> None:
    codes, _, text = tree
    parsed = parse(text)
    a, b, c = (data.draw(st.sampled_from(codes)) for _ in range(3))
    if parsed.covers(a, b) and parsed.covers(b, c):
        assert parsed.covers(a, c)
    if parsed.covers(a, b) and parsed.covers(b, a):
        assert a == b


@settings(max_examples=60, deadline=None)
@given(trees())
def test_a_code_outside_the_tree_covers_itself_only(tree: tuple) -> None:
    codes, _, text = tree
    parsed = parse(text)
    stranger = "X" * 7  # longer than any generated code
    assert parsed.covers(stranger, stranger) and parsed.below(stranger) == frozenset()
    assert not any(parsed.covers(stranger, c) or parsed.covers(c, stranger) for c in codes)


@settings(max_examples=60, deadline=None)
@given(trees(), st.data())
def test_the_head_office_put_under_one_of_its_branches_is_a_cycle(tree: tuple, data: st.DataObject) -> None:
    codes, _, text = tree
    below = data.draw(st.sampled_from(codes))
    with pytest.raises(ValueError, match=r"is below itself: .* \(parent > child\)") as refused:
        parse(f"{text};{below}:{codes[0]}")
    assert f"{below} > {codes[0]}" in str(refused.value)


@settings(max_examples=60, deadline=None)
@given(trees(), st.data())
def test_a_branch_with_a_second_parent_is_refused(tree: tuple, data: st.DataObject) -> None:
    codes, parents, text = tree
    child = data.draw(st.sampled_from(codes[1:]))
    other = data.draw(st.sampled_from([c for c in codes if c not in (child, parents[child])] or ["Z" * 7]))
    with pytest.raises(ValueError, match=f"branch {child} is under both {parents[child]} and {other}"):
        parse(f"{text}\n{other}:{child}")


@settings(max_examples=60, deadline=None)
@given(trees())
def test_a_second_head_office_is_refused(tree: tuple) -> None:
    codes, _, text = tree
    with pytest.raises(ValueError, match="are each under no other branch, but the tree has one root"):
        parse(f"{text};{'Y' * 7}:{'Z' * 7}")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("86AB:;,# \n\t-_x(")))
def test_any_text_reads_as_a_tree_or_fails_with_a_message(text: str) -> None:
    try:
        parsed = parse(text)
    except ValueError as exc:
        assert str(exc)
    else:
        assert isinstance(parsed, BranchTree)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("86:8611;8611:86", "branch 8611 is below itself: 8611 > 86 > 8611 (parent > child)"),
        ("86:86", "branch 86 is below itself: 86 > 86"),
        ("86:8611;87:8711", "branches 86, 87 are each under no other branch"),
        ("86:8611;87:8611", "branch 8611 is under both 86 and 87"),
        ("86", "'86' is not parent:child,child"),
        ("86:", "'86:' is not parent:child,child"),
        ("86:86 11", "'86 11' in '86:86 11' is not a branch code"),
    ],
)
def test_a_tree_that_is_not_one_stops_start_up_naming_the_branch(
    monkeypatch: pytest.MonkeyPatch, text: str, message: str
) -> None:
    monkeypatch.setenv("IMAGING_BRANCHES", text)
    with pytest.raises(ConfigError) as refused:
        load_settings()
    assert str(refused.value).startswith(f"IMAGING_BRANCHES: {message}")


def test_the_tree_may_come_from_a_file_beside_the_setting(tmp_path: Path) -> None:
    written = tmp_path / "branches.txt"
    written.write_text("# 总公司 and its branches\n86: 8611, 8612   # 北京, 上海\n\n8611: 861101\n")
    tree = branches.tree(Settings(branches_file=written, branches="8612:861201"))
    assert tree.root == "86" and tree.below("86") == {"8611", "8612", "861101", "861201"}
    assert tree.covers("8611", "861101") and not tree.covers("8611", "861201")
    written.write_text("86:8611\n87:8612\n")  # changed after start-up: tree() names the file
    with pytest.raises(ConfigError, match="IMAGING_BRANCHES_FILE: branches 86, 87"):
        branches.tree(Settings.model_construct(branches="", branches_file=written))


def test_a_file_that_is_not_a_tree_stops_start_up_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written = tmp_path / "branches.txt"
    written.write_text("86:8611\n8611:861101\n861101:86\n")
    monkeypatch.setenv("IMAGING_BRANCHES_FILE", str(written))
    with pytest.raises(ConfigError, match="^IMAGING_BRANCHES_FILE: branch .* is below itself"):
        load_settings()


def test_without_a_tree_a_person_sees_their_own_branch_only() -> None:
    tree = branches.tree(Settings())
    assert tree.root is None and tree.codes == frozenset()
    assert tree.covers("8611", "8611") and not tree.covers("86", "8611")
