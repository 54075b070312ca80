"""End to end: train digits-tiny, analyse it, render the report offline to HTML and PDF, and check
that every table and figure is there, no cell failed or warned, and the numbers are the results'.

Slow (training + analysis + one kernel): the session fixture does it once for every test here.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from report_data import (PDF_MIN_BODY_WORDS, PRESET, digits_tiny_results, html_figure_alts, html_table, pdf_alts,
                         report_figures, table_rows, thin_pdf_pages, unresolved_links)

from analysis.cli import main
from analysis.report.context import report_context
from analysis.report.downloads import site_path
from analysis.report.qmd import read_qmd
from analysis.report.engine import RenderError, load_project, render_report
from training.arms import ARM_ORDER

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def rendered(tmp_path_factory):
    results = digits_tiny_results(tmp_path_factory.getbasetemp() / "digits-tiny")
    out = tmp_path_factory.mktemp("report") / "_output"
    t0 = time.perf_counter()
    result = render_report(ROOT, env={"DYNLOSS_PRESET": PRESET, "DYNLOSS_RESULTS_DIR": str(results)},
                           output_dir=out, subtitle=f"preset {PRESET}")
    result.timings["wall"] = time.perf_counter() - t0
    print(f"\nrender timings (s): {result.timings}")
    return result, results / PRESET, out


def _labels() -> list[str]:
    labels = []
    for page in load_project(ROOT).chapters:
        labels += [c.label for c in read_qmd(page).chunks if c.label and c.label[:4] in ("fig-", "tbl-")]
    return labels


def test_every_page_and_the_pdf_are_written(rendered):
    result, _, out = rendered
    stems = [p.stem for p in load_project(ROOT).chapters]
    assert [p.name for p in result.html] == [f"{s}.html" for s in stems]
    assert (out / "index.html").is_file()
    assert result.pdf == out / "dynloss-report.pdf"
    assert not list(out.glob(".render-*")), "staging directory left behind"


def test_every_table_and_figure_is_present_by_label(rendered):
    result, _, out = rendered
    html = "".join(p.read_text() for p in result.html)
    labels = _labels()
    assert len(labels) >= 20
    for label in labels:
        assert f'id="{label}"' in html, f"{label} missing from the HTML"
    for label in (lb for lb in labels if lb.startswith("fig-")):
        m = re.search(rf'<figure id="{label}">\s*<img [^>]*src="data:image/png;base64,', html)
        assert m, f"{label}: no embedded PNG in its figure"


@pytest.fixture(scope="module")
def drawn(rendered):
    """Every figure as its cell draws it from the rendered results: label -> (figure, alt text)."""
    _, results, _ = rendered
    return report_figures(results.parent, ROOT)


def test_every_figure_carries_the_alt_text_computed_from_its_numbers(rendered, drawn):
    result, _, _ = rendered
    alts = html_figure_alts("".join(p.read_text() for p in result.html))
    labels = [lb for lb in _labels() if lb.startswith("fig-")]
    assert sorted(drawn) == sorted(labels) and len(labels) == 8
    for label in labels:
        assert alts.get(label) == drawn[label][1], label
    assert sorted(pdf_alts(result.pdf)) == sorted(alt for _, alt in drawn.values())


def test_figure_text_prints_at_8_pt_or_more_and_no_figure_is_wider_than_the_page(drawn):
    from matplotlib.text import Text

    from analysis.report.figures import FULL_WIDTH, MIN_PRINT_PT, PRINT_WIDTH

    for label, (fig, _) in drawn.items():
        fig.savefig(__import__("io").BytesIO(), format="png", dpi=72, bbox_inches="tight")  # lays out ticks
        width = fig.get_tightbbox().width
        assert width <= FULL_WIDTH + 0.05, f"{label}: {width:.2f} in wide"
        sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
        printed = min(sizes) * min(1.0, PRINT_WIDTH / width)
        assert printed >= MIN_PRINT_PT, f"{label}: smallest text prints at {printed:.1f} pt"


def test_no_cell_failed_or_warned(rendered):
    result, _, _ = rendered
    assert result.warnings == []
    for page in result.html:
        text = page.read_text()
        assert "Traceback" not in text and 'class="cell-warning"' not in text, page.name
        assert "Warning:" not in text, page.name


def test_pages_link_to_each_other_and_to_the_pdf(rendered):
    result, _, _ = rendered
    for page in result.html:
        text = page.read_text()
        for other in result.html:
            assert f'href="{other.name}"' in text
        assert 'href="dynloss-report.pdf"' in text
        assert "mathjax" not in text.lower() and "<script src=" not in text  # self-contained, no CDN
    assert "<math" in (result.html[0].parent / "loss-audit.html").read_text()  # MathML


def test_every_link_on_every_page_resolves_to_a_file_in_the_output(rendered):
    result, results, out = rendered
    assert unresolved_links(out) == []
    # the data behind the pages ships with them: the results set as analysed, the audit, the listings
    ctx = report_context({"DYNLOSS_RESULTS_DIR": str(results.parent)}, preset=PRESET)
    for csv in results.glob("*.csv"):
        assert (out / site_path(ctx, csv.stem)).read_bytes() == csv.read_bytes(), csv.name
    assert (out / site_path(ctx, "audit.json")).is_file()
    assert len(pd.read_csv(out / site_path(ctx, "authors:table1_provenance.csv"))) == 60
    for page in ("index", "tables", "authors", "methods-audit", "calibration", "statistics"):
        assert 'href="data/' in (out / f"{page}.html").read_text(), f"{page}: no data link"


def test_table1_numbers_in_the_html_equal_the_results(rendered):
    result, results, out = rendered
    page = (out / "tables.html").read_text()
    grid = html_table(page, "tbl-table1")
    t1 = pd.read_csv(results / "table1.csv")
    t1 = t1[t1["arm"].isin(ARM_ORDER)]
    keys = ["dataset", "arm"] if "dataset" in grid.columns else ["arm"]  # one dataset: no column
    shown = grid.melt(id_vars=keys, var_name="fusion", value_name="accuracy_html")
    assert len(shown) == len(t1) and grid["arm"].tolist() == [a for a in ARM_ORDER if a in set(t1["arm"])]
    merged = t1.merge(shown, on=[*keys, "fusion"], validate="1:1")
    np.testing.assert_allclose(merged["accuracy_html"].astype(float), merged["accuracy"].round(4), atol=5e-5)
    def diff(label: str) -> pd.DataFrame:  # headers as one line (the page may wrap them)
        d = html_table(page, label)
        d.columns = [" ".join(c.split()) for c in d.columns]
        return t1.merge(d, on=[*keys, "fusion"], validate="1:1")

    vs_ce = diff("tbl-table1-diff-ce")  # every paper arm but the two references, minus ce
    assert len(vs_ce) == len(t1[~t1["arm"].isin(["ce", "ce-lr0.01"])])
    ce = vs_ce
    np.testing.assert_allclose(ce["Δ accuracy"].astype(float), ce["diff_vs_ce"].round(4), atol=5e-5)
    bounds = ce["95 % CI (test samples)"].str.extract(r"\[(-?[\d.]+),\s(-?[\d.]+)\]").astype(float)
    np.testing.assert_allclose(bounds[0], ce["diff_ci_low"].round(4), atol=5e-5)
    np.testing.assert_allclose(bounds[1], ce["diff_ci_high"].round(4), atol=5e-5)
    vs_control = diff("tbl-table1-diff-control")  # every paper arm but ce-lr0.01 (ce included)
    assert len(vs_control) == len(t1[t1["arm"] != "ce-lr0.01"])
    control = t1[t1["arm"] == "ce-lr0.01"].set_index(["dataset", "fusion"])["accuracy"]
    expected = vs_control["accuracy"] - [control[(d, f)] for d, f in zip(vs_control["dataset"], vs_control["fusion"])]
    np.testing.assert_allclose(vs_control["Δ accuracy"].astype(float), expected, atol=1.5e-4)


def test_table2_numbers_in_the_html_equal_the_results(rendered):
    _, results, out = rendered
    t2 = pd.read_csv(results / "table2.csv")
    for label in ("tbl-table2", "tbl-table2-tests"):  # the intervals, the tests: both hold r
        shown = html_table((out / "tables.html").read_text(), label)
        keys = [k for k in ("dataset", "fusion", "encoding") if k in shown.columns]  # one dataset: no column
        merged = t2.merge(shown, on=keys, validate="1:1")
        assert len(merged) == len(t2)
        np.testing.assert_allclose(merged["r"].astype(float), merged["pearson_r"].round(3), atol=5e-4)
    np.testing.assert_allclose(merged["Spearman ρ"].astype(float), merged["spearman_rho"].round(3), atol=5e-4)


def test_pdf_text_holds_every_table(rendered):
    from pypdf import PdfReader

    result, results, _ = rendered
    text = "\n".join(page.extract_text() for page in PdfReader(result.pdf).pages)
    flat = re.sub(r"\s+", " ", text)
    n_tables = sum(lb.startswith("tbl-") for lb in _labels())
    n_figures = sum(lb.startswith("fig-") for lb in _labels())
    for k in range(1, n_tables + 1):
        assert f"Table {k}:" in flat, f"Table {k} caption missing from the PDF"
    for k in range(1, n_figures + 1):
        assert f"Figure {k}:" in flat, f"Figure {k} caption missing from the PDF"
    t1 = pd.read_csv(results / "table1.csv")
    for acc in t1["accuracy"].round(4).unique():
        assert f"{acc:.4f}" in flat


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs pdftotext (poppler-utils) to read the pages")
def test_no_pdf_page_is_blank(rendered):
    result, _, _ = rendered
    thin = thin_pdf_pages(result.pdf)
    assert thin == {}, f"pages with fewer than {PDF_MIN_BODY_WORDS} body words (page: words): {thin}"


def test_render_time_is_within_budget(rendered):
    result, _, _ = rendered
    assert result.timings["wall"] < 120, result.timings  # target 60 s on 2 idle cores


def test_missing_results_stop_the_render_naming_the_command(tmp_path, capsys):
    assert main(["report", "--preset", "digits-tiny", "--results-dir", str(tmp_path), "--engine", "offline",
                 "--output-dir", str(tmp_path / "out")]) == 2
    assert "dynloss analyze --preset digits-tiny" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_missing_result_file_fails_the_chunk_that_needs_it(rendered, tmp_path):
    _, results, _ = rendered
    partial = tmp_path / "results" / PRESET
    partial.mkdir(parents=True)
    for f in results.iterdir():
        if f.name != "table1.csv":
            (partial / f.name).write_bytes(f.read_bytes())
    with pytest.raises(RenderError, match=r"dynloss analyze --preset digits-tiny"):
        render_report(ROOT, env={"DYNLOSS_PRESET": PRESET, "DYNLOSS_RESULTS_DIR": str(tmp_path / "results")},
                      output_dir=tmp_path / "out", formats=("html",))
    assert not list((tmp_path / "out").glob("*.html"))


def test_verdict_list_shows_symbols_sources_kinds_overturn_lines_and_links_to_the_evidence(rendered):
    _, _, out = rendered
    index = (out / "index.html").read_text()
    rows = table_rows(index, "tbl-verdicts")
    header, body = rows[0], rows[1:]
    assert header == ["verdict", "claim", "source", "evidence kind", "overturned by"]
    from analysis.audit import KINDS, PROXY, registered_claims

    def plain(text: str) -> str:  # pandoc wraps lines and prints apostrophes typographically
        return " ".join(text.replace("\u2019", "'").split())

    shown = [plain(r[3]) for r in body]
    assert set(shown) <= (set(KINDS) - {PROXY}) | {f"{PROXY} {PRESET}"} and f"{PROXY} {PRESET}" in shown
    overturn = {plain(s.overturn) for s in registered_claims()}
    assert all(plain(r[4]) in overturn for r in body)
    symbols = {"holds": "✓", "fails": "✗", "conditional": "◐"}
    for verdict, *_ in body:
        word = verdict.split()[-1]
        assert verdict == f"{symbols[word]}\u00a0{word}"  # one line: joined by a no-break space
    for word in symbols:  # symbol AND colour class, never colour alone
        if any(r[0].endswith(word) for r in body):
            assert f'<span class="verdict-{word}">{symbols[word]}\u00a0{word}</span>' in index
    from analysis.audit import SOURCES

    # pandoc prints apostrophes typographically; a source may be followed by the lines that state the claim
    sources = {r[2].replace("\u2019", "'").split(" · ")[0] for r in body}
    assert sources <= set(SOURCES) and len(sources) >= 3
    lines = re.findall(r'<a\s+href="https://github\.com/stfxecutables/dynamic_loss/blob/[0-9a-f]{40}/paper/notes/notes\.md'
                       r'#L(\d+)-L(\d+)"[^>]*>notes\.md:\u200b?(\d+)(?:-(\d+))?</a>', index)  # a break point after the colon
    assert len(lines) == sum(" · notes.md:" in r[2] for r in body) >= 17  # the loss and method claims
    assert all((a, b) == (c, d or c) for a, b, c, d in lines)  # the label names the lines the link opens
    # every claim links to the section, table or figure of its evidence, on a page that has that anchor
    links = re.findall(r'<span class="claim-id"><code>([^<]+)</code>\s+·\s+<a\s+href="([\w-]+\.html)#([\w-]+)"', index)
    assert len(links) == len(body)
    for _, page, anchor in links:
        assert f'id="{anchor}"' in (out / page).read_text(), (page, anchor)


def test_claim_texts_are_typeset_as_maths(rendered):
    _, _, out = rendered
    index = (out / "index.html").read_text()
    table = index[index.index('id="tbl-verdicts"'):].split("</table>")[0]
    assert table.count("<math") >= 5
    shown = re.sub(r"<annotation[^>]*>.*?</annotation>", "", table, flags=re.S)  # MathML keeps the TeX there
    assert "$" not in shown and "sum_i" not in shown and "yhat" not in shown


def test_html_titles_carry_the_report_title_and_no_page_prints_an_absolute_path(rendered):
    result, _, out = rendered
    title = load_project(ROOT).title
    for page in result.html:
        text = page.read_text()
        m = re.search(r"<title>([^<]*)</title>", text)
        assert m and title in " ".join(m.group(1).split()), page.name
        visible = re.sub(r'(src|href)="data:[^"]*"', "", text)
        for prefix in ("/work/", "/tmp/", "/home/", "/root/", str(Path.home()) + "/", str(ROOT) + "/"):
            assert prefix not in visible, (page.name, prefix)
    from pypdf import PdfReader

    pdf_text = "\n".join(p.extract_text() for p in PdfReader(result.pdf).pages)
    for prefix in ("/work/", "/tmp/", "/home/", "/root/"):
        assert prefix not in pdf_text, prefix


def test_statistics_page_names_every_method_and_tables_label_adjusted_and_sided_results(rendered):
    from analysis.report.statistics import STATISTICS, bare_ns_next_to_excluding_interval

    _, _, out = rendered
    page = re.sub(r"\s+", " ", (out / "statistics.html").read_text()).replace("\u2019", "'").replace("&#39;", "'")
    for s in STATISTICS:
        assert s.name in page, s.name
        assert f'id="sec-stat-{s.key}"' in page

    def table(name: str, label: str) -> pd.DataFrame:  # headers as one line (the page may wrap them)
        t = html_table((out / name).read_text(), label)
        return t.set_axis([" ".join(c.split()) for c in t.columns], axis=1)

    lr = table("authors.html", "tbl-authors-lr")
    bounds = lr["95 % CI, test samples only (unadjusted)"].str.extract(r"\[([-+\d.]+), ([-+\d.]+)\]").astype(float)
    assert len(lr) and not bare_ns_next_to_excluding_interval(lr["at 5 % (Holm)"], bounds[0], bounds[1]).any()
    assert "permutation p" in table("tables.html", "tbl-table2-tests").columns  # the caption: two-sided
    assert "95 % CI, test samples only" in table("index.html", "tbl-headline").columns
