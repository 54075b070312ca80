"""Time to render the whole report (every HTML page + the PDF): offline engine vs ``quarto render``.

Workload: the book of one preset (default ``fmnist-mini``) from results already in the data root
(``dynloss analyze --preset P``; ``dynloss audit --save`` as ``make report`` does, otherwise each
engine re-evaluates the claim audit). Each engine runs as ``dynloss report --engine E`` in a fresh
process, in a temporary copy of the checkout (so the checkout's ``_output/`` and caches are left
alone):

- offline: one kernel for every page (:mod:`analysis.report.engine`);
- quarto, cold: no Jupyter cache yet, so every page executes once (HTML pass) and the Typst pass
  reads the executed notebooks from the cache;
- quarto, warm: a second render with nothing changed (every page from the cache);
- quarto, trivial pages: the same ``_quarto.yml`` with every chapter replaced by one trivial cell,
  cold: Quarto's fixed cost for a book of this many pages on this machine.

Prints wall and CPU seconds (the CPU of the command and its children), the ratio quarto/offline
and the load average, since other work on the machine inflates wall times. The goal for
``fmnist-mini`` on 2 cores is a cold Quarto render within 45 s.

Run: ``.venv/bin/python benchmarks/report_engines.py [--preset fmnist-mini] [--data-dir DIR] [--no-warm]``
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL_S = 45.0


def _cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def render(engine: str, preset: str, book: Path, out: Path, data_dir: str | None) -> tuple[float, float]:
    """Run ``dynloss report`` with one engine in the copy ``book``; return (wall s, CPU s)."""
    cmd = [sys.executable, "-m", "analysis.cli", *(["--data-dir", data_dir] if data_dir else []),
           "report", "--preset", preset, "--engine", engine, "--output-dir", str(out)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(book), *filter(None, [os.environ.get("PYTHONPATH")])])}
    cpu0, t0 = _cpu_children(), time.perf_counter()
    proc = subprocess.run(cmd, cwd=book, env=env, capture_output=True, text=True, check=False)
    wall, cpu = time.perf_counter() - t0, _cpu_children() - cpu0
    if proc.returncode != 0:
        sys.exit(f"report_engines: `{' '.join(cmd)}` failed ({proc.returncode}):\n{(proc.stdout + proc.stderr)[-3000:]}")
    if not (out / "dynloss-report.pdf").is_file():
        sys.exit(f"report_engines: {engine} wrote no PDF in {out}")
    return wall, cpu


def quarto_floor(book: Path, work: Path) -> tuple[int, float, float]:
    """Quarto's fixed cost: the book's own ``_quarto.yml`` (both formats, the Jupyter cache, the
    styles) with every chapter replaced by a page of one trivial Python cell, rendered cold.
    Returns (pages, wall s, CPU s): what a render of this many pages costs before any of the
    report's own cells run (kernel start, set-up cell, pandoc, filters, HTML post-processing, Typst)."""
    import shutil

    import yaml

    floor = work / "floor"
    shutil.copytree(book, floor, ignore=shutil.ignore_patterns(".jupyter_cache", ".quarto", "_output", "data"))
    cfg = yaml.safe_load((floor / "_quarto.yml").read_text(encoding="utf-8"))
    chapters = cfg["book"]["chapters"]
    cfg["project"].pop("pre-render", None)
    for i, ch in enumerate(chapters):
        (floor / ch).write_text(f"# Page {i}\n\n```{{python}}\n{i} + 1\n```\n", encoding="utf-8")
    (floor / "_quarto.yml").write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    cpu0, t0 = _cpu_children(), time.perf_counter()
    proc = subprocess.run(["quarto", "render"], cwd=floor, capture_output=True, text=True, check=False)
    wall, cpu = time.perf_counter() - t0, _cpu_children() - cpu0
    if proc.returncode != 0:
        sys.exit(f"report_engines: the trivial book failed to render:\n{(proc.stdout + proc.stderr)[-3000:]}")
    return len(chapters), wall, cpu


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="fmnist-mini")
    p.add_argument("--data-dir", default=None, help="data root holding results/<preset>/ (default: dynloss's)")
    p.add_argument("--no-warm", action="store_true", help="skip the second (cached) Quarto render")
    p.add_argument("--no-floor", action="store_true",
                   help="skip the render of the same book with trivial pages (Quarto's fixed cost)")
    args = p.parse_args(argv)

    sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
    from report_data import copy_checkout

    from analysis.report.quarto import quarto_available
    from training import paths

    root = paths.resolve_root(args.data_dir or None)
    results = root.results_dir(args.preset)
    if not results.is_dir():
        sys.exit(f"report_engines: no results in {results}: run `dynloss analyze --preset {args.preset}` first")
    audit = "saved" if root.audit_file.is_file() else "not saved (each engine evaluates it)"
    print(f"preset {args.preset}, results {results}, claim audit {audit}; {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f} at start")

    rows: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="report-engines-") as tmp:
        book = copy_checkout(ROOT, Path(tmp) / "checkout")
        wall, cpu = render("offline", args.preset, book, Path(tmp) / "offline", args.data_dir)
        rows.append(("offline", wall, cpu))
        if quarto_available() is None:
            print("quarto: not on PATH; install Quarto >= 1.9 to time it (README, 'The report with Quarto')")
        else:
            wall, cpu = render("quarto", args.preset, book, Path(tmp) / "quarto", args.data_dir)
            rows.append(("quarto (cold: each page executes once)", wall, cpu))
            if not args.no_warm:
                wall, cpu = render("quarto", args.preset, book, Path(tmp) / "quarto-warm", args.data_dir)
                rows.append(("quarto (warm: executed notebooks reused)", wall, cpu))
            if not args.no_floor:
                n, wall, cpu = quarto_floor(book, Path(tmp))
                rows.append((f"quarto, {n} trivial pages (fixed cost)", wall, cpu))
    print(f"{'engine':<42}{'wall s':>8}{'CPU s':>8}")
    for name, wall, cpu in rows:
        print(f"{name:<42}{wall:>8.1f}{cpu:>8.1f}")
    if len(rows) > 1:
        off, cold = rows[0], rows[1]
        print(f"ratio quarto cold / offline: wall {cold[1] / off[1]:.2f}x, CPU {cold[2] / off[2]:.2f}x")
        verdict = "within" if cold[1] <= GOAL_S else "over"
        print(f"goal for fmnist-mini on 2 cores: quarto cold <= {GOAL_S:.0f} s wall: {verdict} "
              f"({cold[1]:.1f} s; load average now {os.getloadavg()[0]:.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
