"""Imports run one way (issue 28): no runtime import cycle among the modules of gan/ and benchmarks/,
counting imports inside functions too (a cycle hidden in a function still ties two layers together);
imports under `if TYPE_CHECKING:` do not count. And `import gan` never loads gradio."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _modules() -> dict[str, Path]:
    """Dotted name -> file, for gan/ (as `gan.x.y`) and benchmarks/ (scripts: by their stem)."""
    mods = {}
    for p in (ROOT / "gan").rglob("*.py"):
        parts = list(p.relative_to(ROOT).with_suffix("").parts)
        mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    for p in (ROOT / "benchmarks").glob("*.py"):
        mods[p.stem] = p
    return mods


def _imported(path: Path, name: str, known: set[str]) -> set[str]:
    """The known modules a file imports at run time (module level or inside functions)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    class Visitor(ast.NodeVisitor):
        def visit_If(self, node: ast.If) -> None:
            t = node.test
            if getattr(t, "id", None) == "TYPE_CHECKING" or getattr(t, "attr", None) == "TYPE_CHECKING":
                for n in node.orelse:
                    self.visit(n)
                return
            self.generic_visit(node)

        def visit_Import(self, node: ast.Import) -> None:
            found.update(a.name for a in node.names)

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            subs = [f"{mod}.{a.name}" for a in node.names]
            found.update(subs if all(s in known for s in subs) else [mod])

    Visitor().visit(ast.parse(path.read_text(encoding="utf-8")))
    out = set()
    for m in found:
        while m and m not in known:
            m = m.rpartition(".")[0]
        if m and m != name:
            out.add(m)
    return out


def import_cycles() -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    mods = _modules()
    graph = {m: _imported(p, m, set(mods)) for m, p in mods.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
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
                cycles.append(sorted(comp))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_no_import_cycles():
    assert import_cycles() == []


def test_the_walker_sees_a_cycle_inside_a_function(tmp_path, monkeypatch):
    """The checker itself: a function-level import back up is a cycle."""
    pkg = tmp_path / "gan"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "low.py").write_text("def f():\n    from .high import g\n    return g\n")
    (pkg / "high.py").write_text("from .low import f\n\ndef g():\n    return f\n")
    (pkg / "typed.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .high import g\n")
    (tmp_path / "benchmarks").mkdir()
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert import_cycles() == [["gan.high", "gan.low"]]


def test_import_gan_never_loads_gradio():
    code = "import sys, gan, gan.worker, gan.datafile, gan.cost; print('gradio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr
