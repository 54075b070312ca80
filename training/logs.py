"""The ``dynloss`` logger hierarchy: progress, status and diagnostics of every command (ours).

Library modules log to a child of ``dynloss`` (:func:`get_logger`: ``dynloss.train``,
``dynloss.analyze``, ``dynloss.report`` …) and configure nothing; the root command
(:mod:`analysis.cli`, option ``--log-level``) calls :func:`configure` once, which gives the
``dynloss`` logger one handler writing the bare message to the *current* ``sys.stderr``. A
command's actual output (tables, JSON, listings) is printed to stdout, not logged; progress bars
(tqdm) stay as they are.

Without :func:`configure` (the package used from Python), warnings and errors still reach stderr
through :data:`logging.lastResort`; info messages appear once the caller configures logging.
"""

from __future__ import annotations

import logging
import sys
import time

ROOT = "dynloss"

#: the values ``--log-level`` accepts
LEVELS = ("debug", "info", "warning", "error")


def get_logger(name: str = "") -> logging.Logger:
    """``dynloss`` (no name) or its child ``dynloss.<name>``.

    >>> get_logger("analyze").name
    'dynloss.analyze'
    """
    return logging.getLogger(f"{ROOT}.{name}" if name else ROOT)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record is emitted (test capture, redirection)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ assigns it
        pass


def configure(level: str = "info") -> logging.Logger:
    """Set the ``dynloss`` logger's level and give it its one stderr handler (added once: calling
    again only changes the level). Messages are written bare (``%(message)s``), one per line."""
    if level not in LEVELS:
        raise ValueError(f"--log-level: expected one of {', '.join(LEVELS)}, got {level!r}")
    logger = get_logger()
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(level.upper())
    return logger


class Progress:
    """Progress of one long command, at info level: each call reports a step just finished,
    ``<prefix>: <what> in N.N s (M.M s in all)``. Steps are reported when done, so a command that
    fails in its first step writes only its one error line.

    >>> Progress(get_logger("doc"), "analyze x").elapsed() < 1.0
    True
    """

    def __init__(self, logger: logging.Logger, prefix: str) -> None:
        self.logger, self.prefix = logger, prefix
        self.t0 = self.last = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def __call__(self, what: str) -> None:
        now = time.perf_counter()
        self.logger.info(f"{self.prefix}: {what} in {now - self.last:.1f} s ({now - self.t0:.1f} s in all)")
        self.last = now
