"""JSON files read as Elasticsearch reads them: comments, positions, errors in JSON's words
(watcher.model.json_reader, through watcher.model.source.load_text and `watcher validate`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from watcher.cli.definitions import validate
from watcher.definitions.load import load_paths
from watcher.errors import DefinitionProblem
from watcher.model.json_reader import JsonSyntaxError, parse_json
from watcher.model.source import SourceError, load_text

ROOT = Path(__file__).resolve().parents[2]
JSON_FILES = sorted([*ROOT.glob("examples/watches/*.json"), *ROOT.glob("rules/*.json"),
                     *ROOT.glob("tests/fixtures/definitions/valid/*.json")])

COMMENTED_WATCH = """\
// Errors in the logs, every 5 minutes.
{
  /* when */ "trigger": {"schedule": {"interval": "5m"}},
  "input": {"simple": {"url": "http://example.org/a//b", "note": "/* not a comment */"}},
  /*
   * the condition, on lines of its own
   */
  "condition": {"always": {}},   // trailing comment
  "actions": {
    "log": {"logging": {"text": "{{ctx.payload.url}} // {{ctx.payload.note}}"}}
  }
}
// end
"""


def read(text: str, name: str = "w.json"):
    return load_text(text, name).data


def error_of(text: str) -> SourceError:
    with pytest.raises(SourceError) as caught:
        load_text(text, "w.json")
    return caught.value


# ---- comments ----------------------------------------------------------------------------------

def test_line_and_block_comments_are_whitespace_and_strings_keep_their_markers():
    data = read(COMMENTED_WATCH)
    assert data == {
        "trigger": {"schedule": {"interval": "5m"}},
        "input": {"simple": {"url": "http://example.org/a//b", "note": "/* not a comment */"}},
        "condition": {"always": {}},
        "actions": {"log": {"logging": {"text": "{{ctx.payload.url}} // {{ctx.payload.note}}"}}}}


def test_positions_after_comments_are_the_written_ones():
    data = read(COMMENTED_WATCH)
    assert data.lc.key("trigger") == (2, 13)  # 0-based, after /* when */ on line 3
    assert data.lc.key("condition") == (7, 2)  # after a three-line block comment
    assert data.lc.value("condition") == (7, 15)
    assert data["actions"]["log"]["logging"].lc.value("text") == (9, 32)


def test_a_later_problem_in_a_commented_watch_names_its_line_and_column(tmp_path):
    path = tmp_path / "commented.json"
    path.write_text(COMMENTED_WATCH.replace('"condition": {"always": {}}', '"condition": {"alway": {}}')
                    .replace('"interval": "5m"', '"interval": "5 minutes"'))
    problems = load_paths([path]).problems
    assert [(p.line, p.column, p.path) for p in problems] == [(3, 51, "trigger.schedule.interval"),
                                                              (8, 17, "condition.alway")]
    assert str(problems[1]) == (f"{path}:8:17: condition.alway: unknown condition type 'alway' (did you mean "
                                "'always'?); expected one of: always, array_compare, compare, never, script")


def test_comment_only_lines_crlf_tabs_and_a_byte_order_mark_keep_columns():
    text = '\ufeff{\r\n\t"a": 1, // one\r\n\t/* two */ "b": [1,\r\n\t\t2]}'
    data = read(text)
    assert data == {"a": 1, "b": [1, 2]}
    assert data.lc.key("a") == (1, 1) and data.lc.key("b") == (2, 11)
    assert data["b"].lc.item(1) == (3, 2)
    assert error_of(text.replace("2]", "2,]")).line == 4


def test_parse_json_gives_the_positions_the_yaml_reader_gave_for_plain_json():
    """Every shipped JSON file: the same containers, values and positions as ruamel.yaml's reader
    (which read JSON files before), so every problem message keeps its line and column."""
    assert len(JSON_FILES) >= 10
    for path in JSON_FILES:
        text = path.read_text(encoding="utf-8")
        ours, theirs = parse_json(text), YAML(typ="rt").load(text)
        _same_tree(ours, theirs, path.name)


def _same_tree(ours, theirs, where: str) -> None:
    assert type(ours) is type(theirs) or not isinstance(theirs, (CommentedMap, CommentedSeq)), where
    if isinstance(theirs, CommentedMap):
        assert (ours.lc.line, ours.lc.col) == (theirs.lc.line, theirs.lc.col), where
        assert list(ours) == list(theirs), where
        for key in theirs:
            assert ours.lc.data[key] == theirs.lc.data[key], f"{where}: {key}"
            _same_tree(ours[key], theirs[key], f"{where}.{key}")
    elif isinstance(theirs, CommentedSeq):
        assert (ours.lc.line, ours.lc.col) == (theirs.lc.line, theirs.lc.col), where
        assert len(ours) == len(theirs), where
        for index, item in enumerate(theirs):
            assert ours.lc.data[index] == theirs.lc.data[index], f"{where}[{index}]"
            _same_tree(ours[index], item, f"{where}[{index}]")
    else:
        assert ours == theirs and type(ours) in (str, int, float, bool, type(None)), where


def test_scalars_are_plain_and_surrogate_pairs_combine():
    data = read('{"s": "caf\\u00e9 \\ud83d\\ude00 \\"q\\" \\/", "i": -12, "f": 1.5e2, "t": true, "n": null, '
                '"big": 123456789012345678901234567890}')
    assert data == {"s": 'café 😀 "q" /', "i": -12, "f": 150.0, "t": True, "n": None,
                    "big": 123456789012345678901234567890}
    assert [type(v) for v in data.values()] == [str, int, float, bool, type(None), int]


def test_yaml_files_are_still_read_as_yaml():
    assert load_text("# a YAML comment\na: 1\n", "rule.yaml").data == {"a": 1}
    assert load_text('{"a": 1}  # YAML reads flow mappings too\n', "rule.yml").data == {"a": 1}
    with pytest.raises(SourceError) as caught:
        load_text('{"a": 1}  # not in JSON\n', "watch.JSON")
    assert caught.value.message.startswith("expected the end of the file after the top-level value, found '#'")


# ---- errors ------------------------------------------------------------------------------------

def _syntax_error_cases() -> list:
    """tests/fixtures/json/syntax-errors.json: ``{text, at: "line:column", message}`` per case."""
    cases = json.loads((ROOT / "tests" / "fixtures" / "json" / "syntax-errors.json").read_text(encoding="utf-8"))
    return [pytest.param(case["text"], *map(int, case["at"].split(":")), case["message"], id=case["message"][:40])
            for case in cases]


@pytest.mark.parametrize("text, line, column, message", _syntax_error_cases())
def test_syntax_errors_say_where_and_what_was_expected(text, line, column, message):
    error = error_of(text)
    assert (error.file, error.line, error.column, error.message) == ("w.json", line, column, message)
    assert str(error) == f"w.json:{line}:{column}: {message}"
    assert isinstance(error, DefinitionProblem)


def test_nesting_is_bounded_where_it_goes_too_deep():
    read("[" * 100 + "]" * 100)  # 100 levels are fine
    error = error_of("[" * 101 + "]" * 101)
    assert (error.line, error.column, error.message) == (1, 101, "nested more than 100 levels deep")
    error = error_of('{"a": ' * 5000)
    assert error.message == "nested more than 100 levels deep"


def test_parse_json_raises_its_own_class_with_a_position():
    with pytest.raises(JsonSyntaxError) as caught:
        parse_json('{\n  "a": [1,]\n}')
    assert (caught.value.line, caught.value.column) == (2, 11)
    assert str(caught.value) == "line 2, column 11: expected a value after ',', found ']' (JSON allows no trailing comma)"


# ---- watcher validate ---------------------------------------------------------------------------

def test_validate_accepts_a_commented_watch_and_reports_broken_json_in_json_terms(tmp_path):
    (tmp_path / "commented.json").write_text(COMMENTED_WATCH)
    broken = tmp_path / "broken.json"
    broken.write_text('{\n  "trigger": {"schedule": {"interval": "5m"}}\n  "actions": {}\n}\n')
    result = CliRunner().invoke(validate, [str(tmp_path / "commented.json"), str(broken)])
    lines = result.output.splitlines()
    assert f"{broken}:3:3: expected ',' or '}}' after an object member, found a string \"actions\"" in lines
    assert lines[-1] == "1 file OK, 1 with problems"
    assert result.exit_code == 1


def test_a_json_file_with_comments_is_not_json_to_python_but_is_to_us():
    with pytest.raises(json.JSONDecodeError):
        json.loads(COMMENTED_WATCH)
    assert read(COMMENTED_WATCH)["trigger"] == {"schedule": {"interval": "5m"}}
