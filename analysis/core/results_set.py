"""A preset's results as one set: written whole into a temporary folder, swapped in with one rename,
``provenance.json`` listing every file with its SHA-256; checked whole before it is shown.

A reader sees the previous set or the new one, never a mix: a failure part way (full disk) leaves
the previous set untouched and removes the temporary folder. On Linux the swap is one
``renameat2(RENAME_EXCHANGE)``; elsewhere (or on a file system without it) two renames, between
which the folder is briefly absent (a reader then finds no results, never mixed ones).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from training.cache_format import _named, orphaned_temporaries, read_json, sha256_file, temp_prefix

PROVENANCE = "provenance.json"
#: version of the layout of a results set (``provenance.json`` ``schema_version``); a set of another
#: version is refused by :func:`check_set`
SCHEMA_VERSION = 1
#: the largest ``provenance.json`` read (it lists every run of the cache: a few hundred KB at most)
MAX_PROVENANCE_BYTES = 16 * 2**20
#: names of operating-system and editor litter, ignored in a results folder like names starting with "."
LITTER_NAMES = frozenset({"Thumbs.db", "desktop.ini", "Icon\r"})


class ResultsSetError(ValueError):
    """A results folder is not one whole set (a file missing, changed, foreign, or no file list)."""


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically exchange two paths (Linux ``renameat2``); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def real_folder(target: Path) -> Path:
    """``target``, or the folder it links to when it is a symbolic link: a set is swapped in beside
    the link's target, so that the link stays and points at the new set."""
    return Path(os.path.realpath(target)) if target.is_symlink() else target


def swap_in(new: Path, target: Path) -> None:
    """Make folder ``new`` the folder ``target`` (replacing a previous one) and delete the old one.
    A symbolic link at ``target`` is kept: the swap happens at the link's target (:func:`real_folder`),
    so ``new`` must sit in that folder's parent."""
    target = real_folder(target)
    if not os.path.lexists(target):
        os.rename(new, target)
    elif _exchange(new, target):
        shutil.rmtree(new, ignore_errors=True)  # ``new`` now holds the previous set
    else:
        old = Path(tempfile.mkdtemp(prefix=temp_prefix(target.name), suffix=".tmp", dir=target.parent))
        os.rmdir(old)
        os.rename(target, old)
        os.rename(new, target)
        shutil.rmtree(old, ignore_errors=True)
    _fsync_dir(target.parent)


def result_names() -> set[str]:
    """File names a results set may hold."""
    from analysis.core.schema import RESULT_FILES

    return {f"{n}.csv" for n in RESULT_FILES} | {PROVENANCE}


def is_litter(name: str) -> bool:
    """Operating-system or editor litter (``.DS_Store``, ``.ipynb_checkpoints``, ``.x.swp``, ``Thumbs.db``,
    ``desktop.ini``, ``x~``; any name starting with "."), which readers and writers of a set ignore.

    >>> [is_litter(n) for n in (".DS_Store", "Thumbs.db", "table1.csv~", "table1.csv", "_notes.txt")]
    [True, True, True, False, False]
    """
    return name.startswith(".") or name.endswith("~") or name in LITTER_NAMES


def _entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not is_litter(p.name))


def check_target(out_dir: Path, preset: str | None = None) -> None:
    """Refuse a results folder that is a file, holds files other than results (it is replaced whole;
    litter, :func:`is_litter`, aside) or, with ``preset``, holds the results of another preset."""
    if os.path.lexists(out_dir) and not out_dir.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "a file where the results folder should be", str(out_dir))
    if out_dir.is_dir():
        foreign = [n for n in _entries(out_dir) if n not in result_names()]
        if foreign:
            raise ResultsSetError(
                f"{out_dir}: holds {', '.join(foreign[:3])}{' ...' if len(foreign) > 3 else ''}, which are not result "
                f"files; the whole folder is replaced by the new results, so choose a new or empty --out folder"
            )
        other = _preset_of(out_dir / PROVENANCE)
        if preset is not None and other not in (None, preset):
            raise ResultsSetError(f"{out_dir / PROVENANCE}: the results of preset {other!r}, which --preset {preset} "
                                  f"would replace; choose another --out folder (default: <data root>/results/{preset})")


def _preset_of(path: Path) -> str | None:
    """The preset a ``provenance.json`` names (None when absent or unreadable: such a folder is no set)."""
    try:
        prov = read_json(path, max_bytes=MAX_PROVENANCE_BYTES, what="provenance.json of a results set")
    except (OSError, ValueError):
        return None
    return prov.get("preset") if isinstance(prov, dict) and isinstance(prov.get("preset"), str) else None


def write_set(files: dict[str, Callable[[Any], Any]], out_dir: str | os.PathLike, prov: dict | None) -> list[Path]:
    """Write ``files`` (name -> function writing to a binary file) and ``provenance.json`` (``prov``
    plus ``files``: name -> SHA-256) into a temporary folder, then swap it in as ``out_dir``. When
    ``out_dir`` is a symbolic link (results on another disk), the temporary folder is made beside the
    link's target and swapped in there: the link stays and points at the new set."""
    out_dir = Path(out_dir)
    check_target(out_dir)
    real = real_folder(out_dir)
    tmp: Path | None = None
    try:
        real.parent.mkdir(parents=True, exist_ok=True)
        for leftover in orphaned_temporaries(real.parent):
            if leftover.name.startswith(f".{real.name}."):
                shutil.rmtree(leftover, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(real.name), suffix=".tmp", dir=real.parent))
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o777 & ~mask)
        digests: dict[str, str] = {}
        for name, write in files.items():
            with open(tmp / name, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            digests[name] = sha256_file(tmp / name)
        if prov is not None:
            record = dict(prov, files=digests)
            with open(tmp / PROVENANCE, "wb") as f:
                f.write(json.dumps(record, indent=2, sort_keys=True, default=str).encode())
                f.flush()
                os.fsync(f.fileno())
        _fsync_dir(tmp)
        swap_in(tmp, real)
        tmp = None
    except OSError as e:
        raise _named(e, out_dir) from None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return [out_dir / n for n in files] + ([out_dir / PROVENANCE] if prov is not None else [])


def check_set(folder: str | os.PathLike, *, fix: str, preset: str | None = None) -> dict:
    """``provenance.json`` of a whole results set of ``preset``, after checking every file it lists.
    Every reader of a results set (report, audit, compare, snapshot) calls it.

    Parameters
    ----------
    folder : the results folder of one preset.
    fix : the command that makes a whole set (quoted in every error).
    preset : the preset asked for (None: any).

    Raises
    ------
    ResultsSetError
        When ``provenance.json`` is missing, unreadable, of another ``schema_version`` or preset, or
        lists no files, a listed file is missing, not a result file or differs from its checksum, a
        result file is not listed, or a result file of this version is absent. The message names
        the path and ends with ``fix``.
    """
    folder = Path(folder)
    path = folder / PROVENANCE
    try:
        prov = read_json(path, max_bytes=MAX_PROVENANCE_BYTES, what="provenance.json of a results set")
    except FileNotFoundError:
        raise ResultsSetError(f"{path}: missing, so {folder} is not a whole results set; run `{fix}`") from None
    except OSError as e:
        raise ResultsSetError(f"{path}: unreadable ({e.strerror or e}); run `{fix}`") from None
    except ValueError as e:  # JsonFileError names the file
        raise ResultsSetError(f"{e}; run `{fix}`") from None
    files = prov.get("files") if isinstance(prov, dict) else None
    if not isinstance(files, dict) or not files:
        raise ResultsSetError(f"{path}: lists no files (made by an older `dynloss analyze`); run `{fix}`")
    if prov.get("schema_version") != SCHEMA_VERSION:
        raise ResultsSetError(f"{path}: schema_version {prov.get('schema_version')!r}, expected {SCHEMA_VERSION} (made "
                              f"by another version of `dynloss analyze`); run `{fix}`")
    if preset is not None and prov.get("preset") != preset:
        raise ResultsSetError(f"{path}: the results of preset {prov.get('preset')!r}, not {preset!r} (a folder copied "
                              f"or written under another name); run `{fix}`")
    unknown = sorted(set(files) - result_names())
    if unknown:
        raise ResultsSetError(f"{path}: lists {unknown[0]!r}, which is not a result file (made by another version "
                              f"of `dynloss analyze`); run `{fix}`")
    for name, digest in sorted(files.items()):
        f = folder / name
        if not f.is_file():
            raise ResultsSetError(f"{f}: listed in provenance.json but missing (an incomplete set); run `{fix}`")
        if sha256_file(f) != digest:
            raise ResultsSetError(f"{f}: differs from the checksum in provenance.json (the folder mixes two "
                                  f"analyses); run `{fix}`")
    extra = [n for n in _entries(folder) if n.endswith(".csv") and n not in files]
    if extra:
        raise ResultsSetError(f"{folder / extra[0]}: not part of the set listed in provenance.json (a mixed "
                              f"folder); run `{fix}`")
    absent = sorted(result_names() - {PROVENANCE} - set(files))
    if absent:
        raise ResultsSetError(f"{folder}: this set lacks {', '.join(absent)} (made by another version of "
                              f"`dynloss analyze`); run `{fix}`")
    return prov
