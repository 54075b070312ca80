"""Parse Quarto ``.qmd`` sources: YAML front matter, markdown, executable ``{python}`` chunks.

Pure text processing (no execution), used by the offline renderer :mod:`analysis.report.engine`. The
subset understood is the one the report pages use:

- front matter between ``---`` fences at the top of the file (YAML);
- executable chunks opened by a fence of three or more backticks followed by ``{python}``
  (optionally ``{python key=value ...}``) and closed by a fence of at least the same length;
- chunk options as leading ``#| key: value`` lines (YAML), as in Quarto;
- ``{{< include path >}}`` shortcodes, expanded relative to the including file;
- the page title: front matter ``title``, else the page's first level-1 heading (which is then
  removed from the body, as Quarto does for book chapters); ``{.unnumbered}`` after either marks
  an unnumbered chapter.

Fenced blocks that are not executable (e.g. ```` ```python ```` without braces) stay markdown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

#: chunk options the offline renderer honours (others are kept but ignored)
KNOWN_OPTIONS: frozenset[str] = frozenset(
    {"echo", "eval", "include", "output", "label", "fig-cap", "tbl-cap", "warning", "error", "fig-alt"}
)

_OPEN_FENCE = re.compile(r"^(?P<ticks>`{3,})\s*\{(?P<lang>[A-Za-z0-9_-]+)(?P<rest>[^}]*)\}\s*$")
_ANY_FENCE = re.compile(r"^(?P<ticks>`{3,}|~{3,})")
_INCLUDE = re.compile(r"^\s*\{\{<\s*include\s+(?P<path>\S+)\s*>\}\}\s*$")
_TITLE_ATTRS = re.compile(r"^(?P<text>.*?)\s*\{(?P<attrs>[^{}]*)\}\s*$")
_H1 = re.compile(r"^#(?!#)\s+(?P<title>\S.*?)\s*$")
_HEADER_OPTION = re.compile(r"""(?P<key>[A-Za-z][\w-]*)\s*=\s*(?P<value>"[^"]*"|'[^']*'|[^\s,]+)""")


class QmdError(ValueError):
    """A ``.qmd`` source cannot be parsed; the message names the file and line."""


@dataclass(frozen=True)
class Markdown:
    """A run of markdown text between chunks."""

    text: str


@dataclass(frozen=True)
class Chunk:
    """An executable code chunk with its options (``#|`` lines removed from ``code``)."""

    lang: str
    code: str
    options: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    line: int = 0

    @property
    def label(self) -> str | None:
        label = self.options.get("label")
        return None if label is None else str(label)

    def where(self) -> str:
        """``file:line`` (and the label when there is one), for error messages."""
        tag = f" (label {self.label!r})" if self.label else ""
        return f"{self.source}:{self.line}{tag}"


@dataclass(frozen=True)
class QmdDocument:
    """A parsed page: front matter and a sequence of markdown blocks and chunks."""

    front_matter: dict[str, Any]
    blocks: list[Markdown | Chunk]
    source: str = ""

    @property
    def title(self) -> str:
        """The title shown (attributes such as ``{.unnumbered}`` removed)."""
        return split_title_attributes(self._raw_title)[0]

    @property
    def unnumbered(self) -> bool:
        """Whether the title carries ``{.unnumbered}`` (a chapter without a number)."""
        classes = split_title_attributes(self._raw_title)[1].split()
        return ".unnumbered" in classes or "-" in classes  # `{-}` is pandoc's short form

    @property
    def _raw_title(self) -> str:
        return str(self.front_matter.get("title", Path(self.source).stem or "Untitled"))

    @property
    def chunks(self) -> list[Chunk]:
        return [b for b in self.blocks if isinstance(b, Chunk)]


def split_title_attributes(title: str) -> tuple[str, str]:
    """Split pandoc heading attributes off a title: ``"Preface {.unnumbered}"`` → ``("Preface", ".unnumbered")``.

    >>> split_title_attributes("Summary {.unnumbered}")
    ('Summary', '.unnumbered')
    >>> split_title_attributes("Plain title")
    ('Plain title', '')
    """
    m = _TITLE_ATTRS.match(title)
    return (m.group("text"), m.group("attrs").strip()) if m else (title.strip(), "")


def _take_title_heading(body: str) -> tuple[str | None, str]:
    """The level-1 heading that opens ``body`` (nothing but blank lines before it) and the body
    without it."""
    lines = body.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        m = _H1.match(line.rstrip("\n"))
        if m is None:
            return None, body
        return m.group("title"), "".join(lines[:i] + ["\n"] + lines[i + 1:])  # keep line numbers
    return None, body


def split_front_matter(text: str, *, source: str = "<string>") -> tuple[dict[str, Any], str, int]:
    """Split YAML front matter from the body.

    Returns ``(front_matter, body, n_lines_consumed)``; a source without front matter gives
    ``({}, text, 0)``.

    >>> split_front_matter("---\\ntitle: A\\n---\\nbody\\n")[0]
    {'title': 'A'}
    """
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        return {}, text, 0
    for i in range(1, len(lines)):
        if lines[i].strip() in ("---", "..."):
            try:
                meta = yaml.safe_load("".join(lines[1:i])) or {}
            except yaml.YAMLError as e:
                raise QmdError(f"{source}: invalid YAML front matter: {e}") from e
            if not isinstance(meta, dict):
                raise QmdError(f"{source}: front matter must be a YAML mapping, got {type(meta).__name__}")
            return meta, "".join(lines[i + 1 :]), i + 1
    raise QmdError(f"{source}: front matter opened by '---' on line 1 is never closed")


def parse_chunk_options(code: str, *, header: str = "", where: str = "<chunk>") -> tuple[dict[str, Any], str]:
    """Read ``#|`` option lines at the top of a chunk (and ``key=value`` pairs of its header).

    Returns ``(options, code_without_option_lines)``. ``#|`` options win over header options.

    >>> parse_chunk_options("#| label: fig-a\\n#| echo: false\\nplot()\\n")
    ({'label': 'fig-a', 'echo': False}, 'plot()\\n')
    """
    options: dict[str, Any] = {}
    for m in _HEADER_OPTION.finditer(header):
        raw = m.group("value")
        if raw[:1] in "\"'":
            options[m.group("key")] = raw[1:-1]
        else:
            options[m.group("key")] = _yaml_scalar({"true": "true", "false": "false"}.get(raw.lower(), raw))
    lines = code.splitlines(keepends=True)
    yaml_lines: list[str] = []
    n = 0
    for line in lines:
        stripped = line.lstrip()
        if stripped.startswith("#|"):
            yaml_lines.append(stripped[2:].removeprefix(" ").rstrip("\n") + "\n")
            n += 1
        else:
            break
    if yaml_lines:
        try:
            parsed = yaml.safe_load("".join(yaml_lines)) or {}
        except yaml.YAMLError as e:
            raise QmdError(f"{where}: invalid '#|' chunk options: {e}") from e
        if not isinstance(parsed, dict):
            raise QmdError(f"{where}: '#|' chunk options must be `key: value` lines, got {parsed!r}")
        options.update(parsed)
    return options, "".join(lines[n:])


def _yaml_scalar(raw: str) -> Any:
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw


def expand_includes(text: str, *, base: Path, _depth: int = 0) -> str:
    """Replace ``{{< include path >}}`` lines with the file's text (front matter dropped).

    Paths are relative to ``base`` (the including file's directory). Includes nest up to 8 deep.
    """
    if _depth > 8:
        raise QmdError(f"include nesting deeper than 8 under {base}")
    out: list[str] = []
    fence: str | None = None
    for line in text.splitlines(keepends=True):
        m_fence = _ANY_FENCE.match(line)
        if m_fence:
            ticks = m_fence.group("ticks")
            if fence is None:
                fence = ticks
            elif ticks[0] == fence[0] and len(ticks) >= len(fence) and line.strip() == ticks:
                fence = None
        m = _INCLUDE.match(line) if fence is None else None
        if m is None:
            out.append(line)
            continue
        path = (base / m.group("path")).resolve()
        if not path.is_file():
            raise QmdError(f"{base}: included file {m.group('path')!r} not found (looked at {path})")
        _, body, _ = split_front_matter(path.read_text(encoding="utf-8"), source=str(path))
        expanded = expand_includes(body, base=path.parent, _depth=_depth + 1)
        out.append(expanded if expanded.endswith("\n") else expanded + "\n")
    return "".join(out)


def parse_qmd(text: str, *, source: str = "<string>", base: Path | None = None) -> QmdDocument:
    """Parse a ``.qmd`` text into front matter, markdown blocks and executable chunks.

    Parameters
    ----------
    text : str
        The page source.
    source : str
        Name used in error messages (usually the file path).
    base : Path, optional
        Directory for ``{{< include >}}`` paths; includes are left alone when ``None``.

    Raises
    ------
    QmdError
        On unclosed front matter or chunks, or invalid chunk options.

    >>> doc = parse_qmd("---\\ntitle: T\\n---\\n# Hi\\n```{python}\\n#| echo: false\\n1 + 1\\n```\\n")
    >>> doc.title, doc.chunks[0].options, doc.chunks[0].code
    ('T', {'echo': False}, '1 + 1\\n')
    """
    meta, body, offset = split_front_matter(text, source=source)
    if "title" not in meta:
        heading, rest = _take_title_heading(body)
        if heading is not None:
            meta = {**meta, "title": heading}
            body = rest
    if base is not None:
        body = expand_includes(body, base=base)
    blocks: list[Markdown | Chunk] = []
    md: list[str] = []
    lines = body.splitlines(keepends=True)
    i = 0
    plain_fence: str | None = None
    while i < len(lines):
        line = lines[i]
        if plain_fence is not None:
            md.append(line)
            if line.strip().startswith(plain_fence) and set(line.strip()) == {plain_fence[0]} and len(line.strip()) >= len(plain_fence):
                plain_fence = None
            i += 1
            continue
        m = _OPEN_FENCE.match(line)
        if m is None:
            m_any = _ANY_FENCE.match(line)
            if m_any:
                plain_fence = m_any.group("ticks")
            md.append(line)
            i += 1
            continue
        ticks, lang, rest = m.group("ticks"), m.group("lang"), m.group("rest")
        start = i
        j = i + 1
        while j < len(lines):
            s = lines[j].strip()
            if s and set(s) == {"`"} and len(s) >= len(ticks):
                break
            j += 1
        else:
            raise QmdError(f"{source}:{offset + start + 1}: code chunk opened by {ticks}{{{lang}}} is never closed")
        code = "".join(lines[start + 1 : j])
        where = f"{source}:{offset + start + 1}"
        options, code = parse_chunk_options(code, header=rest, where=where)
        if md:
            blocks.append(Markdown("".join(md)))
            md = []
        blocks.append(Chunk(lang=lang, code=code, options=options, source=source, line=offset + start + 1))
        i = j + 1
    if md:
        blocks.append(Markdown("".join(md)))
    return QmdDocument(front_matter=meta, blocks=blocks, source=source)


def read_qmd(path: str | Path) -> QmdDocument:
    """Read and parse a ``.qmd`` file (includes expanded relative to it)."""
    path = Path(path)
    if not path.is_file():
        raise QmdError(f"Report page {path} not found")
    return parse_qmd(path.read_text(encoding="utf-8"), source=str(path), base=path.parent)
