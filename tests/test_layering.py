"""Dependencies flow one way: a package imports only the layers below it (docs/architecture.md).

``cli`` → ``server``/``loader``/``demo`` → ``client``/``images``/``registry`` → ``signing`` → ``manifest`` →
``adapter`` → ``errors``. Packages on one layer do not import each other, nothing imports ``cli``, and the
registry's tables (``lorareg.registry.db``) are private to ``lorareg.registry``. Every import counts, at the
top of a module or inside a function, because a lazy upward import is still an upward dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parent.parent / "lorareg"

LAYERS: dict[str, int] = {
    "errors": 0,
    "adapter": 1,
    "manifest": 2,
    "signing": 3,
    "client": 4,
    "images": 4,
    "registry": 4,
    "server": 5,
    "loader": 5,
    "demo": 5,
    "cli": 6,
}
ROOT_NAMES = {"__version__"}  # constants of the root package that any layer may read
ENTRY_POINTS = {"__main__"}  # ``python -m lorareg`` runs the CLI: the one module allowed to import it
PRIVATE_PACKAGES = {"registry.db": "registry"}  # private package -> the only package that may import it
# Downward imports that are still refused: the server is the registry's own process and never a client of
# another registry (a server that imported the client could be tricked into fetching on a visitor's behalf).
FORBIDDEN = {("server", "client")}


def top_package(module: str) -> str | None:
    """``lorareg.signing.verify`` -> ``signing``; the root package and ``__init__`` give None."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "lorareg" else None


def imported_modules(path: Path, module: str) -> list[tuple[int, str]]:
    """Every lorareg module ``path`` imports, with its line, absolute or relative, anywhere in the file."""
    found: list[tuple[int, str]] = []
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = [f"{base}.{alias.name}" for alias in node.names] if base == "lorareg" else [base]
            found += [(node.lineno, name) for name in names]
    return [(line, name) for line, name in found if name == "lorareg" or name.startswith("lorareg.")]


def violations(root: Path = PACKAGE_ROOT) -> list[str]:
    """One line per import that breaks the layering rules."""
    problems: list[str] = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root.parent).with_suffix("")
        module = ".".join(relative.parts).removesuffix(".__init__")
        source = top_package(module)
        for line, target in imported_modules(path, module):
            problem = _judge(module, source, target)
            if problem:
                problems.append(f"{relative}.py:{line}: {problem}")
    return problems


def _judge(module: str, source: str | None, target: str) -> str | None:
    dest = top_package(target)
    if dest is None or dest in ENTRY_POINTS or dest in ROOT_NAMES:
        return None  # the root package's lazy face (``__version__``), or not a lorareg package
    if source is None or source in ENTRY_POINTS:
        return None if source in ENTRY_POINTS or dest == "errors" else f"the root package imports {target}"
    if dest not in LAYERS:
        return f"{target} is in no layer; add its package to LAYERS and docs/architecture.md"
    for private, owner in PRIVATE_PACKAGES.items():
        if (target + ".").startswith(f"lorareg.{private}.") and source != owner:
            return f"{module} imports {target}: lorareg.{private} is private to lorareg.{owner}"
    if source == dest:
        return None
    if source not in LAYERS:
        return f"{module} is in no layer; add its package to LAYERS and docs/architecture.md"
    if (source, dest) in FORBIDDEN:
        return f"{module} imports {target}: {source} may not import {dest}"
    if dest == "cli":
        return f"{module} imports {target}: nothing imports the CLI"
    if LAYERS[dest] > LAYERS[source]:
        upward = f"{source} (layer {LAYERS[source]}) may not import {dest} (layer {LAYERS[dest]})"
        return f"{module} imports {target}: {upward}"
    if LAYERS[dest] == LAYERS[source]:
        return f"{module} imports {target}: {source} and {dest} are peers on layer {LAYERS[source]}"
    return None


def test_every_import_flows_down_the_layers() -> None:
    assert violations() == []


def test_every_package_is_in_a_layer() -> None:
    packages = {p.name for p in PACKAGE_ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    modules = {p.stem for p in PACKAGE_ROOT.glob("*.py")} - {"__init__"} - ENTRY_POINTS
    assert packages | modules <= set(LAYERS)


@pytest.mark.parametrize(
    ("where", "line", "expected"),
    [
        (
            "adapter/upward.py",
            "from lorareg.signing import verify",
            "adapter (layer 1) may not import signing",
        ),
        ("manifest/upward.py", "def f():\n    import lorareg.registry.service", "may not import registry"),
        ("server/peek.py", "from lorareg.client import Client", "server may not import client"),
        ("registry/peer.py", "from lorareg import client", "registry and client are peers"),
        ("loader/cli_user.py", "from lorareg.cli import main", "nothing imports the CLI"),
        ("server/tables.py", "from lorareg.registry.db import Version", "private to lorareg.registry"),
        ("signing/rel.py", "from ..registry import service", "signing (layer 3) may not import registry"),
    ],
    ids=["upward", "lazy-upward", "server-imports-client", "peers", "imports-cli", "tables", "relative"],
)
def test_an_added_upward_import_fails_the_check(tmp_path: Path, where: str, line: str, expected: str) -> None:
    root = tmp_path / "lorareg"
    for package in LAYERS:
        (root / package).mkdir(parents=True)
        (root / package / "__init__.py").write_text("")
    (root / "registry" / "db").mkdir()
    (root / "registry" / "db" / "__init__.py").write_text("")
    (root / where).write_text(line + "\n")
    (problem,) = violations(root)
    assert expected in problem and where in problem
