"""The offline renderer's .qmd parsing and chunk-option handling (no kernel, no pandoc)."""

from __future__ import annotations

import base64
from pathlib import Path

import pandas as pd
import pytest

from analysis.report.context import ResultsMissingError, load_result
from analysis.report.markdown import show
from analysis.report.qmd import (
    Chunk,
    Markdown,
    QmdError,
    parse_chunk_options,
    parse_qmd,
    read_qmd,
    split_front_matter,
)
from analysis.report.engine.crossref import Numbering, resolve_crossrefs, resolve_links
from analysis.report.engine.kernel import effective_options
from analysis.report.engine.outputs import chunk_markdown
from analysis.report.engine.project import Page

PAGE = """\
---
title: "A page"
execute:
  echo: false
---

Intro with $x$ and @tbl-one.

```{python}
#| label: tbl-one
#| tbl-cap: "First table"
#| echo: true
make_table()
```

```python
not_executed()
```

````markdown
```{python}
shown_as_text()
```
````

```{python echo=false, warning=false}
#| include: false
setup()
```
"""


def test_front_matter_is_parsed_and_body_kept():
    meta, body, n = split_front_matter(PAGE)
    assert meta["title"] == "A page"
    assert meta["execute"] == {"echo": False}
    assert body.lstrip().startswith("Intro")
    assert n == 5


def test_missing_front_matter_gives_empty_mapping():
    assert split_front_matter("# Title\n") == ({}, "# Title\n", 0)


def test_unclosed_front_matter_is_an_error_naming_the_file():
    with pytest.raises(QmdError, match="page.qmd: front matter"):
        split_front_matter("---\ntitle: x\n", source="page.qmd")


def test_only_braced_chunks_are_executable():
    doc = parse_qmd(PAGE, source="p.qmd")
    chunks = doc.chunks
    assert [c.code for c in chunks] == ["make_table()\n", "setup()\n"]
    md = "".join(b.text for b in doc.blocks if isinstance(b, Markdown))
    assert "not_executed()" in md and "shown_as_text()" in md


def test_hash_pipe_options_are_yaml_and_removed_from_code():
    doc = parse_qmd(PAGE, source="p.qmd")
    first = doc.chunks[0]
    assert first.options == {"label": "tbl-one", "tbl-cap": "First table", "echo": True}
    assert first.label == "tbl-one"
    assert "#|" not in first.code


def test_header_options_are_read_and_hash_pipe_options_win():
    opts, code = parse_chunk_options("#| echo: true\nx = 1\n", header=" echo=false, warning=false")
    assert opts == {"echo": True, "warning": False}
    assert code == "x = 1\n"


def test_invalid_chunk_options_name_the_location():
    with pytest.raises(QmdError, match=r"p.qmd:\d+"):
        parse_qmd("```{python}\n#| label: [unclosed\nx\n```\n", source="p.qmd")


def test_unclosed_chunk_is_an_error():
    with pytest.raises(QmdError, match="never closed"):
        parse_qmd("```{python}\nx = 1\n", source="p.qmd")


def test_chunk_line_numbers_count_front_matter():
    doc = parse_qmd(PAGE, source="p.qmd")
    assert PAGE.splitlines()[doc.chunks[0].line - 1].startswith("```{python}")


def test_title_comes_from_the_opening_heading_when_front_matter_has_none():
    text = "\n# Summary of verdicts {.unnumbered}\n\nIntro.\n\n## Part\n\n```{python}\n1\n```\n"
    doc = parse_qmd(text, source="index.qmd")
    assert (doc.title, doc.unnumbered) == ("Summary of verdicts", True)
    body = "".join(b.text for b in doc.blocks if isinstance(b, Markdown))
    assert "# Summary" not in body and "## Part" in body  # the title heading leaves the body
    assert text.splitlines()[doc.chunks[0].line - 1] == "```{python}"  # line numbers unchanged


def test_a_heading_after_text_is_not_the_title_and_front_matter_wins():
    assert parse_qmd("Intro.\n\n# Later\n", source="a/page.qmd").title == "page"
    doc = parse_qmd("---\ntitle: Given {-}\n---\n# Heading\n", source="p.qmd")
    assert (doc.title, doc.unnumbered) == ("Given", True)
    assert "# Heading" in doc.blocks[0].text
    assert parse_qmd("---\ntitle: Plain\n---\n", source="p.qmd").unnumbered is False


def test_include_shortcode_is_expanded_relative_to_the_page(tmp_path: Path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "_part.qmd").write_text("---\ntitle: ignored\n---\n## Part\n\n```{python}\n1\n```\n")
    page = tmp_path / "page.qmd"
    page.write_text("---\ntitle: Main\n---\n{{< include sub/_part.qmd >}}\n")
    doc = read_qmd(page)
    assert doc.title == "Main"
    assert len(doc.chunks) == 1
    assert "## Part" in doc.blocks[0].text


def test_include_of_missing_file_is_an_error(tmp_path: Path):
    page = tmp_path / "page.qmd"
    page.write_text("{{< include nope.qmd >}}\n")
    with pytest.raises(QmdError, match="nope.qmd"):
        read_qmd(page)


def test_include_false_hides_code_and_output():
    chunk = Chunk(lang="python", code="x\n", options={"include": False})
    opts = effective_options(chunk, {"echo": True})
    assert opts["echo"] is False and opts["output"] is False


def test_project_defaults_apply_and_chunk_options_override():
    chunk = Chunk(lang="python", code="x\n", options={"echo": True})
    assert effective_options(chunk, {"echo": False, "warning": False}) | {} == {
        "echo": True, "eval": True, "include": True, "output": True, "warning": False, "error": False}


def _md(chunk, outputs, *, target="html", tmp_path, numbering=None):
    numbering = numbering or Numbering()
    if chunk.label and chunk.label not in numbering.numbers and chunk.label[:3] in ("fig", "tbl"):
        numbering.add(chunk.label, "p.html")
    warnings: list[str] = []
    md = chunk_markdown(chunk, outputs, options=effective_options(chunk, {}), target=target, numbering=numbering,
                        figure_dir=tmp_path, figure_prefix="p-x", warnings=warnings)
    return md, warnings


def test_table_chunk_becomes_labelled_div_with_numbered_caption(tmp_path):
    chunk = Chunk(lang="python", code="t\n", options={"label": "tbl-a", "tbl-cap": "Cap", "echo": False})
    out = [{"output_type": "execute_result", "data": {"text/markdown": "| a |\n|--:|\n| 1 |\n", "text/plain": "x"}}]
    md, _ = _md(chunk, out, tmp_path=tmp_path)
    assert md.startswith(":::: {#tbl-a")
    # the caption heads the labelled div, above the table's scrolling box (it wraps at page width)
    assert "::: {.table-caption}\nTable 1: Cap\n:::" in md
    assert md.index("Table 1: Cap") < md.index("{.table-scroll}") < md.index("| a |")
    md_typst, _ = _md(chunk, out, target="typst", tmp_path=tmp_path)
    assert ": Cap" in md_typst and "Table 1" not in md_typst  # Typst numbers figures itself


def test_figure_output_is_written_and_captioned(tmp_path):
    png = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()
    chunk = Chunk(lang="python", code="f\n", options={"label": "fig-a", "fig-cap": "A figure", "echo": False})
    md, _ = _md(chunk, [{"output_type": "display_data", "data": {"image/png": png}}], tmp_path=tmp_path)
    assert (tmp_path / "p-x-1.png").read_bytes().startswith(b"\x89PNG")
    assert "![Figure 1: A figure](figures/p-x-1.png){#fig-a}" in md


def test_output_asis_passes_stdout_as_markdown_and_echo_shows_code(tmp_path):
    chunk = Chunk(lang="python", code="print('**b**')\n", options={"output": "asis", "echo": True})
    md, _ = _md(chunk, [{"output_type": "stream", "name": "stdout", "text": "**b**\n"}], tmp_path=tmp_path)
    assert "``` {.python .cell-code}\nprint('**b**')\n```" in md
    assert "\n**b**\n" in md


def test_output_false_drops_outputs(tmp_path):
    chunk = Chunk(lang="python", code="print(1)\n", options={"output": False, "echo": False})
    md, _ = _md(chunk, [{"output_type": "stream", "name": "stdout", "text": "1\n"}], tmp_path=tmp_path)
    assert md == ""


def test_stderr_is_reported_as_warning_unless_warning_false(tmp_path):
    out = [{"output_type": "stream", "name": "stderr", "text": "UserWarning: careful\n"}]
    md, warnings = _md(Chunk(lang="python", code="w\n", options={}), out, tmp_path=tmp_path)
    assert warnings and "careful" in md
    md, warnings = _md(Chunk(lang="python", code="w\n", options={"warning": False}), out, tmp_path=tmp_path)
    assert not warnings and "careful" not in md


def test_crossrefs_become_numbered_links_across_pages():
    numbering = Numbering()
    numbering.add("tbl-a", "tables.html")
    numbering.add("fig-b", "index.html")
    warnings: list[str] = []
    text = "See @tbl-a and @fig-b, mail a@tbl-x.org, and @fig-missing.\n```\n@tbl-a in code\n```\n"
    out = resolve_crossrefs(text, numbering, target="html", page="index.html", warnings=warnings)
    assert "[Table 1](tables.html#tbl-a)" in out
    assert "[Figure 1](#fig-b)" in out
    assert "a@tbl-x.org" in out
    assert "@tbl-a in code" in out
    assert warnings == ["index.html: unresolved cross reference @fig-missing"]


def test_duplicate_labels_are_rejected():
    numbering = Numbering()
    numbering.add("tbl-a", "x.html")
    with pytest.raises(Exception, match="Duplicate label 'tbl-a'"):
        numbering.add("tbl-a", "y.html")


def test_show_renders_a_pipe_table_and_refuses_empty_frames():
    md = show(pd.DataFrame({"arm": ["ce"], "accuracy": [0.91234]}), digits=4)._repr_markdown_()
    lines = md.splitlines()
    assert [c.strip() for c in lines[0].strip("|").split("|")] == ["arm", "accuracy"]
    assert lines[1].startswith("|:") and lines[1].endswith(":|")  # text left, numbers right
    assert "0.9123" in lines[2]
    with pytest.raises(ValueError, match="empty"):
        show(pd.DataFrame({"a": []}))._repr_markdown_()


def test_missing_results_name_the_command_that_makes_them(tmp_path, monkeypatch):
    from analysis.report.context import report_context

    monkeypatch.setenv("DYNLOSS_RESULTS_DIR", str(tmp_path))
    ctx = report_context(preset="digits-tiny")
    with pytest.raises(ResultsMissingError, match="dynloss analyze --preset digits-tiny"):
        load_result("table1", ctx)
    (tmp_path / "digits-tiny").mkdir()
    with pytest.raises(ResultsMissingError, match="dynloss analyze --preset digits-tiny"):
        load_result("table1", ctx)


def test_links_to_other_pages_point_at_the_rendered_page_in_html_and_at_the_anchor_in_the_pdf(tmp_path):
    (tmp_path / "reports").mkdir()
    index = Page(source=tmp_path / "index.qmd", doc=parse_qmd("# Home\n"), stem="index")
    other = Page(source=tmp_path / "reports" / "methods.qmd", doc=parse_qmd("# M\n"), stem="methods")
    numbering = Numbering(files={index.source.resolve(): "index", other.source.resolve(): "methods"})
    text = ("See [the split](reports/methods.qmd#sec-split) and [methods](reports/methods.qmd).\n"
            "```\n[code](reports/methods.qmd#x)\n```\n")
    warnings: list[str] = []
    html = resolve_links(text, numbering, target="html", page=index, warnings=warnings)
    assert "[the split](methods.html#sec-split)" in html and "[methods](methods.html)" in html
    assert "[code](reports/methods.qmd#x)" in html  # code is left alone
    typst = resolve_links(text, numbering, target="typst", page=index, warnings=warnings)
    assert "[the split](#sec-split)" in typst and "[methods](#chapter-methods)" in typst
    # relative to the linking page: from reports/methods.qmd, index is ../index.qmd
    back = resolve_links("[home](../index.qmd#top) [here](methods.qmd#a)", numbering, target="html", page=other,
                         warnings=warnings)
    assert back == "[home](index.html#top) [here](#a)"
    assert warnings == []
    resolve_links("[x](missing.qmd)", numbering, target="html", page=index, warnings=warnings)
    assert warnings and "missing.qmd" in warnings[0]


def test_table_cells_keep_tex_maths_and_markdown_columns_are_not_escaped():
    from analysis.report.markdown import Table

    df = pd.DataFrame({"claim": [r"loss $-\log(0.1\,p_t)$ with y_i*p"], "verdict": ["[✓ holds]{.verdict-holds}"]})
    md = Table(df, markdown=("verdict",)).to_markdown()
    assert r"$-\log(0.1\,p_t)$" in md and r"y\_i\*p" in md
    assert "[✓ holds]{.verdict-holds}" in md
