"""The cache contract between training (writer) and analysis (reader).

One directory per run::

    <root>/<preset>/<dataset>/<arm>/member-<k>/
        arrays.npz   train_logits (N_train, C) float32, test_logits (N_test, C) float32,
                     train_labels (N_train,) int64, test_labels (N_test,) int64,
                     train_ids (N_train,) int64, test_ids (N_test,) int64  (row ids in the
                     official split, so readers align by id, never by order),
                     fit_index (n_fit,) int64, val_index (n_val,) int64  (rows of the official
                     training set used to fit / internally validate this member)
        run.json     the run's spec, seed, versions, timings, metrics, ``schema_version`` and
                     ``arrays_sha256`` (SHA-256 of arrays.npz). Written last, atomically.

A run directory without ``run.json`` is incomplete. This module imports only numpy and the
standard library, so both sides can use it.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import socket
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import numpy as np

SCHEMA_VERSION = 1
ARRAYS_FILE = "arrays.npz"
RUN_FILE = "run.json"

#: name -> (ndim, dtype kind) of every array a run must hold.
ARRAY_SPEC: dict[str, tuple[int, str]] = {
    "train_logits": (2, "float32"),
    "test_logits": (2, "float32"),
    "train_labels": (1, "int64"),
    "test_labels": (1, "int64"),
    "train_ids": (1, "int64"),
    "test_ids": (1, "int64"),
    "fit_index": (1, "int64"),
    "val_index": (1, "int64"),
}


class CacheError(ValueError):
    """A cache file is missing, corrupt, truncated or inconsistent. The message names the file."""


#: errno values meaning a file is there but cannot be read here (permissions, a failing disk)
UNREADABLE_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EIO})
#: the largest run.json read (one is ~10 KB): a bigger one is corrupt, and never parsed
MAX_RUN_JSON_BYTES = 4 << 20


class UnreadableError(OSError):
    """A cache file that is there but cannot be read (permissions, an I/O error): a failure of the
    environment (exit status 3), never a corrupt run to overwrite. The message names the file."""


def unreadable(e: OSError, path: str | os.PathLike) -> OSError:
    """``e`` as an :class:`UnreadableError` when it means ``path`` cannot be read here, else ``e``
    naming ``path``."""
    if e.errno in UNREADABLE_ERRNOS:
        return UnreadableError(f"{path}: cannot be read ({e.strerror or e}); it is left as it is: restore read "
                               f"access (or move it away), then rerun")
    return _named(e, Path(path))


@dataclass(frozen=True)
class RunRecord:
    """One validated run: its directory, metadata (``run.json``) and arrays."""

    path: Path
    meta: dict[str, Any]
    arrays: dict[str, np.ndarray]


def run_dir(root: str | os.PathLike, preset: str, dataset: str, arm: str, member: int) -> Path:
    """Directory of one run inside the cache root.

    >>> run_dir("data/cache", "digits-tiny", "digits", "ce", 3).as_posix()
    'data/cache/digits-tiny/digits/ce/member-003'
    """
    if member < 0:
        raise ValueError(f"Expected `member` >= 0, got {member}")
    return Path(root) / preset / dataset / arm / f"member-{member:03d}"


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def temp_prefix(name: str) -> str:
    """Prefix of a temporary file or folder beside ``name``: ``.<name>.<pid>@<host>.`` (the writer's
    process and host, so that a later writer can tell a dead process's leftovers from a live write).

    >>> temp_prefix("arrays.npz").startswith(".arrays.npz.")
    True
    """
    return f".{name}.{os.getpid()}@{socket.gethostname()}."


_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)@(?P<host>.+)\.[A-Za-z0-9_]+\.tmp$")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def orphaned_temporaries(folder: str | os.PathLike, *, max_age_s: float = 86_400.0) -> list[Path]:
    """Temporary files/folders (``.*.tmp``) in ``folder`` left by writers that are gone: written by a
    process of this host that no longer exists, by another host and untouched for ``max_age_s``, or
    named without a writer (older versions). A live writer's temporary file is never listed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    host, now, out = socket.gethostname(), time.time(), []
    for p in folder.glob(".*.tmp"):
        m = _TEMP.match(p.name)
        try:
            age = now - p.lstat().st_mtime
        except FileNotFoundError:
            continue
        if m is None:
            out.append(p)
        elif m["host"] == host:
            if not _pid_alive(int(m["pid"])):
                out.append(p)
        elif age > max_age_s:
            out.append(p)
    return sorted(out)


def _named(e: OSError, path: Path) -> OSError:
    """``e`` with ``path`` as its file name when it has none (a failed write names no file)."""
    if e.filename is None and e.errno is not None:
        return type(e)(e.errno, e.strerror or os.strerror(e.errno), str(path))
    return e


def _write_target(path: Path) -> Path:
    """Where a write to ``path`` lands, by the rule of :func:`atomic_write`."""
    try:
        mode = os.stat(path).st_mode  # follows a symbolic link
    except FileNotFoundError:
        if not path.is_symlink():
            return path
        target = Path(os.path.realpath(path))
        if not target.parent.is_dir():
            raise FileNotFoundError(errno.ENOENT, f"a symbolic link to {target}, whose folder does not exist",
                                    str(path)) from None
        return target
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, "a folder, not a file: give a file name", str(path))
    if not stat.S_ISREG(mode):
        raise FileExistsError(errno.EEXIST, "not a regular file (a device, FIFO or socket), which is never "
                                            "replaced: give the name of a regular file", str(path))
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def atomic_write(path: str | os.PathLike, data: bytes | str | Callable[[Any], Any]) -> None:
    """The project's one atomic writer: ``data`` (bytes, text, or a function writing to a binary
    file object) goes to a temporary file beside the file written, is fsynced, gets the permissions a
    plain ``open()`` would give (mkstemp's are 0600), and is renamed over it. Readers see the old
    file or the new one, never half of one; on any error the temporary file is removed, and an
    ``OSError`` (full disk, read-only folder, ...) names ``path``.

    What stands at ``path`` decides where the write lands; a non-regular file is never replaced:

    - nothing: ``path`` is created (its missing parent folders too);
    - a regular file: it is replaced;
    - a symbolic link: it is followed; the new file replaces the link's target (in the target's
      folder) and the link stays. A dangling link: its target is written when the target's folder
      exists, else ``FileNotFoundError``;
    - a folder: ``IsADirectoryError`` (EISDIR) naming ``path``;
    - a device, FIFO or socket (``/dev/full``, ``/dev/null``, a named pipe): ``FileExistsError``
      (EEXIST, "not a regular file") naming ``path``; the node is left as it is.
    """
    path = Path(path)
    if isinstance(data, str):
        data = data.encode()
    write = (lambda f: f.write(data)) if isinstance(data, bytes) else data
    tmp = None
    try:
        target = _write_target(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(target.name), suffix=".tmp", dir=target.parent)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except OSError as e:
        _discard(tmp)
        raise _named(e, path) from None
    except BaseException:
        _discard(tmp)
        raise


def _discard(tmp: str | None) -> None:
    if tmp is not None:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


#: the largest JSON file any reader parses (a run.json is ~10 KB, a snapshot ~75 KB, an audit ~1 MB)
MAX_JSON_BYTES = 64 << 20


def read_json(path: str | os.PathLike, *, max_bytes: int = MAX_JSON_BYTES, what: str = "JSON file",
              allow_nan: bool = True) -> Any:
    """Parse the JSON file ``path``, refusing one larger than ``max_bytes`` before reading it and one
    nested too deeply to parse (``RecursionError``), so that no input file can exhaust memory or the
    stack. Bad content raises ``JsonFileError`` (a ``ValueError``) naming ``path`` and ``what`` it
    should have been; ``OSError`` (missing, permissions) propagates unchanged. ``allow_nan=False``
    refuses the ``NaN``/``Infinity`` tokens that Python's ``json`` writes but strict JSON lacks.
    """
    path = Path(path)
    size = os.stat(path).st_size
    if size > max_bytes:
        raise JsonFileError(f"{path}: {size:,} bytes, larger than any {what} (limit {max_bytes:,}); not read")

    def constant(name: str) -> Any:
        if allow_nan:
            return float(name)
        raise ValueError(f"{name} is not a number in strict JSON")

    try:
        with open(path, "rb") as f:
            return json.loads(f.read(max_bytes + 1), parse_constant=constant)
    except RecursionError:
        raise JsonFileError(f"{path}: nested too deeply to be a {what}; not read") from None
    except (ValueError, UnicodeDecodeError) as e:  # json.JSONDecodeError is a ValueError
        raise JsonFileError(f"{path}: not valid JSON ({e})") from None


class JsonFileError(ValueError):
    """A JSON input file is too large, too deep or not valid JSON. The message names the file."""


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write JSON to ``path`` through a temporary file and a rename (never half-written)."""
    atomic_write(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default))


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"Object of type {type(o).__name__} is not JSON serialisable")


def _check_arrays(arrays: Mapping[str, np.ndarray], where: str) -> None:
    missing = sorted(set(ARRAY_SPEC) - set(arrays))
    if missing:
        raise CacheError(f"{where}: missing arrays {missing}; expected {sorted(ARRAY_SPEC)}")
    for name, (ndim, dtype) in ARRAY_SPEC.items():
        a = arrays[name]
        if a.ndim != ndim or a.dtype != np.dtype(dtype):
            raise CacheError(
                f"{where}: array `{name}` must be {ndim}-D {dtype}, got shape {a.shape} dtype {a.dtype}"
            )
    n_train, c = arrays["train_logits"].shape
    n_test, c_test = arrays["test_logits"].shape
    if c != c_test or c < 2:
        raise CacheError(f"{where}: train/test logits disagree on class count ({c} vs {c_test}) or < 2")
    for split, n in (("train", n_train), ("test", n_test)):
        for kind in ("labels", "ids"):
            if arrays[f"{split}_{kind}"].shape[0] != n:
                raise CacheError(
                    f"{where}: `{split}_{kind}` has {arrays[f'{split}_{kind}'].shape[0]} rows, "
                    f"`{split}_logits` has {n}"
                )
        labels = arrays[f"{split}_labels"]
        if labels.size and (labels.min() < 0 or labels.max() >= c):
            raise CacheError(f"{where}: `{split}_labels` outside [0, {c}) (min {labels.min()}, max {labels.max()})")
    for name in ("fit_index", "val_index"):
        idx = arrays[name]
        if idx.size and (idx.min() < 0 or idx.max() >= n_train):
            raise CacheError(f"{where}: `{name}` holds rows outside [0, {n_train})")


def write_run(path: str | os.PathLike, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> Path:
    """Write one run atomically: ``arrays.npz`` first, then ``run.json`` with its checksum.

    Parameters
    ----------
    path : directory of the run (see :func:`run_dir`).
    arrays : the arrays of :data:`ARRAY_SPEC`; logits may be non-finite (a diverged member is
        recorded, and readers apply their policy).
    meta : JSON-serialisable run metadata (spec, seed, versions, timings, metrics).

    Returns
    -------
    Path of ``run.json``.
    """
    path = Path(path)
    arrays = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    _check_arrays(arrays, str(path / ARRAYS_FILE))
    (path / RUN_FILE).unlink(missing_ok=True)  # mark incomplete while rewriting
    atomic_write(path / ARRAYS_FILE, lambda f: np.savez(f, **arrays))
    record = dict(meta)
    record["schema_version"] = SCHEMA_VERSION
    record["arrays_sha256"] = sha256_file(path / ARRAYS_FILE)
    atomic_write_json(path / RUN_FILE, record)
    return path / RUN_FILE


def is_complete(path: str | os.PathLike) -> bool:
    """True when the run directory holds ``run.json`` (written last) and ``arrays.npz``."""
    path = Path(path)
    return (path / RUN_FILE).is_file() and (path / ARRAYS_FILE).is_file()


def read_meta(path: str | os.PathLike) -> dict[str, Any]:
    """Parse and check ``run.json`` of a run directory; errors name the file.

    Raises
    ------
    CacheError
        When it is missing, larger than :data:`MAX_RUN_JSON_BYTES`, nested too deeply, not valid
        JSON or not a run record (a corrupt run).
    UnreadableError
        When it is there but cannot be read (permissions, I/O error).
    """
    f = Path(path) / RUN_FILE
    try:
        meta = read_json(f, max_bytes=MAX_RUN_JSON_BYTES, what="run.json")
    except FileNotFoundError:
        raise CacheError(f"{f}: missing; the run is incomplete (rerun training to finish it)") from None
    except JsonFileError as e:
        raise CacheError(str(e)) from None
    except OSError as e:
        raise unreadable(e, f) from None
    if not isinstance(meta, dict):
        raise CacheError(f"{f}: expected a JSON object, got {type(meta).__name__}")
    if meta.get("schema_version") != SCHEMA_VERSION:
        raise CacheError(f"{f}: schema_version {meta.get('schema_version')!r}, expected {SCHEMA_VERSION}")
    if not isinstance(meta.get("arrays_sha256"), str):
        raise CacheError(f"{f}: missing `arrays_sha256`")
    return meta


def read_run(path: str | os.PathLike, *, verify_checksum: bool = True) -> RunRecord:
    """Load and validate one complete run (no pickles: ``allow_pickle=False``).

    Raises
    ------
    CacheError
        If a file is missing, corrupt, truncated, fails its checksum or breaks the contract.
    UnreadableError
        If a file is there but cannot be read (permissions, I/O error).
    """
    path = Path(path)
    meta = read_meta(path)
    f = path / ARRAYS_FILE
    if not f.is_file():
        raise CacheError(f"{f}: missing although {path / RUN_FILE} exists")
    if verify_checksum:
        try:
            digest = sha256_file(f)
        except OSError as e:
            raise unreadable(e, f) from None
        if digest != meta["arrays_sha256"]:
            raise CacheError(
                f"{f}: SHA-256 {digest[:12]}… does not match {meta['arrays_sha256'][:12]}… in run.json "
                "(corrupted or replaced file; rerun with --force)"
            )
    try:
        with np.load(f, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except OSError as e:
        if e.errno in UNREADABLE_ERRNOS:
            raise unreadable(e, f) from None
        raise CacheError(f"{f}: unreadable npz ({type(e).__name__}: {e})") from None
    except Exception as e:  # zipfile.BadZipFile, ValueError (pickled object arrays), EOFError
        raise CacheError(f"{f}: unreadable npz ({type(e).__name__}: {e})") from None
    _check_arrays(arrays, str(f))
    return RunRecord(path=path, meta=meta, arrays=arrays)


def iter_run_dirs(root: str | os.PathLike, preset: str) -> Iterator[tuple[str, str, int, Path]]:
    """Yield ``(dataset, arm, member, path)`` for every member directory of a preset, sorted.

    Directories whose names start with ``_`` or ``.`` (e.g. ``_slurm_logs``) are not datasets or arms.
    """
    base = Path(root) / preset
    if not base.is_dir():
        return

    def subdirs(p: Path) -> list[Path]:
        return sorted(q for q in p.iterdir() if q.is_dir() and not q.name.startswith(("_", ".")))

    for ds in subdirs(base):
        for arm in subdirs(ds):
            for m in sorted(arm.glob("member-*")):
                try:
                    k = int(m.name.split("-", 1)[1])
                except ValueError:
                    continue
                yield ds.name, arm.name, k, m


def manifest(root: str | os.PathLike, preset: str) -> list[dict[str, Any]]:
    """Rebuild the table of runs from the run directories: one row per member directory."""
    rows = []
    for ds, arm, k, p in iter_run_dirs(root, preset):
        row: dict[str, Any] = {"dataset": ds, "arm": arm, "member": k, "path": str(p), "complete": is_complete(p)}
        if row["complete"]:
            try:
                meta = read_meta(p)
                row["arrays_sha256"] = meta["arrays_sha256"]
                row["seed"] = meta.get("seed")
            except CacheError as e:
                row["complete"] = False
                row["error"] = str(e)
        rows.append(row)
    return rows
