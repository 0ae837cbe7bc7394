"""ElastAlert2 conversion: what is dropped is listed one way, a rule that would alert nobody is an
error unless allowed, and filters on mapping types (gone in Elasticsearch 8) are dropped or reported
(watcher.definitions.from_elastalert, `watcher convert --from elastalert`)."""

from __future__ import annotations

import textwrap

import pytest
from click.testing import CliRunner

from watcher.cli.definitions import convert, validate
from watcher.definitions.from_elastalert import ALERTERS, ConversionError, NoActionsError, convert_text
from watcher.definitions.load import load_paths

HEAD = "name: r\ntype: any\nindex: logs\n"


def rule(text: str) -> str:
    return HEAD + textwrap.dedent(text)


def converted(text: str, **options):
    return convert_text(rule(text), "r.yaml", **options)


def failure(text: str, cls=ConversionError, **options):
    with pytest.raises(cls) as caught:
        converted(text, **options)
    return caught.value


def run(path, *args):
    return CliRunner().invoke(convert, [str(path), "--from", "elastalert", *map(str, args)])


# ---- every dropped option listed the same way ---------------------------------------------------

@pytest.mark.parametrize("use, index", [
    ("true", "logs-%Y.%m.%d"),     # the pattern is rewritten to logs-*
    ("true", "logs-current"),      # nothing to expand: used to vanish from the list
    ("false", "logs-%Y.%m.%d"),    # off: used to vanish from the list
    ("true", "[app-%Y.%m, audit]"),
])
def test_use_strftime_index_is_listed_in_every_case(use, index, tmp_path):
    text = (f"name: r\ntype: any\nindex: {index}\ninclude_match_in_root: true\nuse_strftime_index: {use}\n"
            "alert: [debug]\nslack_msg_color: danger\n")
    conversion = convert_text(text, "r.yaml")
    assert conversion.not_carried == ["include_match_in_root", "use_strftime_index", "slack_msg_color"]
    path = tmp_path / "r.yaml"
    path.write_text(text)
    result = run(path)
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines()[0] == ("note: not carried over: include_match_in_root, use_strftime_index, "
                                             "slack_msg_color")


def test_strftime_pattern_is_searched_as_a_wildcard_with_a_note():
    conversion = convert_text("name: r\ntype: any\nindex: logs-%Y.%m.%d\nuse_strftime_index: true\nalert: debug\n",
                              "r.yaml")
    assert conversion.rule["index"] == "logs-*"
    assert "index: the strftime pattern 'logs-%Y.%m.%d' is searched as 'logs-*' (every day's index; the time range " \
           "still limits the documents)" in conversion.notes
    plain = convert_text("name: r\ntype: any\nindex: logs-%Y\nuse_strftime_index: false\nalert: debug\n", "r.yaml")
    assert plain.rule["index"] == "logs-%Y" and not any(n.startswith("index:") for n in plain.notes)


def test_dropped_options_alerters_and_settings_are_listed_once_in_file_order():
    conversion = converted("""\
        top_count_number: 5
        summary_table_max_rows: lots
        alert_missing_value: 0
        use_count_query: true
        alert: [telegram, debug, zabbix]
        telegram: [a]
        zabbix_host: zbx
        doc_type: logs
        """)
    # summary_table_max_rows: read only with aggregation; telegram: an alerter named like an option
    assert conversion.not_carried == ["summary_table_max_rows", "alert_missing_value", "telegram", "zabbix",
                                      "zabbix_host"]
    assert conversion.not_needed == ["use_count_query", "doc_type"]
    assert "top_count_number" in conversion.rule  # carried: not listed
    frequency = convert_text("name: f\ntype: frequency\nindex: l\nnum_events: 2\ntimeframe: {minutes: 5}\n"
                             "buffer_time: {minutes: 5}\nalert: debug\n", "f.yaml")
    assert (frequency.not_carried, frequency.not_needed) == ([], ["buffer_time"])


def test_summary_table_max_rows_that_is_not_a_number_is_listed():
    conversion = converted("aggregation: {minutes: 5}\nsummary_table_max_rows: lots\nalert: debug\n")
    assert conversion.not_carried == ["summary_table_max_rows"]
    assert "max_rows" not in conversion.rule["aggregation"]


# ---- a rule that would alert nobody --------------------------------------------------------------

def test_only_unsupported_alerters_is_an_error_naming_them_at_alert():
    error = failure("alert:\n  - telegram\n  - zabbix\ntelegram: [oncall]\n", NoActionsError)
    assert (error.file, error.line, error.column) == ("r.yaml", 5, 3)
    assert error.message == (
        "alert: none of the rule's alerters (telegram, zabbix) converts to an action here, so the converted rule would "
        f"alert nobody; watcher converts the alerters {', '.join(ALERTERS)} (--allow-no-actions converts it "
        "anyway, without actions)")
    assert error.alerters == ["telegram", "zabbix"]
    assert error.conversion.not_carried == ["telegram", "zabbix"] and "actions" not in error.conversion.rule
    assert isinstance(error, ConversionError)


def test_a_supported_alerter_without_its_settings_counts_as_none():
    error = failure("alert: slack\n", NoActionsError)
    assert (error.line, error.column, error.alerters) == (4, 8, ["slack"])
    assert "slack: no slack_webhook_url; the alerter is not carried over" in error.conversion.notes


def test_no_alert_option_is_an_error_too():
    error = failure("filter: [{term: {a: 1}}]\n", NoActionsError)
    assert (error.line, error.column, error.alerters) == (1, 1, [])
    assert error.message == ("missing option 'alert' (ElastAlert2 requires it): the converted rule would alert "
                             "nobody; --allow-no-actions converts it anyway, without actions")


def test_allow_no_actions_converts_with_a_note():
    conversion = converted("alert: [telegram]\ntelegram: oncall\n", allow_no_actions=True)
    assert "actions" not in conversion.rule and conversion.not_carried == ["telegram"]
    assert conversion.notes[-1] == "actions: none — the converted rule alerts nobody until you add one"


def test_debug_alone_converts_and_validate_warns(tmp_path):
    source = tmp_path / "ea.yaml"
    source.write_text(rule("alert: debug\n"))
    rules = tmp_path / "rules"
    rules.mkdir()
    result = run(source, "--connectors-out", rules / "connectors.yaml")
    assert result.exit_code == 0, result.stderr
    (rules / "r.yaml").write_text(result.stdout)
    checked = CliRunner().invoke(validate, [str(rules)])
    assert checked.exit_code == 0
    actions_line = result.stdout.splitlines().index("actions:") + 1
    assert checked.output.splitlines() == [
        f"warning: {rules / 'r.yaml'}:{actions_line}:1: actions: only logging, which writes to watcher's own log, so "
        "nobody is alerted when the rule fires",
        "2 files OK, 0 with problems"]


def test_cli_no_actions_exit_status_notes_and_flag(tmp_path):
    path = tmp_path / "telegram-only.yaml"
    path.write_text(rule("alert:\n  - telegram\ntelegram: [oncall]\ntelegram_bot_token: t0ken\n"))
    result = run(path)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.splitlines() == [
        "note: not carried over: telegram, telegram_bot_token",
        "note: window: 1m (ElastAlert2's usual 1 minute); the rule has no buffer_time, which ElastAlert2 takes from "
        "config.yaml for type any — set window to that buffer_time if it differs",
        "note: realert: 1m written out (ElastAlert2's default; ours is none)",
        f"{path}:5:3: alert: none of the rule's alerters (telegram) converts to an action here, so the converted rule "
        f"would alert nobody; watcher converts the alerters {', '.join(ALERTERS)} (--allow-no-actions converts it "
        "anyway, without actions)"]
    allowed = run(path, "--allow-no-actions", "--connectors-out", tmp_path / "connectors.yaml")
    assert allowed.exit_code == 0, allowed.stderr
    assert "note: actions: none — the converted rule alerts nobody until you add one" in allowed.stderr.splitlines()
    assert allowed.stdout.startswith("name: r\ntype: any\nindex: logs\n") and "actions" not in allowed.stdout
    assert not (tmp_path / "connectors.yaml").exists()  # no connector to write
    wrong = CliRunner().invoke(convert, [str(path), "--to", "watch", "--allow-no-actions"])
    assert wrong.exit_code == 2 and "--allow-no-actions belongs to --from elastalert" in wrong.stderr


def test_converted_without_actions_then_validate_warns(tmp_path):
    source = tmp_path / "ea.yaml"
    source.write_text(rule("alert: [telegram]\n"))
    result = run(source, "--allow-no-actions")
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "r.yaml").write_text(result.stdout)
    loaded = load_paths([tmp_path / "rules"])
    assert loaded.problems == []
    assert [str(w) for w in loaded.warnings] == [
        f"{tmp_path / 'rules' / 'r.yaml'}:1:1: actions: none, so nobody is alerted when the rule fires"]


# ---- mapping types (_type, the type query) -------------------------------------------------------

def test_elastalert2_documented_type_filters_are_dropped_with_a_note():
    # ElastAlert2's "Writing Filters For Rules" still shows a _type term and a _type query string.
    conversion = converted("""\
        filter:
        - term:
            _type: "login_logs"
        - query:
            query_string:
              query: "_type: login_logs"
        - term:
            user.name: bob
        alert: debug
        """)
    assert conversion.rule["query"] == {"term": {"user.name": "bob"}}
    assert [n for n in conversion.notes if n.startswith("filter")] == [
        'filter[0]: {"term": {"_type": "login_logs"}} dropped: Elasticsearch 8 has no _type field (mapping types '
        'were removed), so it would match no document',
        'filter[1]: {"query_string": {"query": "_type: login_logs"}} dropped: Elasticsearch 8 has no _type field '
        '(mapping types were removed), so it would match no document']
    assert conversion.not_carried == []


@pytest.mark.parametrize("clause, note", [
    ("type: {value: my_type}", 'filter[0]: {"type": {"value": "my_type"}} dropped: Elasticsearch 8 removed the type '
                               'query with mapping types, and refuses it'),
    ("terms: {_type: [a, b]}", 'filter[0]: {"terms": {"_type": ["a", "b"]}} dropped: Elasticsearch 8 has no _type '
                               'field (mapping types were removed), so it would match no document'),
    ("match: {_type: {query: a}}", 'filter[0]: {"match": {"_type": {"query": "a"}}} dropped: Elasticsearch 8 has no '
                                   '_type field (mapping types were removed), so it would match no document'),
])
def test_the_only_clause_dropped_leaves_no_query(clause, note):
    conversion = converted(f"filter:\n- {clause}\nalert: debug\n")
    assert "query" not in conversion.rule
    assert note in conversion.notes
    assert "filter: every clause was dropped; the rule matches every document of its indices in the window" \
        in conversion.notes


def test_type_clauses_inside_bool_must_and_filter_are_dropped_at_any_depth():
    conversion = converted("""\
        filter:
        - bool:
            must:
              - term: {_type: x}
              - bool:
                  filter: {type: {value: y}}
                  must: [{term: {a: 1}}]
            should: {match: {b: 2}}
        alert: debug
        """)
    assert conversion.rule["query"] == {"bool": {"must": [{"bool": {"must": [{"term": {"a": 1}}]}}],
                                                 "should": {"match": {"b": 2}}}}
    assert [n.split(":")[0] for n in conversion.notes if n.startswith("filter")] == [
        "filter[0].bool.must[0]", "filter[0].bool.must[1].bool.filter"]


def test_a_type_field_is_kept_and_reported():
    conversion = converted("filter:\n- term: {type: nginx}\nalert: debug\n")
    assert conversion.rule["query"] == {"term": {"type": "nginx"}}
    assert ('filter[0]: {"term": {"type": "nginx"}} kept: it tests a document field named \'type\'; if it was meant '
            'for the mapping type of Elasticsearch 6 and earlier (_type), remove it: Elasticsearch 8 has none') \
        in conversion.notes


@pytest.mark.parametrize("text, line, column, message", [
    ("filter:\n- bool:\n    should:\n      - term: {a: 1}\n      - term: {_type: x}\nalert: debug\n", 8, 9,
     'filter[0].bool.should[1]: {"term": {"_type": "x"}}: Elasticsearch 8 has no _type field (mapping types were '
     'removed), so it would match no document; it cannot be dropped here without changing what the query matches '
     '— rewrite the clause without the mapping type'),
    ("filter:\n- bool:\n    must_not: {type: {value: x}}\nalert: debug\n", 6, 15,
     'filter[0].bool.must_not: {"type": {"value": "x"}}: Elasticsearch 8 removed the type query with mapping types, '
     'and refuses it; it cannot be dropped here without changing what the query matches — rewrite the clause '
     'without the mapping type'),
    ("filter:\n- query_string: {query: 'a:1 AND _type:x'}\nalert: debug\n", 5, 25,
     "filter[0].query_string.query: 'a:1 AND _type:x' searches _type; Elasticsearch 8 has no _type field (mapping "
     "types were removed), so it would match no document — remove the _type part of the query"),
])
def test_type_clauses_that_cannot_be_dropped_are_errors_where_they_are(text, line, column, message):
    error = failure(text)
    assert (error.file, error.line, error.column, error.message) == ("r.yaml", line, column, message)


def test_match_bucket_filter_is_rewritten_too():
    conversion = convert_text("name: p\ntype: percentage_match\nindex: l\nmatch_bucket_filter:\n- term: {_type: x}\n"
                              "- term: {level: error}\nmax_percentage: 10\nalert: debug\n", "p.yaml")
    assert conversion.rule["params"]["match_bucket_filter"] == {"term": {"level": "error"}}
    assert any(n.startswith('match_bucket_filter[0]: {"term": {"_type": "x"}} dropped') for n in conversion.notes)
