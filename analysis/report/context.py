"""Where the report finds a preset's results and how it loads them; the page banner.

Locations come from :mod:`training.paths` (one rule for every command). ``DYNLOSS_PRESET`` names
the preset shown (set by ``dynloss report --preset``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from training import paths
from training.paths import preset_name
from training.provenance import code_revision as full_revision
from training.provenance import short_revision


class ResultsMissingError(FileNotFoundError):
    """A result table the report needs is absent, or the results folder is not one whole set (a
    file missing, changed or foreign: :func:`analysis.core.results_set.check_set`); the message
    names the command that makes a whole set."""


_CHECKED: dict[Path, tuple] = {}


def check_results(preset: str | None = None) -> dict[str, Any]:
    """``provenance.json`` of the preset's results after checking the folder is one whole set: every
    file listed with its checksum, none missing, changed or foreign. Checked once per process while
    the folder is unchanged.

    Raises
    ------
    ResultsMissingError
        Naming the offending path and ``dynloss analyze --preset NAME``.
    """
    from analysis.core.results_set import PROVENANCE, ResultsSetError, check_set

    preset = preset or preset_name()
    folder = results_dir(preset, require=True)
    try:
        st = folder.stat()
        pst = (folder / PROVENANCE).stat()
        stamp = (st.st_mtime_ns, st.st_ino, pst.st_mtime_ns, pst.st_size, pst.st_ino)
    except FileNotFoundError:
        stamp = None
    cached = _CHECKED.get(folder)
    if stamp is not None and cached is not None and cached[0] == stamp:
        return cached[1]
    try:
        prov = check_set(folder, fix=f"dynloss analyze --preset {preset}")
    except ResultsSetError as e:
        raise ResultsMissingError(str(e)) from None
    if stamp is not None:
        _CHECKED[folder] = (stamp, prov)
    return prov


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
        check_results(preset)
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
    """``provenance.json`` written by ``dynloss analyze``, once the folder is checked to be one
    whole set (:func:`check_results`)."""
    return check_results(preset)


def superlearners_absent(preset: str | None = None) -> str | None:
    """Why the results set has no super-learners (``dynloss analyze --no-superlearners``), or None."""
    preset = preset or preset_name()
    if load_provenance(preset).get("config", {}).get("superlearners", True):
        return None
    return (f"absent: these results were made with `dynloss analyze --no-superlearners`; "
            f"`dynloss analyze --preset {preset}` fits them")


def code_revision(root: Path | None = None) -> str:
    """The project's revision now (the rendering code), short form."""
    return short_revision(full_revision(root or project_root()))


def preset_banner(preset: str | None = None) -> str:
    """One markdown line naming the preset shown and where its results come from."""
    preset = preset or preset_name()
    folder = results_dir(preset, require=True)
    shown = paths.display(folder)
    prov = load_provenance(preset)
    line = (f"Results shown: preset **{preset}** (from `{shown}`, made by "
            f"`dynloss analyze --preset {preset}` at code revision `{_revision_of(prov)}`; "
            f"rendered at `{code_revision()}`).\n")
    return line + cache_warning(prov, preset)


def cache_warning(prov: dict[str, Any], preset: str) -> str:
    """A markdown paragraph when the results come from a partial or stale cache ('' otherwise)."""
    state = prov.get("cache_state", "complete")
    if state == "complete":
        return ""
    status = prov.get("cache_status", {})
    excluded, stale = status.get("excluded", []), status.get("stale_included", [])
    n = sum(status.get("grid", {}).values()) or "?"
    what = []
    if excluded:
        what.append(f"{len(excluded)} of {n} runs of the grid were left out (missing, incomplete or corrupt)")
    if status.get("unexpected"):
        what.append(f"{len(status['unexpected'])} unexpected entries of the cache were ignored")
    if stale:
        what.append(f"{len(stale)} runs made with other settings were included")
    return (f"\n**Warning: {state} cache.** These results were analysed with "
            f"`dynloss analyze {'--allow-partial' if 'partial' in state else ''}"
            f"{' ' if state == 'partial+stale' else ''}{'--allow-stale' if 'stale' in state else ''}`: "
            f"{'; '.join(what)}; they do not describe the whole preset (`cache_status.csv` lists every run). "
            f"`dynloss train --preset {preset}` then `dynloss analyze --preset {preset}` make complete results.\n")


def _revision_of(prov: dict[str, Any]) -> str:
    """The code revision ``dynloss analyze`` recorded in ``provenance.json``, short form."""
    return short_revision(str(prov["code_revision"])) if prov.get("code_revision") else "not recorded"
