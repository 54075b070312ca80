"""Reproducibility tables: which function, input checksum and code revision made every labelled
table and figure, and the environment behind the report.
"""

from __future__ import annotations

import importlib
import pkgutil
import re

import pandas as pd

import analysis.report as report_package
from analysis.audit.saved import audit_json_path
from analysis.report.context import (
    HELPER_INPUTS,
    _revision_of,
    code_revision,
    ReportContext,
    load_provenance,
    project_root,
    reads,
    result_path,
    results_dir,
)
from training.cache_format import sha256_file as file_sha256
from training.provenance import versions

#: the page-helper modules a labelled cell may call (``module.function(``), for the table's functions
#: column: every module of :mod:`analysis.report`, so a new one needs no entry here
_MODULES = {m.name: f"analysis.report.{m.name}" for m in pkgutil.iter_modules(report_package.__path__) if not m.ispkg}
_CALL = re.compile(rf"\b({'|'.join(_MODULES)})\.(\w+)\s*\(")

#: where each kind of input lives, as the table's ``source`` column names it
SOURCES = {
    "result": "results set",
    "audit": "saved claim audit",
    "paper": "the paper's tables and text (data/paper/)",
    "authors": "authors' records (data/authors/)",
    "code": "code and data of this checkout",
    "render": "–",
}


@reads("provenance")
def provenance_frame(ctx: ReportContext) -> pd.DataFrame:
    """For every labelled table and figure of the report: the functions its cell calls, each input
    (``source``: which folder; ``file``: the file there, a results file by its name in
    :data:`analysis.core.schema.RESULT_FILES`, the others by their path in the checkout) with its
    SHA-256 (first 12 hex digits), and the code revision that made it (the analysis revision for
    result tables, the rendering revision otherwise). One row per (label, input).

    Built from the report sources themselves (``_quarto.yml`` chapters and their chunks), so it
    cannot drift from the pages.
    """
    from analysis.report.qmd import read_qmd
    from analysis.report.engine import load_project

    root = project_root()
    project = load_project(root)
    analysis_rev = _revision_of(load_provenance(ctx))
    render_rev = code_revision(root)
    rows = []
    for page in project.chapters:
        for chunk in read_qmd(page).chunks:
            label = chunk.label
            if not label or label.split("-", 1)[0] not in ("fig", "tbl"):
                continue
            calls = [(m, f) for m, f in dict.fromkeys(_CALL.findall(chunk.code)) if f != "show"]
            for m in {m for m, _ in calls}:  # their inputs are recorded on import (a page's kernel
                importlib.import_module(_MODULES[m])  # may not have imported them: Quarto runs one per page)
            # a zero-width space after the dot lets long names wrap in narrow PDF columns
            functions = ", ".join(f"{_MODULES[m].split('.')[-1]}.\u200b{f}" for m, f in calls)
            inputs = list(dict.fromkeys(i for _, f in calls for i in HELPER_INPUTS.get(f, ())
                                        if i not in ("provenance",)))
            for name in inputs or ["–"]:
                kind, file, digest = input_file(name, ctx)
                rows.append({
                    "label": label, "functions": functions, "source": SOURCES[kind], "file": file,
                    "sha256": digest,
                    "revision": analysis_rev if kind == "result" else render_rev,
                })
                functions = "″"  # ditto: same cell as the row above
    return pd.DataFrame(rows)


def provenance_table(ctx: ReportContext):
    """:func:`provenance_frame` as the page shows it: fixed column widths, so that the checksums and
    revisions (which cannot wrap) keep their room in the PDF."""
    from analysis.report.markdown import Table

    return Table(provenance_frame(ctx), widths=(("label", 14), ("functions", 20), ("source", 14), ("file", 20),
                                                ("sha256", 13), ("revision", 19)))


def input_file(name: str, ctx: ReportContext) -> tuple[str, str, str]:
    """``(kind, file, digest)`` of one input a page helper declares (:func:`analysis.report.context.reads`):
    ``kind`` a key of :data:`SOURCES`; ``file`` the results file's name (``table1.csv``), the
    saved audit's (``audit.json``) or a path in the checkout (``data/paper/table1_accuracy.csv``);
    ``digest`` its SHA-256's first 12 hex digits (``live`` for an audit evaluated at render time,
    ``missing`` for an absent file)."""
    kind = name.split(":", 1)[0] if ":" in name else {"audit": "audit", "–": "render"}.get(name, "result")
    if kind == "render":
        return kind, "–", "–"
    if kind == "audit":
        path = audit_json_path(ctx.root)
        return kind, path.name, file_sha256(path)[:12] if path.is_file() else "live"
    if kind == "authors":
        from analysis.audit.authors import read_authors_records, records_digest

        return kind, f"data/authors/ ({len(read_authors_records())} records)", records_digest()[:12]
    root = project_root()
    if kind == "paper":
        path = root / "data" / "paper" / name.split(":", 1)[1]
    elif kind == "code":
        path = root / name.split(":", 1)[1]
    else:
        path = result_path(name, ctx)
    shown = path.name if kind == "result" else path.relative_to(root).as_posix()
    return kind, shown, (file_sha256(path)[:12] if path.is_file() else "missing")


@reads("provenance")
def environment_frame(ctx: ReportContext) -> pd.DataFrame:
    """Versions and settings behind the report: ``item, value``."""
    preset = ctx.preset
    items: list[tuple[str, str]] = [("preset", preset), ("results", ctx.root.display(results_dir(ctx)))]
    prov = load_provenance(ctx)
    settings = {**prov.get("config", {}), **prov}  # provenance.json keeps the knobs under "config"
    for key in ("created_utc", "seed", "n_resamples", "confidence", "n_bins", "cache_sha256"):
        if key in settings:
            value = str(settings[key])
            items.append((f"analysis {key}", value[:12] if key == "cache_sha256" else value))
    items.append(("analysis code revision", _revision_of(prov)))
    items.append(("render code revision", code_revision()))
    items.extend(versions().items())
    return pd.DataFrame(items, columns=["item", "value"])
