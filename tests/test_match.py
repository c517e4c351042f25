"""ARN matching: many patterns tested at once (``match.arn_matcher``) decide as one by one."""
from __future__ import annotations

import random

from reasoner import match


def _rand(rng: random.Random, arn_like: bool) -> str:
    pieces = ["a", "b", "ab", "*", "?", ":", "/", "-", "1", match.LITERAL_STAR, match.literal("x*"), ""]
    fields = ["".join(rng.choice(pieces) for _ in range(rng.randrange(0, 4))) for _ in range(5)]
    if arn_like:
        return "arn:" + ":".join(fields)
    return "".join(rng.choice(pieces + ["arn", "arn:"]) for _ in range(rng.randrange(0, 8)))


def test_compiled_patterns_match_as_each_pattern_alone():
    rng = random.Random(9)
    hits = 0
    for _ in range(3000):
        pats = [_rand(rng, rng.random() < 0.8) for _ in range(rng.randrange(0, 5))]
        test = match.arn_matcher(pats)
        for _ in range(6):
            arn = _rand(rng, rng.random() < 0.9) if rng.random() < 0.5 else (rng.choice(pats).replace("*", "ab").replace("?", "b") if pats else "arn:x")
            want = any(match.arn_matches(p, arn) for p in pats)
            assert test(arn) == want, (pats, arn)
            hits += want
    assert hits > 1000  # the sample is not all misses
    assert match.arn_matcher(["arn:aws:s3:::b/*", "*"])("anything")
    assert not match.arn_matcher([])("arn:aws:s3:::b/k")
    # a wildcard of the account field stays in it; the resource part's crosses colons
    assert not match.arn_matcher(["arn:aws:iam::*:role/x"])("arn:aws:iam::1:2:role/x")
    assert not match.arn_matches("arn:aws:iam::*:role/x", "arn:aws:iam::1:2:role/x")
    assert match.arn_matcher(["arn:aws:iam::1:*"])("arn:aws:iam::1:role:x")
