"""Ordered registries of records and live views of them (ours; no published counterpart).

A :class:`Registry` holds records by name, in declaration order; a record is declared by one
:meth:`Registry.register` call (or, for a test, :meth:`Registry.temporarily`). Views
(:class:`LiveTuple`, :class:`LiveMapping`) are computed from a registry whenever they are read,
so a consumer that keeps one as a module constant sees every record declared since.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(dict, Generic[T]):
    """Records by name (``record.name``), in declaration order.

    >>> from collections import namedtuple
    >>> R = namedtuple("R", "name")
    >>> reg = Registry("thing")
    >>> reg.register(R("a")).name
    'a'
    >>> reg.register(R("a"))
    Traceback (most recent call last):
    ...
    ValueError: thing 'a' is declared twice (analysis.core.registry: one record per name)
    """

    def __init__(self, what: str, check: Callable[[T, Registry], None] | None = None):
        super().__init__()
        self.what, self._check = what, check

    def register(self, record: T) -> T:
        """Declare ``record`` (after the registry's own check); a name already declared is refused."""
        name = getattr(record, "name", None)
        if not isinstance(name, str) or not name:
            raise ValueError(f"Expected a {self.what} record with a non-empty str `name`, got {record!r}")
        if name in self:
            raise ValueError(f"{self.what} {name!r} is declared twice (analysis.core.registry: one record per name)")
        if self._check is not None:
            self._check(record, self)
        self[name] = record
        return record

    @contextmanager
    def temporarily(self, record: T) -> Iterator[T]:
        """``record`` declared inside the ``with`` block only (tests, trials)."""
        self.register(record)
        try:
            yield record
        finally:
            self.pop(record.name, None)


class LiveTuple(Sequence):
    """A tuple computed by ``build()`` each time it is read (compares equal to that tuple).

    >>> names = ["a"]
    >>> view = LiveTuple(lambda: tuple(names))
    >>> names.append("b")
    >>> view == ("a", "b"), "b" in view, view.index("b")
    (True, True, 1)
    """

    def __init__(self, build: Callable[[], tuple]):
        self._build = build

    def __getitem__(self, i):
        return self._build()[i]

    def __len__(self) -> int:
        return len(self._build())

    def __iter__(self):
        return iter(self._build())

    def __eq__(self, other) -> bool:
        return tuple(self) == (tuple(other) if isinstance(other, (tuple, list, LiveTuple)) else other)

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return repr(self._build())


class LiveMapping(Mapping):
    """A dict computed by ``build()`` each time it is read."""

    def __init__(self, build: Callable[[], dict]):
        self._build = build

    def __getitem__(self, key):
        return self._build()[key]

    def __iter__(self):
        return iter(self._build())

    def __len__(self) -> int:
        return len(self._build())

    def __repr__(self) -> str:
        return repr(self._build())
