"""Edit operators of the differential oracle, applied mechanically to every site of a flow's source they fit.

An operator is a *kind* of edit (change an int literal, swap a library function, drop a list item, ...) applied at a
*site* (a node of a module's AST), and its name says where the site is: ``int+1 @ base-class method``,
``lib-swap @ module constant``, ``docstring @ helper``.  Sources are normalised with ``ast.unparse`` first, so the
original and every variant differ only by the edit.

Kinds that change what the code computes (``CHANGING``) are checked by the oracle's rule: a warm run over the
original's store gives every task what a cold run gives, or recomputes it.  Kinds that do not (``NEUTRAL``:
docstrings, comments, line numbers, the order of definitions) must also keep every job's signature.
"""

from __future__ import annotations

import ast
import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass

LIB_ATTR_SWAPS = {
    "mean": "median",
    "median": "mean",
    "sum": "prod",
    "min": "max",
    "max": "min",
    "mul": "add",
    "add": "mul",
    "norm": "det",
    "linspace": "geomspace",
    "clip": "round",
}
NAME_SWAPS = {"min": "max", "max": "min", "sum": "len", "sorted": "list", "float": "int"}
GETATTR_SWAPS = {"double": "triple", "triple": "double"}
BINOP_SWAPS = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Add, ast.Div: ast.Mult, ast.Pow: ast.Mult}
CMP_SWAPS = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}


@dataclass(frozen=True)
class Site:
    file: str  # relative path of the module
    index: int  # position of the node in the module's walk
    kind: str
    context: str

    @property
    def operator(self) -> str:
        return f"{self.kind} @ {self.context}"


# ---------------------------------------------------------------------------------------------- the kinds
def _is_docstring(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    expr = parents.get(node)
    holder = parents.get(expr) if expr is not None else None
    return (
        isinstance(expr, ast.Expr)
        and isinstance(holder, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        and holder.body
        and holder.body[0] is expr
    )


def _int_plus(node: ast.AST, parents: dict) -> Callable[[], None] | None:
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return lambda: setattr(node, "value", node.value + 1)
    return None


def _float_scale(node: ast.AST, parents: dict) -> Callable[[], None] | None:
    if isinstance(node, ast.Constant) and type(node.value) is float:
        return lambda: setattr(node, "value", node.value * 1.5 + 0.25)
    return None


def _str_append(node: ast.AST, parents: dict) -> Callable[[], None] | None:
    if isinstance(node, ast.Constant) and type(node.value) is str and not _is_docstring(node, parents):
        if isinstance(parents.get(node), ast.JoinedStr) or node.value in GETATTR_SWAPS:
            return lambda: setattr(node, "value", node.value + "_x")
        return lambda: setattr(node, "value", node.value + "x")
    return None


def _bool_flip(node: ast.AST, parents: dict) -> Callable[[], None] | None:
    if isinstance(node, ast.Constant) and type(node.value) is bool:
        return lambda: setattr(node, "value", not node.value)
    return None


def _binop(node: ast.AST, parents: dict) -> Callable[[], None] | None:
    if isinstance(node, ast.BinOp) and type(node.op) in BINOP_SWAPS:
        return lambda: setattr(node, "op", BINOP_SWAPS[type(node.op)]())
    return None


def _compare(node: ast.AST, parents: dict) -> Callable[[], None] | None:
    if isinstance(node, ast.Compare) and type(node.ops[0]) in CMP_SWAPS:
        return lambda: node.ops.__setitem__(0, CMP_SWAPS[type(node.ops[0])]())
    return None


def _lib_swap(node: ast.AST, parents: dict) -> Callable[[], None] | None:
    if isinstance(node, ast.Attribute) and node.attr in LIB_ATTR_SWAPS:
        return lambda: setattr(node, "attr", LIB_ATTR_SWAPS[node.attr])
    if isinstance(node, ast.Name) and node.id in NAME_SWAPS and isinstance(node.ctx, ast.Load):
        return lambda: setattr(node, "id", NAME_SWAPS[node.id])
    return None


def _getattr_retarget(node: ast.AST, parents: dict) -> Callable[[], None] | None:
    call = parents.get(node)
    if (
        isinstance(node, ast.Constant)
        and node.value in GETATTR_SWAPS
        and isinstance(call, ast.Call)
        and isinstance(call.func, ast.Name)
        and call.func.id == "getattr"
    ):
        return lambda: setattr(node, "value", GETATTR_SWAPS[node.value])
    return None


def _append_item(node: ast.AST, parents: dict) -> Callable[[], None] | None:
    if (
        isinstance(node, (ast.List, ast.Tuple, ast.Set))
        and node.elts
        and not isinstance(getattr(node, "ctx", None), ast.Store)
    ):
        if isinstance(parents.get(node), ast.Return) and isinstance(node, ast.Tuple):
            return None  # a flow's tuple of results: another shape of the flow, not of a task
        return lambda: node.elts.append(copy.deepcopy(node.elts[-1]))
    if isinstance(node, ast.Dict) and node.keys and all(isinstance(k, ast.Constant) for k in node.keys):
        return lambda: (node.keys.append(ast.Constant(f"{node.keys[-1].value}_2")), node.values.append(node.values[-1]))
    return None


def _drop_item(node: ast.AST, parents: dict) -> Callable[[], None] | None:
    if (
        isinstance(node, (ast.List, ast.Tuple, ast.Set))
        and len(node.elts) >= 2
        and not isinstance(getattr(node, "ctx", None), ast.Store)
    ):
        if isinstance(parents.get(node), ast.Return):
            return None
        return lambda: node.elts.pop()
    return None


def _swap_items(node: ast.AST, parents: dict) -> Callable[[], None] | None:
    if (
        isinstance(node, (ast.List, ast.Tuple))
        and len(node.elts) >= 2
        and not isinstance(getattr(node, "ctx", None), ast.Store)
    ):
        if isinstance(parents.get(node), ast.Return):
            return None
        return lambda: node.elts.__setitem__(slice(0, 2), [node.elts[1], node.elts[0]])
    if isinstance(node, ast.Dict) and len(node.keys) >= 2 and None not in node.keys[:2]:
        return lambda: (
            node.keys.__setitem__(slice(0, 2), [node.keys[1], node.keys[0]]),
            node.values.__setitem__(slice(0, 2), [node.values[1], node.values[0]]),
        )
    return None


def _swap_args(node: ast.AST, parents: dict) -> Callable[[], None] | None:
    if isinstance(node, ast.Call) and len(node.args) >= 2 and not any(isinstance(a, ast.Starred) for a in node.args):
        return lambda: node.args.__setitem__(slice(0, 2), [node.args[1], node.args[0]])
    return None


def _negate_return(node: ast.AST, parents: dict) -> Callable[[], None] | None:
    if isinstance(node, ast.Return) and node.value is not None and not isinstance(node.value, ast.Tuple):
        return lambda: setattr(node, "value", ast.UnaryOp(ast.USub(), node.value))
    return None


def _docstring(node: ast.AST, parents: dict) -> Callable[[], None] | None:
    if isinstance(node, ast.Constant) and type(node.value) is str and _is_docstring(node, parents):
        return lambda: setattr(node, "value", node.value + " (reworded)")
    return None


CHANGING: dict[str, Callable[[ast.AST, dict], Callable[[], None] | None]] = {
    "int+1": _int_plus,
    "float*": _float_scale,
    "str+": _str_append,
    "bool!": _bool_flip,
    "binop": _binop,
    "compare": _compare,
    "lib-swap": _lib_swap,
    "getattr": _getattr_retarget,
    "item+": _append_item,
    "item-": _drop_item,
    "order": _swap_items,
    "args": _swap_args,
    "negate": _negate_return,
}
NEUTRAL: dict[str, Callable[[ast.AST, dict], Callable[[], None] | None]] = {"docstring": _docstring}


# -------------------------------------------------------------------------------------------- the contexts
def _decorator_names(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> set[str]:
    names = set()
    for deco in node.decorator_list:
        target = deco.func if isinstance(deco, ast.Call) else deco
        if isinstance(target, ast.Name):
            names.add(target.id)
        elif isinstance(target, ast.Attribute):
            names.add(target.attr)
    return names


def _contexts(tree: ast.Module, file: str) -> dict[ast.AST, str]:
    """Where each node sits, as a reader would name it."""
    bases = {b.id for n in ast.walk(tree) if isinstance(n, ast.ClassDef) for b in n.bases if isinstance(b, ast.Name)}
    sibling = file != "pipeline.py"
    found: dict[ast.AST, str] = {}

    def visit(node: ast.AST, context: str, chain: tuple[ast.AST, ...]) -> None:
        for child in ast.iter_child_nodes(node):
            ctx = context
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                decos = _decorator_names(child)
                owner = chain[-1] if chain else None
                if isinstance(owner, ast.ClassDef):
                    kind = "method"
                    if "staticmethod" in decos:
                        kind = "staticmethod"
                    elif "classmethod" in decos:
                        kind = "classmethod"
                    elif "property" in decos:
                        kind = "property"
                    elif "cached_property" in decos:
                        kind = "cached_property"
                    if owner.name in bases:
                        kind = f"base-class {kind}"
                    elif "dataclass" in _decorator_names(owner):
                        kind = f"input-class {kind}"
                    ctx = kind
                elif isinstance(owner, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    ctx = "decorator wrapper" if context == "decorator" else "closure"
                elif "task" in decos:
                    ctx = "task body"
                elif "flow" in decos:
                    ctx = "flow body"
                elif "lru_cache" in decos or "cache" in decos:
                    ctx = "cached helper"
                elif any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) for n in child.body):
                    ctx = (
                        "decorator"
                        if any("wraps" in ast.unparse(d) for n in child.body for d in getattr(n, "decorator_list", []))
                        else "factory"
                    )
                else:
                    ctx = "sibling-module helper" if sibling else "helper"
                for d in child.decorator_list:
                    _mark(d, "decorator argument", found)
                for default in [*child.args.defaults, *[d for d in child.args.kw_defaults if d is not None]]:
                    _mark(default, f"default of {ctx}", found)
                visit_body(child, ctx, chain + (child,))
                continue
            if isinstance(child, ast.ClassDef):
                owner = chain[-1] if chain else None
                ctx = "nested class" if isinstance(owner, ast.ClassDef) else "class"
                for stmt in child.body:
                    if isinstance(stmt, (ast.Assign, ast.AnnAssign)):
                        _mark(stmt, f"{ctx} attribute", found)
                visit(child, ctx, chain + (child,))
                continue
            if isinstance(child, (ast.Assign, ast.AnnAssign)) and not chain:
                _mark(child, "sibling-module constant" if sibling else "module constant", found)
                continue
            found.setdefault(child, ctx)
            visit(child, ctx, chain)

    def visit_body(fn: ast.AST, ctx: str, chain: tuple[ast.AST, ...]) -> None:
        for stmt in fn.body:  # type: ignore[attr-defined]
            found.setdefault(stmt, ctx)
            visit(stmt, ctx, chain)

    visit(tree, "module", ())
    return found


def _mark(node: ast.AST, context: str, found: dict[ast.AST, str]) -> None:
    for sub in ast.walk(node):
        found.setdefault(sub, context)


def _parents(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    return {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}


def _has_import_in_body(tree: ast.Module, module_stem: str) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for sub in ast.walk(node):
                if isinstance(sub, ast.ImportFrom) and any(a.name == module_stem for a in sub.names):
                    return True
    return False


# ---------------------------------------------------------------------------------------------- sites
def normalise(files: dict[str, str]) -> dict[str, str]:
    """Each module as ``ast.unparse`` writes it: the baseline every variant differs from by one edit."""
    return {name: ast.unparse(ast.parse(text)) + "\n" for name, text in files.items()}


def sites(files: dict[str, str], kinds: dict[str, Callable] | None = None) -> Iterator[Site]:
    kinds = kinds if kinds is not None else {**CHANGING, **NEUTRAL}
    imported_in_body = {
        name for name in files if any(_has_import_in_body(ast.parse(t), name[:-3]) for t in files.values())
    }
    for name, text in sorted(files.items()):
        tree = ast.parse(text)
        parents = _parents(tree)
        contexts = _contexts(tree, name)
        for index, node in enumerate(ast.walk(tree)):
            context = contexts.get(node, "module")
            if context == "module":
                continue  # imports and the like
            if name in imported_in_body:
                context = f"module imported in a body ({context})"
            for kind, fits in kinds.items():
                if fits(node, parents) is not None:
                    yield Site(name, index, kind, context)


def apply(files: dict[str, str], site: Site) -> dict[str, str]:
    """The files with ``site``'s edit made."""
    tree = ast.parse(files[site.file])
    parents = _parents(tree)
    node = list(ast.walk(tree))[site.index]
    kinds = {**CHANGING, **NEUTRAL}
    edit = kinds[site.kind](node, parents)
    assert edit is not None, site
    edit()
    ast.fix_missing_locations(tree)
    return {**files, site.file: ast.unparse(tree) + "\n"}


def source_variants(files: dict[str, str]) -> Iterator[tuple[str, dict[str, str]]]:
    """Edits below the AST that must change no signature: comments, blank lines (line numbers), definition order."""
    for name, text in sorted(files.items()):
        yield f"comment @ {name}", {**files, name: "# a comment\n" + text.replace("\ndef ", "\n# why\ndef ")}
        yield f"line numbers @ {name}", {**files, name: "\n\n\n" + text.replace("\n\ndef ", "\n\n\n\n\ndef ")}
        tree = ast.parse(text)
        body = tree.body
        for i in range(len(body) - 1):
            a, b = body[i], body[i + 1]
            if all(isinstance(n, ast.FunctionDef) and not n.decorator_list for n in (a, b)):
                body[i], body[i + 1] = b, a
                yield f"definition order @ {name}", {**files, name: ast.unparse(tree) + "\n"}
                break
