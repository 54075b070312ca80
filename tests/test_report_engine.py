"""The offline renderer on a small fixture book (a real kernel, pandoc and typst; no analysis data)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from analysis.report.engine import RenderError, render_report

QUARTO_YML = """\
project:
  type: book
  output-dir: _output
book:
  title: "Fixture book"
  author: "Fixture Author"
  output-file: fixture
  chapters:
    - index.qmd
    - pages/second.qmd
execute:
  echo: false
format:
  typst:
    include-in-header: pages/rules.typ
"""

#: a Typst rule whose effect shows in the PDF text
TYPST_RULES = '#show "typst-rule-marker": "typst-rule-applied"\n'

INDEX = """\
---
title: "First page"
---
{{< include pages/_part.qmd >}}
"""

PART = '''\
## Section

Inline math $p_t \\le \\tau$ and a reference to @tbl-demo and @fig-demo. typst-rule-marker.

```{python}
#| include: false
HIDDEN_MARKER = "hidden-output-marker"
print(HIDDEN_MARKER)
```

```{python}
#| label: tbl-demo
#| tbl-cap: "A demo table"
from IPython.display import Markdown
Markdown("| name | value |\\n|:--|--:|\\n| alpha | 1.2345 |\\n")
```

```{python}
#| output: asis
print("**asis-bold-marker**")
```
'''

SECOND = '''\
---
title: "Second page"
---
## Figure

```{python}
#| label: fig-demo
#| fig-cap: "A demo figure"
from matplotlib.figure import Figure
fig = Figure(figsize=(3, 2)); fig.subplots().plot([1, 3, 2]); fig
```

```{python}
#| echo: true
print("echoed-output-marker")
```

```{python}
#| error: true
raise ValueError("expected-error-marker")
```

```{python}
#| warning: false
import warnings; warnings.warn("suppressed-warning-marker")
```

```{python}
print("namespace reset:", "HIDDEN_MARKER" in globals())
```
'''


def _book(root: Path, second: str = SECOND) -> Path:
    (root / "pages").mkdir(parents=True)
    (root / "_quarto.yml").write_text(QUARTO_YML)
    (root / "index.qmd").write_text(INDEX)
    (root / "pages" / "_part.qmd").write_text(PART)
    (root / "pages" / "second.qmd").write_text(second)
    (root / "pages" / "rules.typ").write_text(TYPST_RULES)
    return root


@pytest.fixture(scope="module")
def fixture_render(tmp_path_factory):
    root = _book(tmp_path_factory.mktemp("book"))
    return root, render_report(root)


def test_pages_and_pdf_are_written_to_the_output_dir(fixture_render):
    root, result = fixture_render
    assert [p.name for p in result.html] == ["index.html", "second.html"]
    assert result.pdf == root / "_output" / "fixture.pdf"
    assert result.pdf.read_bytes().startswith(b"%PDF")


def test_chunk_options_are_honoured(fixture_render):
    root, result = fixture_render
    first = (root / "_output" / "index.html").read_text()
    second = (root / "_output" / "second.html").read_text()
    assert "hidden-output-marker" not in first  # include: false
    assert "<strong>asis-bold-marker</strong>" in first  # output: asis
    assert "Table 1: A demo table" in first and 'id="tbl-demo"' in first
    assert 'href="second.html#fig-demo">Figure 1</a>' in first  # cross-page reference
    assert second.count("echoed-output-marker") == 2 and "cell-code" in second  # echo: true (code + output)
    assert "expected-error-marker" in second  # error: true shows the error, does not stop
    assert "suppressed-warning-marker" not in second  # warning: false
    assert "namespace reset: False" in second  # pages run in one kernel, namespace reset between
    assert result.warnings == []


def test_math_is_mathml_and_images_are_embedded(fixture_render):
    root, _ = fixture_render
    first = (root / "_output" / "index.html").read_text()
    second = (root / "_output" / "second.html").read_text()
    assert "<math" in first
    assert 'src="data:image/png;base64,' in second


def test_pdf_holds_captions_and_table(fixture_render):
    from pypdf import PdfReader

    _, result = fixture_render
    text = " ".join(p.extract_text() for p in PdfReader(result.pdf).pages)
    assert "Table 1: A demo table" in " ".join(text.split())
    assert "Figure 1: A demo figure" in " ".join(text.split())
    assert "1.2345" in text


def test_pdf_carries_the_author_and_the_books_typst_rules(fixture_render):
    from pypdf import PdfReader

    _, result = fixture_render
    text = " ".join(" ".join(p.extract_text() for p in PdfReader(result.pdf).pages).split())
    assert "Fixture Author" in text
    assert "typst-rule-applied" in text and "typst-rule-marker" not in text  # include-in-header


def test_a_missing_typst_header_file_is_named(tmp_path):
    root = _book(tmp_path)
    (root / "pages" / "rules.typ").unlink()
    with pytest.raises(RenderError, match=r"include-in-header names missing files \['pages/rules.typ'\]"):
        render_report(root, formats=("html",))


def test_a_failing_chunk_stops_the_render_with_its_location(tmp_path):
    bad = SECOND + textwrap.dedent('''
        ```{python}
        #| label: tbl-broken
        raise RuntimeError("run `dynloss analyze --preset x`")
        ```
        ''')
    root = _book(tmp_path, second=bad)
    with pytest.raises(RenderError, match=r"second.qmd:\d+ \(label 'tbl-broken'\)[\s\S]*dynloss analyze --preset x"):
        render_report(root, formats=("html",))
    assert not (root / "_output" / "index.html").exists()  # nothing half-written


POST_RENDER = '''\
import os, sys
from pathlib import Path
out = Path(os.environ["QUARTO_PROJECT_OUTPUT_DIR"])
if os.environ.get("FIXTURE_FAIL"):
    sys.exit("fixture post-render refused")
(out / "data").mkdir(exist_ok=True)
(out / "data" / "x.csv").write_text("a,b,1,2")
'''

LINKING = '''\
---
title: "Second page"
---
The data: [x.csv](../data/x.csv), a page [first](../index.qmd) and the web [site](https://example.org/a.csv).
'''


def _shipping_book(root: Path) -> Path:
    _book(root, second=LINKING)
    (root / "_quarto.yml").write_text(QUARTO_YML.replace("  output-dir: _output\n",
                                                         "  output-dir: _output\n  post-render: pages/post.py\n"))
    (root / "pages" / "post.py").write_text(POST_RENDER)
    return root


def test_post_render_scripts_run_after_the_pages_and_links_to_shipped_files_point_into_the_output(tmp_path):
    root = _shipping_book(tmp_path / "book")
    result = render_report(root, formats=("html",))
    out = root / "_output"
    page = (out / "second.html").read_text()
    # the link, written relative to pages/second.qmd as Quarto reads it, is relative to the flat output
    assert 'href="data/x.csv"' in page and (out / "data" / "x.csv").read_text() == "a,b,1,2"
    assert 'href="index.html"' in page and 'href="https://example.org/a.csv"' in page
    assert not [w for w in result.warnings if "link" in w] and "post_render" in result.timings


def test_a_failing_post_render_script_names_itself_and_its_message(tmp_path, monkeypatch):
    root = _shipping_book(tmp_path / "book")
    monkeypatch.setenv("FIXTURE_FAIL", "1")
    with pytest.raises(RenderError, match=r"post-render script pages/post\.py failed \(exit 1\): fixture post-render refused"):
        render_report(root, formats=("html",))
