"""A failed link of a chain input: recorded with its error (watcher.engine.inputs.chain) and shown by
`watcher dry-run`'s human output, not only by --json (watcher.cli.dryrun)."""

from __future__ import annotations

import datetime as dt

import click
from click.testing import CliRunner
from elastic_transport import ApiResponseMeta, HttpHeaders, NodeConfig
from elasticsearch import BadRequestError

from watcher.cli import dryrun
from watcher.engine.context import Run, Services
from watcher.engine.inputs import REGISTRY as INPUTS
from watcher.model.problems import Reader
from watcher.model.source import load_text
from watcher.model.watch import Component, Trigger, Watch

T0 = dt.datetime(2026, 11, 29, 10, 10, tzinfo=dt.timezone.utc)
CHAIN = """{"input": {"chain": {"inputs": [
  {"limits": {"simple": {"max_errors": 3}}},
  {"errors": {"search": {"request": {"indices": ["logs-app"], "body": {"size": 0}}}}},
  {"after": {"simple": {"seen": true}}}
]}}}"""


class RefusingCluster:
    """Answers every search as Elasticsearch 8 answers the ``type`` query."""

    def options(self, **_):
        return self

    def search(self, **_):
        raise _refused()

    def msearch(self, **_):
        raise _refused()


def _refused() -> BadRequestError:
    meta = ApiResponseMeta(status=400, http_version="1.1", headers=HttpHeaders(), duration=0.01,
                           node=NodeConfig("http", "127.0.0.1", 9200))
    cause = {"type": "parsing_exception", "reason": "unknown query [type]", "line": 1, "col": 18}
    return BadRequestError("parsing_exception", meta, {"error": {"root_cause": [cause], **cause}, "status": 400})


def chain_result(es=None) -> dict:
    document = load_text(CHAIN, "chain.json")
    reader = Reader(document)
    component = INPUTS.parse(reader, document.data["input"], ("input",))
    assert not reader.problems
    watch = Watch(id="w", file="w.json", trigger=Trigger("interval", None, None, {}),
                  input=component, condition=Component("always", None, {}), transform=None, actions=(),
                  throttle_period=None, metadata=None)
    run = Run(watch=watch, execution_time=T0, triggered_time=T0, scheduled_time=T0, services=Services(es=es))
    return INPUTS.get("chain").execute(component.config, run)


def test_a_failed_link_is_recorded_with_its_error_and_the_chain_goes_on():
    result = chain_result(es=RefusingCluster())
    failed = result["chain"]["errors"]
    assert failed["status"] == "failure" and failed["type"] == "search"
    assert failed["reason"].startswith("BadRequestError: ")
    assert failed["error"]["type"] == "bad_request_error"
    assert failed["error"]["caused_by"]["root_cause"][0]["reason"] == "unknown query [type]"
    assert result["payload"] == {"limits": {"max_errors": 3}, "errors": {}, "after": {"seen": True}}
    assert result["status"] == "success"


def test_a_link_without_a_cluster_error_keeps_its_own_reason():
    failed = chain_result(es=None)["chain"]["errors"]
    assert failed["error"] == {"type": "runtime_error",
                               "reason": "a search needs an Elasticsearch connection (services.es is not set)"}


def human(record: dict) -> list[str]:
    @click.command()
    def show():
        dryrun._print_record(Watch(id="chained", file="chained.json", trigger=None, input=None, condition=None,
                                   transform=None, actions=(), throttle_period=None, metadata=None), record)
    return CliRunner().invoke(show, color=False).output.splitlines()


def record_for(input_result: dict) -> dict:
    return {"state": "executed", "result": {
        "execution_time": "2026-11-29T10:10:00.000Z", "input": input_result,
        "condition": {"type": "always", "status": "success", "met": True}, "actions": []}}


def test_dry_run_names_the_failed_link_and_the_clusters_reason():
    lines = human(record_for(chain_result(es=RefusingCluster())))
    assert lines[:5] == [
        "chained (chained.json) at 2026-11-29T10:10:00.000Z",
        "input chain",
        "  link limits [simple]: keys: max_errors",
        "  link errors [search] failed: unknown query [type] (parsing_exception)",
        "  link after [simple]: keys: seen"]


def test_dry_run_shows_search_links_nested_chains_and_transform_links():
    search_ok = {"type": "search", "status": "success", "payload": {"hits": {"total": {"value": 7}, "hits": []}},
                 "search": {"request": {"indices": ["logs-a", "logs-b"], "body": {}}}}
    nested = {"type": "chain", "status": "success", "payload": {"inner": {}},
              "chain": {"inner": {"type": "http", "status": "failure",
                                  "reason": "ConnectError: [Errno 111] Connection refused",
                                  "error": {"type": "connect_error", "reason": "[Errno 111] Connection refused"}}}}
    transformed = {"type": "transform", "status": "failure", "reason": "ScriptUnavailable: no painless"}
    lines = human(record_for({"type": "chain", "status": "success", "payload": {},
                              "chain": {"found": search_ok, "more": nested, "shaped": transformed,
                                        "none": {"type": "none", "status": "success", "payload": {}}}}))
    assert lines[1:7] == [
        "input chain",
        "  link found [search] on logs-a, logs-b: 7 hits",
        "  link more [chain]: keys: inner",
        "    link inner [http] failed: ConnectError: [Errno 111] Connection refused",
        "  link shaped [transform] failed: ScriptUnavailable: no painless",
        "  link none [none]: empty payload"]


def test_backtest_summarises_failed_links():
    failed = chain_result(es=RefusingCluster())
    records = [{"state": "executed", "trigger_event": {"schedule": {"scheduled_time": f"T{i}"}},
                "result": {"input": failed, "actions": []}} for i in range(3)]
    watch = Watch(id="chained", file="chained.json", trigger=Trigger("interval", None, None, {}),
                  input=Component("chain", None, {}), condition=None, transform=None, actions=(),
                  throttle_period=None, metadata=None)

    @click.command()
    def show():
        dryrun._print_backtest(watch, records, T0, T0)

    lines = CliRunner().invoke(show, color=False).output.splitlines()
    assert lines[-1] == ("chain link errors failed at 3 scheduled time(s), first: unknown query [type] "
                         "(parsing_exception)")
