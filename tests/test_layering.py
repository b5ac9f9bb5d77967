"""Import structure of the package: no cycles between emgjax modules, and low layers never import high ones.

The import graph is read from the source with `ast` (nothing is imported), counting every import
statement: module level, inside functions (lazy imports) and under ``if TYPE_CHECKING``. An
import names the most specific emgjax module it reaches: ``from emgjax.models import tds`` is an
edge to ``emgjax.models.tds``, ``from emgjax.models import get_experiment`` one to
``emgjax.models`` (its ``__init__``).
"""

from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE = "emgjax"
ROOT = pathlib.Path(__file__).resolve().parent.parent / PACKAGE

# Low layers (models, data, kinematics, metrics) must not reach the high ones, even lazily.
LOW = ("emgjax.models", "emgjax.data", "emgjax.kinematics", "emgjax.metrics")
HIGH = ("emgjax.train", "emgjax.recipes", "emgjax.bundle", "emgjax.stream", "emgjax.demo", "emgjax.cli")

# Known edges that close a cycle or cross the layers, left out of both checks until fixed.
# Each is (importer, imported): a new one fails the tests below.
ALLOWED: dict[tuple[str, str], str] = {}


def _module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, pathlib.Path]:
    return {_module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def _resolve(name: str, modules: dict[str, pathlib.Path]) -> str | None:
    """The longest prefix of the dotted `name` that is an emgjax module, or None outside emgjax."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def import_graph() -> dict[str, set[str]]:
    """{module: the emgjax modules it imports}, lazy imports included; self-imports dropped."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative import: climb from this module's package
                    package = name.split(".") if is_package else name.split(".")[:-1]
                    package = package[: len(package) - (node.level - 1)]
                    base = ".".join(package + ([base] if base else []))
                # `from pkg import sub` reaches pkg.sub when that is a module, else pkg itself.
                targets = [f"{base}.{alias.name}" for alias in node.names]
            for target in targets:
                resolved = _resolve(target, modules)
                if resolved is not None and resolved != name:
                    graph[name].add(resolved)
    return graph


def _without_allowed(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    return {name: {t for t in targets if (name, t) not in ALLOWED} for name, targets in graph.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _in(name: str, layers: tuple[str, ...]) -> bool:
    return any(name == layer or name.startswith(layer + ".") for layer in layers)


def _reachable(graph: dict[str, set[str]], start: str) -> dict[str, str]:
    """{module reachable from start: the module that imports it on one path}."""
    parents: dict[str, str] = {}
    todo = [start]
    while todo:
        node = todo.pop()
        for target in sorted(graph[node]):
            if target != start and target not in parents:
                parents[target] = node
                todo.append(target)
    return parents


def test_import_graph_sees_lazy_and_relative_imports():
    graph = import_graph()
    # Lazy (function-level) imports count: the CLI resolves commands by name, but
    # emgjax.convert.command imports emgjax.bundle inside convert_checkpoint().
    assert "emgjax.bundle" in graph["emgjax.convert.command"]
    assert "emgjax.models.tds" in graph["emgjax.models.pose_modules"]
    assert "emgjax.models.layers" in graph["emgjax.models.tds"]
    assert "emgjax.metrics" in graph["emgjax.train.losses"]
    # The checker itself finds a cycle and a crossing when one is there.
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _reachable({"a": {"b"}, "b": {"c"}, "c": set()}, "a") == {"b": "a", "c": "b"}


def test_allow_list_entries_still_exist():
    """An allowed edge that is gone must leave the list, so the list only shrinks."""
    graph = import_graph()
    stale = [edge for edge in ALLOWED if edge[1] not in graph.get(edge[0], set())]
    assert not stale, f"edges no longer in the import graph, remove them from ALLOWED: {stale}"


def test_no_import_cycles_between_emgjax_modules():
    found = cycles(_without_allowed(import_graph()))
    assert not found, f"import cycles between emgjax modules (lazy imports included): {found}"


@pytest.mark.parametrize("low", LOW)
def test_low_layers_never_import_high_ones(low):
    graph = _without_allowed(import_graph())
    violations = []
    for module in sorted(m for m in graph if _in(m, (low,))):
        parents = _reachable(graph, module)
        for target in sorted(t for t in parents if _in(t, HIGH)):
            chain = [target]
            while chain[-1] != module:
                chain.append(parents[chain[-1]])
            violations.append(" -> ".join(reversed(chain)))
    assert not violations, "low layer imports a high one:\n" + "\n".join(violations)
