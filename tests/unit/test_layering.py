"""The architecture, checked: packages import only from lower layers, no import cycles, TensorFlow only in harness/tf.

Reads the sources (``ast``), imports nothing. Function-level imports count like module-level ones.
"""

from __future__ import annotations

import ast
from pathlib import Path

from support import ROOT

# Lowest first. A module may import from its own package and from packages of a lower rank; packages of equal rank
# are independent of each other (the NumPy math and TensorFlow know nothing of each other, nor of the op table).
LAYERS = {
    "harness.atomic": 0,
    "harness.install": 0,  # standard library only: make runs it before anything is installed
    "harness.templates": 0,  # harness init's starter: the user's placeholder kernel imports NumPy only
    "harness.conv": 1,
    "harness.ops": 2,
    "harness.tf": 2,
    "harness.registry": 3,
    "harness.backends": 4,
    "harness.check": 5,
    "harness.reports": 6,
    "harness.selftest": 7,
    "harness.exchange": 8,
    "harness.matrix": 9,
    "harness.starter": 9,
    "harness.cli": 10,
    "harness.pytest_plugin": 10,
    "harness.__main__": 11,
}
TENSORFLOW_PACKAGE = "harness.tf"


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted((ROOT / "harness").rglob("*.py")) + sorted((ROOT / "bench").rglob("*.py")):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def imports(path: Path) -> set[str]:
    """Every module an ``import`` statement anywhere in the file names (``from a import b`` names ``a`` and ``a.b``)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return names


def layer(module: str) -> tuple[str, int] | None:
    """(package, rank) of a harness module; None for the package ``harness`` itself and for bench."""
    for package, rank in sorted(LAYERS.items(), key=lambda kv: -len(kv[0])):
        if module == package or module.startswith(package + "."):
            return package, rank
    return None


def test_every_harness_module_has_a_layer():
    missing = [m for m in modules() if m.startswith("harness.") and layer(m) is None]
    assert missing == [], f"add these to LAYERS (and say why in the package docstring): {missing}"


def edges() -> dict[str, set[str]]:
    """module -> the harness and bench modules it imports."""
    mods = modules()
    return {name: {t for t in imports(path) & set(mods) if t != name} for name, path in mods.items()}


def upward(graph: dict[str, set[str]]) -> list[str]:
    """Imports of a package of the same or a higher rank than the importer's (its own package excepted)."""
    wrong = []
    for name, targets in graph.items():
        own = layer(name)
        for target in sorted(targets):
            other = layer(target)
            if own is not None and other is not None and other[0] != own[0] and other[1] >= own[1]:
                wrong.append(f"{name} ({own[0]}, rank {own[1]}) imports {target} ({other[0]}, rank {other[1]})")
    return wrong


def cycles(graph: dict[str, set[str]]) -> list[str]:
    """Every import cycle a depth-first walk meets, as "a -> b -> a", from its first module in sorted order (where
    the walk enters a cycle depends on which module imports into it first)."""
    found, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                loop = stack[stack.index(target) :]
                start = loop.index(min(loop))
                found.append(" -> ".join(loop[start:] + loop[:start] + [min(loop)]))
            elif target not in state:
                visit(target, stack + [target])
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    return found


def test_lower_layers_never_import_upper_ones():
    assert upward(edges()) == [], "\n".join(upward(edges()))


def test_there_are_no_import_cycles():
    assert cycles(edges()) == [], "\n".join(cycles(edges()))


def test_only_harness_tf_imports_tensorflow():
    wrong = [
        name
        for name, path in modules().items()
        if not (name == TENSORFLOW_PACKAGE or name.startswith(TENSORFLOW_PACKAGE + "."))
        and any(t == "tensorflow" or t.startswith("tensorflow.") for t in imports(path))
    ]
    assert wrong == [], f"import TensorFlow through harness.tf only: {wrong}"


def test_every_package_says_what_belongs_in_it():
    for init in sorted((ROOT / "harness").rglob("__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc and len(doc) > 60, f"{init.relative_to(ROOT)}: a docstring saying what belongs in the package"


def test_the_checks_see_a_violation():
    # not vacuous: on the real graph plus one bad edge, each check reports exactly that edge
    graph = edges()
    assert "harness.tf.wrappers" in graph["harness.tf.isolation"] and len(graph) > 40
    bad = {**graph, "harness.conv.padding": graph["harness.conv.padding"] | {"harness.registry.cases"}}
    assert upward(bad) == [
        "harness.conv.padding (harness.conv, rank 1) imports harness.registry.cases (harness.registry, rank 3)"
    ]
    sideways = {**graph, "harness.ops": graph["harness.ops"] | {"harness.tf.wrappers"}}
    assert upward(sideways) == ["harness.ops (harness.ops, rank 2) imports harness.tf.wrappers (harness.tf, rank 2)"]
    loop = {**graph, "harness.conv.dtypes": graph["harness.conv.dtypes"] | {"harness.conv.reference"}}
    assert cycles(loop) == ["harness.conv.dtypes -> harness.conv.reference -> harness.conv.dtypes"]
