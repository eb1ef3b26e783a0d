"""The house rules, read from the source: no import circle, each room imports only what it may, no long
function, one definition of each shared word. A change that breaks one fails here, naming the place."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.conftest import ROOT

SKIP = {".venv", "tests", "bench", "build", ".git"}


def _modules() -> dict[str, Path]:
    """Return the project's modules by dotted name (tests and benchmarks aside)."""
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT).parts
        if parts[0] in SKIP or any(p.startswith(".") for p in parts):
            continue
        name = ".".join(parts)[: -len(".py")]
        found[name.removesuffix(".__init__")] = path
    return found


MODULES = _modules()


def _imports(path: Path) -> set[str]:
    """Return every module name imported anywhere in the file, function-level imports included."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def _project_imports(name: str) -> set[str]:
    """Return the project modules a module imports (a package's __init__ counts as the package)."""
    return {n for n in _imports(MODULES[name]) if n in MODULES and n != name}


def _cycle() -> list[str] | None:
    graph = {name: _project_imports(name) for name in MODULES}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_module_imports_itself_back_through_others():
    assert _cycle() is None, f"import circle: {' -> '.join(_cycle() or [])}"


# room: module prefixes it must not import (third-party libraries and project rooms alike)
FORBIDDEN = {
    "capture": ("storage", "redis", "rq", "fastapi", "starlette", "httpx", "minio", "models", "queues"),
    "ocr": ("storage", "redis", "rq", "fastapi", "starlette", "minio", "models", "queues", "keyentry"),
    "esign": ("capture", "redis", "rq", "fastapi", "starlette", "queues"),
    "storage": ("models", "capture", "ocr", "indexing", "redis", "rq", "fastapi"),
}


@pytest.mark.parametrize("room", sorted(FORBIDDEN))
def test_each_room_imports_only_what_it_may(room: str):
    bad = []
    for name, path in MODULES.items():
        if name == room or name.startswith(room + "."):
            for imported in _imports(path):
                if any(imported == f or imported.startswith(f + ".") for f in FORBIDDEN[room]):
                    bad.append(f"{path.relative_to(ROOT)} imports {imported}")
    assert not bad, "\n".join(bad)


def test_no_function_is_longer_than_80_lines():
    long = []
    for path in MODULES.values():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > 80:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length} lines)")
    assert not long, "\n".join(long)


@pytest.mark.parametrize("name", ["api.py", "worker.py"])
def test_the_app_and_the_worker_stay_short(name: str):
    lines = (ROOT / name).read_text(encoding="utf-8").count("\n")
    assert lines < 350, f"{name} has {lines} lines"


# What must be written in one module only: (pattern in the source, the module that owns it).
ONE_OWNER = [
    (r"\[0-9\]\{14\}", "vocabulary.py"),  # the scan-id and doc-id shapes
    (r"class DocType\b", "vocabulary.py"),
    (r"class FieldStatus\b|class Status\b", "vocabulary.py"),
    (r"model_validate_json\(\s*\w+\.get\(", "models.py"),  # loading a stored record
    (r"class Role\(", "roles.py"),
    (r"QRCode\(", "printing.py"),
    (r"registerFont\(", "printing.py"),
]


@pytest.mark.parametrize(("pattern", "owner"), ONE_OWNER)
def test_each_shared_word_is_defined_once(pattern: str, owner: str):
    places = [
        str(path.relative_to(ROOT))
        for path in MODULES.values()
        if re.search(pattern, path.read_text(encoding="utf-8"))
    ]
    assert places == [owner], f"{pattern!r} is written in {places}, not only in {owner}"


def test_every_module_is_installed_with_the_package() -> None:
    """`imaging` runs from the installed package (make run, systemd): a root module or package missing from
    pyproject.toml imports in the tests, which run from the checkout, and fails in production."""
    import tomllib

    tool = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    roots = {name for name in MODULES if "." not in name}
    packages = {name for name in roots if (ROOT / name / "__init__.py").exists()}
    assert set(tool["packages"]) == packages
    assert set(tool["py-modules"]) == roots - packages
