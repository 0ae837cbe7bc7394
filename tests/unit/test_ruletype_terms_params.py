"""Params of ``change``, ``blacklist``, ``whitelist`` and ``new_term``: each bad rule file gives its
exact ``file:line:column`` problems; list files are read at load time, relative to the rule file."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import pytest

from watcher.definitions.load import load_paths

HEAD = "name: r\ntype: {type}\nindex: logs\nwindow: 5m\n"

# (type, rest of the rule after HEAD) → the exact problems ({f} is the rule file)
CASES = {
    "change-without-group-by": ("change", "params:\n  compare_key: user.name\n", [
        "{f}:2:1: type: expected group_by with type change (the field whose values are tracked separately, "
        "ElastAlert2's query_key), found no group_by"]),
    "change-empty-compare-key": ("change", "group_by: host.name\nparams:\n  compare_key: []\n", [
        "{f}:7:16: params.compare_key: expected a field name or a non-empty list of field names, "
        "found a list of 0 items"]),
    "change-bad-timeframe": ("change", "group_by: host.name\nparams:\n  compare_key: [a, b]\n  timeframe: 5x\n", [
        '{f}:8:14: params.timeframe: expected a duration such as 30s, 5m, 1h (a whole number and a unit s, m, h, '
        'd, w) or a mapping such as {{minutes: 5}} (keys weeks, days, hours, minutes, seconds), found "5x" '
        '(unknown unit "x")']),
    "change-missing-compare-key": ("change", "group_by: host.name\nparams:\n  ignore_null: false\n", [
        "{f}:6:1: params: missing required field 'compare_key'"]),
    "blacklist-empty": ("blacklist", "params:\n  compare_key: user.name\n  blacklist: []\n", [
        "{f}:7:14: params.blacklist: expected a non-empty list of values or '!file PATH' items, "
        "found a list of 0 items"]),
    "blacklist-bad-item": ("blacklist", "params:\n  compare_key: user.name\n  blacklist: [root, {a: 1}]\n", [
        "{f}:7:14: params.blacklist: expected a value (string, number, true/false) or '!file PATH' (one value per "
        "line) at item 1, found a mapping with keys a"]),
    "blacklist-no-ignore-null": ("blacklist", "params:\n  compare_key: user.name\n  blacklist: [root]\n"
                                              "  ignore_null: true\n", [
        "{f}:8:3: params.ignore_null: unknown key 'ignore_null'; expected one of: blacklist, compare_key"]),
    "whitelist-two-keys": ("whitelist", "params:\n  compare_key: [a, b]\n  whitelist: [x]\n  ignore_nul: true\n", [
        "{f}:6:16: params.compare_key: expected a field name, found a list of 2 items",
        "{f}:8:3: params.ignore_nul: unknown key 'ignore_nul' (did you mean 'ignore_null'?); "
        "expected one of: compare_key, ignore_null, whitelist"]),
    "new-term-group-by": ("new_term", "group_by: host.name\nparams:\n  fields: [user.name]\n", [
        "{f}:5:1: group_by: expected no group_by with type new_term (the term is the group key), found a "
        "string 'host.name'; to learn terms per group, list a composite term such as fields: [[host.name, FIELD]]"]),
    "new-term-bad-fields": ("new_term", "params:\n  fields: [user.name, []]\n  terms_window_size: 0s\n", [
        "{f}:6:11: params.fields: expected a field name or a non-empty list of field names at item 1, "
        "found a list of 0 items",
        '{f}:7:22: params.terms_window_size: expected a duration such as 30s, 5m, 1h (a whole number and a unit '
        's, m, h, d, w) or a mapping such as {{minutes: 5}} (keys weeks, days, hours, minutes, seconds), found '
        '"0s" (must be greater than zero)']),
    "new-term-fields-not-a-list": ("new_term", "params:\n  fields: user.name\n", [
        "{f}:6:11: params.fields: expected a non-empty list of field names (a list of field names inside it is a "
        "composite term), found a string 'user.name'"]),
}


def load_rule(folder: Path, text: str):
    (folder / "rule.yaml").write_text(text)
    return load_paths([folder / "rule.yaml"])


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_params_are_reported_with_their_position(tmp_path, case):
    rule_type, rest, expected = CASES[case]
    result = load_rule(tmp_path, HEAD.format(type=rule_type) + rest)
    assert [str(p) for p in result.problems] == [e.format(f=tmp_path / "rule.yaml") for e in expected]


def test_a_missing_list_file_is_reported_at_its_item_relative_to_the_rule_folder(tmp_path):
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "bad.txt").write_text("root\n")
    result = load_rule(tmp_path, HEAD.format(type="blacklist") + textwrap.dedent("""\
        params:
          compare_key: user.name
          blacklist:
            - admin
            - '!file lists/bad.txt'
            - '!file lists/missing.txt'
            - !file lists
        """))
    f = tmp_path / "rule.yaml"
    assert [str(p) for p in result.problems] == [
        f"{f}:10:7: params.blacklist[2]: expected a readable file of values (one per line), found "
        f"'lists/missing.txt' (No such file or directory: {tmp_path / 'lists' / 'missing.txt'})",
        f"{f}:11:7: params.blacklist[3]: expected a readable file of values (one per line), found "
        f"'lists' (Is a directory: {tmp_path / 'lists'})"]


def test_list_files_are_read_at_load_time(tmp_path):
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "good.txt").write_text("# allowed accounts\n\n alice \nbob\n#carol\nalice\n")
    allowed = tmp_path / "extra.txt"
    allowed.write_text("dave\n")
    result = load_rule(tmp_path, HEAD.format(type="whitelist") + textwrap.dedent(f"""\
        params:
          compare_key: user.name
          whitelist: [bob, 7, '!file lists/good.txt', !file {allowed}]
        """))
    assert not result.problems, [str(p) for p in result.problems]
    (watch,) = result.watches.values()
    params = watch.rule.type_params
    assert params._values == ["bob", 7, "alice", "dave"]
    assert params.ignore_null is True
    allowed.unlink()  # evaluation never reads the files again
    assert params._values == ["bob", 7, "alice", "dave"]


def test_defaults(tmp_path):
    result = load_rule(tmp_path, HEAD.format(type="new_term") + "params:\n  fields: [a, [b, c]]\n")
    assert not result.problems, [str(p) for p in result.problems]
    (watch,) = result.watches.values()
    params = watch.rule.type_params
    assert params.terms_window_size == dt.timedelta(days=30)
    assert params.alert_on_missing_field is False
    assert params.entries() == [["a"], ["b", "c"]]
    (tmp_path / "rule.yaml").unlink()
    result = load_rule(tmp_path, HEAD.format(type="change") + "group_by: h\nparams:\n  compare_key: a\n")
    assert not result.problems, [str(p) for p in result.problems]
    (watch,) = result.watches.values()
    assert (watch.rule.type_params.fields, watch.rule.type_params.ignore_null,
            watch.rule.type_params.timeframe) == (["a"], True, None)
