"""``dynloss report``: render the corrected-methods report of a preset.

Engines: ``quarto`` (``quarto render`` of the book in ``_quarto.yml``, :mod:`analysis.report.quarto`),
``offline`` (the same ``.qmd`` sources through :mod:`analysis.report.engine`: nbclient + pandoc +
typst), ``auto`` (Quarto when it is on ``PATH``, else offline; the choice is printed). The preset
and the data root reach the report cells through the kernel's environment (``DYNLOSS_PRESET``,
``DYNLOSS_DATA_DIR``, ``DYNLOSS_RESULTS_DIR``), which each page reads once
(:func:`analysis.report.context.report_context`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from training.argtypes import one_line_errors, preset_arg
from training.logs import get_logger
from training.paths import DEFAULT_PRESET, PRESET_ENV

if TYPE_CHECKING:  # the context module imports pandas: not for `dynloss --help`
    from analysis.report.context import ReportContext

log = get_logger("report")

ENGINES: tuple[str, ...] = ("auto", "quarto", "offline")


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived during a render (raised by the handler :func:`sigterm_raises` installs, so
    that every ``finally`` runs: the kernel is shut down and the temporary folders removed)."""


@contextlib.contextmanager
def sigterm_raises():
    """While inside, SIGTERM raises :class:`Terminated` (once: a second one does not interrupt the
    clean-up); the previous handler is restored on the way out. Only in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def register(sub: argparse._SubParsersAction, *, name: str, help: str) -> None:
    p = one_line_errors(sub.add_parser(name, help=help, description=help[:1].upper() + help[1:] + "."))
    p.add_argument("--preset", type=preset_arg, default=os.environ.get(PRESET_ENV, DEFAULT_PRESET),
                   help=f"preset whose results are shown (default: ${PRESET_ENV} or {DEFAULT_PRESET})")
    p.add_argument("--engine", choices=ENGINES, default="auto",
                   help="quarto, offline (nbclient + pandoc + typst), or auto: quarto when on PATH")
    p.add_argument("--results-dir", type=Path, default=None,
                   help="directory holding <preset>/ results (default: <data root>/results; see dynloss --data-dir)")
    p.add_argument("--output-dir", type=Path, default=None,
                   help="where the HTML pages and the PDF go (default: _output)")
    p.add_argument("--root", type=Path, default=None,
                   help="checkout holding _quarto.yml and reports/ (default: the one this package runs from)")
    p.add_argument("--format", dest="formats", choices=("html", "pdf"), action="append", default=None,
                   help="render only this format (repeatable; default: html and pdf)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from training.paths import project_dir

    root = (args.root or project_dir()).resolve()
    if not (root / "_quarto.yml").is_file():
        log.error(f"dynloss report: no _quarto.yml in {root}; pass --root with the checkout that holds the report")
        return 2
    from analysis.report.context import ReportContext

    ctx = ReportContext(args.preset, args.paths.with_results(args.results_dir))
    env = {PRESET_ENV: args.preset, **ctx.root.environ()}  # what the kernel's report_context() reads
    from analysis.report.quarto import INSTALL_HINT, quarto_available

    engine = args.engine
    if engine == "auto":
        exe = quarto_available()
        engine = "quarto" if exe else "offline"
        log.info(f"dynloss report: engine {engine} ({f'quarto at {exe}' if exe else '`quarto` is not on PATH'})")
    elif engine == "quarto" and quarto_available() is None:
        log.error(f"dynloss report: --engine quarto, but `quarto` is not on PATH: {INSTALL_HINT}")
        return 2
    # fail fast, before starting a kernel, when the preset has no results at all
    from analysis.core.results_set import ResultsSetError
    from analysis.report.context import ResultsMissingError, results_dir

    try:  # one whole set of this preset (checked by the claims' scope), or no report
        results_dir(ctx, require=True)
        note = _audit_note(ctx)
    except (ResultsMissingError, ResultsSetError) as e:
        log.error(f"dynloss report: {e}")
        return 2
    if note:
        log.warning(f"dynloss report: {note}")
    try:
        with sigterm_raises():
            return _render(root, env, args, engine)
    except Terminated:
        log.error("dynloss report: stopped by SIGTERM (the kernel shut down, temporary files removed)")
        return 128 + signal.SIGTERM


def _audit_note(ctx: ReportContext) -> str:
    """Which saved claims the pages evaluate again, or cannot evaluate, and why ('' when none), after
    checking the preset's results set whole (:func:`analysis.audit.scope.results_scope`, which raises
    :class:`analysis.core.results_set.ResultsSetError`), over the locations the kernel's cells see."""
    from analysis.audit.saved import audit_note
    from analysis.audit.scope import results_scope

    return audit_note(results_scope(ctx.preset, ctx.root))


def _render(root: Path, env: dict[str, str], args: argparse.Namespace, engine: str) -> int:
    t0 = time.perf_counter()
    if engine == "quarto":
        return _run_quarto(root, env, args)
    from analysis.report.engine import RenderError, render_report

    formats = tuple(args.formats or ("html", "pdf"))
    try:
        result = render_report(root, env=env, output_dir=args.output_dir, formats=formats,
                               subtitle=f"preset {args.preset}")
    except RenderError as e:
        lines = [x.strip() for x in str(e).splitlines() if x.strip()]
        log.error(f"dynloss report: {lines[0]}{f' {lines[-1]}' if len(lines) > 1 else ''}")
        return 1
    for path in [*result.html, *([result.pdf] if result.pdf else [])]:
        print(path)
    for w in result.warnings:
        log.warning(f"warning: {w}")
    t = result.timings
    log.info(f"rendered {len(result.html)} HTML page(s){' + PDF' if result.pdf else ''} offline in "
             f"{time.perf_counter() - t0:.1f} s (execute {t.get('execute', 0):.1f} s, html {t.get('html', 0):.1f} s, "
             f"pdf {t.get('pdf', 0):.1f} s)")
    return 0


def _run_quarto(root: Path, env: dict[str, str], args: argparse.Namespace) -> int:
    from analysis.report.quarto import QuartoError, run_quarto

    t0 = time.perf_counter()
    try:
        rc = run_quarto(root, env, output_dir=args.output_dir, formats=tuple(args.formats or ()))
    except QuartoError as e:
        log.error(f"dynloss report: {e}")
        return 2
    if rc == 0:
        log.info(f"rendered with quarto in {time.perf_counter() - t0:.1f} s")
    return rc
