"""Every import arrow in pvekit/ runs down the layering docs/architecture.md draws.

The layer table and the table of allowed exceptions are read from docs/architecture.md
itself, so the page and this test cannot drift: change the layering by changing the page.
Imports are read with ``ast`` from every module under pvekit/, including imports inside
functions; imports under ``if TYPE_CHECKING:`` never run and are not arrows.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "pvekit"
DOC = ROOT / "docs" / "architecture.md"
# names of the package root that the layer table places on their own (not modules)
ROOT_NAMES = {"pvekit.__version__"}


# -- the tables of docs/architecture.md ----------------------------------------------------------


def _qualify(name: str) -> str:
    name = name.strip().strip("`").rstrip("*").strip("`")
    return "pvekit" if name == "pvekit" else f"pvekit.{name}"


def _md_table(text: str, header: str) -> list[list[str]]:
    """The rows (cells) of the Markdown table whose header row starts with ``header``."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(header):
            rows = []
            for row in lines[i + 2 :]:
                if not row.startswith("|"):
                    break
                rows.append([c.strip() for c in row.strip().strip("|").split("|")])
            return rows
    raise AssertionError(f"docs/architecture.md has no table starting {header!r}")


@dataclass(frozen=True)
class Layering:
    layer_of_entry: dict[str, str]  # "pvekit.history._cli" -> "front"
    may_import: dict[str, set[str]]  # layer -> layers it may import (besides itself)
    optional: set[str]  # entries marked * (land with another branch)
    exceptions: dict[tuple[str, str], set[str]]  # (module, function or "-") -> modules

    def layer(self, module: str) -> str | None:
        """The layer of ``module``: its own entry or that of its nearest parent package."""
        parts = module.split(".")
        for n in range(len(parts), 0, -1):
            entry = ".".join(parts[:n])
            if entry in self.layer_of_entry and (entry != "pvekit" or module == "pvekit"):
                return self.layer_of_entry[entry]
        return None


def read_layering(text: str) -> Layering:
    layer_of_entry: dict[str, str] = {}
    may_import: dict[str, set[str]] = {}
    optional: set[str] = set()
    for layer, modules, allowed in _md_table(text, "| layer | modules | may import |"):
        for raw in modules.split(","):
            entry = _qualify(raw)
            assert entry not in layer_of_entry, f"{entry} is in two layers"
            layer_of_entry[entry] = layer
            if raw.strip().endswith("*"):
                optional.add(entry)
        may_import[layer] = {a.strip() for a in allowed.split(",") if a.strip() not in ("", "—")}
    for layer, allowed in may_import.items():
        unknown = allowed - set(may_import)
        assert not unknown, f"layer {layer} may import unknown layers {unknown}"
    exceptions: dict[tuple[str, str], set[str]] = {}
    for module, function, targets, _why in _md_table(
        text, "| module | function | may also import | why |"
    ):
        key = (_qualify(module), function.strip("`"))
        exceptions[key] = {_qualify(t) for t in targets.split(",")}
    return Layering(layer_of_entry, may_import, optional, exceptions)


# -- the imports of the code ---------------------------------------------------------------------


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


@dataclass(frozen=True)
class Arrow:
    source: str  # importing module
    function: str  # enclosing top-level function or method ("-": module level)
    target: str  # imported pvekit module
    line: int


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def arrows_of(source: str, path: Path, known: set[str]) -> list[Arrow]:
    """Every runtime import of a pvekit module in ``path`` (module ``source``)."""
    is_pkg = path.name == "__init__.py"
    package = source if is_pkg else source.rpartition(".")[0]
    found: list[Arrow] = []

    def target_of(base: str, name: str | None) -> str:
        # "from . import frames" imports the module pvekit.frames, not the package; the
        # root's __version__ is a layer entry of its own (base)
        if name is not None and (f"{base}.{name}" in known or f"{base}.{name}" in ROOT_NAMES):
            return f"{base}.{name}"
        return base

    def visit(node: ast.AST, function: str) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child, function)
            return
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and function == "-":
            function = node.name
        if isinstance(node, ast.ClassDef) and function == "-":
            function = "-"  # methods are named by themselves below
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "pvekit" or alias.name.startswith("pvekit."):
                    found.append(Arrow(source, function, alias.name, node.lineno))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base == "pvekit" or base.startswith("pvekit."):
                for alias in node.names:
                    found.append(Arrow(source, function, target_of(base, alias.name), node.lineno))
        for child in ast.iter_child_nodes(node):
            visit(child, function)

    tree = ast.parse(path.read_text(), filename=str(path))
    for top in tree.body:
        if isinstance(top, ast.ClassDef):
            for item in top.body:
                name = item.name if isinstance(item, ast.FunctionDef) else "-"
                visit(item, name)
        else:
            visit(top, "-")
    return found


def violations(layering: Layering, modules: dict[str, Path]) -> list[str]:
    known = set(modules)
    out: list[str] = []
    for source, path in modules.items():
        src_layer = layering.layer(source)
        if src_layer is None:
            out.append(f"{source}: in no layer of docs/architecture.md")
            continue
        for arrow in arrows_of(source, path, known):
            dst_layer = layering.layer(arrow.target)
            if dst_layer is None:
                out.append(f"{source}:{arrow.line}: imports {arrow.target}, in no layer")
                continue
            if dst_layer == src_layer or dst_layer in layering.may_import[src_layer]:
                continue
            allowed = layering.exceptions.get((source, arrow.function), set())
            if any(arrow.target == t or arrow.target.startswith(t + ".") for t in allowed):
                continue
            out.append(
                f"{source}:{arrow.line} ({src_layer}, in {arrow.function}) imports "
                f"{arrow.target} ({dst_layer}): an upward arrow"
            )
    return out


LAYERING = read_layering(DOC.read_text())
MODULES = all_modules()


# -- the tests -----------------------------------------------------------------------------------


def test_every_arrow_runs_down_the_documented_layers() -> None:
    assert violations(LAYERING, MODULES) == []


def test_every_table_entry_names_code_and_every_exception_is_used() -> None:
    import pvekit

    stale = [
        e
        for e in LAYERING.layer_of_entry
        if e not in LAYERING.optional
        and not any(m == e or m.startswith(e + ".") for m in MODULES)
        and not (e in ROOT_NAMES and hasattr(pvekit, e.rpartition(".")[2]))
    ]
    assert stale == [], "entries of the layer table that name no module"
    known = set(MODULES)
    used: set[tuple[str, str]] = set()
    for source, path in MODULES.items():
        for arrow in arrows_of(source, path, known):
            for t in LAYERING.exceptions.get((source, arrow.function), set()):
                if arrow.target == t or arrow.target.startswith(t + "."):
                    used.add((source, arrow.function))
    assert set(LAYERING.exceptions) - used == set(), "exceptions no import needs any more"


def test_only_the_demo_imports_the_simulator() -> None:
    known = set(MODULES)
    importers = {
        (a.source, a.function)
        for source, path in MODULES.items()
        if not source.startswith("pvekit.sim")
        for a in arrows_of(source, path, known)
        if a.target == "pvekit.sim" or a.target.startswith("pvekit.sim.")
    }
    assert importers == {
        ("pvekit._connect", "demo"),
        ("pvekit.history._demo", "build_demo_history"),
        ("pvekit.history._demo", "_run_chunk"),
        ("pvekit.history._demo", "_replicable"),
        ("pvekit.history._demo", "past_clock"),
    }


def test_base_modules_import_nothing_of_pvekit_but_base() -> None:
    known = set(MODULES)
    for source, path in MODULES.items():
        if LAYERING.layer(source) != "base":
            continue
        for a in arrows_of(source, path, known):
            assert LAYERING.layer(a.target) == "base", (source, a.target)
    errors = arrows_of("pvekit._errors", PKG / "_errors.py", known)
    schema = arrows_of("pvekit._schema", PKG / "_schema.py", known)
    assert errors == [] and schema == []  # not even another base module


def test_frames_and_capacity_do_not_reach_the_client() -> None:
    for layer in ("frames", "capacity"):
        below = LAYERING.may_import[layer]
        assert not below & {"config", "transport", "client", "inventory", "sim"}, layer


# -- the checker itself must catch what it is for --------------------------------------------------


def _with(tmp: Path, rel: str, code: str) -> dict[str, Path]:
    """The modules of pvekit/ plus (or with, in place of the real one) ``pvekit/<rel>``."""
    path = tmp / "pvekit" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(code)
    parts = list(Path(rel).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return {**MODULES, ".".join(["pvekit", *parts]): path}


CONNECT = (PKG / "_connect.py").read_text()


@pytest.mark.parametrize(
    ("rel", "code", "needle"),
    [
        # the client importing the simulator, inside a function
        ("_api/extra.py", "def f() -> None:\n    from ..sim import Simulator\n", "pvekit.sim"),
        # frames reaching up to the client
        ("frames/extra.py", "from .._api import ApiClient\n", "pvekit._api"),
        # capacity (once a package) importing the cluster
        ("capacity/usage.py", "from .._cluster import Cluster\n", "pvekit._cluster"),
        # a base module importing the config
        ("_format/extra.py", "import pvekit._config\n", "pvekit._config"),
        # the simulator importing the client
        ("sim/_handlers/vm.py", "from ..._guest import Guest\n", "pvekit._guest"),
        # the inventory importing the report, in a method
        (
            "_group/extra.py",
            "class G:\n    def f(self) -> None:\n        from .. import report\n",
            "pvekit.report",
        ),
        # exceptions are by function: demo() may import sim, another function of _connect not
        ("_connect.py", CONNECT + "\n\ndef sneak() -> None:\n    from . import sim\n", "sim"),
    ],
)
def test_an_upward_import_is_caught(tmp_path: Path, rel: str, code: str, needle: str) -> None:
    found = violations(LAYERING, _with(tmp_path, rel, code))
    assert len(found) == 1 and needle in found[0] and "upward" in found[0], found


def test_type_only_imports_are_not_arrows(tmp_path: Path) -> None:
    code = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from ..sim import Simulator\n"
        "else:\n    from .._api import ApiClient\n"
    )
    found = violations(LAYERING, _with(tmp_path, "frames/extra.py", code))
    assert len(found) == 1 and "pvekit._api" in found[0]  # the else branch runs


def test_a_module_outside_the_table_is_reported(tmp_path: Path) -> None:
    found = violations(LAYERING, _with(tmp_path, "_newthing.py", "x = 1\n"))
    assert found == ["pvekit._newthing: in no layer of docs/architecture.md"]


def test_the_doc_parser_reads_the_tables() -> None:
    assert LAYERING.layer("pvekit.history._cli") == "front"
    assert LAYERING.layer("pvekit.history._store") == "history"
    assert LAYERING.layer("pvekit.capacity.headroom") == "capacity"  # a split package
    assert LAYERING.layer("pvekit") == "front" and LAYERING.layer("pvekit._x") is None
    assert LAYERING.may_import["sim"] == {"base"}
    assert ("pvekit._connect", "demo") in LAYERING.exceptions


# -- exceptions live in the one tree ---------------------------------------------------------------

#: Exception classes allowed outside pvekit/_errors.py, with the reason.
OUTSIDE_THE_TREE = {
    # a private signal of the bounded YAML loader, turned into ConfigError where it is caught
    ("pvekit._config", "_TooBig"),
    # a requests exception the adapter raises inside requests; _api maps it to APIError
    ("pvekit._transport", "ResponseTooLargeError"),
}


def test_exception_classes_live_in_errors() -> None:
    outside = set()
    for info in pkgutil.walk_packages([str(PKG)], "pvekit."):
        if info.name.startswith("pvekit.sim"):
            continue  # the simulator's own HTTP errors are the server's, not pvekit's
        mod = importlib.import_module(info.name)
        for name, obj in vars(mod).items():
            if (
                isinstance(obj, type)
                and issubclass(obj, BaseException)
                and not issubclass(obj, Warning)
                and obj.__module__ == mod.__name__
                and mod.__name__ != "pvekit._errors"
            ):
                outside.add((re.sub(r"\.__init__$", "", mod.__name__), name))
    # a package split keeps the entry valid: match by the module's prefix
    unexplained = {
        (m, n)
        for m, n in outside
        if not any((m == om or m.startswith(om + ".")) and n == on for om, on in OUTSIDE_THE_TREE)
    }
    assert unexplained == set(), "define exceptions in pvekit/_errors.py (the documented tree)"
    stale = {
        (om, on)
        for om, on in OUTSIDE_THE_TREE
        if not any((m == om or m.startswith(om + ".")) and n == on for m, n in outside)
    }
    assert stale == set(), "drop entries of OUTSIDE_THE_TREE that no longer apply"
