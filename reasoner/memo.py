"""Tables of values made once per key, for the hot paths of a batch (symbols, principals,
resources).  Each table has a bound: when full it is emptied and fills again, so a long-lived
process asking about ever new names does not grow without end."""
from __future__ import annotations

from typing import Callable, Hashable, TypeVar

V = TypeVar("V")


def once_per_key(make: Callable[[Hashable], V], limit: int) -> Callable[[Hashable], V]:
    """``lookup(key)``: ``make(key)``, made the first time the key is asked and kept (up to
    ``limit`` keys).  ``make`` must not return None.  ``lookup.table`` is the table itself."""
    table: dict = {}
    get = table.get

    def lookup(key):
        got = get(key)
        if got is None:
            if len(table) >= limit:
                table.clear()
            got = table[key] = make(key)
        return got

    lookup.table = table  # type: ignore[attr-defined]
    return lookup
