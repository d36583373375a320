"""Architecture rules of the whole tree, checked on the source (no import needed).

* the module import graph of ``ltr``, ``recall`` and ``eval`` has no cycle, and project modules
  are imported at module level only (an import inside a function hides a dependency);
* ``ltr`` imports neither ``recall`` nor ``eval`` (downstream rankers ``import ltr`` alone);
* no module over 500 lines; no function over 80 lines (docstring excluded) unless it says
  why it must be one piece in a ``# one piece:`` comment.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ("ltr", "recall", "eval")
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80
FILES = sorted(p for package in PROJECT for p in (ROOT / package).rglob("*.py"))


def _module_name(path: Path) -> str :
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> list[tuple[str, bool]]:
    """(imported project module, inside a function) for every import statement of ``path``."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    in_function = {id(node) for func in ast.walk(tree) if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef))
                   for node in ast.walk(func)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            # "from pkg import sub" depends on the submodule; "from pkg import name" on pkg itself.
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name and target.split(".")[0] in PROJECT:
                found.append((target, id(node) in in_function))
    return found



@pytest.fixture(scope="module")
def graph() -> dict[str, list[tuple[str, bool]]]:
    modules = {_module_name(p) for p in FILES}
    return {_module_name(p): _imports(p, modules) for p in FILES}


def test_project_modules_are_imported_at_module_level_only(graph):
    inside = sorted((name, target) for name, edges in graph.items() for target, in_function in edges if in_function)
    assert inside == []


def test_module_graph_has_no_cycle(graph):
    edges = {name: {t for t, _ in targets} for name, targets in graph.items()}
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        # Depth-first search; a module met again on the current path closes a cycle.
        if name in path:
            pytest.fail(f"import cycle: {' -> '.join([*path[path.index(name):], name])}")
        if name in done:
            return
        for target in sorted(edges.get(name, ())):
            visit(target, [*path, name])
        done.add(name)

    for name in sorted(edges):
        visit(name, [])


def test_ltr_imports_neither_recall_nor_eval(graph):
    upward = sorted((name, target) for name, edges in graph.items() if name.split(".")[0] == "ltr"
                    for target, _ in edges if target.split(".")[0] != "ltr")
    assert upward == []


def _long_functions(path: Path) -> list[str]:
    lines = path.read_text().splitlines()
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        first = node.body[0]
        has_docstring = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
            and isinstance(first.value.value, str)
        start = (first.end_lineno or first.lineno) + 1 if has_docstring and len(node.body) > 1 else first.lineno
        length = (node.end_lineno or node.lineno) - start + 1
        body = "\n".join(lines[node.lineno - 1:node.end_lineno])
        if length > MAX_FUNCTION_LINES and "# one piece:" not in body:
            found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length} lines)")
    return found


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_module_and_function_sizes(path):
    n_lines = len(path.read_text().splitlines())
    assert n_lines <= MAX_MODULE_LINES, f"{path.relative_to(ROOT)} has {n_lines} lines"
    assert _long_functions(path) == []
