"""The house's layering, checked on the source: no import circle, and no module importing one of a higher layer."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ROOTS = {"liveness": REPO / "lambda_src" / "liveness", **{name: REPO / name for name in ("testkit", "bench", "local")}}
ROOTS["cdk_app"] = REPO / "cdk_app"

# The runtime's layers, lowest first. A module may import its own layer or lower ones, never a higher one.
# wiring is the composition root: only the entry points (handler, expiry) import it.
RUNTIME_LAYERS: tuple[tuple[str, ...], ...] = (
    (
        "liveness.constants",
        "liveness.errors",
        "liveness.faces",
        "liveness.limits",
        "liveness.routes",
        "liveness.parallel",
        "liveness.web_security",
    ),
    ("liveness.schemas", "liveness.sessions"),  # a data folder; a package whose __init__ imports nothing
    ("liveness.images",),
    ("liveness.analyzers", "liveness.light"),
    ("liveness.challenges",),
    ("liveness.sessions.model",),
    ("liveness.sessions.chain", "liveness.sessions.prescreen"),
    (
        "liveness.sessions.transitions",
        "liveness.sessions.codec",
        "liveness.sessions.repair",
        "liveness.sessions.attempts",
    ),
    ("liveness.sessions.light_transitions",),
    ("liveness.archive", "liveness.sessions.keys", "liveness.sessions.store", "liveness.http"),
    ("liveness.settings",),
    ("liveness.dependencies", "liveness.openapi"),
    ("liveness.sessions.attempt_guard",),
    ("liveness.sessions.audit", "liveness.sessions.commit"),
    ("liveness.detection", "liveness.sessions.service"),
    ("liveness.sessions.light_service",),
    ("liveness.wiring",),
    ("liveness.sessions.routes",),
    ("liveness.handler", "liveness.expiry"),
)
# The packages, lowest first: the runtime knows nothing of the tools around it.
PACKAGE_LAYERS = (("liveness",), ("testkit",), ("bench", "local", "cdk_app"), ("tests",))


def module_name(path: Path, package: str, root: Path) -> str:
    parts = [package, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    found = {}
    for package, root in ROOTS.items():
        for path in root.rglob("*.py"):
            found[module_name(path, package, root)] = path
    for path in (REPO / "tests").rglob("*.py"):
        found[module_name(path, "tests", REPO / "tests")] = path
    return found


def imported(name: str, path: Path, known: set[str]) -> Iterator[str]:
    """The project modules ``name`` imports, at any depth of its code (a lazy import is still a dependency)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                yield target


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: set(imported(name, path, set(found))) for name, path in found.items()}


# Listed whole: every module inside them shares their layer. Any other module must be listed by name.
WHOLE_PACKAGES = ("liveness.images", "liveness.analyzers", "liveness.light", "liveness.schemas")


def rank(name: str, layers: tuple[tuple[str, ...], ...]) -> int | None:
    """The layer naming ``name``, or naming the whole package it is in."""
    for index, layer in enumerate(layers):
        if name in layer or any(name.startswith(whole + ".") and whole in layer for whole in WHOLE_PACKAGES):
            return index
    return None


def upward_imports(edges: dict[str, set[str]]) -> list[tuple[str, str]]:
    return sorted(
        (name, target)
        for name, targets in edges.items()
        if name.startswith("liveness.")
        for target in targets
        if target.startswith("liveness.") and rank(target, RUNTIME_LAYERS) > rank(name, RUNTIME_LAYERS)
    )


def circles_in(edges: dict[str, set[str]]) -> list[list[str]]:
    circles: list[list[str]] = []
    done: set[str] = set()
    path: list[str] = []

    def visit(name: str) -> None:
        if name in path:
            circles.append(path[path.index(name) :] + [name])
            return
        if name in done:
            return
        path.append(name)
        for target in sorted(edges.get(name, ())):
            visit(target)
        path.pop()
        done.add(name)

    for name in sorted(edges):
        visit(name)
    return circles


@pytest.fixture(scope="module")
def edges() -> dict[str, set[str]]:
    return graph()


def test_every_runtime_module_has_a_layer(edges: dict[str, set[str]]) -> None:
    runtime = [name for name in edges if name.startswith("liveness.")]
    assert [name for name in runtime if rank(name, RUNTIME_LAYERS) is None] == []


def test_no_runtime_module_imports_a_higher_layer(edges: dict[str, set[str]]) -> None:
    assert upward_imports(edges) == []


def test_no_package_imports_a_higher_or_sibling_package(edges: dict[str, set[str]]) -> None:
    def package_rank(name: str) -> int:
        return next(index for index, layer in enumerate(PACKAGE_LAYERS) if name.split(".")[0] in layer)

    crossing = [
        (name, target)
        for name, targets in edges.items()
        for target in targets
        if name.split(".")[0] != target.split(".")[0] and package_rank(target) >= package_rank(name)
    ]
    assert crossing == []


def test_there_is_no_import_circle(edges: dict[str, set[str]]) -> None:
    assert circles_in(edges) == []


def test_the_checks_see_a_planted_circle_and_an_upward_import(tmp_path: Path) -> None:
    package = tmp_path / "liveness"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "errors.py").write_text("from .handler import x\n")
    (package / "handler.py").write_text("from liveness.errors import y\n")
    names = {module_name(path, "liveness", package): path for path in package.rglob("*.py")}
    planted = {name: set(imported(name, path, set(names))) for name, path in names.items()}
    assert upward_imports(planted) == [("liveness.errors", "liveness.handler")]
    assert circles_in(planted) == [["liveness.errors", "liveness.handler", "liveness.errors"]]
