"""Quarto's post-render step for the book (``project: post-render`` in ``_quarto.yml``; the offline
engine runs it too, :func:`analysis.report.engine.render_report`).

Puts the files the pages link beside them in the output folder: the preset's results set, the claim
audit and the listings made from the authors' records (:func:`analysis.report.downloads.ship`).
"""

import os
import sys
from pathlib import Path

try:
    from analysis.report.context import ResultsMissingError, report_context
    from analysis.report.downloads import ship
except ImportError as e:
    sys.exit(f"quarto render: {e}: install the project with its report extra into the Python Quarto uses")

# Quarto names the output folder relative to the project, where it runs this script
out = Path(os.environ.get("QUARTO_PROJECT_OUTPUT_DIR") or "_output").resolve()
try:
    files = ship(report_context(), out)
except ResultsMissingError as e:
    sys.exit(f"quarto render: {e}")
if os.environ.get("QUARTO_PROJECT_SCRIPT_QUIET") != "1":
    print(f"shipped {len(files)} data files the pages link into {out / 'data'}")
