"""The module-level import graph of ``moderation/`` has no cycle, and the shared value types
(result, errors, label table, vocabulary) import nothing else of the app (issue 12, item 4).

Function-level imports are the lint rule's (ruff PLC0415 in pyproject.toml): with them gone,
a cycle can no longer hide inside a function, so this graph is the whole story. It is read
from the source (AST), as Python runs it: an import inside a function or under
``if TYPE_CHECKING:`` does not count; ``import a.b.c`` also runs the ``__init__`` of ``a.b``
(an edge to the package, unless the importer is inside it already).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import moderation

PACKAGE = Path(moderation.__file__).parent
ROOT = PACKAGE.parent


def module_files() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _module_level_imports(tree: ast.Module):
    """The Import/ImportFrom nodes Python runs when the module is imported."""
    pending: list[ast.AST] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            pending.extend(node.orelse)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
            continue
        pending.extend(ast.iter_child_nodes(node))


def _targets(name: str, is_package: bool, node: ast.Import | ast.ImportFrom,
             modules: dict[str, Path]) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        base = name.split(".") if is_package else name.split(".")[:-1]
        base = base[:len(base) - (node.level - 1)]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    # ``from pkg import sub`` imports the module pkg.sub; ``from mod import name`` mod only
    return [f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source
            for alias in node.names]


def import_graph() -> dict[str, set[str]]:
    """module -> the app modules it imports at module level (and their packages)."""
    modules = module_files()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        own_packages = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
        if is_package:
            own_packages.add(name)
        for node in _module_level_imports(ast.parse(path.read_text(), str(path))):
            for target in _targets(name, is_package, node, modules):
                if target != "moderation" and not target.startswith("moderation."):
                    continue
                while target not in modules:  # an attribute of a module: the module
                    target = target.rsplit(".", 1)[0]
                parts = target.split(".")
                for i in range(1, len(parts) + 1):
                    runs = ".".join(parts[:i])  # importing a.b.c runs a.b's __init__ too
                    if runs != name and runs not in own_packages:
                        graph[name].add(runs)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(cycles)


# --- the graph reader reads what Python runs ----------------------------------------------


def test_the_graph_sees_module_level_imports_and_packages_but_not_function_level_ones():
    graph = import_graph()
    assert "moderation.pipeline" in graph["moderation.tasks"]  # from . import ... pipeline
    assert "moderation.pipeline.worker" in graph["moderation.tasks"]
    # moderation/__init__.py imports inside its functions only (``import moderation`` is cheap)
    assert graph["moderation"] == set()
    # from .verdict import ... inside pipeline/: no edge to its own package
    assert "moderation.pipeline" not in graph["moderation.pipeline.ingest"]
    # admin/console.py's ``from .. import claims`` is the module, not the package
    assert {"moderation.claims", "moderation.review"} <= graph["moderation.admin.console"]


def test_the_cycle_finder_finds_a_cycle_through_a_package():
    graph = {"a": {"b.c"}, "b.c": {"b"}, "b": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "b.c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


# --- the rules ------------------------------------------------------------------------------


def test_the_app_has_no_import_cycle():
    cycles = find_cycles(import_graph())
    assert cycles == [], "import cycles (module-level): " + "; ".join(
        " <-> ".join(cycle) for cycle in cycles)


#: what each core module may import of the app at module level, read from its source
CORE_IMPORTS = {
    "moderation.providers.result": set(),
    "moderation.providers.errors": set(),
    "moderation.vocabulary": set(),
    "moderation.labels": {"moderation.providers", "moderation.providers.result",
                          "moderation.vocabulary"},
}


@pytest.mark.parametrize("module", sorted(CORE_IMPORTS))
def test_a_core_value_module_imports_nothing_else_of_the_app(module):
    assert import_graph()[module] == CORE_IMPORTS[module]


#: Importing ``moderation.providers.<x>`` runs the package's ``__init__`` (``get_provider``),
#: which brings ``base`` (the Provider interface) and ``conf`` (the settings' defaults);
#: neither touches settings or models at import. Nothing else may load.
PROVIDERS_PACKAGE = {"moderation", "moderation.conf", "moderation.providers",
                     "moderation.providers.base", "moderation.providers.errors",
                     "moderation.providers.result"}
ALLOWED_LOADS = {
    "moderation.providers.result": PROVIDERS_PACKAGE,
    "moderation.providers.errors": PROVIDERS_PACKAGE,
    "moderation.vocabulary": {"moderation", "moderation.vocabulary"},
    "moderation.labels": PROVIDERS_PACKAGE | {"moderation.labels", "moderation.vocabulary"},
}


def _loaded_by_import(module: str) -> set[str]:
    code = ("import importlib, json, sys; importlib.import_module(sys.argv[1]); "
            "print(json.dumps(sorted(m for m in sys.modules "
            "if m == 'moderation' or m.startswith('moderation.'))))")
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    out = subprocess.run([sys.executable, "-c", code, module], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr  # e.g. settings read at import time
    return set(json.loads(out.stdout))


@pytest.mark.parametrize("module", sorted(ALLOWED_LOADS))
def test_a_core_value_module_imports_without_django_settings_and_loads_little(module):
    loaded = _loaded_by_import(module)
    assert module in loaded
    assert loaded <= ALLOWED_LOADS[module], sorted(loaded - ALLOWED_LOADS[module])


def test_the_subprocess_check_sees_what_an_import_loads():
    """The same check on a module that does load the app's models: it must say so."""
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    out = subprocess.run([sys.executable, "-c", "import moderation.health"], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "ImproperlyConfigured" in out.stderr


# --- the client's signer and the emulator's verifier stay two implementations --------------


def _imports_anywhere(name: str, modules: dict[str, Path]) -> set[str]:
    """Every app module ``name``'s own source imports, wherever the import is (module level,
    a function, ``if TYPE_CHECKING:``): stricter than the graph, for the rule below."""
    path = modules[name]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.update(target for target in
                         _targets(name, path.name == "__init__.py", node, modules)
                         if target == "moderation" or target.startswith("moderation."))
    return found


def _reached(start: str, graph: dict[str, set[str]]) -> set[str]:
    """What importing ``start`` runs of the app (its packages' ``__init__`` first), transitively
    (module level)."""
    parts = start.split(".")
    pending = [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
    seen = set(pending) - {start}
    while pending:
        for nxt in graph.get(pending.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                pending.append(nxt)
    return seen


def _under(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_the_emulators_verifier_and_the_clients_signer_import_nothing_of_each_other():
    """moderation.emulator.verify checks signatures with its own code, never the client's
    (moderation.providers); the signer (moderation/providers/aliyun/signing*) never imports
    the emulator: a bug shared by both would pass every signed test against the emulator."""
    modules, graph = module_files(), import_graph()
    signing = sorted(name for name in modules
                     if name.startswith("moderation.providers.aliyun.signing"))
    assert "moderation.providers.aliyun.signing.rpc_v1" in signing  # the pattern matches
    rules = [("moderation.emulator.verify", "moderation.providers")]
    rules += [(module, "moderation.emulator") for module in signing]
    broken = []
    for module, forbidden in rules:
        imported = _imports_anywhere(module, modules) | _reached(module, graph)
        broken += [f"{module} -> {target}" for target in sorted(imported)
                   if _under(target, forbidden)]
    assert broken == []


def test_the_independence_check_sees_an_import_inside_a_function(tmp_path):
    """_imports_anywhere reads function-level and TYPE_CHECKING imports too."""
    source = ("from typing import TYPE_CHECKING\n"
              "if TYPE_CHECKING:\n    from moderation.providers import base\n"
              "def f():\n    from moderation.providers.aliyun import signing\n")
    (tmp_path / "probe.py").write_text(source)
    modules = {"moderation.emulator.probe": tmp_path / "probe.py",
               "moderation.providers.base": Path(), "moderation.providers.aliyun.signing": Path()}
    assert _imports_anywhere("moderation.emulator.probe", modules) == {
        "moderation.providers.base", "moderation.providers.aliyun.signing"}
