"""Lines of the corrected-methods text the claims cite (``data/paper/corrections_note.json``).

The text is ``paper/notes/notes.md`` of the authors' repository; the file records its commit,
verbatim excerpts for the claims decided from the text itself (:mod:`analysis.audit.note_claims`)
and the line range of every other claim's statement. :func:`read_note` validates the file;
:func:`note_url` and :func:`statement_url` give the GitHub link to the lines.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path

from training.paths import paper_dir

#: the file's name under ``data/paper/``
NOTE_FILE = "corrections_note.json"
_FIELDS = ("what", "repository", "file", "commit", "commit_note", "excerpts", "statements")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


class NoteError(ValueError):
    """The corrections-note file is missing or malformed (the message names it and the entry)."""


@dataclass(frozen=True)
class Excerpt:
    """Lines ``lines[0]..lines[1]`` of the text, verbatim."""

    id: str
    lines: tuple[int, int]
    text: str


@dataclass(frozen=True)
class Note:
    """The cited lines of the corrected-methods text at one commit of the authors' repository."""

    repository: str
    file: str
    commit: str
    excerpts: dict[str, Excerpt]
    statements: dict[str, tuple[int, int]]

    def excerpt(self, eid: str) -> Excerpt:
        if eid not in self.excerpts:
            raise NoteError(f"{note_path()}: no excerpt {eid!r}; known: {sorted(self.excerpts)}")
        return self.excerpts[eid]


def note_path(root: str | Path | None = None) -> Path:
    """The file: ``<root>/corrections_note.json`` (``root`` defaults to ``data/paper``)."""
    return Path(paper_dir() if root is None else root) / NOTE_FILE


def _lines(path: Path, where: str, raw: object) -> tuple[int, int]:
    if (not isinstance(raw, list) or len(raw) != 2 or any(isinstance(x, bool) or not isinstance(x, int) for x in raw)
            or not 1 <= raw[0] <= raw[1]):
        raise NoteError(f"{path}: {where}: expected lines as [first, last] with 1 <= first <= last, got {raw!r}")
    return raw[0], raw[1]


def parse_note(raw: object, path: Path) -> Note:
    """A :class:`Note` from the file's decoded JSON (``path`` names it in errors)."""
    if not isinstance(raw, dict) or sorted(raw) != sorted(_FIELDS):
        got = sorted(raw) if isinstance(raw, dict) else type(raw).__name__
        raise NoteError(f"{path}: expected an object with fields {list(_FIELDS)}, got {got}")
    if not isinstance(raw["commit"], str) or not _COMMIT.match(raw["commit"]):
        raise NoteError(f"{path}: field 'commit' must be 40 hex digits, got {raw['commit']!r}")
    excerpts = {}
    for eid, e in raw["excerpts"].items():
        if not isinstance(e, dict) or sorted(e) != ["lines", "text"] or not isinstance(e["text"], str):
            raise NoteError(f"{path}: excerpt {eid!r}: expected an object with 'lines' and 'text', got {e!r}")
        first, last = _lines(path, f"excerpt {eid!r}", e["lines"])
        if e["text"].count("\n") != last - first:
            raise NoteError(f"{path}: excerpt {eid!r}: its text has {e['text'].count(chr(10)) + 1} lines, "
                            f"its range {first}-{last} {last - first + 1}")
        excerpts[eid] = Excerpt(eid, (first, last), e["text"])
    statements = {cid: _lines(path, f"statement {cid!r}", v) for cid, v in raw["statements"].items()}
    return Note(raw["repository"], raw["file"], raw["commit"], excerpts, statements)


@functools.lru_cache(maxsize=4)
def read_note(root: str | Path | None = None) -> Note:
    """The checked contents of :func:`note_path` (cached per ``root``).

    Raises
    ------
    NoteError
        When the file is missing or malformed.
    """
    path = note_path(root)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NoteError(f"{path}: missing (the corrected-methods lines the claims cite ship in data/paper/)") from None
    except json.JSONDecodeError as e:
        raise NoteError(f"{path}: not valid JSON ({e})") from None
    return parse_note(raw, path)


def note_url(note: Note, lines: tuple[int, int]) -> str:
    """The GitHub link to ``lines`` of the text at the note's commit.

    >>> n = Note("o/r", "paper/notes.md", "0" * 40, {}, {})
    >>> note_url(n, (3, 4))
    'https://github.com/o/r/blob/0000000000000000000000000000000000000000/paper/notes.md#L3-L4'
    """
    first, last = lines
    return f"https://github.com/{note.repository}/blob/{note.commit}/{note.file}#L{first}-L{last}"


def cite_lines(note: Note, lines: tuple[int, int]) -> str:
    """``notes.md:FIRST-LAST`` (one number when the range is one line).

    >>> cite_lines(Note("o/r", "paper/notes/notes.md", "0" * 40, {}, {}), (7, 7))
    'notes.md:7'
    """
    first, last = lines
    return f"{Path(note.file).name}:{first}" + (f"-{last}" if last != first else "")


def statement_url(claim_id: str, root: str | Path | None = None) -> tuple[str, str] | None:
    """``(label, url)`` of the lines that state claim ``claim_id``, or None when the file lists none."""
    note = read_note(root)
    lines = note.statements.get(claim_id)
    return None if lines is None else (cite_lines(note, lines), note_url(note, lines))
