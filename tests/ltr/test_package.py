"""The ltr package itself: lazy public names, and a module graph without cycles."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import ltr

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ("ltr", "recall", "eval")


def test_all_matches_the_lazy_exports():
    assert ltr.__all__ == sorted(ltr._EXPORTS)
    assert dir(ltr) == ltr.__all__


def test_import_ltr_loads_no_submodule():
    code = "import sys, ltr; print(sorted(m for m in sys.modules if m.split('.')[0] == 'ltr'))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['ltr', 'ltr._lazy']"


def _module_name(path: Path) -> str:
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
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
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
    files = [p for package in PROJECT for p in (ROOT / package).rglob("*.py")]
    modules = {_module_name(p) for p in files}
    return {_module_name(p): _imports(p, modules) for p in files}


def test_ltr_imports_project_modules_at_module_level_only(graph):
    inside = sorted((name, target) for name, edges in graph.items() if name.split(".")[0] == "ltr"
                    for target, in_function in edges if in_function)
    assert inside == []


def test_ltr_module_graph_has_no_cycle(graph):
    ltr_graph = {name: {t for t, _ in edges if t.split(".")[0] == "ltr"}
                 for name, edges in graph.items() if name.split(".")[0] == "ltr"}
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        # Depth-first search; a module met again on the current path closes a cycle.
        if name in path:
            pytest.fail(f"import cycle: {' -> '.join([*path[path.index(name):], name])}")
        if name in done:
            return
        for target in sorted(ltr_graph.get(name, ())):
            visit(target, [*path, name])
        done.add(name)

    for name in sorted(ltr_graph):
        visit(name, [])


def test_ltr_imports_neither_recall_nor_eval(graph):
    upward = sorted((name, target) for name, edges in graph.items() if name.split(".")[0] == "ltr"
                    for target, _ in edges if target.split(".")[0] != "ltr")
    assert upward == []
