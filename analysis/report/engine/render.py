"""The offline render, step by step (:func:`render_report`): read the book, parse and number its
pages, run their chunks, turn the outputs into markdown, write the HTML pages and the PDF in a
staging folder, then move them into place."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from analysis.report.engine.crossref import number_labels
from analysis.report.engine.html import write_html
from analysis.report.engine.kernel import execute_pages
from analysis.report.engine.outputs import page_markdown
from analysis.report.engine.pdf import write_pdf
from analysis.report.engine.project import RenderError, load_project, read_pages


def run_post_render(script: Path, root: Path, out_dir: Path, *, env: dict[str, str]) -> None:
    """Run a post-render script of the book as Quarto does: in the project root, with the kernel's
    environment and ``QUARTO_PROJECT_OUTPUT_DIR`` naming the output folder.

    Raises
    ------
    RenderError
        When the script fails (its last line of output in the message).
    """
    proc = subprocess.run([sys.executable, str(script)], cwd=root, capture_output=True, text=True,
                          env={**os.environ, **env, "QUARTO_PROJECT_OUTPUT_DIR": str(out_dir),
                               "QUARTO_PROJECT_SCRIPT_QUIET": "1"})
    if proc.returncode != 0:
        lines = [x for x in (proc.stderr + proc.stdout).splitlines() if x.strip()]
        raise RenderError(f"post-render script {script.relative_to(root)} failed (exit {proc.returncode}): "
                          f"{lines[-1] if lines else 'no output'}")


@dataclass
class RenderResult:
    """Paths written, warnings raised by cells, and the time of each stage (seconds)."""

    html: list[Path] = field(default_factory=list)
    pdf: Path | None = None
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    labels: list[str] = field(default_factory=list)


def render_report(
    root: str | Path,
    *,
    env: dict[str, str] | None = None,
    output_dir: str | Path | None = None,
    formats: tuple[str, ...] = ("html", "pdf"),
    subtitle: str = "",
    timeout: int = 600,
) -> RenderResult:
    """Render the book defined by ``<root>/_quarto.yml`` offline.

    Parameters
    ----------
    root : path
        Project root (holding ``_quarto.yml``).
    env : dict, optional
        Extra environment for the kernel (e.g. ``{"DYNLOSS_PRESET": "digits-tiny"}``).
    output_dir : path, optional
        Where the HTML pages and the PDF go; default: the project's ``output-dir``.
    formats : tuple of {"html", "pdf"}
    subtitle : str
        Shown under each page title (e.g. the preset).

    Raises
    ------
    RenderError
        A chunk failed (e.g. results are missing: the message names the command that makes
        them), or pandoc / typst failed. Nothing is written to ``output_dir`` in that case. Or a
        post-render script failed (``project: post-render``: the files the pages link), after the
        pages were written.
    """
    unknown = set(formats) - {"html", "pdf"}
    if unknown:
        raise ValueError(f"Expected `formats` among ('html', 'pdf'), got {sorted(unknown)}")
    t0 = time.perf_counter()
    project = load_project(root)
    out_dir = Path(output_dir).resolve() if output_dir is not None else project.output_dir
    pages = read_pages(project)
    result = RenderResult()
    numbering = number_labels(pages)
    result.labels = list(numbering.numbers)
    t1 = time.perf_counter()
    outputs = execute_pages(pages, defaults=project.execute, env=dict(env or {}), cwd=project.root, timeout=timeout,
                            fig_format=project.fig_format, fig_dpi=project.fig_dpi)
    t2 = time.perf_counter()
    result.timings.update(parse=t1 - t0, execute=t2 - t1)

    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".render-", dir=out_dir) as tmp:
        work = Path(tmp)
        (work / "figures").mkdir()
        pdf_name = f"{project.output_file}.pdf" if "pdf" in formats else None
        if "html" in formats:
            bodies = [page_markdown(page, outputs[i], defaults=project.execute, target="html",
                                    numbering=numbering, figure_dir=work / "figures", warnings=result.warnings)
                      for i, page in enumerate(pages)]
            html_paths = write_html(pages, bodies, work=work, pdf_name=pdf_name, subtitle=subtitle,
                                    book_title=project.title, css_files=project.html_css,
                                    before_body=project.html_before_body, after_body=project.html_after_body,
                                    lua_filters=project.lua_filters)
        t3 = time.perf_counter()
        if "pdf" in formats:
            sink: list[str] = [] if "html" in formats else result.warnings
            bodies = [page_markdown(page, outputs[i], defaults=project.execute, target="typst",
                                    numbering=numbering, figure_dir=work / "figures", warnings=sink)
                      for i, page in enumerate(pages)]
            pdf_path = write_pdf(pages, bodies, work=work, title=project.title, subtitle=subtitle,
                                 author=project.author, headers=project.typst_headers,
                                 papersize=project.papersize, section_numbering=project.section_numbering,
                                 name=project.output_file, lua_filters=project.lua_filters)
        t4 = time.perf_counter()
        # move into place only once everything succeeded (same filesystem: atomic renames)
        if "html" in formats:
            for p in html_paths:
                dest = out_dir / p.name
                os.replace(p, dest)
                result.html.append(dest)
        if "pdf" in formats:
            dest = out_dir / pdf_path.name
            os.replace(pdf_path, dest)
            result.pdf = dest
        result.timings.update(html=t3 - t2, pdf=t4 - t3)
    t5 = time.perf_counter()
    for script in project.post_render:
        run_post_render(script, project.root, out_dir, env=dict(env or {}))
    result.timings["post_render"] = time.perf_counter() - t5
    result.timings["total"] = time.perf_counter() - t0
    return result
