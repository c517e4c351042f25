"""Exact places from JSON paths (reasoner.locate): what a reported position rests on."""
from __future__ import annotations

import json

from reasoner.locate import Source


def place(text: str, marker: str, nth: int = 0) -> tuple[int, int]:
    i = -1
    for _ in range(nth + 1):
        i = text.index(marker, i + 1)
    return text[:i].count("\n") + 1, i - (text.rfind("\n", 0, i) + 1) + 1


TEXT = (
    '{\n  "Sid": "a \\" tricky ] } , : string",\n'
    '  "k\\u00e9y": [1, {"x": [true, null]}, "caf\u00e9 \U0001f600", -2.5e3],\n'
    '  "d": "first", "d": "second",\n'
    '  "\u4e2d": {"Action": "s3:*"}\n}'
)


def test_values_keys_and_list_items():
    src = Source("f", TEXT)
    assert src.position(("Sid",)) == place(TEXT, '"a \\"')
    assert src.position(("Sid",), key=True) == place(TEXT, '"Sid"')
    assert src.position(("k\u00e9y",), key=True) == place(TEXT, '"k\\u00e9y"')
    assert src.position(("k\u00e9y", 0)) == place(TEXT, "1,")
    assert src.position(("k\u00e9y", 1, "x", 1)) == place(TEXT, "null")
    assert src.position(("k\u00e9y", 3)) == place(TEXT, "-2.5e3")
    assert src.position(("\u4e2d", "Action")) == place(TEXT, '"s3:*"')
    assert place(TEXT, '"s3:*"') == (5, 19)  # columns count characters, not bytes


def test_repeated_keys_last_by_default_each_on_request():
    src = Source("f", TEXT)
    assert src.position(("d",)) == place(TEXT, '"second"')  # json.loads keeps the last
    assert src.position(("d",), key=True, occurrence=0) == place(TEXT, '"d"', 0)
    assert src.position(("d",), key=True, occurrence=1) == place(TEXT, '"d"', 1)


def test_missing_paths_fall_back_to_the_nearest_enclosing_value():
    src = Source("f", TEXT)
    assert src.position(("k\u00e9y", 9)) == place(TEXT, "[1,")
    assert src.position(("nope", "x")) == (1, 1)
    assert Source("f", None).position(("Sid",)) == (0, 0)


def test_prefix_and_embedded_documents():
    inner = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow"}]}
    dump = json.dumps({"Policies": [{"Document": inner}, {"Document": json.dumps(inner)}]}, indent=2)
    src = Source("dump.json", dump)
    nested = src.child(("Policies", 0, "Document"))
    assert nested.position(("Statement", 0, "Effect")) == place(dump, '"Allow"')
    embedded = src.child(("Policies", 1, "Document"), embedded=True)
    assert embedded.position(("Statement", 0, "Effect")) == place(dump, '"{')


def test_crlf_and_lines():
    text = '{\r\n  "a": [\r\n    "x"\r\n  ]\r\n}'
    assert Source("f", text).position(("a", 0)) == (3, 5)


def _containers(text: str):
    """Offsets of every `[` and `{` that opens a container (outside strings)."""
    import re

    for m in re.finditer(r'"(?:[^"\\]|\\.)*"|[\[{]', text, re.S):
        if m.group() in "[{":
            yield m.start()


def test_stepping_over_values_with_the_decoder_finds_what_the_token_scan_finds():
    """Containers are read member by member with the C decoder stepping over each value; that
    must find exactly the places the token-by-token scan finds, on tricky text, real policies
    and text the decoder refuses (then the token scan is used: cut, not JSON, too deep)."""
    from pathlib import Path

    from reasoner.locate import _scan, _scan_decoded

    texts = [TEXT, TEXT.replace("\n", "\r\n"), '{ "a" : [ ] , "b" : { } , "a" : [1 ,2] }', "[ ]", "{}"]
    corpus = Path(__file__).parent / "data" / "parse" / "managed-sample.jsonl"
    for line in corpus.read_text(encoding="utf-8").splitlines()[:40]:
        texts.append(line)
        texts.append(json.dumps(json.loads(line), indent=2))
    for text in texts:
        for pos in _containers(text):
            assert _scan_decoded(text, pos) == _scan(text, pos), (text[:60], pos)
    checked = 0
    for bad in ['{"a": [1, 2', '{"a": tru, "b": 1}', '{"a" 1}', '{"a": "x\x01y"}', "[" * 5000 + "]" * 5000]:
        for pos in list(_containers(bad))[:3]:
            try:
                _scan_decoded(bad, pos)
            except (ValueError, IndexError, RecursionError):
                checked += 1
            src = Source("bad", bad)
            assert src._members(pos) == _scan(bad, pos)
    assert checked >= 5


def test_a_long_text_is_kept_compressed_and_gives_the_same_places(shared):
    """An account's dump (here a real one of 824 KB) is kept compressed, not as the text: the
    places found in it are those found in the text itself, statement by statement."""
    from reasoner import locate

    text = shared("data", "dumps", "cloudsplaining-example.json").read_text(encoding="utf-8")
    assert len(text) >= locate.PACK_FROM
    packed = Source("dump.json", text)
    assert isinstance(packed._held, locate._Packed) and packed._held.data is None  # (not at load)
    locate.pack_long_texts()
    assert packed._held.text is None and len(packed._held.data) < len(text) / 4
    doc = json.loads(text)
    paths = []
    for i, pol in enumerate(doc["Policies"]):
        for j, _ in enumerate(pol["PolicyVersionList"]):
            paths.append(("Policies", i, "PolicyVersionList", j, "Document"))
    for i, role in enumerate(doc["RoleDetailList"]):
        paths.append(("RoleDetailList", i, "AssumeRolePolicyDocument"))
    assert len(paths) > 20
    for path in paths:
        # (a fresh, unpacked source each time: nothing learnt from the packed one)
        plain = Source("dump.json", None)
        plain._held = text
        assert packed.position(path) == plain.position(path), path
        assert packed.child(path[:-1]).position(path[-1:]) == plain.position(path), path


def test_packed_texts_read_in_turn_keep_their_places_and_odd_characters():
    """More long texts than are kept unpacked at a time, read in turn: each gives its own places;
    lone surrogates (what decoding with ``surrogateescape`` leaves) and astral characters pass."""
    from reasoner import locate

    texts, sources = [], []
    for n in range(locate.UNPACKED + 3):
        pad = ",\n".join(f'  "k{i}": "{n}-{i}"' for i in range(locate.PACK_FROM // 12))
        text = '{\n' + pad + f',\n  "odd": "\udc80\U0001f600 {n}",\n  "Action": ["s3:Get{n}", "s3:Put{n}"]\n}}'
        assert len(text) >= locate.PACK_FROM
        texts.append(text)
        sources.append(Source(f"f{n}", text))
    locate.pack_long_texts()
    for _ in range(2):
        for text, src in zip(texts, sources):
            n = texts.index(text)
            assert isinstance(src._held, locate._Packed) and src._held.text is None
            assert src.position(("Action", 1)) == place(text, f'"s3:Put{n}"')
            assert src.position(("odd",), key=True) == place(text, '"odd"')
            assert src.text == text
    assert len(locate._UNPACKED) <= locate.UNPACKED
    # a place asked again is found from what was learnt: the text is not unpacked for it (a
    # large report cites the same statements again and again, across many files)
    locate._UNPACKED.clear()
    for text, src in zip(texts, sources):
        assert src.position(("Action", 1)) == place(text, f'"s3:Put{texts.index(text)}"')
    assert not locate._UNPACKED
