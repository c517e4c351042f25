"""The bounded tables of values made once per key (reasoner.memo)."""
from __future__ import annotations

from reasoner.memo import once_per_key


def test_made_once_per_key_and_emptied_when_full():
    made = []

    def make(key):
        made.append(key)
        return (key, len(made))

    lookup = once_per_key(make, 3)
    first = lookup("a")
    assert lookup("a") is first and made == ["a"]
    assert lookup(False) == (False, 2)  # falsy keys and values are kept like any other
    lookup("b")
    assert len(lookup.table) == 3
    lookup("c")  # the table was full: emptied, then c made
    assert set(lookup.table) == {"c"} and made == ["a", False, "b", "c"]
    assert lookup("a") is not first and made[-1] == "a"
