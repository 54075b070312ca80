"""One writer per preset cache: an advisory lock on ``<cache>/<preset>/_train.lock``.

``dynloss train`` holds it from before it looks at the cache until its last run is written, so a
second ``train`` of the same preset either waits (``wait=True``) or stops at once naming the holder
(process id, host, command, start time, read from the lock file). The lock is ``fcntl.flock``: the
kernel releases it when the holder exits, however it exits (``kill -9`` included), so a stale lock
file never blocks anyone. On a platform without ``fcntl`` (Windows) the lock is not taken and
concurrent trains are the user's responsibility. Over NFS, ``flock`` works between processes of one
host; SLURM tasks write without it, while the submitting ``train`` holds it for them.

The lock also records the SLURM array job its holder submitted (:meth:`HeldLock.record`, with
the host). A ``train`` that ends before its array does (a failure, Ctrl-C, SIGTERM, ``kill -9``)
leaves that record behind: the next ``train`` asks ``squeue`` (:func:`training.slurm_jobs.array_alive`)
and refuses while any task of that array is queued or running (or waits for it with ``wait=True``);
an array that is gone leaves a stale record, which is taken over.

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


def _read_record(path: Path) -> dict:
    try:
        info = read_json(path, max_bytes=64 << 10, what="lock record")
    except (OSError, ValueError):  # empty (released), being written, or not a lock record
        info = {}
    return info if isinstance(info, dict) else {}


def _holder(info: dict) -> str:
    if not info:
        return "another process"
    array = f", SLURM array job {info['slurm_array']}" if info.get("slurm_array") else ""
    return (f"process {info.get('pid')} on {info.get('host')} ({' '.join(info.get('argv', []))[:120]}, "
            f"since {info.get('started')}{array})")


class HeldLock:
    """The lock of one preset's cache, held: :meth:`record` adds what its holder submitted."""

    def __init__(self, fd: int | None, info: dict):
        self._fd = fd
        self.info = info

    def record(self, **fields) -> None:
        """Update the lock record (e.g. ``slurm_array="1234"`` once submitted, ``None`` once done)."""
        self.info.update(fields)
        self.info = {k: v for k, v in self.info.items() if v is not None}
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, json.dumps(self.info).encode(), 0)


def _wait_for_array(path: Path, previous: dict, wait: bool, on_wait) -> None:
    """Refuse (or with ``wait`` wait) while the SLURM array a previous holder recorded runs."""
    from training.slurm_jobs import array_alive

    array = str(previous["slurm_array"])
    who = (f"SLURM array job {array} (submitted by process {previous.get('pid')} on {previous.get('host')}, "
           f"since {previous.get('started')})")
    announced = False
    while (alive := array_alive(array)) is not False:
        if alive is None:
            raise CacheLockedError(f"{path}: the cache of this preset was left to {who}, and squeue cannot tell "
                                   f"here whether it still runs; check on {previous.get('host')}, and delete "
                                   f"{path} once that array has ended")
        if not wait:
            raise CacheLockedError(f"{path}: the cache of this preset is in use by {who}, still in the queue "
                                   f"(squeue); wait for it to end (or scancel {array}), or pass --wait")
        if on_wait is not None and not announced:
            on_wait(f"waiting for {who} to leave the queue")
            announced = True
        time.sleep(5.0)


@contextlib.contextmanager
def preset_lock(folder: str | os.PathLike, *, wait: bool = False, on_wait=None) -> Iterator[HeldLock]:
    """Hold the lock of one preset's cache folder for the ``with`` block.

    Parameters
    ----------
    folder : ``<cache>/<preset>`` (created if absent).
    wait : block until the holder is done (else raise at once); a recorded SLURM array still in
        the queue is waited for too.
    on_wait : called with a one-line message before waiting.

    Returns
    -------
    HeldLock
        Its :meth:`HeldLock.record` keeps the SLURM array submitted under the lock: a record left
        with ``slurm_array`` set outlives the lock, for the next holder to check.

    Raises
    ------
    CacheLockedError
        When another process holds the lock, or an array recorded by a previous holder is still
        queued or running, and ``wait`` is False.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    info = {"pid": os.getpid(), "host": socket.gethostname(), "argv": sys.argv,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    if fcntl is None:  # pragma: no cover
        yield HeldLock(None, info)
        return
    path = folder / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            who = _holder(_read_record(path))
            if not wait:
                raise CacheLockedError(
                    f"{path}: the cache of this preset is in use by {who}; wait for it to finish, or pass --wait"
                ) from None
            if on_wait is not None:
                on_wait(f"waiting for {who} to release {path}")
            fcntl.flock(fd, fcntl.LOCK_EX)
        previous = _read_record(path)
        if previous.get("slurm_array"):
            _wait_for_array(path, previous, wait, on_wait)
        held = HeldLock(fd, info)
        held.record()
        try:
            yield held
        finally:
            if not held.info.get("slurm_array"):  # else the record stays for the next holder to check
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
