"""Parsing of input and transform bodies, and the pure parts of their execution (no cluster).

What Elasticsearch decides (queries, date math, totals) is tested in tests/integration/test_inputs_es.py.
"""

from __future__ import annotations

import datetime as dt

import pytest

from watcher.model.watch import Component, Trigger, Watch
from watcher.model.problems import Reader
from watcher.model.source import load_text
from watcher.engine.context import Run, Services
from watcher.engine.inputs import REGISTRY as INPUTS
from watcher.engine.inputs import http as http_input
from watcher.engine.searching import extract_paths, render_body, request_echo
from watcher.engine.transforms import REGISTRY as TRANSFORMS

T0 = dt.datetime(2024, 5, 1, 10, 15, tzinfo=dt.timezone.utc)


def parse(text: str, registry=INPUTS, key: str = "input"):
    document = load_text(text, "w.yaml")
    reader = Reader(document)
    component = registry.parse(reader, document.data[key], (key,))
    return component, [str(p) for p in reader.problems]


def make_run(payload=None, es=None) -> Run:
    watch = Watch(id="w", file="w.json", trigger=Trigger("interval", None, None, {}),
                  input=Component("none", None, {}), condition=Component("always", None, {}),
                  transform=None, actions=(), throttle_period=None, metadata={"size": 3})
    return Run(watch=watch, execution_time=T0, triggered_time=T0, scheduled_time=T0,
               services=Services(es=es), payload=payload or {})


# ------------------------------------------------------------------------------------ simple/none

def test_simple_payload_is_the_object_and_a_copy():
    component, problems = parse("input: {simple: {a: 1, b: [x, y]}}")
    assert problems == []
    result = INPUTS.get("simple").execute(component.config, make_run())
    assert result == {"type": "simple", "status": "success", "payload": {"a": 1, "b": ["x", "y"]}}
    result["payload"]["b"].append("z")
    assert component.config == {"a": 1, "b": ["x", "y"]}


def test_simple_rejects_a_list():
    _, problems = parse("input: {simple: [1, 2]}")
    assert problems == ["w.yaml:1:17: input.simple: expected an object whose keys become the payload, "
                        "such as {name: value}, found a list of 2 items"]


def test_none_input():
    component, problems = parse("input: {none: {}}")
    assert problems == []
    assert INPUTS.get("none").execute(component.config, make_run()) == {
        "type": "none", "status": "success", "payload": {}}
    _, problems = parse("input: {none: {x: 1}}")
    assert problems == ["w.yaml:1:15: input.none: expected an empty object {}, found a mapping with keys x"]


# ------------------------------------------------------------------------------------------ search

def test_search_defaults():
    component, problems = parse("input: {search: {request: {indices: 'logs-*, metrics-*', body: {size: 0}}}}")
    assert problems == []
    spec = component.config
    assert spec.request.indices == ("logs-*", "metrics-*")
    assert spec.request.search_type == "query_then_fetch"
    assert spec.request.rest_total_hits_as_int is True
    assert spec.request.indices_options == {"expand_wildcards": ["open"], "ignore_unavailable": True,
                                            "allow_no_indices": True}
    assert spec.timeout == dt.timedelta(minutes=1)
    assert spec.extract is None


def test_search_transform_default_timeout_is_30s_and_no_extract():
    component, problems = parse("transform: {search: {request: {body: {}}, timeout_in_millis: 1500}}",
                                TRANSFORMS, "transform")
    assert problems == []
    assert component.config.timeout == dt.timedelta(milliseconds=1500)
    component, problems = parse("transform: {search: {request: {}}}", TRANSFORMS, "transform")
    assert component.config.timeout == dt.timedelta(seconds=30)
    _, problems = parse("transform: {search: {request: {}, extract: [a]}}", TRANSFORMS, "transform")
    assert problems == ["w.yaml:1:35: transform.search.extract: unknown key 'extract'; "
                        "expected one of: dynamic_name_timezone, request, timeout, timeout_in_millis"]


def test_search_problems_name_field_expected_and_found():
    text = """
input:
  search:
    request:
      indices: [1]
      search_type: scan
      rest_total_hits_as_int: maybe
      indices_options: {expand_wildcards: everything, ignore_unavailable: yes please}
    extract: hits.total
    timeout: 5x
"""
    component, problems = parse(text)
    assert component is None
    assert problems == [
        "w.yaml:5:16: input.search.request.indices: expected a list of index names or a comma-separated "
        "string such as 'logs-*,metrics-*', found a list of 1 item",
        "w.yaml:6:20: input.search.request.search_type: expected one of query_then_fetch, "
        "dfs_query_then_fetch, found a string 'scan'",
        "w.yaml:8:43: input.search.request.indices_options.expand_wildcards: expected one or more of open, "
        "closed, hidden, none, all, found a string 'everything'",
        "w.yaml:8:75: input.search.request.indices_options.ignore_unavailable: expected true or false, "
        "found a string 'yes please'",
        "w.yaml:7:31: input.search.request.rest_total_hits_as_int: expected true or false, found a string 'maybe'",
        "w.yaml:9:14: input.search.extract: expected a list of dot paths such as [hits.total, "
        "aggregations.x.value], found a string 'hits.total'",
        "w.yaml:10:14: input.search.timeout: expected a duration such as 30s, 5m, 1.5h (units ms, s, m, h, d, w), "
        'found "5x" (unknown unit "x")',
    ]


def test_search_missing_request_and_template_needs_one_of_source_id():
    _, problems = parse("input: {search: {extract: [a]}}")
    assert problems == ["w.yaml:1:9: input.search: missing required field 'request'"]
    _, problems = parse("input: {search: {request: {template: {params: {a: 1}}}}}")
    assert problems == ["w.yaml:1:28: input.search.request.template: expected exactly one of 'source' "
                        "(inline template) or 'id' (stored template)"]


def test_body_is_rendered_in_json_escaping_mode():
    component, _ = parse("""
input:
  search:
    request:
      body:
        query:
          bool:
            filter:
              - range: {"@timestamp": {gte: "{{ctx.trigger.scheduled_time}}||-5m"}}
              - term: {msg: "{{ctx.payload.msg}}"}
        size: "{{ctx.metadata.size}}"
""")
    run = make_run(payload={"msg": 'say "hi"\\now'})
    body = render_body(component.config.request, run.model())
    assert body == {"query": {"bool": {"filter": [
        {"range": {"@timestamp": {"gte": "2024-05-01T10:15Z||-5m"}}},
        {"term": {"msg": 'say "hi"\\now'}}]}}, "size": "3"}


def test_search_body_is_prepared_at_load_and_a_bad_template_still_fails_the_run_not_the_load():
    component, problems = parse("""
input:
  search:
    request:
      body: {query: {term: {msg: "{{ctx.payload.msg}}"}}}
""")
    assert problems == []
    request = component.config.request
    assert request.body_source == '{"query":{"term":{"msg":"{{ctx.payload.msg}}"}}}'
    assert request.body_template is not None
    run = make_run(payload={"msg": "x"})
    assert render_body(request, run.model()) == {"query": {"term": {"msg": "x"}}}
    assert render_body(request, run.model()) == {"query": {"term": {"msg": "x"}}}  # the same template, again

    broken, problems = parse("""
input:
  search:
    request:
      body: {query: {term: {msg: "{{#ctx.payload.msg}}"}}}
""")
    assert problems == [] and broken.config.request.body_template is None   # loads: the run reports it
    with pytest.raises(Exception, match="msg"):
        render_body(broken.config.request, run.model())


def test_inline_template_merges_params_over_the_model():
    component, problems = parse("""
input:
  search:
    request:
      template:
        source: {size: "{{size}}", query: {term: {host: "{{ctx.metadata.size}}-{{host}}"}}}
        params: {size: 7, host: web}
""")
    assert problems == []
    request = component.config.request
    body = render_body(request, make_run().model())
    assert body == {"size": "7", "query": {"term": {"host": "3-web"}}}
    assert request_echo(request, body) == {
        "search_type": "query_then_fetch", "indices": [], "rest_total_hits_as_int": True, "body": body,
        "template": {"source": {"size": "{{size}}", "query": {"term": {"host": "{{ctx.metadata.size}}-{{host}}"}}},
                     "params": {"size": 7, "host": "web"}}}


class StoredScripts:
    """Stands in for the client's ``get_script`` (the GET _scripts/<id> response shape)."""

    def __init__(self, scripts):
        self.scripts = scripts

    def options(self, **_):
        return self

    def get_script(self, id):
        if id in self.scripts:
            return {"_id": id, "found": True, "script": {"lang": "mustache", "source": self.scripts[id]}}
        return {"_id": id, "found": False}


def test_stored_template_is_fetched_and_rendered_here():
    component, _ = parse("input: {search: {request: {template: {id: by-host, params: {host: db}}}}}")
    es = StoredScripts({"by-host": '{"query":{"term":{"host":"{{host}}"}}}'})
    assert render_body(component.config.request, make_run().model(), es) == {"query": {"term": {"host": "db"}}}
    component, _ = parse("input: {search: {request: {template: {id: nope}}}}")
    with pytest.raises(LookupError, match=r"unable to find stored search template \[nope\]"):
        render_body(component.config.request, make_run().model(), es)


def test_rendered_body_must_be_json():
    component, _ = parse("input: {search: {request: {template: {source: '{\"size\": {{n}}'}}}}")
    with pytest.raises(ValueError, match="not valid JSON"):
        render_body(component.config.request, make_run().model())


def test_echo_includes_non_default_indices_options():
    component, _ = parse("input: {search: {request: {indices: [a], search_type: DFS_QUERY_THEN_FETCH, "
                         "rest_total_hits_as_int: false, indices_options: {ignore_unavailable: false}}}}")
    assert request_echo(component.config.request, {}) == {
        "search_type": "dfs_query_then_fetch", "indices": ["a"], "rest_total_hits_as_int": False,
        "indices_options": {"expand_wildcards": ["open"], "ignore_unavailable": False, "allow_no_indices": True}}


def test_extract_keeps_structure():
    response = {"took": 3, "hits": {"total": 3, "max_score": None,
                                    "hits": [{"_id": "1", "_source": {"a": 1, "b": 2}}, {"_id": "2"}]},
                "aggregations": {"hosts": {"buckets": [{"key": "a", "doc_count": 2}]}}}
    assert extract_paths(response, ["hits.total", "aggregations.hosts.buckets"]) == {
        "hits": {"total": 3}, "aggregations": {"hosts": {"buckets": [{"key": "a", "doc_count": 2}]}}}
    assert extract_paths(response, ["hits.hits._id"]) == {"hits": {"hits": [{"_id": "1"}, {"_id": "2"}]}}
    assert extract_paths(response, ["hits.nope", "missing.x", "hits.max_score"]) == {"hits": {}}
    assert extract_paths(response, ["hits.total.value"]) == {"hits": {"total": 3}}  # Watcher keeps the int
    assert extract_paths(response, ["hits.to"]) == {"hits": {}}  # whole segments only: no total


# ------------------------------------------------------------------------------------------- chain

def test_chain_input_parses_links_in_order():
    component, problems = parse("""
input:
  chain:
    inputs:
      - first: {simple: {x: 1}}
      - second: {search: {request: {body: {}}}}
      - third: {transform: {script: "return ['a': 1]"}}
""")
    assert problems == []
    assert [(link.name, link.component.type, link.transform) for link in component.config] == [
        ("first", "simple", False), ("second", "search", False), ("third", "script", True)]


def test_chain_input_problems():
    _, problems = parse("""
input:
  chain:
    inputs:
      - first: {simple: {x: 1}}
        second: {simple: {}}
      - first: {simple: {}}
      - third: {nope: {}}
""")
    assert problems == [
        "w.yaml:5:9: input.chain.inputs[0]: expected an object with exactly one key, the input's name, "
        "such as {first: {simple: {}}}, found a mapping with keys first, second",
        "w.yaml:8:17: input.chain.inputs[2].third.nope: unknown input type 'nope' (did you mean 'none'?); "
        "expected one of: chain, http, none, search, simple",
    ]


def test_chain_input_later_links_see_earlier_payloads_and_failures_do_not_stop_it():
    component, _ = parse("""
input:
  chain:
    inputs:
      - first: {simple: {port: 1}}
      - second: {http: {request: {host: 127.0.0.1, port: 1, path: "/{{ctx.payload.first.port}}",
                                   connection_timeout: 200ms}}}
      - third: {simple: {ok: true}}
""")
    run = make_run(payload={"before": True})
    result = INPUTS.get("chain").execute(component.config, run)
    assert result["payload"] == {"first": {"port": 1}, "second": {}, "third": {"ok": True}}
    assert result["chain"]["second"]["status"] == "failure"
    assert result["chain"]["second"]["type"] == "http"
    assert run.payload == {"before": True}


# -------------------------------------------------------------------------------------------- http

def test_http_request_fields_and_url_shortcut():
    component, problems = parse("""
input:
  http:
    request:
      url: "https://es.example.com/_cluster/health?level=indices&x=a%20b"
      method: POST
      headers: {Authorization: "ApiKey {{ctx.metadata.size}}"}
      auth: {basic: {username: elastic, password: changeme}}
      body: '{"q": "{{ctx.payload.q}}"}'
      read_timeout: 2s
    response_content_type: YAML
""")
    assert problems == []
    config = component.config
    assert config.response_content_type == "yaml"
    request = http_input.render_request(config.request, make_run(payload={"q": 'a"b'}).model())
    assert request == {
        "host": "es.example.com", "port": 443, "scheme": "https", "method": "post", "path": "/_cluster/health",
        "params": {"level": "indices", "x": "a b"}, "headers": {"Authorization": "ApiKey 3"},
        "auth": {"basic": {"username": "elastic", "password": "changeme"}}, "body": '{"q": "a"b"}',
        "read_timeout_millis": 2000}
    shown = http_input.masked(request)
    assert shown["auth"] == {"basic": {"username": "elastic", "password": "::es_redacted::"}}
    assert shown["headers"] == {"Authorization": "::es_redacted::"}
    assert "changeme" not in repr(shown)


def test_http_request_problems_never_echo_the_password():
    _, problems = parse("""
input:
  http:
    request:
      host: example.com
      method: patch
      auth: {basic: {user: elastic, password: s3cret}}
""")
    assert problems == [
        "w.yaml:6:15: input.http.request.method: expected one of head, get, post, put, delete, found a string 'patch'",
        "w.yaml:7:13: input.http.request.auth: expected {basic: {username: ..., password: ...}}",
        "w.yaml:4:5: input.http.request: missing required field 'port' (or 'url')",
    ]
    assert not any("s3cret" in p for p in problems)
