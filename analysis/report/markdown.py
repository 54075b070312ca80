"""Markdown tables for report cells: a frame shown with chosen digits and column widths.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Table:
    """A DataFrame shown as a pandoc pipe table (markdown output works for HTML and Typst alike).

    ``frame`` keeps the data; ``digits`` rounds floats for display only.
    """

    frame: pd.DataFrame
    digits: int = 3
    index: bool = False

    def to_markdown(self) -> str:
        df = self.frame.reset_index() if self.index else self.frame
        if df.empty:
            raise ValueError("Refusing to display an empty table")
        cells = df.copy()
        for col in cells.columns:
            cells[col] = [_fmt_cell(v, self.digits) for v in cells[col]]
        from tabulate import tabulate

        header = [_escape(str(c)) for c in cells.columns]
        numeric = [pd.api.types.is_numeric_dtype(df[c]) and df[c].dtype != bool for c in df.columns]
        rows = [[_escape(str(v)) for v in row] for row in cells.itertuples(index=False)]
        lines = tabulate(rows, header, tablefmt="pipe", disable_numparse=True,
                         colalign=["right" if n else "left" for n in numeric]).splitlines()
        # pandoc sizes wide pipe tables by the dashes of the separator line: make them follow the
        # longest cell capped at 40 characters, so long text columns wrap instead of taking the page
        widths = [_column_weight(h, cells[c]) for h, c in zip(header, cells.columns)]
        lines[1] = "|" + "|".join(("-" * (w - 1) + ":") if n else (":" + "-" * (w - 1))
                                  for w, n in zip(widths, numeric)) + "|"
        return "\n".join(lines) + "\n"

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def __repr__(self) -> str:
        return self.frame.to_string()


def _column_weight(header: str, values: pd.Series) -> int:
    """Relative width of a column (dashes of the separator line): its longest cell up to 40
    characters, at least its longest header word, plus room for the cell padding."""
    longest = max((_text_width(str(v).replace("**", "")) for v in values), default=0)
    header_word = max((_text_width(w) for w in header.split()), default=0)
    return round(max(min(longest, 40), header_word, 3)) + 3


def _text_width(text: str) -> float:
    """Rough printed width in digit widths (capitals are wider)."""
    return sum(1.4 if c.isupper() else 1.0 for c in text)


def _fmt_cell(value: Any, digits: int) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        if value != 0 and (abs(value) < 10 ** (-digits) or abs(value) >= 1e6):
            return f"{value:.{max(digits - 1, 1)}e}"
        return f"{value:.{digits}f}"
    return str(value)


_BOLD = re.compile(r"^\*\*[^*]+\*\*$")


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>$^~|#@])")


_CODE = re.compile(r"(`[^`|]+`)")


def _escape(text: str) -> str:
    """Escape markdown syntax in a cell (claims quote formulas such as ``y_i*log(0.1*p)``); a
    cell that is exactly ``**bold**`` stays bold, `code` spans (commands) stay code, and a double
    hyphen stays two hyphens (pandoc's smart punctuation would print an en dash, e.g. in record
    names such as ``2022.12.12--04-59``).

    >>> _escape("a_b--c")
    'a\\\\_b-\\\\-c'
    >>> print(_escape("run `dynloss analyze` for y_i*p"))
    run `dynloss analyze` for y\\_i\\*p
    """
    text = text.replace("\n", " ")
    if _BOLD.match(text):
        return text
    return "".join(part if _CODE.fullmatch(part) else _MD_SPECIAL.sub(r"\\\1", part).replace("--", "-\\-")
                   for part in _CODE.split(text))


def show(frame: pd.DataFrame, *, digits: int = 3, index: bool = False) -> Table:
    """Wrap a DataFrame for display as a markdown table (the cell's last expression)."""
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"Expected a pandas DataFrame, got {type(frame).__name__}")
    return Table(frame, digits=digits, index=index)
