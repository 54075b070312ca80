"""One writer per preset cache: an advisory lock on ``<cache>/<preset>/_train.lock``.

``dynloss train`` holds it from before it looks at the cache until its last run is written, so a
second ``train`` of the same preset either waits (``wait=True``) or stops at once naming the holder
(process id, host, command, start time, read from the lock file). The lock is ``fcntl.flock``: the
kernel releases it when the holder exits, however it exits (``kill -9`` included), so a stale lock
file never blocks anyone. On a platform without ``fcntl`` (Windows) the lock is not taken and
concurrent trains are the user's responsibility. Over NFS, ``flock`` works between processes of one
host; SLURM tasks write without it, while the submitting ``train`` holds it for them.

Standard library and :mod:`training.cache_format` (its JSON reader).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

from training.cache_format import read_json
from training.cache_state import LOCK_FILE


class CacheLockedError(RuntimeError):
    """Another process holds the preset's cache lock; the message names it."""


def _holder(path: Path) -> str:
    try:
        info = read_json(path, max_bytes=64 << 10, what="lock record")
    except (OSError, ValueError):  # empty (released), being written, or not a lock record
        info = {}
    if not isinstance(info, dict) or not info:
        return "another process"
    return (f"process {info.get('pid')} on {info.get('host')} ({' '.join(info.get('argv', []))[:120]}, "
            f"since {info.get('started')})")


@contextlib.contextmanager
def preset_lock(folder: str | os.PathLike, *, wait: bool = False, on_wait=None) -> Iterator[None]:
    """Hold the lock of one preset's cache folder for the ``with`` block.

    Parameters
    ----------
    folder : ``<cache>/<preset>`` (created if absent).
    wait : block until the holder is done (else raise at once).
    on_wait : called with a one-line message before waiting.

    Raises
    ------
    CacheLockedError
        When another process holds the lock and ``wait`` is False.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if fcntl is None:  # pragma: no cover
        yield
        return
    path = folder / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            who = _holder(path)
            if not wait:
                raise CacheLockedError(
                    f"{path}: the cache of this preset is in use by {who}; wait for it to finish, or pass --wait"
                ) from None
            if on_wait is not None:
                on_wait(f"waiting for {who} to release {path}")
            fcntl.flock(fd, fcntl.LOCK_EX)
        info = {"pid": os.getpid(), "host": socket.gethostname(), "argv": sys.argv,
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
