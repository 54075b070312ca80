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

    ``frame`` keeps the data; ``digits`` rounds floats for display only. Cells of the columns named
    in ``markdown`` are markdown already (links, spans with classes) and are not escaped, except
    for ``|``, which would end the cell. ``widths`` sets the relative width of named columns in
    place of the one computed from their cells (for a table of several long text columns).
    """

    frame: pd.DataFrame
    digits: int = 3
    index: bool = False
    markdown: tuple[str, ...] = ()
    widths: tuple[tuple[str, int], ...] = ()

    def to_markdown(self) -> str:
        df = self.frame.reset_index() if self.index else self.frame
        if df.empty:
            raise ValueError("Refusing to display an empty table")
        cells = df.copy()
        for col in cells.columns:
            cells[col] = [_fmt_cell(v, self.digits) for v in cells[col]]
        from tabulate import tabulate

        header = [escape(str(c)) for c in cells.columns]
        numeric = [pd.api.types.is_numeric_dtype(df[c]) and df[c].dtype != bool for c in df.columns]
        raw = [c in self.markdown for c in cells.columns]
        rows = [[breakable_code(str(v).replace("\n", " ").replace("|", "\\|") if r else escape(str(v)))
                 for v, r in zip(row, raw)] for row in cells.itertuples(index=False)]
        lines = tabulate(rows, header, tablefmt="pipe", disable_numparse=True,
                         colalign=["right" if n else "left" for n in numeric]).splitlines()
        # pandoc sizes wide pipe tables by the dashes of the separator line: make them follow the
        # longest cell capped at 40 characters, so long text columns wrap instead of taking the page
        fixed = dict(self.widths)
        widths = [fixed.get(c) or _column_weight(h, cells[c].map(_visible)) for h, c in zip(header, cells.columns)]
        lines[1] = "|" + "|".join(("-" * (w - 1) + ":") if n else (":" + "-" * (w - 1))
                                  for w, n in zip(widths, numeric)) + "|"
        return "\n".join(lines) + "\n"

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def __repr__(self) -> str:
        return self.frame.to_string()


_LINK_TARGET = re.compile(r"\]\([^)]*\)")
_ATTRS = re.compile(r"\{[.#][^{}]*\}")
_RAW_INLINE = re.compile(r"`[^`]*`\{=[A-Za-z0-9]+\}")
_TEX_COMMAND = re.compile(r"\\[A-Za-z]+")


def _visible(text: str) -> str:
    """Roughly the printed text of a markdown cell: no raw inlines for other formats, link targets,
    attributes, brackets, TeX commands or math delimiters.

    >>> _visible("[✓ holds]{.verdict-holds} see [page](a.qmd#x) $\\hat{y}_i$")
    '✓ holds see page y_i'
    """
    text = _ATTRS.sub("", _LINK_TARGET.sub("]", _RAW_INLINE.sub("", str(text))))
    text = _TEX_COMMAND.sub("", text)
    return re.sub(r"[\[\]`$*{}]", "", text)


def _column_weight(header: str, values: pd.Series) -> int:
    """Relative width of a column (dashes of the separator line): its longest cell up to 40
    characters, at least its longest header word, plus room for the cell padding."""
    longest = max((_text_width(str(v).replace("**", "")) for v in values), default=0)
    header_word = max((_text_width(w) for w in header.split()), default=0)
    return round(max(min(longest, 40), header_word, 3)) + 3


def _text_width(text: str) -> float:
    """Rough printed width in digit widths (capitals are wider)."""
    return sum(1.4 if c.isupper() else 1.0 for c in text)


_CODE_SPAN = re.compile(r"`([^`\n]{16,})`")
_CODE_BREAK = re.compile(r"(?<=[./_(,=])(?=[^\s./_(,=)\]])")
ZWSP = "\u200b"


def breakable_code(text: str) -> str:
    """``text`` with a zero-width space after each ``. / _ ( , =`` inside its long `code` spans (16
    characters or more), so that a narrow table column wraps an identifier or a path instead of
    letting it run into the next column (PDF and HTML alike; nothing visible changes).

    >>> breakable_code("see `scripts/base_train.py:52`, `x`").count(ZWSP)  # the short span is left alone
    3
    >>> breakable_code("see `scripts/base_train.py:52`").replace(ZWSP, "|")
    'see `scripts/|base_|train.|py:52`'
    """
    return _CODE_SPAN.sub(lambda m: "`" + _CODE_BREAK.sub(ZWSP, m.group(1)) + "`", text)


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
#: TeX maths as pandoc reads it: ``$`` then a non-space, the closing ``$`` after a non-space and
#: not before a digit
_MATH = re.compile(r"(\$(?=\S)[^$\n|]*?(?<=\S)\$(?!\d))")
_PROTECTED = re.compile(f"{_CODE.pattern}|{_MATH.pattern}")


def escape(text: str) -> str:
    """Escape markdown syntax in a cell (evidence quotes numbers such as ``y_i*p``); a cell that
    is exactly ``**bold**`` stays bold, `code` spans (commands) and ``$TeX$`` maths stay as they
    are, and a double hyphen stays two hyphens (pandoc's smart punctuation would print an en
    dash, e.g. in record names such as ``2022.12.12--04-59``).

    >>> escape("a_b--c")
    'a\\\\_b-\\\\-c'
    >>> print(escape("run `dynloss analyze` for y_i*p"))
    run `dynloss analyze` for y\\_i\\*p
    >>> print(escape("loss $-\\log(0.1\\,\\hat{y}_t)$ costs $5"))
    loss $-\\log(0.1\\,\\hat{y}_t)$ costs \\$5
    """
    text = text.replace("\n", " ")
    if _BOLD.match(text):
        return text
    out, pos = [], 0
    for m in _PROTECTED.finditer(text):
        out.append(_escape_plain(text[pos:m.start()]))
        out.append(m.group(0))
        pos = m.end()
    out.append(_escape_plain(text[pos:]))
    return "".join(out)


def _escape_plain(text: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", text).replace("--", "-\\-")


def show(frame: pd.DataFrame, *, digits: int = 3, index: bool = False,
         widths: tuple[tuple[str, int], ...] = ()) -> Table:
    """Wrap a DataFrame for display as a markdown table (the cell's last expression); ``widths``
    as in :class:`Table` (the relative width of named columns)."""
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"Expected a pandas DataFrame, got {type(frame).__name__}")
    return Table(frame, digits=digits, index=index, widths=tuple(widths))
