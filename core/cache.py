"""The one bounded cache for models (and other objects worth keeping): least recently used out first.

Thread-safe; `get_or_build` builds a missing entry once even when several requests ask for it at the same
time (each key has its own build lock, so a slow download blocks only its own key).
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, Generic, Hashable, Iterator, TypeVar

V = TypeVar("V")
_MISSING = object()


class LRUCache(Generic[V]):
    """A mapping that keeps at most `maxsize` entries; reading an entry makes it the most recently used.

    put/get_or_build take an optional maxsize of their own: a bound read from a setting at call time."""

    def __init__(self, maxsize: int = 128):
        self.maxsize = max(1, int(maxsize))
        self._items: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()                    # guards _items and _building (held for microseconds)
        self._building: dict[Hashable, threading.Lock] = {}

    def get(self, key: Hashable, default=None):
        with self._lock:
            value = self._items.get(key, _MISSING)
            if value is _MISSING:
                return default
            self._items.move_to_end(key)
            return value

    def put(self, key: Hashable, value: V, maxsize: int | None = None) -> None:
        bound = max(1, int(maxsize if maxsize is not None else self.maxsize))
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > bound:
                self._items.popitem(last=False)

    def pop(self, key: Hashable, default=None):
        with self._lock:
            return self._items.pop(key, default)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def __iter__(self) -> Iterator[Hashable]:
        """The keys, least recently used first (a snapshot)."""
        with self._lock:
            return iter(list(self._items))

    def get_or_build(self, key: Hashable, build: Callable[[], V], maxsize: int | None = None) -> V:
        """The cached value, or build() stored under key; two first requests for one key build it once."""
        value = self.get(key, _MISSING)
        if value is not _MISSING:
            return value
        with self._lock:
            lock = self._building.setdefault(key, threading.Lock())
        with lock:
            with self._lock:
                value = self._items.get(key, _MISSING)
            if value is _MISSING:
                value = build()
                self.put(key, value, maxsize)
        return value
