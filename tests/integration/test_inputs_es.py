"""Search, chain and http inputs against the real Elasticsearch node and real HTTP servers.

Elasticsearch decides the hits, the totals, the date math (``{{ctx.trigger.scheduled_time}}||-5m``),
aggregations, missing-index leniency and date-math index names; these tests check that what we send
makes it decide what Watcher's request would.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from elasticsearch import ApiError, BadRequestError

from watcher.model.watch import Component, Trigger, Watch
from watcher.model.problems import Reader
from watcher.model.source import load_text
from watcher.engine.context import Run, Services
from watcher.engine.inputs import REGISTRY as INPUTS

# scheduled at a whole minute: Watcher 8.x prints it as 2026-11-29T10:05Z (no seconds), which
# Elasticsearch must still parse in the range below
SCHEDULED = dt.datetime(2026, 11, 29, 10, 5, tzinfo=dt.timezone.utc)
EXECUTED = SCHEDULED + dt.timedelta(milliseconds=250, microseconds=17)


def parse_input(definition: dict):
    document = load_text(json.dumps({"input": definition}), "watch.json")
    reader = Reader(document)
    component = INPUTS.parse(reader, document.data["input"], ("input",))
    assert reader.problems == []
    return component


def make_run(es=None, http=None, scheduled=SCHEDULED, metadata=None) -> Run:
    watch = Watch(id="inputs-it", file="inputs-it.json", trigger=Trigger("interval", None, None, {}),
                  input=Component("none", None, {}), condition=Component("always", None, {}),
                  transform=None, actions=(), throttle_period=None, metadata=metadata)
    return Run(watch=watch, execution_time=EXECUTED, triggered_time=scheduled, scheduled_time=scheduled,
               services=Services(es=es, http=http))


def run_input(definition: dict, run: Run) -> dict:
    component = parse_input(definition)
    return INPUTS.get(component.type).execute(component.config, run)


@pytest.fixture
def logs(es, index_name):
    """Five documents around the window [10:00, 10:05) of SCHEDULED; three inside it are failures."""
    es.indices.create(index=index_name, mappings={"properties": {
        "@timestamp": {"type": "date"}, "host": {"type": "keyword"}, "outcome": {"type": "keyword"},
        "message": {"type": "text"}}})
    docs = [
        ("2026-11-29T09:59:59.999Z", "web-1", "failure", "too early"),
        ("2026-11-29T10:00:00Z", "web-1", "failure", "login failed"),
        ("2026-11-29T10:01:30Z", "web-1", "failure", "login failed again"),
        ("2026-11-29T10:04:59.999Z", "web-2", "failure", "login failed: bad \"password\""),
        ("2026-11-29T10:05:00.001Z", "web-3", "failure", "too late"),
    ]
    for number, (stamp, host, outcome, message) in enumerate(docs):
        es.index(index=index_name, id=str(number), document={"@timestamp": stamp, "host": host,
                                                             "outcome": outcome, "message": message})
    es.indices.refresh(index=index_name)
    return index_name


def window_search(index: str, upper: str = "lt", **request) -> dict:
    return {"search": {"request": {"indices": [index], "body": {
        "size": 10,
        "sort": [{"@timestamp": "asc"}],
        "query": {"bool": {"filter": [
            {"range": {"@timestamp": {"gte": "{{ctx.trigger.scheduled_time}}||-5m",
                                      upper: "{{ctx.trigger.scheduled_time}}"}}},
            {"term": {"outcome": "failure"}}]}},
        "aggs": {"hosts": {"terms": {"field": "host"}}}}, **request}}}


def test_search_window_from_scheduled_time_and_terms_aggregation(es, logs):
    result = run_input(window_search(logs), make_run(es))
    payload = result["payload"]
    assert result["type"] == "search" and result["status"] == "success"
    assert payload["hits"]["total"] == 3  # rest_total_hits_as_int defaults to true (trap 1)
    assert [hit["_id"] for hit in payload["hits"]["hits"]] == ["1", "2", "3"]
    assert payload["aggregations"]["hosts"]["buckets"] == [{"key": "web-1", "doc_count": 2},
                                                           {"key": "web-2", "doc_count": 1}]
    assert payload["_shards"]["failed"] == 0 and payload["timed_out"] is False
    request = result["search"]["request"]
    assert request["search_type"] == "query_then_fetch"
    assert request["indices"] == [logs]
    assert request["rest_total_hits_as_int"] is True
    assert request["body"]["query"]["bool"]["filter"][0] == {
        "range": {"@timestamp": {"gte": "2026-11-29T10:05Z||-5m", "lt": "2026-11-29T10:05Z"}}}


def test_lte_on_a_minute_precision_time_rounds_up_to_the_whole_minute(es, logs):
    # Watcher 8.x prints a whole-minute time as 10:05Z; Elasticsearch fills the missing seconds
    # with their maximum for lte, so the 10:05:00.001 document is inside: what Watcher does too.
    result = run_input(window_search(logs, upper="lte"), make_run(es))
    assert [hit["_id"] for hit in result["payload"]["hits"]["hits"]] == ["1", "2", "3", "4"]


def test_scheduled_time_with_microseconds_is_accepted_by_elasticsearch(es, logs):
    scheduled = dt.datetime(2026, 11, 29, 10, 4, 59, 999_500, tzinfo=dt.timezone.utc)  # prints .999500
    result = run_input(window_search(logs), make_run(es, scheduled=scheduled))
    assert result["search"]["request"]["body"]["query"]["bool"]["filter"][0]["range"]["@timestamp"]["lt"] == \
        "2026-11-29T10:04:59.999500Z"
    assert result["payload"]["hits"]["total"] == 3


def test_rest_total_hits_as_int_false_gives_the_object(es, logs):
    result = run_input(window_search(logs, rest_total_hits_as_int=False), make_run(es))
    assert result["payload"]["hits"]["total"] == {"value": 3, "relation": "eq"}
    assert result["search"]["request"]["rest_total_hits_as_int"] is False


def test_extract_keeps_only_the_listed_paths(es, logs):
    definition = window_search(logs)
    definition["search"]["extract"] = ["hits.total", "aggregations.hosts.buckets"]
    payload = run_input(definition, make_run(es))["payload"]
    assert payload == {"hits": {"total": 3}, "aggregations": {"hosts": {"buckets": [
        {"key": "web-1", "doc_count": 2}, {"key": "web-2", "doc_count": 1}]}}}


def test_values_are_json_escaped_into_the_body(es, logs):
    run = make_run(es, metadata={"phrase": 'bad "password"'})
    result = run_input({"search": {"request": {"indices": logs, "body": {
        "query": {"match_phrase": {"message": "{{ctx.metadata.phrase}}"}}}}}}, run)
    assert result["search"]["request"]["body"] == {"query": {"match_phrase": {"message": 'bad "password"'}}}
    assert [hit["_id"] for hit in result["payload"]["hits"]["hits"]] == ["3"]


def test_missing_index_with_default_indices_options_is_zero_hits(es, index_name):
    result = run_input({"search": {"request": {"indices": [f"{index_name}-missing"],
                                                "body": {"query": {"match_all": {}}}}}}, make_run(es))
    assert result["payload"]["hits"]["total"] == 0
    assert result["payload"]["hits"]["hits"] == []


def test_missing_index_with_strict_indices_options_fails(es, index_name):
    definition = {"search": {"request": {"indices": [f"{index_name}-missing"], "body": {},
                                         "indices_options": {"ignore_unavailable": False}}}}
    with pytest.raises(ApiError) as caught:
        run_input(definition, make_run(es))
    assert caught.value.meta.status == 404
    assert caught.value.error == "index_not_found_exception"


def test_dfs_query_then_fetch(es, logs):
    result = run_input(window_search(logs, search_type="dfs_query_then_fetch"), make_run(es))
    assert result["payload"]["hits"]["total"] == 3
    assert result["search"]["request"]["search_type"] == "dfs_query_then_fetch"


def test_date_math_index_name_is_resolved_by_elasticsearch(es, index_name):
    today = dt.datetime.now(dt.timezone.utc).strftime("%Y.%m.%d")
    daily = f"{index_name}-{today}"
    try:
        es.index(index=daily, document={"n": 1}, refresh=True)
        result = run_input({"search": {"request": {"indices": [f"<{index_name}-{{now/d{{yyyy.MM.dd}}}}>"],
                                                    "body": {}}}}, make_run(es))
        assert result["payload"]["hits"]["total"] == 1
        assert result["payload"]["hits"]["hits"][0]["_index"] == daily
    finally:
        es.options(ignore_status=404).indices.delete(index=daily)


def test_bad_query_raises_the_cluster_error(es, logs):
    with pytest.raises(BadRequestError):
        run_input({"search": {"request": {"indices": [logs], "body": {"query": {"nope": {}}}}}}, make_run(es))


def test_inline_template_with_params(es, logs):
    result = run_input({"search": {"request": {"indices": [logs], "template": {
        "source": {"query": {"term": {"host": "{{host}}"}}, "size": "{{size}}"},
        "params": {"host": "web-2", "size": 5}}}}}, make_run(es))
    assert result["payload"]["hits"]["total"] == 1
    assert result["search"]["request"]["body"] == {"query": {"term": {"host": "web-2"}}, "size": "5"}


def test_stored_template_by_id(es, requires_scripting, logs):
    template_id = f"{logs}-by-host"
    source = '{"query": {"term": {"host": "{{host}}"}}}'
    es.put_script(id=template_id, script={"lang": "mustache", "source": source})
    try:
        result = run_input({"search": {"request": {"indices": [logs], "template": {
            "id": template_id, "params": {"host": "web-1"}}}}}, make_run(es))
        assert result["payload"]["hits"]["total"] == 3
        assert result["search"]["request"]["body"] == {"query": {"term": {"host": "web-1"}}}
    finally:
        es.options(ignore_status=404).delete_script(id=template_id)


def test_missing_stored_template_fails_clearly(es, index_name):
    with pytest.raises(LookupError, match=r"unable to find stored search template \[nope-"):
        run_input({"search": {"request": {"indices": [index_name],
                                          "template": {"id": f"nope-{index_name}"}}}}, make_run(es))


# ------------------------------------------------------------------------------------------ chain

def test_chain_simple_then_search_referencing_the_first_payload(es, logs):
    definition = {"chain": {"inputs": [
        {"first": {"simple": {"host": "web-2", "minutes": 5}}},
        {"second": {"search": {"request": {"indices": [logs], "body": {"query": {"bool": {"filter": [
            {"term": {"host": "{{ctx.payload.first.host}}"}},
            {"range": {"@timestamp": {"gte": "{{ctx.trigger.scheduled_time}}||-{{ctx.payload.first.minutes}}m"}}},
        ]}}}}, "extract": ["hits.total"]}}},
    ]}}
    result = run_input(definition, make_run(es))
    assert result["payload"] == {"first": {"host": "web-2", "minutes": 5}, "second": {"hits": {"total": 1}}}
    assert result["chain"]["second"]["search"]["request"]["body"]["query"]["bool"]["filter"][1] == {
        "range": {"@timestamp": {"gte": "2026-11-29T10:05Z||-5m"}}}


def test_cluster_health_through_an_http_input(es_cluster):
    from urllib.parse import urlsplit

    url = urlsplit(es_cluster.url)
    if url.scheme != "http" or es_cluster.api_key or es_cluster.username:
        pytest.skip("the cluster under test needs TLS or credentials; this test calls it without them")
    result = run_input({"http": {"request": {"host": url.hostname, "port": url.port, "path": "/_cluster/health",
                                             "params": {"wait_for_status": "yellow", "timeout": "5s"}},
                                 "extract": ["status", "number_of_nodes"]}}, make_run())
    payload = result["payload"]
    assert payload["_status_code"] == 200
    assert payload["status"] in ("green", "yellow")
    assert payload["number_of_nodes"] == 1
    assert payload["_headers"]["content-type"] in (["application/json"], ["application/json; charset=UTF-8"])
    assert result["http"] == {"status_code": 200, "request": {
        "host": url.hostname, "port": url.port, "scheme": "http", "method": "get", "path": "/_cluster/health",
        "params": {"wait_for_status": "yellow", "timeout": "5s"}}}


# ------------------------------------------------------------------------------------------- http

def http_input(httpserver, path: str, **extra) -> dict:
    request = {"host": "127.0.0.1", "port": httpserver.port, "path": path, **extra.pop("request", {})}
    return {"http": {"request": request, **extra}}


def test_http_json_response_is_merged_into_the_payload(httpserver):
    httpserver.expect_request("/status", method="GET", query_string="watch=inputs-it",
                              headers={"X-Trace": "10:05"}).respond_with_json(
        {"ok": True, "items": [1, 2]}, headers={"X-Thing": "a"})
    run = make_run()
    result = run_input(http_input(httpserver, "/status", request={
        "params": {"watch": "{{ctx.watch_id}}"}, "headers": {"X-Trace": "10:05"}}), run)
    payload = result["payload"]
    assert payload["ok"] is True and payload["items"] == [1, 2]
    assert payload["_status_code"] == 200
    assert payload["_headers"]["content-type"] in (["application/json"], ["application/json; charset=UTF-8"])
    assert payload["_headers"]["x-thing"] == ["a"]
    assert result["http"] == {"status_code": 200, "request": {
        "host": "127.0.0.1", "port": httpserver.port, "scheme": "http", "method": "get", "path": "/status",
        "params": {"watch": "inputs-it"}, "headers": {"X-Trace": "10:05"}}}


def test_http_top_level_array_goes_under_data(httpserver):
    httpserver.expect_request("/list").respond_with_json([{"id": 1}, {"id": 2}])
    payload = run_input(http_input(httpserver, "/list"), make_run())["payload"]
    assert payload["data"] == [{"id": 1}, {"id": 2}]


def test_http_text_goes_under_value_and_404_is_not_a_failure(httpserver):
    httpserver.expect_request("/gone").respond_with_data("not here", status=404, content_type="text/plain")
    result = run_input(http_input(httpserver, "/gone"), make_run())
    assert result["status"] == "success"
    assert result["payload"]["_status_code"] == 404
    assert result["payload"]["_value"] == "not here"
    assert result["http"]["status_code"] == 404


def test_http_yaml_and_forced_text(httpserver):
    httpserver.expect_request("/yaml").respond_with_data("---\nstatus: up\ncount: 3\n")
    payload = run_input(http_input(httpserver, "/yaml"), make_run())["payload"]
    assert payload["status"] == "up" and payload["count"] == 3
    httpserver.expect_request("/json-as-text").respond_with_data('{"a": 1}', content_type="application/json")
    payload = run_input(http_input(httpserver, "/json-as-text", response_content_type="text"), make_run())["payload"]
    assert payload["_value"] == '{"a": 1}'


def test_http_post_with_basic_auth_is_masked_in_the_result(httpserver):
    import base64

    token = base64.b64encode(b"elastic:s3cret").decode()
    httpserver.expect_request("/hook", method="POST", headers={"Authorization": f"Basic {token}"},
                              data='{"watch":"inputs-it"}').respond_with_json({"accepted": True})
    result = run_input(http_input(httpserver, "/hook", request={
        "method": "post", "body": '{"watch":"{{ctx.watch_id}}"}',
        "auth": {"basic": {"username": "elastic", "password": "s3cret"}}}), make_run())
    assert result["payload"]["accepted"] is True
    assert result["http"]["request"]["auth"] == {"basic": {"username": "elastic", "password": "::es_redacted::"}}
    assert "s3cret" not in json.dumps(result)


def test_http_declared_json_that_does_not_parse_fails(httpserver):
    httpserver.expect_request("/broken").respond_with_data("{nope", content_type="application/json")
    with pytest.raises(ValueError, match=r"does not appear to be \[json\]"):
        run_input(http_input(httpserver, "/broken"), make_run())


def test_http_uses_the_shared_client_when_given(httpserver):
    import httpx

    httpserver.expect_request("/shared").respond_with_json({"n": 1})
    with httpx.Client() as client:
        payload = run_input(http_input(httpserver, "/shared"), make_run(http=client))["payload"]
    assert payload["n"] == 1
