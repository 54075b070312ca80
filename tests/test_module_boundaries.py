"""Import direction between the rooms (DESIGN.md "Layout"): report -> audit -> core -> training.

`training` never imports `analysis`; analysis' core never imports the audit or the report; the
audit never imports the report; the cache-format module imports only numpy and the stdlib.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _imported_full(path: Path) -> set[str]:
    """Dotted names imported by ``path`` (absolute imports only; relative imports are refused)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import; use the absolute module name"
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


#: room -> prefixes of project modules it may import (besides its own room)
ALLOWED = {
    "analysis/core": ("training.", "analysis.core"),
    "analysis/audit": ("training.", "analysis.core", "analysis.audit"),
    "analysis/report": ("training.", "analysis.core", "analysis.audit", "analysis.report"),
}


def _room_offenders(room: str) -> list[str]:
    allowed = ALLOWED[room]
    bad = []
    for p in (ROOT / room).rglob("*.py"):
        for name in _imported_full(p):
            if name.split(".")[0] in ("analysis", "training") and not name.startswith(allowed) \
                    and name not in ("analysis", "training"):
                bad.append(f"{p.relative_to(ROOT)} imports {name}")
            if name == "analysis" or name == "training":
                bad.append(f"{p.relative_to(ROOT)} imports the bare package {name}")
    return sorted(bad)


def test_core_imports_neither_audit_nor_report():
    assert _room_offenders("analysis/core") == []


def test_audit_never_imports_report():
    assert _room_offenders("analysis/audit") == []


def test_report_imports_only_audit_core_and_training():
    assert _room_offenders("analysis/report") == []


def test_analysis_top_level_holds_only_the_root_command():
    modules = sorted(p.name for p in (ROOT / "analysis").glob("*.py"))
    assert modules == ["__init__.py", "__main__.py", "cli.py"]


def test_training_never_imports_analysis():
    offenders = [p.relative_to(ROOT) for p in (ROOT / "training").rglob("*.py") if "analysis" in _imported_modules(p)]
    assert offenders == []


def test_cache_format_imports_only_numpy_and_stdlib():
    mods = _imported_modules(ROOT / "training" / "cache_format.py")
    allowed = set(sys.stdlib_module_names) | {"numpy", "__future__"}
    assert mods - allowed == set()


def test_project_code_never_reads_outside_the_repository():
    for pkg in ("training", "analysis", "reports"):
        for p in (ROOT / pkg).rglob("*"):
            if p.suffix in {".py", ".qmd"}:
                assert "../shared" not in p.read_text(), p


def test_importing_the_packages_changes_no_global_torch_or_numpy_state():
    """No seeding, thread counts, determinism flags or backend switches at import time."""
    import subprocess

    code = """
import importlib, pkgutil, numpy as np, torch
def state():
    return (torch.get_rng_state().sum().item(), torch.initial_seed(), np.random.get_state()[1].sum(),
            torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
            torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic, torch.get_default_dtype())
before = state()
import training, analysis
for pkg in (training, analysis):
    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
        importlib.import_module(m.name)
after = state()
assert before == after, (before, after)
"""
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=300)
