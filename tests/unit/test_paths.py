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


# --------------------------------------------------------------------------------------------------
# Keys with dots inside documents (docs/correctness.md#dotted-keys-inside-documents)

from watcher.support.paths import dotted_child, field_value, find_field  # noqa: E402

FALCO = {"output_fields": {"container.image.repository": "repo-x", "proc.name": "sh"},
         "k8s.ns.name": "prod",
         "host.name": "literal", "host": {"name": "nested", "ip": "10.0.0.1"},
         "a": {"b.c": {"d": 1}}, "a.b": {"x": 2},
         "list": [{"x.y": 1}, {"x": {"y": 2}}],
         "nothing": None}


@pytest.mark.parametrize(("path", "expected"), [
    ("output_fields.container.image.repository", (True, "repo-x")),   # a dotted key inside an object
    ("output_fields.proc.name", (True, "sh")),
    ("k8s.ns.name", (True, "prod")),                                   # the whole path as one key
    ("host.name", (True, "literal")),                                  # the literal key before the nested path
    ("host.ip", (True, "10.0.0.1")),                                   # then the nested path
    ("a.b.c.d", (True, 1)),                                            # "a.b" leads nowhere: back to "a" → "b.c"
    ("a.b.x", (True, 2)),
    ("list.0.x.y", (True, 1)),                                         # numeric segments index lists
    ("list.1.x.y", (True, 2)),
    ("nothing", (True, None)),                                         # an explicit null is found
    ("output_fields.container.image", (False, None)),                  # a prefix of a key is not a field
    ("output_fields.container", (False, None)),
    ("missing.x", (False, None)),
    ("", (True, FALCO)),
])
def test_find_field_lookup_order(path, expected):
    assert find_field(FALCO, path) == expected


def test_field_value_defaults_and_non_documents():
    assert field_value(FALCO, "output_fields.container.image.repository") == "repo-x"
    assert field_value(FALCO, "missing", "n/a") == "n/a"
    assert field_value(FALCO, "nothing", "n/a") is None
    assert field_value("text", "a") is None
    assert field_value(None, "a") is None


def test_resolve_path_finds_dotted_keys_where_watcher_s_walk_finds_nothing():
    model = {"ctx": {"payload": FALCO}}
    assert resolve_path(model, "ctx.payload.output_fields.container.image.repository") == "repo-x"
    assert resolve_path(model, "ctx.payload.k8s.ns.name") == "prod"
    assert resolve_path(model, "ctx.payload.host.name") == "nested"     # Watcher's walk answers: kept
    assert resolve_path(model, "ctx.payload.output_fields.container") is None


def test_dotted_child_views_dotted_keys_as_nested():
    assert dotted_child(FALCO["output_fields"], "container") == (True, {"image.repository": "repo-x"})
    assert dotted_child({"image.repository": "repo-x"}, "image") == (True, {"repository": "repo-x"})
    assert dotted_child(FALCO, "k8s") == (True, {"ns.name": "prod"})
    # the key and dotted keys extending it: both, the dotted ones winning
    assert dotted_child(FALCO, "host") == (True, {"name": "literal", "ip": "10.0.0.1"})
    assert dotted_child(FALCO, "a") == (True, {"b.c": {"d": 1}, "b": {"x": 2}})
    assert dotted_child({"a": {"b": {"x": 1}}, "a.b": {"y": 2}}, "a") == (True, {"b": {"x": 1, "y": 2}})
    assert dotted_child(FALCO, "output_fields.proc.name") == (True, "sh")   # a dotted key asked for at once
    assert dotted_child(FALCO, "nothing") == (True, None)
    assert dotted_child(FALCO, "absent") == (False, None)
    assert dotted_child({"hostname": "x"}, "host") == (False, None)         # a prefix without the dot is not one


def test_rule_types_read_fields_in_the_same_order():
    from watcher.engine.ruletypes.base import field_value as rule_field

    assert rule_field(FALCO, "output_fields.container.image.repository") == "repo-x"
    assert rule_field(FALCO, "host.name") == "literal"
    assert rule_field(FALCO, "a.b.c.d") == 1
    assert rule_field(FALCO, "output_fields.container") is None
