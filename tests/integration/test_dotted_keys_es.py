"""Keys with dots inside documents (``{"output_fields": {"container.image.repository": "x"}}``, as
Falco writes them) on the real node: Elasticsearch maps every spelling to the field
``output_fields.container.image.repository``; the rule templates, the aggregation key, the summary
fields and Watcher's compare paths must find it in ``_source`` as well, in the lookup order of
docs/correctness.md#dotted-keys-inside-documents."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from tests.integration.ruletype_helpers import UTC, RuleRunner, add_docs, create_index, delivered, iso, matches
from watcher.definitions.watch import parse_watch
from watcher.delivery.direct import SendNow, Simulate
from watcher.engine.context import Run, Services
from watcher.engine.execute import ExecuteOptions, execute_watch
from watcher.model.problems import Reader
from watcher.model.source import load_text
from watcher.model.status import WatchStatus

T = dt.datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
FIELD = "output_fields.container.image.repository"


def minutes(n: float) -> dt.datetime:
    return T + dt.timedelta(minutes=n)


@pytest.fixture
def falco(es, index_name):
    create_index(es, index_name, {"host": {"type": "keyword"}, "output_fields": {"properties": {"container": {
        "properties": {"image": {"properties": {"repository": {"type": "keyword"}}}}}}}})
    return index_name


def inside(repository: str) -> dict:
    """The repository as a dotted key inside ``output_fields`` (Falco's form)."""
    return {"output_fields": {"container.image.repository": repository, "proc.name": "sh"}}


def nested(repository: str) -> dict:
    return {"output_fields": {"container": {"image": {"repository": repository}}}}


def top(repository: str) -> dict:
    """The whole path as one key at the top of the document."""
    return {FIELD: repository}


def test_rule_templates_and_group_keys_reach_dotted_keys_in_every_spelling(es, falco, tmp_path):
    add_docs(es, falco, [
        {"@timestamp": iso(minutes(-4)), "host": "h1", **nested("repo-a")},
        {"@timestamp": iso(minutes(-2)), "host": "h2", **inside("repo-a")},   # repo-a's newest
        {"@timestamp": iso(minutes(-3)), "host": "h1", **nested("repo-b")},
        {"@timestamp": iso(minutes(-1)), "host": "h2", **top("repo-c")},
    ])
    body = f"""\
type: any
group_by: {FIELD}
title: "{{{{ group }}}}"
message: "{{{{ hits[0].output_fields.container.image.repository }}}} {{{{ hits[0]['{FIELD}'] }}}} \
{{{{ hits[0].output_fields['container.image.repository'] }}}} {{{{ hits | map(attribute='{FIELD}') | join(',') }}}}"
actions: [{{connector: log}}]
"""
    runner = RuleRunner(es, tmp_path, f"name: r\nindex: {falco}\nwindow: 5m\n{body}")
    record = runner.run(T)
    assert matches(record) == {"repo-a": 2, "repo-b": 1, "repo-c": 1}
    sent = {group: text for _, _, group, text in delivered(record)}
    assert sent == {"repo-a": "repo-a: repo-a repo-a repo-a repo-a,repo-a",
                    "repo-b": "repo-b: repo-b repo-b repo-b repo-b",
                    "repo-c": "repo-c: repo-c repo-c repo-c repo-c"}
    assert all("warnings" not in action for action in record["result"]["actions"])


def test_aggregation_key_and_summary_fields_read_dotted_keys(es, falco, tmp_path):
    add_docs(es, falco, [
        {"@timestamp": iso(minutes(-0.5)), "host": "h1", **inside("repo-a")},
        {"@timestamp": iso(minutes(-0.4)), "host": "h2", **top("repo-b")},
        {"@timestamp": iso(minutes(-0.3)), "host": "h3", **inside("repo-a")},
    ])
    body = f"""\
type: any
group_by: host
aggregation: {{period: 2m, key: {FIELD}, summary_table_fields: [{FIELD}, host]}}
actions: [{{connector: log}}]
"""
    runner = RuleRunner(es, tmp_path, f"name: r\nindex: {falco}\nwindow: 1m\nschedule: 1m\n{body}")
    assert delivered(runner.run(T)) == []
    pending = runner.state["aggregation"]
    assert sorted(pending) == ["repo-a", "repo-b"]      # one summary per repository, not one for the rule
    assert sorted((a["group"], a["fields"][FIELD]) for a in pending["repo-a"]["alerts"]) == [("h1", "repo-a"),
                                                                                            ("h3", "repo-a")]
    assert pending["repo-b"]["alerts"][0]["fields"] == {FIELD: "repo-b", "host": "h2"}
    summaries = {group: text for _, _, group, text in delivered(runner.run(minutes(2)))}
    assert sorted(summaries) == ["repo-a", "repo-b"]
    assert summaries["repo-a"].endswith(f"| {FIELD} | host | count |\n"
                                        f"|{'-' * (len(FIELD) + 2)}|------|-------|\n"
                                        f"| repo-a{' ' * (len(FIELD) - 6)} | h1   | 1     |\n"
                                        f"| repo-a{' ' * (len(FIELD) - 6)} | h3   | 1     |")


def compare_watch(es, index: str, path: str, value: str) -> dict:
    """Execute a Watcher watch: the two newest documents, ``compare`` on ``path`` ``eq`` ``value``."""
    text = json.dumps({
        "trigger": {"schedule": {"interval": "1m"}},
        "input": {"search": {"request": {"indices": [index], "body": {
            "size": 2, "sort": [{"@timestamp": "desc"}], "query": {"match_all": {}}}}}},
        "condition": {"compare": {path: {"eq": value}}},
        "actions": {"log": {"logging": {"text": "matched"}}}})
    document = load_text(text, "dotted.json")
    reader = Reader(document)
    watch = parse_watch(document, reader)
    assert not reader.problems
    run = Run(watch=watch, execution_time=T, triggered_time=T, scheduled_time=T, services=Services(es=es))
    record = execute_watch(watch, run, WatchStatus(), {"simulate": Simulate(), "execute": SendNow()},
                           ExecuteOptions(default_mode="simulate"))
    return record["result"]["condition"]


def test_watcher_compare_paths_reach_dotted_keys(es, falco):
    add_docs(es, falco, [{"@timestamp": iso(minutes(-2)), "host": "h1", **nested("repo-a")},
                         {"@timestamp": iso(minutes(-1)), "host": "h2", **inside("repo-b")}])
    newest = f"ctx.payload.hits.hits.0._source.{FIELD}"
    assert compare_watch(es, falco, newest, "repo-b") == {"type": "compare", "status": "success", "met": True,
                                                          "compare": {"resolved_values": {newest: "repo-b"}}}
    # the nested spelling is found by Watcher's own walk, as before
    assert compare_watch(es, falco, f"ctx.payload.hits.hits.1._source.{FIELD}", "repo-a")["met"] is True
