"""watcher.support.paths: Watcher's ObjectPath dot paths."""

from __future__ import annotations

import pytest

from watcher.support.paths import resolve_path, split_path

MODEL = {
    "ctx": {
        "payload": {
            "hits": {
                "total": 7,
                "hits": [
                    {"_id": "a", "_source": {"level": "error", "tags": ["x", "y"]}},
                    {"_id": "b", "_source": {"level": None}},
                ],
            },
            "host.name": "web-1",
            "host": {"name": "web-2"},
            "0": "key zero",
            "empty": {},
            "flag": False,
            "zero": 0,
            "text": "hello",
            "pair": ("p", "q"),
        },
        "metadata": None,
    }
}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("ctx.payload.hits.total", 7),
        ("ctx.payload.hits.hits.0._id", "a"),
        ("ctx.payload.hits.hits.1._id", "b"),
        ("ctx.payload.hits.hits.0._source.tags.1", "y"),
        ("ctx.payload.hits.hits.01._id", "b"),             # Integer.parseInt("01") == 1
        ("ctx.payload.pair.1", "q"),                        # tuples index like lists
        ("ctx.payload.host.name", "web-2"),                 # dots always split: "host.name" key unreachable
        ("ctx.payload.0", "key zero"),                      # on a mapping "0" is a key
        ("ctx.payload.flag", False),                        # falsy values are returned, not None
        ("ctx.payload.zero", 0),
        ("ctx.payload.empty", {}),
        ("ctx.payload.hits.total.", 7),                     # Java split drops trailing empty segments
        ("ctx.payload.hits.hits.2._id", None),              # past the end
        ("ctx.payload.hits.hits.-1._id", None),             # no negative indexing
        ("ctx.payload.hits.hits.first._id", None),          # non-numeric segment on a list
        ("ctx.payload.hits.hits.1._source.level", None),    # explicit null
        ("ctx.payload.hits.hits.1._source.level.x", None),  # through a null
        ("ctx.payload.missing", None),
        ("ctx.payload.missing.deeper.still", None),
        ("ctx.payload.hits.total.value", None),             # through a number
        ("ctx.payload.text.0", None),                       # strings are not indexable
        ("ctx.metadata.name", None),
        ("ctx..payload", None),                             # inner empty segment is the key ""
        ("payload.hits.total", None),                       # compare paths start with ctx.
    ],
)
def test_resolve_path(path, expected):
    assert resolve_path(MODEL, path) == expected


def test_empty_path_returns_root():
    assert resolve_path(MODEL, "") is MODEL
    assert resolve_path([1, 2], "") == [1, 2]
    assert resolve_path(None, "") is None


@pytest.mark.parametrize(
    ("root", "path", "expected"),
    [
        ([10, 20, 30], "2", 30),
        ([[1, 2], [3, 4]], "1.0", 3),
        ({"doc_count": 42}, "doc_count", 42),               # array_compare's per-element "path"
        (5, "a", None),
        (None, "a", None),
        ("abc", "0", None),
    ],
)
def test_resolve_path_on_other_roots(root, path, expected):
    assert resolve_path(root, path) == expected


@pytest.mark.parametrize(
    ("path", "parts"),
    [
        ("", []),
        ("a", ["a"]),
        ("a.b.0", ["a", "b", "0"]),
        ("a.b.", ["a", "b"]),
        ("a..b", ["a", "", "b"]),
        (".", []),
    ],
)
def test_split_path(path, parts):
    assert split_path(path) == parts
