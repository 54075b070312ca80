"""What produced a file: library versions, the code revision (with a dirty flag) and checksums.

One module for training (``run.json``), analysis (``provenance.json``) and the report's
environment table. Standard library only; versions are read from the installed distributions, so
nothing heavy is imported to learn them.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import platform
import subprocess
from pathlib import Path

from training.cache_format import sha256_file
from training.paths import project_dir

__all__ = ["LIBRARIES", "code_revision", "sha256_file", "short_revision", "versions"]

#: distributions whose versions are recorded everywhere (run.json, provenance.json, the report)
LIBRARIES: tuple[str, ...] = (
    "dynloss", "numpy", "scipy", "pandas", "scikit-learn", "statsmodels", "torch", "torchvision",
    "matplotlib", "seaborn",
)


def versions() -> dict[str, str]:
    """``{"python": ..., <distribution>: version or "absent"}`` for :data:`LIBRARIES`."""
    out = {"python": platform.python_version(), "platform": platform.platform(terse=True)}
    for dist in LIBRARIES:
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            out[dist] = "absent"
    return out


def code_revision(root: str | os.PathLike | None = None) -> str:
    """``git rev-parse HEAD`` of the checkout, with ``+dirty`` when tracked files are modified, or
    ``"unknown"`` outside a git checkout (or without git)."""
    root = Path(root) if root else project_dir()
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        if rev.returncode != 0 or not rev.stdout.strip():
            return "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10)
        return rev.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def short_revision(revision: str) -> str:
    """A revision as shown to people: 12 hex digits, keeping a ``+dirty`` flag.

    >>> short_revision("0123456789abcdef0123+dirty")
    '0123456789ab+dirty'
    """
    head, plus, flag = revision.partition("+")
    return head[:12] + plus + flag
