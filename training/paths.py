"""Where the data lives, for every command: one rule, one module.

The **data root** is, first match wins:

1. the ``--data-dir DIR`` option of a ``dynloss`` command (the CLI passes it to :func:`set_data_dir`);
2. the environment variable ``DYNLOSS_DATA_DIR``;
3. ``<checkout>/data``: the ``data/`` folder beside the ``training`` package when it runs from a
   source checkout (a ``pyproject.toml`` sits there), whatever the working directory;
4. ``$XDG_DATA_HOME/dynloss`` (default ``~/.local/share/dynloss``) for a non-editable install.

An empty ``--data-dir`` or a set but empty ``DYNLOSS_DATA_DIR`` / ``DYNLOSS_RESULTS_DIR`` is refused
naming it (:func:`folder`): ``Path("")`` would silently be the working directory.

Under it: ``cache/<preset>/`` (cached logits), ``results/<preset>/`` (tidy tables),
``results/audit.json`` (the claim audit), ``raw/`` (downloaded datasets). Commands that accept a
narrower option (``--cache``, ``--out``, ``--results-dir``, ``--raw-dir``) override just that folder;
``DYNLOSS_RESULTS_DIR`` moves the results root alone (the report's kernel receives it that way).
The published tables and the authors' records are tracked inputs: they are read from the checkout
(:func:`project_dir`), never from the data root.

Standard library only (imported by ``training`` and ``analysis`` alike).

>>> import os; os.environ["DYNLOSS_DATA_DIR"] = "/tmp/x"
>>> cache_dir("digits-tiny").as_posix()
'/tmp/x/cache/digits-tiny'
>>> del os.environ["DYNLOSS_DATA_DIR"]
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

DATA_ENV = "DYNLOSS_DATA_DIR"
PRESET_ENV = "DYNLOSS_PRESET"
RESULTS_ENV = "DYNLOSS_RESULTS_DIR"
DEFAULT_PRESET = "fmnist-mini"
AUDIT_FILE = "audit.json"

_override: Path | None = None


def project_dir() -> Path:
    """The folder holding the ``training`` package (the checkout root in a source tree)."""
    return Path(__file__).resolve().parents[1]


def is_checkout() -> bool:
    return (project_dir() / "pyproject.toml").is_file()


def folder(value: str | os.PathLike, source: str) -> Path:
    """``value`` as an absolute folder path; an empty one (which ``Path`` reads as the working
    directory) raises ``FileNotFoundError`` (ENOENT, so a bad path: exit status 2) naming ``source``.

    >>> folder("", "--data-dir")
    Traceback (most recent call last):
    FileNotFoundError: [Errno 2] an empty path names no folder (it would mean the working directory); give a folder: '--data-dir'
    """
    if os.fspath(value) == "":
        raise FileNotFoundError(errno.ENOENT, "an empty path names no folder (it would mean the working "
                                              "directory); give a folder", source)
    return Path(value).expanduser().resolve()


def _env_folder(name: str) -> Path | None:
    """The folder in environment variable ``name`` (None when unset; refused when set but empty)."""
    value = os.environ.get(name)
    return None if value is None else folder(value, f"${name}")


def set_data_dir(path: str | os.PathLike | None) -> None:
    """Set (or, with ``None``, clear) the data root for this process: the ``--data-dir`` option
    (an empty one is refused, see :func:`folder`).

    Also exported as ``DYNLOSS_DATA_DIR`` so that child processes (workers, report kernels, Quarto)
    resolve the same folders.
    """
    global _override
    if path is None:
        _override = None
        return
    _override = folder(path, "--data-dir")
    os.environ[DATA_ENV] = str(_override)


def data_dir() -> Path:
    """The data root by the rule of this module's docstring (an absolute path)."""
    if _override is not None:
        return _override
    env = _env_folder(DATA_ENV)
    if env is not None:
        return env
    if is_checkout():
        return project_dir() / "data"
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "dynloss"


def data_dir_source() -> str:
    """Which rule chose :func:`data_dir` (for messages and provenance)."""
    if _override is not None:
        return "--data-dir"
    if os.environ.get(DATA_ENV) is not None:
        return f"${DATA_ENV}"
    return "checkout" if is_checkout() else "$XDG_DATA_HOME"


def cache_root() -> Path:
    return data_dir() / "cache"


def cache_dir(preset: str) -> Path:
    return cache_root() / preset


def results_root() -> Path:
    """``$DYNLOSS_RESULTS_DIR`` (set by ``dynloss report --results-dir`` for its kernel) or ``<data>/results``."""
    env = _env_folder(RESULTS_ENV)
    return env if env is not None else data_dir() / "results"


def results_dir(preset: str) -> Path:
    return results_root() / preset


def raw_dir() -> Path:
    return data_dir() / "raw"


def audit_file() -> Path:
    return results_root() / AUDIT_FILE


def paper_dir() -> Path:
    """The published Tables 1-2 (tracked, shipped with the checkout)."""
    return project_dir() / "data" / "paper"


def authors_dir() -> Path:
    """The authors' own evaluation records (tracked, shipped with the checkout)."""
    return project_dir() / "data" / "authors"


def preset_name() -> str:
    """The preset a report shows: ``$DYNLOSS_PRESET`` or the embedded default."""
    return os.environ.get(PRESET_ENV) or DEFAULT_PRESET


def display(path: str | os.PathLike) -> str:
    """``path`` relative to the data root's parent or the checkout when inside them; never absolute
    for project files (report text must not leak a user's home folder)."""
    p = Path(path).resolve()
    for base, label in ((data_dir(), "<data>"), (project_dir(), "")):
        try:
            rel = p.relative_to(base)
        except ValueError:
            continue
        return f"{label}/{rel.as_posix()}" if label else rel.as_posix()
    return p.name
