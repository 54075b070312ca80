"""Calling pandoc (the binary of ``pypandoc-binary``), shared by the HTML and the PDF writers."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from analysis.report.engine.project import RenderError


def run_pandoc(args: list[str], *, cwd: Path) -> None:
    """Run ``pandoc args`` in ``cwd``.

    Raises
    ------
    RenderError
        When pandoc fails; the message holds its arguments and what it wrote to stderr.
    """
    import pypandoc

    exe = pypandoc.get_pandoc_path()
    proc = subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RenderError(f"pandoc {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")


#: the engine's own Lua filter, run after the book's: ``fig-alt`` as the HTML ``alt`` and as Typst's
#: ``image(alt: …)`` (what Quarto's filters do for it)
FIG_ALT_FILTER = Path(__file__).with_name("fig-alt.lua")


def filter_args(book_filters: tuple[Path, ...] = ()) -> list[str]:
    """pandoc arguments applying the book's Lua filters (``filters:`` of ``_quarto.yml``), then
    :data:`FIG_ALT_FILTER`."""
    return [arg for f in (*book_filters, FIG_ALT_FILTER) for arg in ("--lua-filter", str(f))]


def html_to_markdown(fragment: str) -> str:
    """An HTML fragment (a cell's ``text/html`` output) as pandoc markdown without raw HTML."""
    import pypandoc

    return pypandoc.convert_text(fragment, "markdown-raw_html-native_divs-native_spans", format="html")


def yaml_block(meta: dict[str, Any]) -> str:
    """A pandoc metadata block (``---`` fenced YAML) holding ``meta``."""
    return "---\n" + yaml.safe_dump(meta, allow_unicode=True, sort_keys=False) + "---\n\n"
