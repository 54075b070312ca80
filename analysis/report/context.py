"""Where the report finds a preset's results and how it loads them; the page banner.

Every page helper takes a :class:`ReportContext`: the preset shown and its data root, as values.
A page makes it once, in its first cell (``ctx = context.report_context()``), from the environment
``dynloss report`` gives its kernel (``DYNLOSS_PRESET``, ``DYNLOSS_DATA_DIR``,
``DYNLOSS_RESULTS_DIR``); that is the only place the report reads them. Locations follow
:mod:`training.paths` (one rule for every command). What a context learns (the checked
``provenance.json``) stays with it: two contexts in one process share nothing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from training import paths
from training.paths import DataRoot
from training.provenance import code_revision as full_revision
from training.provenance import short_revision


#: the baseline the reproducibility page compares with (:mod:`analysis.report.compare`), when set
BASELINE_ENV = "DYNLOSS_BASELINE"


class ResultsMissingError(FileNotFoundError):
    """A result table the report needs is absent, or the results folder is not one whole set (a
    file missing, changed or foreign: :func:`analysis.core.results_set.check_set`); the message
    names the command that makes a whole set."""


@dataclass(frozen=True, eq=False)
class ReportContext:
    """What every page helper needs to know: the preset shown and the data root its results are
    under (:class:`training.paths.DataRoot`; ``root.results`` set when ``--results-dir`` moved them);
    ``baseline``: what the "Compared with" section compares with (``$DYNLOSS_BASELINE``; None: none).
    ``memo`` holds what this context learnt (the checked ``provenance.json``, :func:`check_results`;
    the claim audit, :mod:`analysis.report.claims`), nobody else's."""

    preset: str
    root: DataRoot
    baseline: str | None = None
    memo: dict[Any, Any] = field(default_factory=dict, repr=False)

    @property
    def results(self) -> Path:
        """The preset's results folder (``<results root>/<preset>``)."""
        return self.root.results_dir(self.preset)


def report_context(environ: Mapping[str, str] | None = None, *, preset: str | None = None) -> ReportContext:
    """The context of a page, from ``environ`` (default ``os.environ``, as ``dynloss report`` or
    ``quarto render`` set it for the kernel): ``$DYNLOSS_PRESET`` (default the embedded preset),
    the data root by :func:`training.paths.resolve_root`, ``$DYNLOSS_BASELINE``; ``preset``, when
    given, in place of ``$DYNLOSS_PRESET``. Called once, at the top of a page."""
    env = os.environ if environ is None else environ
    return ReportContext(preset or paths.default_preset(env), paths.resolve_root(environ=env), env.get(BASELINE_ENV))


def check_results(ctx: ReportContext) -> dict[str, Any]:
    """``provenance.json`` of the preset's results after checking the folder is one whole set: every
    file listed with its checksum, none missing, changed or foreign. Checked once per context while
    the folder is unchanged.

    Raises
    ------
    ResultsMissingError
        Naming the offending path and ``dynloss analyze --preset NAME``.
    """
    from analysis.core.results_set import PROVENANCE, ResultsSetError, check_set

    preset = ctx.preset
    folder = results_dir(ctx, require=True)
    try:
        st = folder.stat()
        pst = (folder / PROVENANCE).stat()
        stamp = (st.st_mtime_ns, st.st_ino, pst.st_mtime_ns, pst.st_size, pst.st_ino)
    except FileNotFoundError:
        stamp = None
    cached = ctx.memo.get(folder)
    if stamp is not None and cached is not None and cached[0] == stamp:
        return cached[1]
    try:
        prov = check_set(folder, fix=f"dynloss analyze --preset {preset}")
    except ResultsSetError as e:
        raise ResultsMissingError(str(e)) from None
    if stamp is not None:
        ctx.memo[folder] = (stamp, prov)
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


def results_dir(ctx: ReportContext, *, require: bool = False) -> Path:
    """Directory of the context's preset's results (:attr:`ReportContext.results`).

    Raises
    ------
    ResultsMissingError
        With ``require=True``, when the directory does not exist.
    """
    preset, path = ctx.preset, ctx.results
    if require and not path.is_dir():
        raise ResultsMissingError(
            f"No results for preset {preset!r} in {path}: run `dynloss analyze --preset {preset}` "
            f"(after `dynloss train --preset {preset}`), or `make report PRESET={preset}`."
        )
    return path


def result_path(name: str, ctx: ReportContext) -> Path:
    """Path of result table ``name`` (``table1`` → ``table1.csv``), checked to exist."""
    preset = ctx.preset
    folder = results_dir(ctx, require=True)
    path = folder / f"{name}.csv"
    if path.is_file():
        check_results(ctx)
        return path
    raise ResultsMissingError(
        f"Result {name!r} of preset {preset!r} not found in {folder} (looked for {name}.csv): "
        f"run `dynloss analyze --preset {preset}`."
    )


def load_result(name: str, ctx: ReportContext) -> pd.DataFrame:
    """Load result table ``name`` of a preset; never returns an empty table.

    Raises
    ------
    ResultsMissingError
        When the file is missing or holds no rows; the message names ``dynloss analyze``.
    """
    path = result_path(name, ctx)
    df = pd.read_csv(path)
    if df.empty:
        raise ResultsMissingError(
            f"{path} holds no rows: rerun `dynloss analyze --preset {ctx.preset}`."
        )
    return df


def load_provenance(ctx: ReportContext) -> dict[str, Any]:
    """``provenance.json`` written by ``dynloss analyze``, once the folder is checked to be one
    whole set (:func:`check_results`)."""
    return check_results(ctx)


def superlearners_absent(ctx: ReportContext) -> str | None:
    """Why the results set has no super-learners (``dynloss analyze --no-superlearners``), or None."""
    preset = ctx.preset
    if load_provenance(ctx).get("config", {}).get("superlearners", True):
        return None
    return (f"absent: these results were made with `dynloss analyze --no-superlearners`; "
            f"`dynloss analyze --preset {preset}` fits them")


def code_revision(root: Path | None = None) -> str:
    """The project's revision now (the rendering code), short form."""
    return short_revision(full_revision(root or project_root()))


def preset_banner(ctx: ReportContext, *, page_dir: str = "") -> str:
    """One markdown line naming the preset shown and where its results come from: the folder, in
    the layout the report's site mirrors (:meth:`training.paths.DataRoot.display`), with a link to
    its ``provenance.json`` shipped beside the pages (:mod:`analysis.report.downloads`; the link is
    relative to a page in ``page_dir``)."""
    from analysis.report.downloads import file_link

    preset = ctx.preset
    folder = results_dir(ctx, require=True)
    shown = ctx.root.display(folder)
    prov = load_provenance(ctx)
    line = (f"Results shown: preset **{preset}** (from `{shown}`, made by "
            f"`dynloss analyze --preset {preset}` at code revision `{_revision_of(prov)}`; "
            f"rendered at `{code_revision()}`). The results set ships with these pages; its "
            f"{file_link(ctx, 'provenance.json', page_dir=page_dir)} lists every file with its SHA-256.\n")
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
