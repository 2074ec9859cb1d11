"""Layering, read from the source (AST): no import cycle among the modules of ``scout_persist`` and ``prefect_scout``,
counting the imports inside functions, which hide cycles; an import inside a function only for an optional or heavy
third-party dependency, loaded where it is used, with a comment saying why; the core never imports the plug-in."""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = {"scout_persist": REPO / "scout_persist", "prefect_scout": REPO / "integrations" / "prefect_scout"}
# Function-level imports left to others, each with who and why.  (Entries that no longer exist are harmless.)
LEFT_ALONE = {
    # the signature's own imports (numpy, pandas, the payload record): the lead's, with the signature algorithm
    ("scout_persist.signature", "numpy"),
    ("scout_persist.signature", "pandas"),
    ("scout_persist.signature", "scout_persist.payload"),
    # the core reads parse_size from the CLI: the settings module (another branch) takes it over
    ("scout_persist.persist_cache", "scout_persist.cli.selection"),
}
POSIX_ONLY = {"pwd"}  # standard modules that exist on some platforms only


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    line: int
    target: str  # the module imported (a project module, or a top-level package name)
    in_function: bool
    commented: bool  # a comment on its line, on the line above, or above the run of imports it belongs to


def module_files(packages: dict[str, Path]) -> dict[str, Path]:
    found = {}
    for name, folder in packages.items():
        for path in folder.rglob("*.py"):
            parts = [name, *path.relative_to(folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool, known: set[str]) -> list[str]:
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        if node.level:
            base = module.split(".") if is_package else module.split(".")[:-1]
            base = base[: len(base) - (node.level - 1)]
            prefix = ".".join(base + ([node.module] if node.module else []))
        else:
            prefix = node.module or ""
        names = [f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in known else prefix for a in node.names]
    out = []
    for name in names:
        while "." in name and name not in known:  # a name imported from a module: that module
            name = name.rsplit(".", 1)[0]
        out.append(name)
    return out


def _commented(lines: list[str], lineno: int) -> bool:
    i = lineno - 1
    if "#" in lines[i]:
        return True
    while i > 0 and lines[i - 1].lstrip().startswith(("import ", "from ")):
        i -= 1  # up the run of imports this one belongs to
        if "#" in lines[i]:
            return True
    return i > 0 and lines[i - 1].lstrip().startswith("#")


def imports_of(files: dict[str, Path]) -> list[Import]:
    """Every import of every module, at module level or inside a function (TYPE_CHECKING blocks excepted)."""
    known = set(files)
    found: list[Import] = []
    for module, path in files.items():
        text = path.read_text()
        lines = text.splitlines()
        is_package = path.name == "__init__.py"

        def visit(node: ast.AST, in_function: bool) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                    continue  # for type checkers only: never executed
                if isinstance(child, (ast.Import, ast.ImportFrom)):
                    for target in _targets(child, module, is_package, known):
                        commented = _commented(lines, child.lineno)
                        found.append(Import(module, child.lineno, target, in_function, commented))
                inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
                visit(child, inner)

        visit(ast.parse(text), False)
    return found


def cycles(files: dict[str, Path], imports: list[Import]) -> list[list[str]]:
    """The import cycles (strongly connected components of more than one module), imports in functions included.

    A package's own ``__init__`` importing its submodules is how a package is built, not a cycle."""
    graph: dict[str, set[str]] = {m: set() for m in files}
    for imp in imports:
        if imp.target in graph and imp.target != imp.module and not imp.module.startswith(imp.target + "."):
            graph[imp.module].add(imp.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(graph):
        if v not in index:
            connect(v)
    return found


def misplaced(imports: list[Import], packages: dict[str, Path] = PACKAGES) -> list[str]:
    """Function-level imports that are not of an optional or heavy third-party dependency, or say not why."""
    out = []
    for imp in imports:
        if not imp.in_function:
            continue
        top = imp.target.split(".")[0]
        where = f"{imp.module}:{imp.line} imports {imp.target} inside a function"
        if (imp.module, imp.target) in LEFT_ALONE or (imp.module, top) in LEFT_ALONE:
            continue
        if top in packages and not (top == "prefect_scout" and imp.module.startswith("scout_persist.")):
            out.append(f"{where}: a module of this project belongs at the top (break the cycle instead)")
        elif top in sys.stdlib_module_names and top not in POSIX_ONLY:
            out.append(f"{where}: a standard module belongs at the top")
        elif top == "prefect" and imp.module.startswith("prefect_scout"):
            out.append(f"{where}: the plug-in always has prefect; import it at the top")
        elif not imp.commented:
            out.append(f"{where} without a comment saying why it is loaded there")
    return out


FILES = module_files(PACKAGES)
IMPORTS = imports_of(FILES)


def test_no_import_cycle_even_through_imports_inside_functions():
    assert cycles(FILES, IMPORTS) == []


def test_imports_inside_functions_are_only_for_optional_or_heavy_dependencies():
    assert misplaced(IMPORTS) == []


def test_the_core_never_imports_the_plug_in_or_prefect_at_module_level():
    wrong = [
        f"{imp.module}:{imp.line} imports {imp.target}"
        for imp in IMPORTS
        if imp.module.startswith("scout_persist")
        and not imp.in_function
        and imp.target.split(".")[0] in ("prefect_scout", "prefect")
    ]
    assert wrong == []


@pytest.fixture
def tangled(tmp_path):
    """A package whose two modules import each other, one of them only inside a function."""
    pkg = tmp_path / "tangled"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from . import b\n\n\ndef f():\n    return b\n")
    (pkg / "b.py").write_text("def g():\n    from .a import f\n\n    return f\n")
    (pkg / "c.py").write_text("def h():\n    import json  # stdlib: belongs at the top\n\n    return json\n")
    return {"tangled": pkg}


def test_the_checks_see_a_cycle_hidden_in_a_function_and_a_misplaced_import(tangled):
    """The checks above can fail: a cycle closed by a function-level import, and a standard module imported in a
    function, are both found."""
    files = module_files(tangled)
    imports = imports_of(files)
    assert cycles(files, imports) == [["tangled.a", "tangled.b"]]
    bad = misplaced(imports, tangled)
    assert any("tangled.c:2 imports json inside a function: a standard module belongs at the top" in b for b in bad)
