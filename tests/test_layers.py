"""The package's layers, read from its imports (ast): arrows point one way, no cycles, no
private names across subpackages, and the symbolic layer never reaches torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "chatsr"

# what each layer may import (besides itself); front ends -> estimator -> search -> model ->
# data -> symbolic, with training beside search (it imports the model, never the search)
BELOW_ESTIMATOR = {"search", "model", "data", "symbolic"}
ALLOWED = {
    "symbolic": set(),
    "data": {"symbolic"},
    "model": {"data", "symbolic"},
    "training": {"model", "data", "symbolic"},
    "search": {"model", "symbolic"},
    "pipeline": {"export"} | BELOW_ESTIMATOR,
    "results": {"symbolic"},
    "estimator": {"export", "pipeline", "results"} | BELOW_ESTIMATOR,
    "export": {"symbolic"},
    "plots": {"estimator", "export", "pipeline", "results"} | BELOW_ESTIMATOR,
    "bench": {"estimator", "export", "pipeline", "plots", "results"} | BELOW_ESTIMATOR,
    "widgets": {"estimator", "export", "pipeline", "plots", "training", "results"}
               | BELOW_ESTIMATOR,
    "cli": {"bench", "estimator", "export", "pipeline", "plots", "training", "widgets", "results"}
           | BELOW_ESTIMATOR,
    "": {"estimator", "model", "data", "symbolic"},  # chatsr/__init__.py: the public API
}
HEAVY = ("torch", "transformers", "accelerate", "tokenizers", "safetensors")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports(path: Path) -> list[tuple[str, list[str], int]]:
    """Every import in the file, nested ones too: (module, names, line)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, [], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: relative import"
            found.append((node.module, [alias.name for alias in node.names], node.lineno))
    return found


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(target: str, names: list[str]) -> list[str]:
    """The chatsr modules an import statement loads (``from chatsr.x import y`` may be a
    module ``chatsr.x.y``)."""
    return [f"{target}.{n}" if f"{target}.{n}" in MODULES else target for n in names or [""]]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_arrows_point_down(module):
    layer = _layer(module)
    assert layer in ALLOWED, f"{module}: a layer that ALLOWED does not name"
    for target, names, line in _imports(MODULES[module]):
        if not target.startswith("chatsr"):
            if layer in ("symbolic", "data"):
                assert not target.startswith(HEAVY), f"{module}:{line} imports {target}"
            continue
        other = _layer(target)
        assert other == layer or other in ALLOWED[layer], (
            f"{module}:{line} imports {target}: {layer or 'chatsr'} may import "
            f"{sorted(ALLOWED[layer])}")
        if other != layer:
            private = [n for n in names if n.startswith("_")]
            assert not private, f"{module}:{line} imports private {private} from {target}"


def test_no_import_cycles():
    graph = {m: {t for target, names, _ in _imports(p) if target.startswith("chatsr")
                 for t in _resolve(target, names) if t != m and t in MODULES}
             for m, p in MODULES.items()}
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            assert state.get(nxt) != "open", f"import cycle: {' -> '.join(path + [nxt])}"
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def test_symbolic_and_data_load_without_torch():
    lower = [m for m in MODULES if _layer(m) in ("symbolic", "data")]
    code = ("import sys\n" + "".join(f"import {m}\n" for m in lower) +
            f"print(sorted(k for k in sys.modules if k.split('.')[0] in {HEAVY!r}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]", out
