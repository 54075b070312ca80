"""Running the book's ``{python}`` chunks: every page in ONE Jupyter kernel (nbclient + ipykernel,
the namespace reset between pages), with Quarto's chunk-option defaults (:func:`execute_pages`).

Ours: Quarto runs one kernel per page; one kernel for the whole book is most of the offline
engine's speed (README, "The report with Quarto", the table of render times).
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from analysis.report.engine.project import Page, RenderError
from analysis.report.qmd import Chunk

#: chunk option defaults (Quarto's, except where the project's ``execute:`` says otherwise)
DEFAULT_OPTIONS: dict[str, Any] = {
    "echo": True,
    "eval": True,
    "include": True,
    "output": True,
    "warning": True,
    "error": False,
}

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

_SETUP_CODE = """\
import warnings as _w
_w.simplefilter("default")
try:
    from matplotlib_inline.backend_inline import set_matplotlib_formats as _fmt
    _fmt("{fig_format}")
except Exception:  # matplotlib_inline missing: figures fall back to the kernel default
    pass
%config InlineBackend.print_figure_kwargs = {{"bbox_inches": "tight", "dpi": {fig_dpi}}}
del _w
"""


def kernel_spec_dir(tmp: Path) -> tuple[Path, str]:
    """Write a kernelspec that runs ipykernel in *this* interpreter (no global install needed)."""
    name = "dynloss-python"
    kdir = tmp / "kernels" / name
    kdir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python (dynloss report)",
        "language": "python",
        "metadata": {"debugger": False},
    }
    (kdir / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    return tmp / "kernels", name


def effective_options(chunk: Chunk, defaults: dict[str, Any]) -> dict[str, Any]:
    """A chunk's options over the project's ``execute`` over :data:`DEFAULT_OPTIONS`;
    ``include: false`` hides code and output."""
    opts = {**DEFAULT_OPTIONS, **defaults, **chunk.options}
    if opts.get("include") is False:
        opts["echo"] = False
        opts["output"] = False
    return opts


def strip_ansi(text: str) -> str:
    """``text`` without terminal colour codes (tracebacks from the kernel carry them)."""
    return _ANSI.sub("", text)


def execute_pages(
    pages: list[Page],
    *,
    defaults: dict[str, Any],
    env: dict[str, str],
    cwd: Path,
    timeout: int = 600,
    fig_format: str = "png",
    fig_dpi: int = 150,
) -> list[list[list[dict[str, Any]]]]:
    """Run every evaluated chunk of every page in one kernel; return outputs per page per chunk.

    Raises
    ------
    RenderError
        On the first chunk that raises (unless the chunk has ``error: true``), naming the page,
        line and label, with the exception message and traceback.
    """
    import nbformat
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.v4.new_notebook()
    plan: list[tuple[int, int, Chunk | None]] = []  # (page, chunk index, chunk) per notebook cell
    nb.cells.append(nbformat.v4.new_code_cell(_SETUP_CODE.format(fig_format=fig_format, fig_dpi=int(fig_dpi))))
    plan.append((-1, -1, None))
    for p, page in enumerate(pages):
        if p > 0:
            nb.cells.append(nbformat.v4.new_code_cell("%reset -f"))
            plan.append((p, -1, None))
        for c, chunk in enumerate(page.doc.chunks):
            if chunk.lang != "python" or not effective_options(chunk, defaults)["eval"]:
                continue
            cell = nbformat.v4.new_code_cell(chunk.code)
            if effective_options(chunk, defaults)["error"]:
                cell.metadata["tags"] = ["raises-exception"]
            nb.cells.append(cell)
            plan.append((p, c, chunk))

    outputs: list[list[list[dict[str, Any]]]] = [[[] for _ in page.doc.chunks] for page in pages]
    # everything the kernel writes (connection file, sockets, its own temporary files) goes into one
    # folder, removed with the kernel in `finally` (`dynloss report` turns SIGTERM into an exception)
    with tempfile.TemporaryDirectory(prefix="dynloss-kernel-") as tmp:
        kernel_dirs, name = kernel_spec_dir(Path(tmp))
        ksm = KernelSpecManager(kernel_dirs=[str(kernel_dirs)])
        km = KernelManager(kernel_name=name, kernel_spec_manager=ksm, transport="ipc",
                           ip=str(Path(tmp) / "kernel-ipc"), connection_file=str(Path(tmp) / "kernel.json"))
        client = NotebookClient(
            nb, km=km, kernel_name=name, timeout=timeout, allow_errors=False,
            resources={"metadata": {"path": str(cwd)}},
        )
        (Path(tmp) / "tmp").mkdir()
        kernel_env = {**os.environ, **env, "TMPDIR": str(Path(tmp) / "tmp")}
        try:
            with client.setup_kernel(env=kernel_env, cwd=str(cwd)):
                for index, cell in enumerate(nb.cells):
                    p, c, chunk = plan[index]
                    try:
                        client.execute_cell(cell, index)
                    except CellExecutionError as e:
                        where = chunk.where() if chunk is not None else "the renderer's set-up cell"
                        raise RenderError(f"Chunk at {where} failed:\n{strip_ansi(str(e))}") from None
                    if chunk is not None:
                        outputs[p][c] = [dict(o) for o in cell.get("outputs", [])]
        finally:
            # the client does not own a kernel manager it was given: stop the kernel here
            if km.has_kernel:
                km.shutdown_kernel(now=True)
    return outputs
