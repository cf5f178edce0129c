"""Copy-on-write containers for the state's big tables.

Every applied command works on a fork of the published state (state.ClusterState.fork), and
a table it changes was copied whole: at 10,000 VMs a create copied the VMs, their uuids and
the recent request ids (30,000 entries), and freed the old copies, on every member (about
two thirds of a replica's work per create). These share all but the part that changes.
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import ItemsView, Iterable, Iterator, Mapping, MutableMapping, ValuesView
from typing import TypeVar

V = TypeVar("V")

SHARDS = 64


def shard_of(key: str) -> int:
    """A stable hash: every replica must iterate the same keys in the same order (Python's
    own str hash differs from process to process)."""
    return zlib.crc32(key.encode()) & (SHARDS - 1)


class ShardedDict(MutableMapping[str, V]):
    """A dict kept in SHARDS parts: a copy shares every part, and either of the two copies
    a part (about len/SHARDS entries) on its first write to it. Iteration goes part by part,
    in insertion order within a part: the same on every replica."""

    __slots__ = ("_len", "_owned", "_parts")

    def __init__(self, items: Mapping[str, V] | Iterable[tuple[str, V]] = ()) -> None:
        self._parts: list[dict[str, V]] = [{} for _ in range(SHARDS)]
        self._owned = (1 << SHARDS) - 1  # bit i: part i is this object's alone
        self._len = 0
        self.update(items)

    def copy(self) -> ShardedDict[V]:
        twin: ShardedDict[V] = ShardedDict.__new__(ShardedDict)
        twin._parts, twin._len, twin._owned = list(self._parts), self._len, 0
        self._owned = 0  # the parts are shared from now on: neither changes them in place
        return twin

    def _writable(self, key: str) -> dict[str, V]:
        i = shard_of(key)
        if not self._owned >> i & 1:
            self._parts[i] = dict(self._parts[i])
            self._owned |= 1 << i
        return self._parts[i]

    def __getitem__(self, key: str) -> V:
        return self._parts[shard_of(key)][key]

    def get(self, key: str, default: V | None = None) -> V | None:  # type: ignore[override]
        return self._parts[shard_of(key)].get(key, default)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key in self._parts[shard_of(key)]

    def __setitem__(self, key: str, value: V) -> None:
        part = self._writable(key)
        self._len += key not in part
        part[key] = value

    def __delitem__(self, key: str) -> None:
        if key not in self:
            raise KeyError(key)
        del self._writable(key)[key]
        self._len -= 1

    def __iter__(self) -> Iterator[str]:
        return itertools.chain.from_iterable(self._parts)

    def __len__(self) -> int:
        return self._len

    def values(self) -> ValuesView[V]:
        return _Values(self)

    def items(self) -> ItemsView[str, V]:
        return _Items(self)

    def __repr__(self) -> str:
        return f"ShardedDict({dict(self.items())!r})"


class _Values(ValuesView[V]):
    _mapping: ShardedDict[V]

    def __iter__(self) -> Iterator[V]:
        return itertools.chain.from_iterable(p.values() for p in self._mapping._parts)


class _Items(ItemsView[str, V]):
    _mapping: ShardedDict[V]

    def __iter__(self) -> Iterator[tuple[str, V]]:
        return itertools.chain.from_iterable(p.items() for p in self._mapping._parts)


class Generations(Mapping[str, V]):
    """The newest entries, at most `limit`, forgotten oldest first a generation (`limit` /
    GENERATIONS entries) at a time; a copy copies only the newest generation. An entry is
    added once (the state's recent request ids: a retry is answered, not added again)."""

    GENERATIONS = 10

    __slots__ = ("_new", "_old", "_owned", "_size")

    def __init__(self, limit: int, items: Iterable[tuple[str, V]] = ()) -> None:
        self._size = max(1, limit // self.GENERATIONS)
        self._old: tuple[dict[str, V], ...] = ()
        self._new: dict[str, V] = {}
        self._owned = True
        for key, value in items:
            self.add(key, value)

    def copy(self) -> Generations[V]:
        twin: Generations[V] = Generations.__new__(Generations)
        twin._size, twin._old, twin._new, twin._owned = self._size, self._old, self._new, False
        self._owned = False
        return twin

    def add(self, key: str, value: V) -> None:
        if not self._owned:
            self._new, self._owned = dict(self._new), True
        self._new[key] = value
        if len(self._new) >= self._size:
            self._old = (*self._old, self._new)[-(self.GENERATIONS - 1):]
            self._new = {}

    def __getitem__(self, key: str) -> V:
        for generation in (self._new, *reversed(self._old)):
            if key in generation:
                return generation[key]
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return itertools.chain(*self._old, self._new)

    def __len__(self) -> int:
        return len(self._new) + sum(len(g) for g in self._old)
