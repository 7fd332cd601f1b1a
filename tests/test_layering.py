"""Imports point one way, form no cycle, and never reach into another module's private names.

The graph is read from the source with ``ast`` (no import runs), counting imports at any depth:
an import inside a function runs too, only later. Only the body of ``if TYPE_CHECKING:`` never
runs, so it is left out of the cycle and direction checks (not of the privacy checks: a private
name is private to type checkers too). ``from a.b import c`` imports the submodule ``a.b.c`` when
there is one, else the module ``a.b`` (for a package, its ``__init__``); importing ``a.b.c`` does
not count as importing the package ``a.b`` itself, though Python runs its ``__init__`` first:
every package's ``__init__`` imports its own modules, so that edge would put every package in
a cycle with itself and say nothing.

import-linter (grimp) was the other choice: it checks layers and cycles, but it does not know
names, so half of the rule (``from m import _name``) would still need this walk; the walk is
~150 lines, needs no new dependency, and its self-test below feeds it one violation of each kind.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "sessionkit"

#: The layers, lowest first: a module may import its own layer and those below it, never one
#: above (the brief's model -> codecs -> tables -> query/analytics -> plots/display -> CLI). A name
#: stands for the module and, if it is a package, everything in it.
LAYERS: tuple[tuple[str, ...], ...] = (
    # what everything may use: the errors, the version, small helpers without sessionkit imports
    (
        "sessionkit.exceptions",
        "sessionkit._version",
        "sessionkit._lazy",
        "sessionkit._options",
        "sessionkit._periods",
        "sessionkit._process",
        "sessionkit._progress",
        "sessionkit._timestamp",
        "sessionkit._html",
    ),
    # the oxios model: records, their JSON decoding and encoding, a session's HTML
    ("sessionkit.model",),
    # oxios files on disk, and the demo state written like them
    ("sessionkit.oxios", "sessionkit.generate"),
    # the declared Arrow schemas and the tables built from sessions (and from JSON, fast)
    ("sessionkit.tables", "sessionkit._fastjson"),
    # pseudonyms and redaction, applied to tables
    ("sessionkit.privacy",),
    # the Parquet dataset: layout, versions, S3, the export / compact / restore machinery
    (
        "sessionkit._s3",
        "sessionkit._layout",
        "sessionkit._store",
        "sessionkit._versions",
        "sessionkit.storage",
        "sessionkit.archive",
        "sessionkit._worker",
    ),
    # DuckDB over a dataset or tables
    ("sessionkit.query",),
    # the helpers' SQL, and the same SQL on Spark
    ("sessionkit.analytics",),
    ("sessionkit.spark",),
    # what people look at: charts, terminal rendering, the SQL magic, the report (the model and
    # the tables render their own HTML; the shared style and escaping are in the bottom layer)
    ("sessionkit.plot", "sessionkit._terminal", "sessionkit.magic"),
    ("sessionkit.report",),
    # the command line and the package's curated names
    ("sessionkit.cli", "sessionkit.__main__", "sessionkit"),
)


@dataclass(frozen=True)
class Import:
    importer: str
    target: str  # the module imported
    name: str | None  # the name taken from it by ``from target import name``, if not a module
    line: int
    type_checking: bool


def sources_of(root: Path) -> dict[str, str]:
    """Module name -> source, for every module of the package under ``root``."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path.read_text(encoding="utf-8")
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST, type_checking: bool = False) -> Iterator[tuple[ast.AST, bool]]:
    """Every node under ``node``, with whether it sits in an ``if TYPE_CHECKING:`` body."""
    for child in ast.iter_child_nodes(node):
        yield child, type_checking
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for stmt in child.body:
                yield stmt, True
                yield from _walk(stmt, True)
            for stmt in child.orelse:
                yield stmt, type_checking
                yield from _walk(stmt, type_checking)
        else:
            yield from _walk(child, type_checking)


def imports_of(sources: Mapping[str, str], package: str = "sessionkit") -> list[Import]:
    """Every import of a module of ``package`` by a module of it; and, as imports of a name,
    each attribute ``alias.name`` read from a module imported under that alias."""
    found = []
    for module, text in sources.items():
        is_package = any(other.startswith(module + ".") for other in sources) or module == package
        base = module if is_package else module.rpartition(".")[0]
        aliases: dict[str, str] = {}
        attributes: list[tuple[ast.Attribute, bool]] = []
        for node, tc in _walk(ast.parse(text)):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name == package or alias.name.startswith(package + "."):
                        found.append(Import(module, alias.name, None, node.lineno, tc))
                        if alias.asname:
                            aliases[alias.asname] = alias.name
            elif isinstance(node, ast.ImportFrom):
                source = node.module or ""
                if node.level:
                    anchor = base.split(".")[: len(base.split(".")) - node.level + 1]
                    source = ".".join([*anchor, *([source] if source else [])])
                if source != package and not source.startswith(package + "."):
                    continue
                for alias in node.names:
                    sub = f"{source}.{alias.name}"
                    if sub in sources:
                        found.append(Import(module, sub, None, node.lineno, tc))
                        aliases[alias.asname or alias.name] = sub
                    else:
                        found.append(Import(module, source, alias.name, node.lineno, tc))
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                attributes.append((node, tc))
            elif isinstance(node, ast.Assign) and [_name(t) for t in node.targets] == ["_LAZY"]:
                # a package's names imported on first use (sessionkit._lazy): {name: module}
                for value in getattr(node.value, "values", []):
                    if isinstance(value, ast.Constant) and value.value in sources:
                        found.append(Import(module, value.value, None, node.lineno, tc))
        for node, tc in attributes:
            target = aliases.get(node.value.id)  # type: ignore[attr-defined]
            if target is not None and f"{target}.{node.attr}" not in sources:
                found.append(Import(module, target, node.attr, node.lineno, tc))
    return found


def _name(node: ast.expr) -> str | None:
    return node.id if isinstance(node, ast.Name) else None


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _layer(module: str, layers: tuple[tuple[str, ...], ...]) -> int | None:
    """The index of the layer whose longest name is ``module`` or a package holding it."""
    best: tuple[int, int] | None = None
    for index, names in enumerate(layers):
        for name in names:
            inside = module == name or ("." in name and module.startswith(name + "."))  # the root: itself
            if inside and (best is None or len(name) > best[0]):
                best = (len(name), index)
    return None if best is None else best[1]


def violations(
    sources: Mapping[str, str],
    layers: tuple[tuple[str, ...], ...],
) -> set[tuple[str, str, str]]:
    """(rule, importing module, what) for every break of the rules, ``what`` naming the module
    imported, or ``module.name`` for a name; a cycle is each import between its modules."""
    found: set[tuple[str, str, str]] = set()
    imports = imports_of(sources)
    for module in sources:
        if _layer(module, layers) is None:
            found.add(("no layer", module, module))
    edges: dict[str, set[str]] = {module: set() for module in sources}
    for imp in imports:
        if imp.target not in sources:
            continue
        if imp.name is not None and _private(imp.name) and imp.target != imp.importer:
            found.add(("private name", imp.importer, f"{imp.target}.{imp.name}"))
        parts = imp.target.split(".")
        for depth, part in enumerate(parts):
            owner = ".".join(parts[:depth])
            if _private(part) and depth and not (imp.importer == owner or imp.importer.startswith(owner + ".")):
                found.add(("private module", imp.importer, imp.target))
        if imp.type_checking or imp.target == imp.importer:
            continue
        edges[imp.importer].add(imp.target)
        low, high = _layer(imp.importer, layers), _layer(imp.target, layers)
        if low is not None and high is not None and high > low:
            found.add(("upward", imp.importer, imp.target))
    for group in _cycles(edges):  # each import that closes a cycle, so each can be listed and fixed
        found.update(("cycle edge", a, b) for a in group for b in edges[a] if b in group)
    return found


def _cycles(edges: Mapping[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import each other, directly or not (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return [sorted(group) for group in groups]


def _message(found: set[tuple[str, str, str]]) -> str:
    return "\n".join(f"  {rule}: {module} imports {what}" for rule, module, what in sorted(found))


def test_imports_point_one_way_without_cycles_or_private_names() -> None:
    found = violations(sources_of(ROOT), LAYERS)
    assert not found, "imports that break the layering (tests/test_layering.py says why):\n" + _message(found)


TINY = (("sessionkit._util", "sessionkit.model"), ("sessionkit.tables",), ("sessionkit.plot", "sessionkit"))


def _tiny(**modules: str) -> dict[str, str]:
    base = {
        "sessionkit": "",
        "sessionkit.model": "",
        "sessionkit.model._records": "X = 1\n_Y = 2\n",
        "sessionkit.tables": "",
        "sessionkit.plot": "",
        "sessionkit.plot._usage": "_Z = 3\n",
    }
    return base | {name.replace("__", "."): text for name, text in modules.items()}


@pytest.mark.parametrize(
    ("modules", "expected"),
    [
        ({"sessionkit__model": "from sessionkit.model._records import X\n"}, set()),
        (
            {"sessionkit__model": "def f():\n    from sessionkit.tables import T\n"},
            {("upward", "sessionkit.model", "sessionkit.tables")},
        ),
        (  # a cycle inside one layer, one side imported only when a function runs
            {
                "sessionkit__plot": "from sessionkit import plot\n",
                "sessionkit__plot___usage": "def f():\n    import sessionkit.plot\n",
            },
            set(),  # plot imports itself: no edge; _usage -> plot is one way
        ),
        (
            {
                "sessionkit__plot": "from sessionkit.plot._usage import _Z as Z\n",
                "sessionkit__plot___usage": "def f():\n    from sessionkit.plot import W\n",
            },
            {
                ("private name", "sessionkit.plot", "sessionkit.plot._usage._Z"),
                ("cycle edge", "sessionkit.plot", "sessionkit.plot._usage"),
                ("cycle edge", "sessionkit.plot._usage", "sessionkit.plot"),
            },
        ),
        (  # under TYPE_CHECKING: no cycle, no upward import, but private is private
            {
                "sessionkit__model": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                "    from sessionkit.tables import T\n    from sessionkit.plot._usage import Z\n"
            },
            {("private module", "sessionkit.model", "sessionkit.plot._usage")},
        ),
        (
            {"sessionkit__tables": "import sessionkit.model._records as r\nprint(r._Y, r.X)\n"},
            {
                ("private module", "sessionkit.tables", "sessionkit.model._records"),
                ("private name", "sessionkit.tables", "sessionkit.model._records._Y"),
            },
        ),
        (
            {
                "sessionkit__tables": "from sessionkit.model import _records\n",
                "sessionkit___util": "from sessionkit.model._records import __doc__\n",
            },
            {
                ("private module", "sessionkit.tables", "sessionkit.model._records"),
                ("private module", "sessionkit._util", "sessionkit.model._records"),
            },
        ),
        ({"sessionkit__plot": "from sessionkit import _util\n", "sessionkit___util": ""}, set()),  # for all
        ({"sessionkit___new": ""}, {("no layer", "sessionkit._new", "sessionkit._new")}),
    ],
    ids=[
        "fine",
        "upward",
        "no-cycle",
        "cycle-and-private-name",
        "type-checking",
        "attribute",
        "private-module",
        "root-private",
        "no-layer",
    ],
)
def test_the_check_finds_each_kind_of_violation(modules: dict[str, str], expected: set[tuple[str, str, str]]) -> None:
    assert violations(_tiny(**modules), TINY) == expected


def test_every_layer_names_a_module() -> None:
    sources = sources_of(ROOT)
    for names in LAYERS:
        for name in names:
            assert any(m == name or m.startswith(name + ".") for m in sources), f"{name} is not a module"
