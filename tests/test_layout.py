"""The package's layout: floors as folders, each importing only the floors below it, and no
import circle, counting the imports made inside functions (type-only imports aside)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "plugins" / "edgeaudit"

# Bottom to top; a module may import its own floor's modules and any floor below.
FLOORS = ("ground", "rules", "aws web", "checks", "reporting", "demo", "run", "faces")
GROUND = {"edgeaudit", "errors", "evidence", "redact", "filelock", "interrupts"}
FACES = {"plugin", "cli"}


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(("edgeaudit",) + path.relative_to(PACKAGE).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


MODULES = _modules()


def floor_of(module: str) -> tuple[int, str]:
    """(height, floor name): a top-level module is the ground or a face, else its folder."""
    parts = module.split(".")[1:]
    if not parts or (len(parts) == 1 and parts[0] in GROUND):
        name = "ground"
    elif len(parts) == 1 and parts[0] in FACES:
        name = "faces"
    else:
        name = parts[0]
    return next(i for i, floor in enumerate(FLOORS) if name in floor.split()), name


def _type_only(tree: ast.AST) -> set[int]:
    return {id(node) for branch in ast.walk(tree) if isinstance(branch, ast.If)
            and "TYPE_CHECKING" in ast.unparse(branch.test) for stmt in branch.body for node in ast.walk(stmt)}


def imports_of(module: str) -> dict[str, int]:
    """Every edgeaudit module this one imports, anywhere in the file (functions included), with
    the line of the first import: `from pkg import name` counts `pkg.name` when that is a
    module, else `pkg` itself."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    type_only = _type_only(tree)
    found: dict[str, int] = {}
    for node in ast.walk(tree):
        if id(node) in type_only or not isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            subs = [f"{base}.{alias.name}" for alias in node.names]
            names = subs + ([base] if not all(sub in MODULES for sub in subs) else [])
        for name in names:
            if name in MODULES and name != module:
                found.setdefault(name, node.lineno)
    return found


GRAPH = {module: imports_of(module) for module in MODULES}


def test_the_reader_counts_imports_inside_functions():
    # run.run starts the demo inside a function, for --demo only
    assert "edgeaudit.demo" in GRAPH["edgeaudit.run.run"]


def test_no_import_circle():
    circles, state, stack = [], {}, []

    def visit(module: str) -> None:
        state[module] = "open"
        stack.append(module)
        for other in sorted(GRAPH[module]):
            if state.get(other) == "open":
                circles.append(" -> ".join(stack[stack.index(other):] + [other]))
            elif other not in state:
                visit(other)
        stack.pop()
        state[module] = "done"

    for module in sorted(GRAPH):
        if module not in state:
            visit(module)
    assert not circles, circles


def test_each_floor_imports_only_the_floors_below():
    upward = []
    for module, imported in GRAPH.items():
        height, name = floor_of(module)
        for other, line in imported.items():
            other_height, other_name = floor_of(other)
            if other_height > height or (other_height == height and other_name != name):
                upward.append(f"{MODULES[module].relative_to(PACKAGE)}:{line} ({name}) imports {other} ({other_name})")
    assert not upward, upward


def test_a_dozen_modules_at_the_top_at_most():
    top = sorted(path.name for path in PACKAGE.glob("*.py"))
    assert len(top) <= 12, top


@pytest.mark.parametrize("package", sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()))
def test_each_floor_says_what_it_holds_and_may_import(package):
    doc = ast.get_docstring(ast.parse((PACKAGE / package / "__init__.py").read_text(encoding="utf-8")))
    assert doc and "Imports:" in doc, f"{package}/__init__.py: say what the floor holds and what it may import"


def test_the_public_api_is_written_down_in_one_place():
    doc = ast.get_docstring(ast.parse((PACKAGE / "__init__.py").read_text(encoding="utf-8")))
    for name in ("edgeaudit.errors", "edgeaudit.evidence", "edgeaudit.checks", "NotEvaluated", "evidence", "target"):
        assert name in doc
