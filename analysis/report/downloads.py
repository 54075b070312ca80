"""The data behind the pages, one click away: the files the report ships beside its HTML pages, the
links the pages show to them, and the step that puts them into the output folder (:func:`ship`),
which both engines run after the pages are written (Quarto through the book's post-render script
``reports/_post_render.py``, the offline engine in :func:`analysis.report.engine.render_report`).

The output folder mirrors the data root (:mod:`training.paths`), so a path the pages print is the
path of the same file in a checkout and in the rendered site:

- ``data/results/<preset>/``: the preset's whole results set (every CSV with ``provenance.json``,
  copied after :func:`analysis.report.context.check_results` checked it whole);
- ``data/results/audit.json``: the claims as the pages show them, in the form of ``dynloss audit
  --save`` (the saved audit where it is still valid for the results shown, the rest evaluated now);
- ``data/authors/*.csv``: the long listings made from the authors' records
  (:data:`AUTHORS_FILES`, written here by the audit's functions), of which the pages show summaries;
- ``data/paper/``: Paper Tables 1–2 as transcribed and the paper's metadata (the checkout's files).

Links are written relative to the page's source (``../data/...`` from ``reports/``), as Quarto
reads them; the offline engine, whose pages sit side by side in the output folder, rewrites them
(:func:`analysis.report.engine.crossref.resolve_links`). In the PDF the link text names the file.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from analysis.report.context import ReportContext, check_results, reads, results_dir

#: the site's folder mirroring the data root
SITE_DATA = "data"


def _table1_provenance() -> pd.DataFrame:
    from analysis.audit.authors import read_authors_records
    from analysis.audit.authors_tables import table1_provenance
    from analysis.audit.published import load_published_table1

    return table1_provenance(read_authors_records(), load_published_table1())


def _pooled_shuffled() -> pd.DataFrame:
    from analysis.audit.authors import read_authors_records
    from analysis.audit.authors_tables import pooled_shuffled_comparison

    return pooled_shuffled_comparison(read_authors_records())


def _table1_provenance_summary() -> pd.DataFrame:
    from analysis.audit.authors_tables import provenance_summary

    return provenance_summary(_table1_provenance())


def _pooled_shuffled_summary() -> pd.DataFrame:
    from analysis.audit.authors_tables import pooled_shuffled_summary

    return pooled_shuffled_summary(_pooled_shuffled())


def _validation_test() -> pd.DataFrame:
    from analysis.audit.authors import read_authors_records
    from analysis.audit.authors_tables import validation_vs_test

    return validation_vs_test(read_authors_records())


def _validation_gap_summary() -> pd.DataFrame:
    from analysis.audit.authors_claims import gap_summary

    return gap_summary(_validation_test())


#: the listings made from the authors' records that the report ships, and the summaries of them the
#: authors' page shows (file name -> its frame)
AUTHORS_FILES: dict[str, Callable[[], pd.DataFrame]] = {
    "table1_provenance.csv": _table1_provenance,
    "table1_provenance_summary.csv": _table1_provenance_summary,
    "pooled_shuffled.csv": _pooled_shuffled,
    "pooled_shuffled_summary.csv": _pooled_shuffled_summary,
    "validation_test.csv": _validation_test,
    "validation_gap_summary.csv": _validation_gap_summary,
}


def _paper_dir() -> Path:
    """The published tables and the paper's metadata, tracked in the checkout (``data/paper/``)."""
    from analysis.report.context import project_root

    return project_root() / "data" / "paper"


def site_path(ctx: ReportContext, name: str) -> str:
    """Where a shipped file lies in the output folder (and in a checkout's data root), as a
    POSIX path relative to it: ``table1`` (a result table) -> ``data/results/<preset>/table1.csv``,
    ``provenance.json`` or ``audit.json`` likewise, ``authors:table1_provenance.csv`` ->
    ``data/authors/table1_provenance.csv``, ``paper:table1_accuracy.csv`` ->
    ``data/paper/table1_accuracy.csv`` (the checkout's published tables).

    Raises
    ------
    ValueError
        For a name that is no shipped file.
    """
    from analysis.core.schema import RESULT_FILES

    if name.startswith("authors:"):
        file = name.split(":", 1)[1]
        if file not in AUTHORS_FILES:
            raise ValueError(f"Expected an authors' listing in {sorted(AUTHORS_FILES)}, got {file!r}")
        return f"{SITE_DATA}/authors/{file}"
    if name.startswith("paper:"):
        file = name.split(":", 1)[1]
        if not (_paper_dir() / file).is_file():
            raise ValueError(f"Expected a file of {_paper_dir()}, got {file!r}")
        return f"{SITE_DATA}/paper/{file}"
    if name == "audit.json":
        return f"{SITE_DATA}/results/audit.json"
    if name == "provenance.json" or name.removesuffix(".csv") in RESULT_FILES:
        file = name if name.endswith((".csv", ".json")) else f"{name}.csv"
        return f"{SITE_DATA}/results/{ctx.preset}/{file}"
    raise ValueError(f"Expected a result table of analysis.core.schema.RESULT_FILES, provenance.json, audit.json "
                     f"or authors:<file>, got {name!r}")


def _href(ctx: ReportContext, name: str, page_dir: str) -> tuple[str, str]:
    """(site path, link target relative to a page in ``page_dir``) of a shipped file."""
    path = site_path(ctx, name)
    return path, "../" * len([p for p in page_dir.split("/") if p]) + path


def file_link(ctx: ReportContext, name: str, *, page_dir: str = "reports") -> str:
    """A markdown link to a shipped file, its text the file's path in the site (as code), its target
    relative to a page in ``page_dir`` (the page source's folder under the project root; ``""``
    for ``index.qmd``).

    >>> from analysis.report.context import report_context
    >>> file_link(report_context({}, preset="digits-tiny"), "table1")
    '[`data/results/digits-tiny/table1.csv`](../data/results/digits-tiny/table1.csv)'
    """
    path, href = _href(ctx, name, page_dir)
    return f"[`{path}`]({href})"


def data_line(ctx: ReportContext, names: Sequence[str], *, page_dir: str = "reports") -> str:
    """One markdown paragraph naming the shipped files a table or page shows, by folder: ``Data
    (`data/results/<preset>/`): table1.csv, mcnemar.csv; …``, each name a link (targets as in
    :func:`file_link`), for a cell with ``output: asis``.

    >>> from analysis.report.context import report_context
    >>> print(data_line(report_context({}, preset="digits-tiny"), ["table1", "audit.json"], page_dir="").strip())
    *Data* (`data/results/digits-tiny/`): [table1.csv](data/results/digits-tiny/table1.csv); (`data/results/`): [audit.json](data/results/audit.json).
    """
    if not names:
        raise ValueError("Expected at least one file for the data line, got none")
    folders: dict[str, list[str]] = {}
    for name in dict.fromkeys(names):
        path, href = _href(ctx, name, page_dir)
        folder, file = path.rsplit("/", 1)
        folders.setdefault(folder, []).append(f"[{file}]({href})")
    return "\n*Data* " + "; ".join(f"(`{folder}/`): " + ", ".join(links) for folder, links in folders.items()) + ".\n"


@reads("authors:records")
def authors_file(name: str) -> pd.DataFrame:
    """The authors' listing ``name`` (a key of :data:`AUTHORS_FILES`) as shipped."""
    if name not in AUTHORS_FILES:
        raise ValueError(f"Expected an authors' listing in {sorted(AUTHORS_FILES)}, got {name!r}")
    return AUTHORS_FILES[name]()


def ship(ctx: ReportContext, output_dir: str | Path) -> list[Path]:
    """Put the files the pages link into ``output_dir`` (the folder holding the pages, ``_output``):
    the results set of ``ctx`` checked whole, the claim audit and the authors' listings (module
    docstring). Replaces what an earlier render shipped there; returns the paths written.

    Raises
    ------
    analysis.report.context.ResultsMissingError
        When the results folder is not one whole set.
    """
    import json

    from analysis.core.results_set import PROVENANCE

    out = Path(output_dir)
    prov = check_results(ctx)
    src = results_dir(ctx, require=True)
    dest = out / SITE_DATA / "results" / ctx.preset
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    written = []
    for name in [*sorted(prov.get("files", {})), PROVENANCE]:
        shutil.copy2(src / name, dest / name)
        written.append(dest / name)
    audit = out / site_path(ctx, "audit.json")
    audit.write_text(json.dumps(_audit_records(ctx), indent=2) + "\n", encoding="utf-8")
    written.append(audit)
    paper = out / SITE_DATA / "paper"
    paper.mkdir(parents=True, exist_ok=True)
    for f in sorted(_paper_dir().iterdir()):
        if f.is_file() and not f.name.startswith("."):
            shutil.copy2(f, paper / f.name)
            written.append(paper / f.name)
    for name, frame in AUTHORS_FILES.items():
        path = out / site_path(ctx, f"authors:{name}")
        path.parent.mkdir(parents=True, exist_ok=True)
        frame().to_csv(path, index=False)
        written.append(path)
    return written


def _audit_records(ctx: ReportContext) -> list[dict]:
    """The claims as the pages show them (the saved audit where still valid, the rest evaluated
    now: :func:`analysis.report.claims._audit_results`), as ``dynloss audit --save`` writes them."""
    from analysis.report.claims import _audit_results

    return [r.to_dict() for r in _audit_results(ctx)]
