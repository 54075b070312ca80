"""Where the data lives, for every command: one rule, one module, one value.

The **data root** is, first match wins (:func:`resolve_root`, called once where a command or a
Python call starts, its answer passed down as a :class:`DataRoot` value):

1. the ``--data-dir DIR`` option of a ``dynloss`` command;
2. the environment variable ``DYNLOSS_DATA_DIR``;
3. ``<checkout>/data``: the ``data/`` folder beside the ``training`` package when it runs from a
   source checkout (a ``pyproject.toml`` sits there), whatever the working directory;
4. ``$XDG_DATA_HOME/dynloss`` (default ``~/.local/share/dynloss``) for a non-editable install.

An empty ``--data-dir`` or a set but empty ``DYNLOSS_DATA_DIR`` / ``DYNLOSS_RESULTS_DIR`` is refused
naming it (:func:`folder`): ``Path("")`` would silently be the working directory.

Under it: ``cache/<preset>/`` (cached logits), ``results/<preset>/`` (tidy tables),
``results/audit.json`` (the claim audit), ``raw/`` (downloaded datasets), ``fits/`` (stored
super-learner fits). Commands that accept a narrower option (``--cache``, ``--out``,
``--results-dir``, ``--raw-dir``) override just that folder; ``DYNLOSS_RESULTS_DIR`` moves the
results root alone (the report's kernel receives it that way: :meth:`DataRoot.environ`).
The published tables and the authors' records are tracked inputs: they are read from the checkout
(:func:`project_dir`), never from the data root.

Nothing here is kept between calls or written to ``os.environ``: a child process gets the root
through the environment its parent hands it (:meth:`DataRoot.environ`).

Standard library only (imported by ``training`` and ``analysis`` alike).

>>> resolve_root(environ={"DYNLOSS_DATA_DIR": "/tmp/x"}).cache_dir("digits-tiny").as_posix()
'/tmp/x/cache/digits-tiny'
"""

from __future__ import annotations

import errno
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

DATA_ENV = "DYNLOSS_DATA_DIR"
PRESET_ENV = "DYNLOSS_PRESET"
RESULTS_ENV = "DYNLOSS_RESULTS_DIR"
DEFAULT_PRESET = "fmnist-mini"
AUDIT_FILE = "audit.json"


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


@dataclass(frozen=True)
class DataRoot:
    """The data root of one command or call, and the folders under it.

    ``path``: the root; ``source``: which rule chose it (``--data-dir``, ``$DYNLOSS_DATA_DIR``,
    ``checkout``, ``$XDG_DATA_HOME``, or ``given`` when built by hand); ``results``: the results root
    when ``DYNLOSS_RESULTS_DIR`` (or ``dynloss report --results-dir``) moves it, else None.
    """

    path: Path
    source: str = "given"
    results: Path | None = None

    @property
    def cache(self) -> Path:
        return self.path / "cache"

    def cache_dir(self, preset: str) -> Path:
        return self.cache / preset

    @property
    def results_root(self) -> Path:
        return self.results if self.results is not None else self.path / "results"

    def results_dir(self, preset: str) -> Path:
        return self.results_root / preset

    @property
    def raw(self) -> Path:
        return self.path / "raw"

    @property
    def audit_file(self) -> Path:
        return self.results_root / AUDIT_FILE

    @property
    def fits(self) -> Path:
        """Stored super-learner fits (:mod:`analysis.core.fit_store`)."""
        return self.path / "fits" / "superlearner"

    def with_results(self, results: str | os.PathLike | None) -> DataRoot:
        """This root with the results root moved to ``results`` (None: unchanged)."""
        return self if results is None else replace(self, results=Path(results).resolve())

    def environ(self) -> dict[str, str]:
        """The environment variables that give a child process (a worker, the report's kernel,
        Quarto) this root by :func:`resolve_root`."""
        env = {DATA_ENV: str(self.path)}
        if self.results is not None:
            env[RESULTS_ENV] = str(self.results)
        return env

    def display(self, path: str | os.PathLike) -> str:
        """``path`` as a relative path in the layout of the checkout's data root: ``data/results/…``
        under the results root, ``data/…`` under the data root (where the default root lies, and
        what the report's site mirrors: :mod:`analysis.report.downloads`), else relative to the
        checkout; never absolute (report text must not leak a user's home folder).

        >>> DataRoot(Path("/x/data"), results=Path("/y/res")).display("/y/res/fmnist-mini/table1.csv")
        'data/results/fmnist-mini/table1.csv'
        """
        p = Path(path).resolve()
        for base, label in ((self.results_root, "data/results"), (self.path, "data"), (project_dir(), "")):
            try:
                rel = p.relative_to(Path(base).resolve())
            except ValueError:
                continue
            return "/".join(x for x in (label, rel.as_posix()) if x and x != ".")
        return p.name


def resolve_root(option: str | os.PathLike | None = None, *,
                 environ: Mapping[str, str] | None = None) -> DataRoot:
    """The data root by the rule of this module's docstring: ``option`` (the ``--data-dir`` value;
    an empty one is refused, see :func:`folder`), else ``environ`` (default ``os.environ``, read
    here and only here), else the checkout's ``data/``, else ``$XDG_DATA_HOME/dynloss``.
    ``DYNLOSS_RESULTS_DIR`` in ``environ`` moves the results root."""
    env = os.environ if environ is None else environ

    def env_folder(name: str) -> Path | None:  # refused when set but empty
        value = env.get(name)
        return None if value is None else folder(value, f"${name}")

    results = env_folder(RESULTS_ENV)
    if option is not None:
        return DataRoot(folder(option, "--data-dir"), "--data-dir", results)
    from_env = env_folder(DATA_ENV)
    if from_env is not None:
        return DataRoot(from_env, f"${DATA_ENV}", results)
    if is_checkout():
        return DataRoot(project_dir() / "data", "checkout", results)
    xdg = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return DataRoot(Path(xdg) / "dynloss", "$XDG_DATA_HOME", results)


def default_preset(environ: Mapping[str, str] | None = None) -> str:
    """The preset the report and the audit show when none is named: ``$DYNLOSS_PRESET`` in
    ``environ`` (default ``os.environ``; read where a command or a report page starts) or the
    embedded default."""
    return (os.environ if environ is None else environ).get(PRESET_ENV) or DEFAULT_PRESET


def paper_dir() -> Path:
    """The published Tables 1-2 (tracked, shipped with the checkout)."""
    return project_dir() / "data" / "paper"


def authors_dir() -> Path:
    """The authors' own evaluation records (tracked, shipped with the checkout)."""
    return project_dir() / "data" / "authors"
