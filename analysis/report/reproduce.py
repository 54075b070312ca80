"""The reproducibility page's worked example: one number of regenerated Table 1, from the commands
that make it to the CSV file, line and column that hold it, read from the results set when the
page renders (:func:`worked_example`), and how to check a rerun against it (:func:`example_markdown`);
and the audited paper version (:func:`paper_version_frame`, from ``data/paper/paper.json``).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from analysis.report.context import ReportContext, reads, result_path
from training.arms import ARM_ORDER

#: the cell the example follows: regenerated Table 1's accuracy of the Average fusion (a cell
#: ``dynloss compare`` checks), for the first of these arms the results hold
EXAMPLE_TABLE, EXAMPLE_COLUMN, EXAMPLE_FUSION = "table1", "accuracy", "Average"
EXAMPLE_ARMS = ("dyn-0.7", *ARM_ORDER)
#: the columns that name a row of Table 1 (one row per dataset × arm × fusion)
EXAMPLE_KEY = ("dataset", "arm", "fusion")


@dataclass(frozen=True)
class Example:
    """One cell of a results CSV: where it is and what it holds.

    ``line`` counts the file's lines from 1 (the header), so ``sed -n '<line>p'`` prints the row;
    ``text`` is the value as written (shortest round-trip form), ``value`` the number it reads as.
    """

    preset: str
    table: str
    shown: str
    line: int
    key: tuple[tuple[str, str], ...]
    column: str
    text: str

    @property
    def value(self) -> float:
        return float(self.text)

    @property
    def default_path(self) -> str:
        """The file under the checkout's default data root (``data/results/<preset>/``)."""
        return f"data/results/{self.preset}/{self.table}.csv"

    def pandas_command(self, path: str | None = None) -> str:
        """A shell line printing the cell with pandas (``path``: the CSV, default :attr:`default_path`)."""
        where = " & ".join(f'(t.{k} == "{v}")' for k, v in self.key)
        return (f"python -c 'import pandas as pd; t = pd.read_csv(\"{path or self.default_path}\"); "
                f"print(t.loc[{where}, \"{self.column}\"].item())'")

    @property
    def compare_prefix(self) -> str:
        """The start of the cell's row in ``dynloss compare --csv`` (table, metric, dataset, arm, fusion)."""
        key = dict(self.key)
        return f"{self.table},{self.column},{key['dataset']},{key['arm']},{key['fusion']},"


@reads(EXAMPLE_TABLE)
def worked_example(ctx: ReportContext) -> Example:
    """The example cell of the context's results: the first dataset's row of the first arm of
    :data:`EXAMPLE_ARMS` in ``table1.csv``, fusion Average, column accuracy.

    Raises
    ------
    ValueError
        When ``table1.csv`` has no Average row of any of those arms (the message names the file).
    """
    path = result_path(EXAMPLE_TABLE, ctx)
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    lines = {(r["dataset"], r["arm"], r["fusion"]): i + 2 for i, r in enumerate(rows)}  # line 1: header
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    for arm in EXAMPLE_ARMS:
        for dataset in datasets:
            line = lines.get((dataset, arm, EXAMPLE_FUSION))
            if line is not None:
                row = rows[line - 2]
                return Example(ctx.preset, EXAMPLE_TABLE, ctx.root.display(path), line,
                               tuple((k, row[k]) for k in EXAMPLE_KEY), EXAMPLE_COLUMN, row[EXAMPLE_COLUMN])
    raise ValueError(f"{path}: expected a row of fusion {EXAMPLE_FUSION} for one of the arms {list(EXAMPLE_ARMS)}")


@reads(EXAMPLE_TABLE)
def example_markdown(ctx: ReportContext) -> str:
    """The worked example as the page shows it: the number, the commands that make it, where it is,
    and how to check a rerun against it (``dynloss snapshot``/``compare``, the pytest plugin)."""
    ex = worked_example(ctx)
    key = dict(ex.key)
    preset = ex.preset
    where = ", ".join(f"`{k}` = `{v}`" for k, v in ex.key)
    read = f" (this rendering read `{ex.shown}`)" if ex.shown != f"{ex.table}.csv" else ""
    return f"""\
**The number.** Regenerated Table 1's accuracy of the {key['fusion']} fusion of arm `{key['arm']}` on
`{key['dataset']}` (preset `{preset}`): **{ex.value:.4f}**, read from the results set as this page rendered.

**1. Make it.** Training is cached per run, so a rerun trains only what is missing:

```bash
dynloss train --preset {preset}
dynloss analyze --preset {preset}      # writes {ex.default_path} and the other tables
```

**2. Find it.** File `{ex.table}.csv` of the results set{read}, line {ex.line}
(line 1 is the header), the row with {where}, column `{ex.column}`: `{ex.text}` as written (floats are
written in their shortest round-trip form; the tables page rounds it to {ex.value:.4f}). To print it:

```bash
sed -n '1p;{ex.line}p' {ex.default_path}   # the header and the row
{ex.pandas_command()}
```

**3. Check a rerun against it.** Record this results set as a baseline, rerun (another machine, seed
or code revision), and compare cell by cell; the cell's row says `agree` when the difference is
within the noise of both sides' bootstrap intervals:

```bash
dynloss snapshot --preset {preset} --out baseline.json
dynloss compare --results {ex.default_path.rsplit('/', 1)[0]} --baseline baseline.json --csv - | grep '^{ex.compare_prefix}'
```

or in a test of your own, with the pytest plugin that ships with `dynloss`:

```python
def test_{preset.replace('-', '_')}_reproduces(dynloss_regression):
    dynloss_regression.check("{ex.default_path.rsplit('/', 1)[0]}", "baseline.json")
```

`--baseline published` compares the preset `paper` with Paper Tables 1–2 instead.
"""


def paper_version_frame(path: str | Path | None = None) -> pd.DataFrame:
    """Which version of the paper the audit reads, from ``data/paper/paper.json`` (``version``):
    ``item, value``; the manuscript's title, arXiv id, DOI and date show as not printed when the
    text does not print them (they are not invented). ``path``: another metadata file (tests).

    Raises
    ------
    ValueError
        When ``paper.json`` lacks the ``version`` record or one of its fields (the message names them).
    """
    from analysis.report.bottom_line import PAPER_JSON, load_paper

    paper = load_paper(path)
    version = paper.get("version")
    needed = ("file", "commit", "characters", "sha256", "manuscript", "manuscript_note", "code_release")
    missing = [k for k in needed if not isinstance(version, dict) or k not in version]
    if missing:
        raise ValueError(f"{path or PAPER_JSON}: expected a `version` record with fields {missing}")
    repo = paper["repository"]
    commit, file = version["commit"], version["file"]
    manuscript = version["manuscript"]
    release = version["code_release"]

    def printed(key: str) -> str:
        return str(manuscript[key]) if manuscript.get(key) else "not printed in the text"

    items = [
        ("text audited", f"[`{file}` at {commit[:7]}]({repo}/blob/{commit}/{file}), by {paper['authors']}"),
        ("its size and SHA-256", f"{version['characters']:,} characters, `{version['sha256'][:16]}…`"),
        ("published tables", "Paper Tables 1–2 (`data/paper/`), transcribed from its Results section"),
        ("manuscript title", printed("title")),
        ("arXiv id and version", printed("arxiv")),
        ("DOI", printed("doi")),
        ("date", printed("date")),
        ("why", version["manuscript_note"]),
        ("code release it cites", f"{release['title']}, {release['date']}, DOI "
                                  f"[{release['doi']}](https://doi.org/{release['doi']})"),
    ]
    return pd.DataFrame(items, columns=["item", "value"])


@reads("paper:paper.json")
def paper_version_table():
    """:func:`paper_version_frame` as the page shows it (its values hold links)."""
    from analysis.report.markdown import Table

    return Table(paper_version_frame(), markdown=("value",), widths=(("item", 12), ("value", 60)))
