"""The package's import graph: arrows run down the layers below, and no two modules import each other.

Read from the sources with ``ast`` (every ``import``/``from`` statement, also those inside functions), so a lazy
import that reaches upwards counts as much as a top-level one. ``fairseq_ssr/__init__.py`` is the plugin's entry
point, which imports what it registers, and is exempt; ``ssr_eval`` needs neither the plugin, fairseq nor torch.
"""
import ast
from pathlib import Path

from conftest import REPO

# lowest first; a module may import its own layer (without cycles) and the layers below it
LAYERS = [
    ["fairseq_ssr.environment", "fairseq_ssr.errors", "fairseq_ssr.distributed", "fairseq_ssr.resume",
     "fairseq_ssr.curriculum", "fairseq_ssr.data"],
    ["fairseq_ssr.models"],
    ["fairseq_ssr.checkpoints", "fairseq_ssr.curriculum_batching", "fairseq_ssr.autocast", "fairseq_ssr.optim",
     "fairseq_ssr.rewrite_generator", "fairseq_ssr.training_levers", "fairseq_ssr.validation_metric"],
    ["fairseq_ssr.pipeline", "fairseq_ssr.criterions", "fairseq_ssr.tasks"],
    ["fairseq_ssr.hub", "fairseq_ssr.demo", "fairseq_ssr.cli"],
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, name: str):
    """Absolute names of the modules ``path`` imports (relative imports resolved)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            yield base
            yield from (f"{base}.{a.name}" for a in node.names)  # `from . import x` names a module


def graph(root: str):
    modules = {module_name(p): p for p in (REPO / root).rglob("*.py")}
    edges = {}
    for name, path in modules.items():
        edges[name] = {m for m in imports(path, name) if m in modules and m != name}
    return edges


def layer(name: str) -> int:
    for i, prefixes in enumerate(LAYERS):
        if any(name == p or name.startswith(p + ".") for p in prefixes):
            return i
    raise AssertionError(f"{name} is in no layer: add it to LAYERS")


def test_no_module_imports_a_higher_layer():
    edges = graph("fairseq_ssr")
    assert all(layer(name) >= 0 for name in edges if name != "fairseq_ssr")  # every module has its place
    upward = [(a, b) for a, targets in edges.items() if a != "fairseq_ssr" for b in targets
              if b != "fairseq_ssr" and layer(b) > layer(a)]
    assert upward == []


def test_no_import_cycles():
    edges = graph("fairseq_ssr")
    edges.pop("fairseq_ssr")
    state, cycles = {}, []

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert cycles == []


def test_the_scorers_need_neither_the_plugin_nor_fairseq_nor_torch():
    for path in (REPO / "ssr_eval").rglob("*.py"):
        tops = {m.split(".")[0] for m in imports(path, module_name(path))}
        assert not tops & {"fairseq_ssr", "fairseq", "torch"}, path
