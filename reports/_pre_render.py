"""Quarto's pre-render step for the book (``project: pre-render`` in ``_quarto.yml``).

Stops the render at once when the preset has no whole set of results (as ``dynloss report`` does)
or when the cells would import another checkout's ``analysis``, and empties Quarto's Jupyter cache
when what the cells read has changed since it was filled
(:func:`analysis.report.quarto.refresh_cache`).
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# `dynloss report` renders a copy of the book (analysis.report.quarto.stage_book) and names the
# checkout it copies; `quarto render` in a checkout renders the checkout itself
CHECKOUT = Path(os.environ.get("DYNLOSS_BOOK_CHECKOUT") or ROOT)

try:
    import jupyter_cache  # noqa: F401  (Quarto's `execute: cache: true` needs it in the kernel's Python)

    from analysis.core.results_set import ResultsSetError, check_set
    from analysis.report.context import ResultsMissingError, report_context, results_dir
    from analysis.report.quarto import (
        QuartoError,
        check_kernel_imports_checkout,
        inputs_fingerprint,
        refresh_cache,
    )
except ImportError as e:
    sys.exit(f"quarto render: {e}: install the project with its report extra "
             f"(`pip install -e '{CHECKOUT}[report]'`) into the Python Quarto uses (QUARTO_PYTHON)")

try:
    check_kernel_imports_checkout(CHECKOUT)
    ctx = report_context()  # the preset and data root the report command set, read once
    preset = ctx.preset
    check_set(results_dir(ctx, require=True), fix=f"dynloss analyze --preset {preset}", preset=preset)  # one whole set of it
except (QuartoError, ResultsMissingError, ResultsSetError) as e:
    sys.exit(f"quarto render: {e}")

kept = refresh_cache(ROOT, inputs_fingerprint(ctx))
if os.environ.get("QUARTO_PROJECT_SCRIPT_QUIET") != "1":
    print("executed notebooks reused (inputs unchanged)" if kept else
          "every page executes once (first render, or the results, code or preset changed)")
    if not kept and not ctx.root.audit_file.is_file():
        print(f"no saved claim audit at {ctx.root.audit_file}: each page showing claims evaluates them "
              "(`dynloss audit --save` makes the render faster)")
