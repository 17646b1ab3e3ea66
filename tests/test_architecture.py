"""The package's import structure (read from the source with ast, nothing imported): no cycles, and
every layer imports only the layers below it (docs/architecture.md draws them)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "gsenv"

# Layer of each top-level part of gsenv, lowest first. A module may import its own layer or lower.
LAYERS: dict[str, int] = {
    # foundation: plain helpers
    "geometry": 0, "media": 0, "backends": 0, "compat": 0, "assets_manifest": 0, "atomic": 0, "ranges": 0,
    # library
    "splat": 1, "assets": 1, "sim": 1, "tasks": 1,
    "physics": 2, "scene": 2, "scene_build": 2,
    # the env
    "observations": 3, "env": 3, "env_state": 3, "wrappers": 3, "registration": 3,
    "viewer": 3,
    # above the env
    "alignment": 4,
    "capture": 4,
    "realgap": 4,  # a real recording against the scene (`gsenv real compare`)
    "lerobot_v21": 4,  # the dataset format collection writes: only tools use it
    "tools": 5,
}
LIBRARY = ("splat", "assets", "sim", "tasks", "physics", "scene", "scene_build")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The gsenv module an import name refers to (a module, or the package defining the name)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every gsenv module `module` imports, at top level or inside functions."""
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            names = [f"{base}.{a.name}" for a in node.names]
        for name in names:
            if name == "gsenv" or name.startswith("gsenv."):
                target = _resolve(name, modules)
                if target and target != module:
                    found.add(target)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {m: _imports(m, p, modules) for m, p in modules.items()}


def _part(module: str) -> str | None:
    """'gsenv.splat.renderer' -> 'splat'; the package root itself has no part."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _edges_between_packages(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The graph without package-to-own-submodule edges (an __init__ naming its modules is no cycle)."""
    return {m: {t for t in ts if not t.startswith(m + ".")} for m, ts in graph.items()}


def test_every_part_of_the_package_has_a_layer():
    parts = {_part(m) for m in _modules()} - {None}
    assert parts <= set(LAYERS), (
        f"give these parts of gsenv a layer here and in docs/architecture.md: {parts - set(LAYERS)}"
    )


def test_no_import_cycles():
    assert _cycles(_edges_between_packages(_graph())) == []


def test_layers_only_look_down():
    upward = []
    for module, targets in _graph().items():
        part = _part(module)
        if part is None:  # gsenv/__init__.py: the public face, may name anything
            continue
        for target in targets:
            tpart = _part(target)
            if tpart is not None and LAYERS[tpart] > LAYERS[part]:
                upward.append(f"{module} -> {target}")
    assert upward == []


@pytest.mark.parametrize("forbidden", ["gsenv.env", "gsenv.observations", "gsenv.tools", "gsenv.alignment"])
def test_library_never_imports_the_env_tools_or_alignment(forbidden):
    offenders = [f"{m} -> {t}" for m, ts in _graph().items() if _part(m) in LIBRARY
                 for t in ts if t == forbidden or t.startswith(forbidden + ".")]
    assert offenders == []


def test_the_checker_sees_upward_and_circular_imports(tmp_path):
    """The walker itself: a planted cycle and a relative import are found."""
    graph = {"gsenv.a": {"gsenv.b"}, "gsenv.b": {"gsenv.c"}, "gsenv.c": {"gsenv.a"}, "gsenv.d": {"gsenv.a"}}
    assert _cycles(graph) == [["gsenv.a", "gsenv.b", "gsenv.c"]]
    modules = {"gsenv.splat": tmp_path, "gsenv.splat.x": tmp_path, "gsenv.env": tmp_path}
    src = tmp_path / "x.py"
    src.write_text("def f():\n    from ..env import GSEnv\n    from . import x\n")
    assert _imports("gsenv.splat.y", src, modules) == {"gsenv.env", "gsenv.splat.x"}


def _declared_all(path: Path) -> list[str] | None:
    """The module's literal __all__ (read with ast), or None when it declares none."""
    for node in ast.parse(path.read_text(), str(path)).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            return [ast.literal_eval(e) for e in node.value.elts]
    return None


def _exports_problems(importer_part: str, modules: dict[str, Path]) -> list[str]:
    """Every `from gsenv.X import name` in `importer_part` (a part of gsenv) that names something X does
    not export: neither a submodule of X nor in X's declared __all__."""
    problems = []
    for module, path in modules.items():
        if _part(module) != importer_part:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.ImportFrom) or node.level or not (node.module or "").startswith("gsenv"):
                continue
            source = node.module
            if _part(source) == importer_part or source not in modules:
                continue
            exported = _declared_all(modules[source])
            for alias in node.names:
                if f"{source}.{alias.name}" in modules:  # a submodule
                    continue
                if exported is None:
                    problems.append(f"{module}: {source} declares no __all__ (it imports {alias.name})")
                elif alias.name not in exported:
                    problems.append(f"{module}: {alias.name} is not in {source}.__all__")
    return problems


def test_tools_import_only_what_the_layers_below_export():
    """Each module a tool imports from declares what it exports (__all__), and tools import nothing else."""
    assert _exports_problems("tools", _modules()) == []


def test_the_export_check_sees_an_undeclared_name(tmp_path):
    lib, tool = tmp_path / "lib.py", tmp_path / "tool.py"
    lib.write_text('__all__ = ["public"]\n\ndef public():\n    pass\n\ndef internal():\n    pass\n')
    tool.write_text("from gsenv.splat.lib import public, internal\n")
    modules = {"gsenv.splat.lib": lib, "gsenv.tools.tool": tool}
    assert _exports_problems("tools", modules) == ["gsenv.tools.tool: internal is not in gsenv.splat.lib.__all__"]
