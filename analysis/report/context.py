"""Where the report finds a preset's results and how it loads them; the page banner.

Locations come from :mod:`training.paths` (one rule for every command). ``DYNLOSS_PRESET`` names
the preset shown (set by ``dynloss report --preset``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from training import paths
from training.paths import preset_name
from training.provenance import code_revision as full_revision
from training.provenance import short_revision


class ResultsMissingError(FileNotFoundError):
    """A result table the report needs is absent; the message names the command that makes it."""


#: inputs read by each page helper (filled by :func:`reads`): helper name -> input names. An
#: input is a result table of the preset (``"table1"``), ``"audit"`` (the claim audit) or
#: ``"paper:<file>"`` (a published table in data/paper/). The provenance table is built from it.
HELPER_INPUTS: dict[str, tuple[str, ...]] = {}


def reads(*inputs: str):
    """Record which inputs a page helper reads (for the provenance table); returns it unchanged."""

    def mark(func):
        HELPER_INPUTS[func.__name__] = tuple(inputs)
        return func

    return mark


def project_root() -> Path:
    """The checkout holding ``_quarto.yml`` and ``reports/`` (:func:`training.paths.project_dir`)."""
    return paths.project_dir()


def results_dir(preset: str | None = None, *, base: str | Path | None = None, require: bool = False) -> Path:
    """Directory of a preset's results (``<base>/<preset>``; ``base`` defaults to
    :func:`training.paths.results_root`).

    Raises
    ------
    ResultsMissingError
        With ``require=True``, when the directory does not exist.
    """
    preset = preset or preset_name()
    base = base or paths.results_root()
    path = Path(base) / preset
    if require and not path.is_dir():
        raise ResultsMissingError(
            f"No results for preset {preset!r} in {path}: run `dynloss analyze --preset {preset}` "
            f"(after `dynloss train --preset {preset}`), or `make report PRESET={preset}`."
        )
    return path


def result_path(name: str, preset: str | None = None) -> Path:
    """Path of result table ``name`` (``table1`` → ``table1.csv``), checked to exist."""
    preset = preset or preset_name()
    folder = results_dir(preset, require=True)
    path = folder / f"{name}.csv"
    if path.is_file():
        return path
    raise ResultsMissingError(
        f"Result {name!r} of preset {preset!r} not found in {folder} (looked for {name}.csv): "
        f"run `dynloss analyze --preset {preset}`."
    )


def load_result(name: str, preset: str | None = None) -> pd.DataFrame:
    """Load result table ``name`` of a preset; never returns an empty table.

    Raises
    ------
    ResultsMissingError
        When the file is missing or holds no rows; the message names ``dynloss analyze``.
    """
    path = result_path(name, preset)
    df = pd.read_csv(path)
    if df.empty:
        raise ResultsMissingError(
            f"{path} holds no rows: rerun `dynloss analyze --preset {preset or preset_name()}`."
        )
    return df


def load_provenance(preset: str | None = None) -> dict[str, Any]:
    """``provenance.json`` written by ``dynloss analyze`` (empty dict when absent)."""
    path = results_dir(preset, require=True) / "provenance.json"
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def code_revision(root: Path | None = None) -> str:
    """The project's revision now (the rendering code), short form."""
    return short_revision(full_revision(root or project_root()))


def preset_banner(preset: str | None = None) -> str:
    """One markdown line naming the preset shown and where its results come from."""
    preset = preset or preset_name()
    folder = results_dir(preset, require=True)
    shown = paths.display(folder)
    return (f"Results shown: preset **{preset}** (from `{shown}`, made by "
            f"`dynloss analyze --preset {preset}` at code revision `{_revision_of(load_provenance(preset))}`; "
            f"rendered at `{code_revision()}`).\n")


def _revision_of(prov: dict[str, Any]) -> str:
    """The code revision ``dynloss analyze`` recorded in ``provenance.json``, short form."""
    return short_revision(str(prov["code_revision"])) if prov.get("code_revision") else "not recorded"


def _cache_root(preset: str) -> Path | None:
    prov = load_provenance(preset)
    root = prov.get("cache_root")
    candidates = [Path(root)] if root else []
    candidates.append(paths.cache_root())
    for c in candidates:
        if (c / preset).is_dir():
            return c
    return None
