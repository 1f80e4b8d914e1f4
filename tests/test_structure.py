"""The package's structure: no import cycle among fastddgan's modules, and sampling, checkpoints and export depend on
the model protocol (fastddgan.family), not on the model families.

The module graph is read from the source with ``ast`` (no import runs): an edge for every ``import`` / ``from ...
import`` executed when the module is imported (module level, including ``if`` / ``try`` blocks), and in a second
graph also those deferred into functions (a lazy import that only hides a cycle: the cycle checkpoint <-> ddgan <->
ddpm <-> export <-> sampling was one); ``from package import name`` is an edge to the submodule when ``name`` is one,
else to the package. A package's implicit import of its parent is not an edge (every module would be in a cycle with
the root's ``__init__``)."""

import ast
import os

import pytest

import fastddgan

ROOT = os.path.dirname(fastddgan.__file__)


def _modules():
    """{dotted name: path} of every module of the package."""
    found = {}
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if not d.startswith((".", "__pycache__"))]
        for name in files:
            if not name.endswith(".py"):
                continue
            rel = os.path.relpath(os.path.join(folder, name), os.path.dirname(ROOT))[:-3].split(os.sep)
            if rel[-1] == "__init__":
                rel = rel[:-1]
            found[".".join(rel)] = os.path.join(folder, name)
    return found


def _module_level_imports(tree, deferred: bool = False):
    """The import statements run when the module is imported (with ``deferred``: also those inside functions)."""
    if deferred:
        yield from (node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom)))
        return
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, (ast.If, ast.Try, ast.With, ast.For, ast.While)):
            for field in ("body", "orelse", "finalbody", "handlers"):
                for child in getattr(node, field, []):
                    stack.extend(child.body if isinstance(child, ast.ExceptHandler) else [child])
        elif isinstance(node, ast.ClassDef):
            stack.extend(n for n in node.body if not isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)))


def import_graph(deferred: bool = False):
    modules = _modules()
    graph = {name: set() for name in modules}
    for name, path in modules.items():
        with open(path) as f:
            tree = ast.parse(f.read(), path)
        package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
        for node in _module_level_imports(tree, deferred):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                if node.level:
                    base = package.split(".")
                    base = base[:len(base) - (node.level - 1)]
                    base = ".".join(base + ([node.module] if node.module else []))
                else:
                    base = node.module
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for target in targets:
                # `import a.b.c` names the module a.b.c; keep the longest prefix that is one of ours
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def _cycles(graph):
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, on_stack, stack, out, counter = {}, {}, set(), [], [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
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
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_graph_reader_sees_imports():
    graph = import_graph()
    assert "fastddgan.family" in graph["fastddgan.sampling"]
    assert "fastddgan.sampling" in graph["fastddgan.ddgan"]
    assert "fastddgan.train.loop" in graph["fastddgan.train"]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("deferred", [False, True], ids=["module-level", "with-deferred-imports"])
def test_no_import_cycle_among_fastddgan_modules(deferred):
    cycles = _cycles(import_graph(deferred))
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


@pytest.mark.parametrize("module", ["fastddgan.sampling", "fastddgan.checkpoint", "fastddgan.export",
                                    "fastddgan.family", "fastddgan.train_state", "fastddgan.train.loop"])
def test_sampling_checkpoints_and_export_use_the_protocol_not_the_families(module):
    """Nothing below the model families imports them, directly or through another module (deferred or not)."""
    graph = import_graph(deferred=True)
    seen, todo = set(), [module]
    while todo:
        for w in graph[todo.pop()]:
            if w not in seen:
                seen.add(w)
                todo.append(w)
    assert not seen & {"fastddgan.ddgan", "fastddgan.ddpm", "fastddgan"}, sorted(seen)


def test_the_families_follow_the_protocol():
    from fastddgan.family import Model, family, kinds

    assert kinds() == ("ddgan", "ddpm")
    assert family("ddgan") is fastddgan.DDGAN and family("ddpm") is fastddgan.DDPM
    for kind in kinds():
        model = fastddgan.from_preset(kind, "toy2d", schedule=4)
        assert isinstance(model, Model) and model.kind == kind
        setup = model.sampling_setup(None)
        assert setup.streams == 1 + setup.sampler.streams_per_step * model.T
    with pytest.raises(ValueError, match=r"kind: expected one of \('ddgan', 'ddpm'\), got 'gan'"):
        family("gan")
