"""Facts from the authors' public code (``data/authors/code_facts.json``): a validating reader.

The authors' code is not shipped, only short facts copied from it as data: each names a file of
``stfxecutables/dynamic_loss``, a line range, the commit its GitHub link cites, the stored version
the lines were read from (``read_at``; None where that version's commit is unknown), a verbatim
excerpt of at most two lines (leading indentation removed) and what it says. See
``data/authors/README.md`` for how the versions were chosen.

:func:`read_code_facts` checks the file and returns the facts by id, in file order;
:func:`github_url` and :func:`cite` turn a fact into the link the claims' evidence cites. Any
malformed entry raises :class:`CodeFactsError`, one line naming the file and the entry.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from analysis.audit.authors import SOURCE_COMMIT, SOURCE_REPOSITORY
from training.paths import authors_dir

#: the facts' file name under ``data/authors/``
CODE_FACTS_FILE = "code_facts.json"
#: the fields of one fact, in the file's order
FACT_FIELDS: tuple[str, ...] = ("id", "file", "lines", "commit", "read_at", "excerpt", "fact")
#: at most this many lines per excerpt (and per line range)
MAX_EXCERPT_LINES = 2

_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


class CodeFactsError(ValueError):
    """The authors' code facts file is missing or malformed (the message names it and the entry)."""


@dataclass(frozen=True)
class CodeFact:
    """One fact from the authors' code: ``file`` lines ``lines[0]..lines[1]`` at ``commit``."""

    id: str
    file: str
    lines: tuple[int, int]
    commit: str
    read_at: str | None
    excerpt: str
    fact: str

    @property
    def pinned(self) -> bool:
        """Whether the fact cites the commit the authors' records were copied from."""
        return self.commit == SOURCE_COMMIT


def code_facts_path(root: str | Path | None = None) -> Path:
    """The facts file: ``<root>/code_facts.json`` (``root`` defaults to ``data/authors``)."""
    return Path(authors_dir() if root is None else root) / CODE_FACTS_FILE


def _entry(path: Path, i: int, raw: object) -> CodeFact:
    where = f"{path}: entry {i}"
    if not isinstance(raw, dict):
        raise CodeFactsError(f"{where}: expected an object with fields {list(FACT_FIELDS)}, got {type(raw).__name__}")
    if isinstance(raw.get("id"), str):
        where += f" ({raw['id']!r})"
    missing = [f for f in FACT_FIELDS if f not in raw]
    extra = sorted(set(raw) - set(FACT_FIELDS))
    if missing or extra:
        raise CodeFactsError(f"{where}: unexpected fields (missing {missing}, extra {extra})")
    fid, file, lines, commit, read_at, excerpt, fact = (raw[f] for f in FACT_FIELDS)
    if not isinstance(fid, str) or not _ID.match(fid):
        raise CodeFactsError(f"{where}: field 'id' must be lower-case words joined by '-', got {fid!r}")
    parts = PurePosixPath(file).parts if isinstance(file, str) else ()
    if not parts or file.startswith("/") or ".." in parts or "\\" in file:
        raise CodeFactsError(f"{where}: field 'file' must be a relative path in the authors' repository, got {file!r}")
    if (not isinstance(lines, list) or len(lines) != 2 or any(isinstance(x, bool) or not isinstance(x, int) for x in lines)
            or not 1 <= lines[0] <= lines[1] or lines[1] - lines[0] >= MAX_EXCERPT_LINES):
        raise CodeFactsError(f"{where}: field 'lines' must be [first, last] with 1 <= first <= last < first + "
                             f"{MAX_EXCERPT_LINES}, got {lines!r}")
    if not isinstance(commit, str) or not _COMMIT.match(commit):
        raise CodeFactsError(f"{where}: field 'commit' must be a 40-digit lower-case hex commit, got {commit!r}")
    if read_at is not None and (not isinstance(read_at, str) or not _COMMIT.match(read_at)):
        raise CodeFactsError(f"{where}: field 'read_at' must be a 40-digit lower-case hex commit or null, got {read_at!r}")
    if commit != SOURCE_COMMIT and read_at != commit:
        raise CodeFactsError(f"{where}: a fact citing commit {commit[:12]} (not the pinned {SOURCE_COMMIT[:12]}) "
                             f"must have been read at it, got read_at {read_at!r}")
    n = lines[1] - lines[0] + 1
    if not isinstance(excerpt, str) or not excerpt.strip() or len(excerpt.split("\n")) != n:
        raise CodeFactsError(f"{where}: field 'excerpt' must hold the {n} line(s) of {lines!r}, got {excerpt!r}")
    if not isinstance(fact, str) or not fact.strip():
        raise CodeFactsError(f"{where}: field 'fact' must be a non-empty sentence, got {fact!r}")
    return CodeFact(fid, file, (lines[0], lines[1]), commit, read_at, excerpt, fact)


def read_code_facts(root: str | Path | None = None) -> dict[str, CodeFact]:
    """Every fact of ``<root>/code_facts.json`` (default ``data/authors``), by id, in file order.

    Raises
    ------
    CodeFactsError
        When the file is missing, not JSON, not a list of facts, or an entry is malformed or repeats
        an id (the message names the file and the entry).

    Examples
    --------
    >>> facts = read_code_facts()
    >>> facts["optimal-wd-lr"].file, facts["optimal-wd-lr"].lines
    ('src/constants.py', (48, 49))
    """
    path = code_facts_path(root)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise CodeFactsError(f"{path}: the authors' code facts file cannot be read ({e.strerror or e})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CodeFactsError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(raw, list) or not raw:
        raise CodeFactsError(f"{path}: expected a non-empty JSON list of facts, got {type(raw).__name__}")
    facts: dict[str, CodeFact] = {}
    for i, entry in enumerate(raw):
        fact = _entry(path, i, entry)
        if fact.id in facts:
            raise CodeFactsError(f"{path}: entry {i} repeats the id {fact.id!r}")
        facts[fact.id] = fact
    return facts


def github_url(fact: CodeFact) -> str:
    """The GitHub link to the fact's lines at its commit.

    >>> github_url(CodeFact("x", "src/a.py", (3, 4), "0" * 40, None, "a\\nb", "A."))
    'https://github.com/stfxecutables/dynamic_loss/blob/0000000000000000000000000000000000000000/src/a.py#L3-L4'
    """
    first, last = fact.lines
    return f"https://github.com/{SOURCE_REPOSITORY}/blob/{fact.commit}/{fact.file}#L{first}-L{last}"


def cite(fact: CodeFact) -> str:
    """``file:first-last, url``: the form the claims' evidence cites a fact in.

    >>> cite(CodeFact("x", "src/a.py", (3, 3), "0" * 40, None, "a", "A.")).split(", ")[0]
    'src/a.py:3'
    """
    first, last = fact.lines
    span = str(first) if first == last else f"{first}-{last}"
    return f"{fact.file}:{span}, {github_url(fact)}"
