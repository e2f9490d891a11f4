"""The shape the library keeps: folders by stage, imports that only point back to earlier stages,
no import cycle, figures that never touch files, a read layer that needs no torch.

Every import counts, including the ones inside functions (a lazy import is still a dependency)
and relative ones (`from .. import x`)."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "bumpdiff_core"
MODULES = sorted(PACKAGE.rglob("*.py"))

# the stages, in data-flow order: a module may import its own stage and earlier ones only
STAGES = ["config", "runs", "learn", "measure", "sweeps", "results", "claims", "present", "execute", "cli"]
TOP = {"__init__": None, "__main__": "cli"}  # the package's own entry points sit outside the order


def module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def stage_of(module: str):
    parts = module.split(".")
    if len(parts) == 1:
        return None  # the package itself
    head = parts[1]
    head = TOP.get(head, head)
    return None if head is None else STAGES.index(head)


def imports_of(path: Path, root: Path = PACKAGE) -> set[str]:
    """The bumpdiff_core modules `path` imports (absolute and relative, anywhere in the file),
    resolved to module names (a `from pkg import name` counts as `pkg.name` when that is a module)."""
    module = module_name(path, root)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    known = {module_name(p, root) for p in root.rglob("*.py")}
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("bumpdiff_core")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("bumpdiff_core"):
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in known else target)
    found.discard(module)
    return {m for m in found if m in known}


def graph_of(root: Path = PACKAGE) -> dict[str, set[str]]:
    return {module_name(p, root): imports_of(p, root) for p in sorted(root.rglob("*.py"))}


def backward_imports(graph) -> dict[str, list[str]]:
    out = {}
    for module, targets in graph.items():
        mine = stage_of(module)
        later = sorted(m for m in targets if mine is not None and (stage_of(m) or 0) > mine)
        if later:
            out[module] = later
    return out


def cycles_of(graph) -> list[list[str]]:
    seen, stack, cycles = set(), [], []

    def visit(node):
        if node in stack:
            cycles.append(stack[stack.index(node):] + [node])
            return
        if node in seen:
            return
        seen.add(node)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if not nxt.startswith(node + "."):  # a package's __init__ re-exporting its modules
                visit(nxt)
        stack.pop()

    for m in sorted(graph):
        visit(m)
    return cycles


GRAPH = graph_of()


def test_every_module_sits_in_a_stage_folder():
    loose = [m for m in GRAPH if m.count(".") == 1 and m.split(".")[1] not in STAGES + list(TOP)]
    assert not loose, f"modules outside the stage folders: {loose}"


def test_no_import_from_a_later_stage():
    assert not backward_imports(GRAPH), backward_imports(GRAPH)


def test_no_import_cycle():
    cycles = cycles_of(GRAPH)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_checks_find_backward_imports_and_cycles(tmp_path):
    """The two checks can fail: a lazy relative `from ..present import report` inside learn/ is a
    backward import, and two modules importing each other are a cycle."""
    root = tmp_path / "bumpdiff_core"
    for folder in ("learn", "present"):
        (root / folder).mkdir(parents=True)
        (root / folder / "__init__.py").write_text("")
    (root / "__init__.py").write_text("")
    (root / "learn" / "model.py").write_text("def f():\n    from ..present import report\n")
    (root / "present" / "report.py").write_text("from bumpdiff_core.present import pages\n")
    (root / "present" / "pages.py").write_text("from . import report\n")
    graph = graph_of(root)
    assert backward_imports(graph) == {"bumpdiff_core.learn.model": ["bumpdiff_core.present.report"]}
    cycles = cycles_of(graph)
    assert len(cycles) == 1 and set(cycles[0]) == {"bumpdiff_core.present.pages", "bumpdiff_core.present.report"}


@pytest.mark.parametrize("path", sorted((PACKAGE / "present" / "figures").glob("*.py")), ids=lambda p: p.name)
def test_figure_modules_do_not_touch_files(path):
    imported = imports_of(path)
    touching = {m for m in imported if m.split(".")[1] in ("runs", "execute") or m.endswith(("evaluate", "schema"))}
    assert not touching, touching
    tree = ast.parse(path.read_text())
    calls = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    assert "open" not in calls


@pytest.mark.parametrize("module", ["bumpdiff_core.results", "bumpdiff_core.results.view",
                                    "bumpdiff_core.results.tables", "bumpdiff_core.present.report",
                                    "bumpdiff_core.cli"])
def test_reading_results_never_imports_torch(module):
    code = f"import sys, {module}; import bumpdiff_core.results.view, bumpdiff_core.results.tables; " \
           "print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False", f"importing {module} imported torch"
