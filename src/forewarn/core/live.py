"""What the live picture keeps of each live operation: a small entry, not the full record.

At a million stored volumes the full :class:`~forewarn.core.model.Operation` records (pydantic, with their
volumes and footprints) take gigabytes; the airspace needs of an operation only what a conflict record names
(id, version, party, activity class, notification time). :class:`LiveOperations` keeps those entries and
gives the full records on demand: those it holds (every record when it has no loader; with a loader, only the
records put one by one since the start, which the store may not have yet), else through the loader (the service
passes one that reads the store: core does no I/O), with a small cache of the last ones loaded.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import NamedTuple

from forewarn.core.model import Operation

OperationLoader = Callable[[str, int], "Operation | None"]
"""Loads version ``version`` of operation ``operation_id`` (the service reads the store), ``None`` if unknown."""

LOADED_CACHE_SIZE = 4096
"""Full records loaded through the loader that are kept (least recently used dropped first)."""


class LiveEntry(NamedTuple):
    """What the airspace keeps of a live operation (everything a conflict record names of it)."""

    id: str
    version: int
    party_id: str
    activity_class: str
    notified_at: datetime | None
    volume_count: int

    @classmethod
    def of(cls, op: Operation) -> LiveEntry:
        return cls(op.id, op.version, op.party_id, op.activity_class, op.notified_at, len(op.volumes))


class LiveOperations(Mapping[str, Operation]):
    """The live operations by id, as a read-only mapping to their full records (see the module docstring).

    ``len``, ``in`` and iteration over ids use the entries only; ``[id]`` and ``get`` may call the loader.
    """

    def __init__(self, loader: OperationLoader | None = None) -> None:
        self.loader = loader
        self.entries: dict[str, LiveEntry] = {}
        self._held: dict[str, Operation] = {}
        self._loaded: OrderedDict[str, Operation] = OrderedDict()

    def add(self, op: Operation, *, hold: bool) -> LiveEntry:
        """Record ``op`` as live; keep its full record when ``hold`` or when there is no loader."""
        entry = LiveEntry.of(op)
        self.entries[op.id] = entry
        self._loaded.pop(op.id, None)
        if hold or self.loader is None:
            self._held[op.id] = op
        else:
            self._held.pop(op.id, None)
        return entry

    def discard(self, operation_id: str) -> LiveEntry | None:
        """Forget ``operation_id``; return its entry (``None`` when it was not live)."""
        self._held.pop(operation_id, None)
        self._loaded.pop(operation_id, None)
        return self.entries.pop(operation_id, None)

    @property
    def held(self) -> int:
        """How many full records are held in memory (not counting the loaded cache)."""
        return len(self._held)

    def __getitem__(self, operation_id: str) -> Operation:
        entry = self.entries[operation_id]
        held = self._held.get(operation_id)
        if held is not None:
            return held
        hit = self._loaded.get(operation_id)
        if hit is not None:
            self._loaded.move_to_end(operation_id)
            return hit
        if self.loader is None:  # cannot happen: without a loader every record is held
            raise KeyError(operation_id)
        op = self.loader(operation_id, entry.version)
        if op is None or op.version != entry.version:
            raise LookupError(f"the store has no version {entry.version} of live operation {operation_id}")
        self._loaded[operation_id] = op
        if len(self._loaded) > LOADED_CACHE_SIZE:
            self._loaded.popitem(last=False)
        return op

    def __contains__(self, operation_id: object) -> bool:
        return operation_id in self.entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)
