"""Executed chunks as pandoc markdown: code when echoed, then the outputs (``text/markdown`` as is,
PNG/SVG figures written as files, HTML converted by pandoc, text as code blocks), captions and
labels as pandoc figures and tables (:func:`chunk_markdown`); a whole page's body
(:func:`page_markdown`), for ``target`` ``"html"`` or ``"typst"``.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

from analysis.report.engine.crossref import Numbering, resolve_crossrefs, resolve_links
from analysis.report.engine.kernel import effective_options, strip_ansi
from analysis.report.engine.pandoc import html_to_markdown
from analysis.report.engine.project import Page
from analysis.report.qmd import Chunk, Markdown


def _code_block(text: str, classes: str = "") -> str:
    fence = "```"
    while fence in text:
        fence += "`"
    attr = f" {{{classes}}}" if classes else ""
    return f"{fence}{attr}\n{text.rstrip()}\n{fence}\n"


def chunk_markdown(
    chunk: Chunk,
    outputs: list[dict[str, Any]],
    *,
    options: dict[str, Any],
    target: str,
    numbering: Numbering,
    figure_dir: Path,
    figure_prefix: str,
    warnings: list[str],
) -> str:
    """Pandoc markdown for one executed chunk (code if echoed, then its outputs)."""
    if not options.get("include", True):
        return ""
    parts: list[str] = []
    if options.get("echo"):
        parts.append(_code_block(chunk.code, ".python .cell-code"))
    output_opt = options.get("output", True)
    label = chunk.label
    kind = label.split("-", 1)[0] if label else None
    n_fig = 0
    body: list[str] = []
    if output_opt is not False:
        for out in outputs:
            otype = out.get("output_type")
            if otype == "stream":
                text = out.get("text", "")
                if out.get("name") == "stderr":
                    if options.get("warning", True) and text.strip():
                        warnings.append(f"{chunk.where()}: {text.strip()}")
                        body.append(f"::: {{.cell-warning}}\n{_code_block(text)}:::\n")
                elif output_opt == "asis":
                    body.append(text)
                elif text.strip():
                    body.append(_code_block(text))
            elif otype == "error":
                body.append(_code_block(strip_ansi("\n".join(out.get("traceback", []))), ".error"))
            elif otype in ("display_data", "execute_result"):
                data = out.get("data", {})
                if "image/png" in data or "image/svg+xml" in data:
                    n_fig += 1
                    ext = "png" if "image/png" in data else "svg"
                    fname = f"{figure_prefix}-{n_fig}.{ext}"
                    path = figure_dir / fname
                    if ext == "png":
                        path.write_bytes(base64.b64decode(data["image/png"]))
                    else:
                        svg = data["image/svg+xml"]
                        path.write_text(svg if isinstance(svg, str) else "".join(svg), encoding="utf-8")
                    body.append(_figure_markdown(f"figures/{fname}", options, label if n_fig == 1 else None,
                                                 numbering, target))
                elif "text/markdown" in data:
                    body.append(_as_text(data["text/markdown"]))
                elif "text/html" in data:
                    body.append(html_to_markdown(_as_text(data["text/html"])))
                elif "text/plain" in data:
                    body.append(_code_block(_as_text(data["text/plain"])))
    if kind == "tbl":
        caption = str(options.get("tbl-cap", "")).strip()
        table_md = "\n".join(b.rstrip() + "\n" for b in body)
        if target == "html":
            # the caption sits above the table's scrolling box, so that it wraps at the page's
            # width however wide the table is (as Quarto's figcaption does)
            if label in numbering.numbers:
                caption = f"{numbering.name(label)}: {caption}" if caption else numbering.name(label)
            head = f"::: {{.table-caption}}\n{caption}\n:::\n\n" if caption else ""
            parts.append(f":::: {{#{label} .table-wrap}}\n{head}::: {{.table-scroll}}\n{table_md}\n:::\n::::\n")
        else:
            if caption:
                table_md = f"{table_md}\n: {caption}\n"
            parts.append(f"::: {{#{label} .table-wrap}}\n{table_md}\n:::\n")
    elif label and kind != "fig":
        parts.append(f"::: {{#{label}}}\n" + "\n".join(body) + "\n:::\n")
    else:
        parts.extend(body)
    return "\n".join(p.rstrip() + "\n" for p in parts if p.strip())


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else "".join(value)


def _figure_markdown(src: str, options: dict[str, Any], label: str | None, numbering: Numbering, target: str) -> str:
    caption = str(options.get("fig-cap", "")).strip()
    alt = str(options.get("fig-alt", "")).strip()
    attrs: list[str] = []
    if label and label.startswith("fig-"):
        attrs.append(f"#{label}")
        if target == "html" and label in numbering.numbers:
            caption = f"{numbering.name(label)}: {caption}" if caption else numbering.name(label)
    if target == "typst":
        attrs.append('width="100%"')
    if alt:
        attrs.append(f'fig-alt="{html.escape(alt, quote=True)}"')
    attr = f"{{{' '.join(attrs)}}}" if attrs else ""
    if not caption:
        # a lone image with no caption must not become a numbered figure
        return f"![]({src}){attr}\\\n"
    return f"![{caption}]({src}){attr}\n"


def page_markdown(
    page: Page,
    outputs: list[list[dict[str, Any]]],
    *,
    defaults: dict[str, Any],
    target: str,
    numbering: Numbering,
    figure_dir: Path,
    warnings: list[str],
) -> str:
    """The page body as pandoc markdown for ``target`` (``"html"`` or ``"typst"``)."""
    parts: list[str] = []
    ci = 0
    for block in page.doc.blocks:
        if isinstance(block, Markdown):
            text = resolve_crossrefs(block.text, numbering, target=target, page=page.html_name, warnings=warnings)
            parts.append(resolve_links(text, numbering, target=target, page=page, warnings=warnings))
            continue
        options = effective_options(block, defaults)
        prefix = f"{page.stem}-{block.label or f'chunk{ci + 1}'}"
        sink = warnings if target == "html" else []
        md = chunk_markdown(block, outputs[ci], options=options, target=target, numbering=numbering,
                            figure_dir=figure_dir, figure_prefix=prefix, warnings=sink)
        parts.append("\n" + resolve_links(md, numbering, target=target, page=page, warnings=sink) + "\n")
        ci += 1
    return "".join(parts)
