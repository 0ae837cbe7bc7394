"""Conditions without a cluster: parsing (exact messages and positions) and Watcher's compare semantics.

Reference: watcher-semantics §1.4 (conditions), §4 (result JSON), §8 traps 4–6.
"""

from __future__ import annotations

import datetime as dt
import math

import pytest

from watcher.model.watch import Component, Trigger, Watch
from watcher.model.problems import Reader
from watcher.model.source import load_text
from watcher.engine.conditions import REGISTRY, evaluate
from watcher.engine.context import Run, Services
from watcher.es.painless import CTX_PARAM, DATES_PRELUDE, PainlessError, ScriptUnavailable, execute_script, prepare_source

UTC = dt.timezone.utc
NOW = dt.datetime(2024, 5, 1, 10, 5, 0, tzinfo=UTC)  # the pinned clock: date math "now"
EXECUTION = dt.datetime(2024, 5, 1, 9, 0, 0, 123456, tzinfo=UTC)  # differs from NOW on purpose


def make_run(payload: dict, *, metadata: dict | None = None, es=None) -> Run:
    watch = Watch(id="w", file="w.json", trigger=Trigger("interval", None, None, {}),
                  input=Component("simple", {}, {}), condition=Component("always", None, {}), transform=None,
                  actions=(), throttle_period=None, metadata=metadata)
    return Run(watch=watch, execution_time=EXECUTION, triggered_time=EXECUTION, scheduled_time=EXECUTION,
               services=Services(es=es, clock=lambda: NOW), payload=payload)


def parse(text: str):
    """Parse ``condition:`` of a YAML snippet → (component or None, problem strings)."""
    document = load_text(text, "w.yaml")
    reader = Reader(document)
    component = REGISTRY.parse(reader, document.data["condition"], ("condition",))
    return component, [str(p) for p in reader.problems]


def run_condition(definition: str, payload: dict, **kwargs) -> dict:
    component, problems = parse(definition)
    assert problems == []
    run = make_run(payload, **kwargs)
    return evaluate(component, run, run.model())


def compare(path: str, op: str, value, payload: dict, **kwargs) -> dict:
    component = Component("compare", REGISTRY.get("compare").CompareConfig(path, op, value), {})
    run = make_run(payload, **kwargs)
    return evaluate(component, run, run.model())


# --------------------------------------------------------------------------------------------------
# always / never


def test_always_and_never_results():
    assert run_condition("condition: {always: {}}", {}) == {"type": "always", "status": "success", "met": True}
    assert run_condition("condition: {never: {}}", {}) == {"type": "never", "status": "success", "met": False}


@pytest.mark.parametrize("body, found", [("{a: 1}", "a mapping with keys a"), ("null", "nothing (null)"),
                                         ("[]", "a list of 0 items")])
def test_always_takes_only_an_empty_mapping(body, found):
    assert parse(f"condition:\n  always: {body}\n") == (
        None, [f"w.yaml:2:11: condition.always: expected an empty mapping {{}}, found {found}"])


def test_unknown_condition_type_suggests_the_closest():
    assert parse("condition:\n  nevr: {}\n")[1] == [
        "w.yaml:2:3: condition.nevr: unknown condition type 'nevr' (did you mean 'never'?); "
        "expected one of: always, array_compare, compare, never, script"]


# --------------------------------------------------------------------------------------------------
# compare


def test_compare_result_shape_from_yaml():
    result = run_condition("condition:\n  compare:\n    ctx.payload.hits.total:\n      gte: 5\n",
                           {"hits": {"total": 7}})
    assert result == {"type": "compare", "status": "success", "met": True,
                      "compare": {"resolved_values": {"ctx.payload.hits.total": 7}}}


@pytest.mark.parametrize("op, expected", [("eq", False), ("not_eq", True), ("gt", True), ("gte", True),
                                          ("lt", False), ("lte", False)])
def test_every_operator_on_numbers(op, expected):
    assert compare("ctx.payload.n", op, 5, {"n": 7})["met"] is expected


@pytest.mark.parametrize("op, expected", [("eq", True), ("not_eq", False), ("gt", False), ("gte", True),
                                          ("lt", False), ("lte", True)])
def test_every_operator_on_equal_values_int_vs_float(op, expected):
    assert compare("ctx.payload.n", op, 5.0, {"n": 5})["met"] is expected


def test_configured_string_makes_a_string_comparison():
    # Trap 5: "gte": "5" compares text, and "10" < "5".
    assert compare("ctx.payload.n", "gte", "5", {"n": 10})["met"] is False
    assert compare("ctx.payload.n", "lt", "5", {"n": 10})["met"] is True
    # …while a configured number coerces a numeric string on the left.
    assert compare("ctx.payload.n", "gte", 5, {"n": "10"})["met"] is True
    assert compare("ctx.payload.n", "gte", 5, {"n": " 7 "})["met"] is True


@pytest.mark.parametrize("op, expected", [("eq", False), ("not_eq", True), ("gt", False), ("gte", False),
                                          ("lt", False), ("lte", False)])
def test_missing_value_is_null_and_only_not_eq_holds(op, expected):
    result = compare("ctx.payload.hits.total.value", op, 5, {"hits": {"total": 7}})
    assert result["met"] is expected
    assert result["compare"]["resolved_values"] == {"ctx.payload.hits.total.value": None}


def test_eq_null_tests_for_a_missing_value():
    assert compare("ctx.payload.missing", "eq", None, {})["met"] is True
    assert compare("ctx.payload.present", "eq", None, {"present": 0})["met"] is False
    assert compare("ctx.payload.present", "not_eq", None, {"present": 0})["met"] is True


@pytest.mark.parametrize("op, expected", [("eq", False), ("not_eq", True), ("gt", False), ("lt", False)])
def test_nan_is_incomparable(op, expected):
    assert compare("ctx.payload.n", op, 5, {"n": math.nan})["met"] is expected


@pytest.mark.parametrize("left, op, right, expected", [
    ("abc", "gt", 5, False),        # not a number: incomparable
    ("abc", "not_eq", 5, True),
    (True, "eq", 1, False),         # a boolean is not a number
    (True, "eq", True, True),
    (True, "gt", False, False),     # booleans only compare for equality
    ([1, 2], "eq", [1, 2.0], True),
    ({"a": 5}, "eq", {"a": 5.0}, True),
    ({"a": 5}, "not_eq", {"a": 6}, True),
    (7, "gt", "10", True),          # "7" > "10" as text
])
def test_lenient_pairs(left, op, right, expected):
    assert compare("ctx.payload.v", op, right, {"v": left})["met"] is expected


def test_date_math_uses_the_pinned_clock_not_execution_time():
    result = compare("ctx.payload.last", "gte", "<{now-5m}>", {"last": "2024-05-01T10:03:00Z"})
    assert result == {"type": "compare", "status": "success", "met": True, "compare": {"resolved_values": {
        "ctx.payload.last": "2024-05-01T10:03:00Z", "now-5m": "2024-05-01T10:00:00.000Z"}}}
    # execution_time is 09:00:00.123456; against it the condition would be met, against the clock not.
    result = compare("ctx.execution_time", "gte", "<{now-5m}>", {})
    assert result["met"] is False
    assert result["compare"]["resolved_values"] == {"ctx.execution_time": "2024-05-01T09:00:00.123Z",
                                                    "now-5m": "2024-05-01T10:00:00.000Z"}


def test_date_math_rounds_down_and_compares_epoch_millis():
    result = compare("ctx.payload.ts", "gte", "<{now/d}>", {"ts": 1714521600000})  # 2024-05-01T00:00:00Z
    assert result["met"] is True
    assert result["compare"]["resolved_values"]["now/d"] == "2024-05-01T00:00:00.000Z"
    assert compare("ctx.payload.ts", "gt", "<{now/d}>", {"ts": 1714521600000})["met"] is False
    assert compare("ctx.payload.ts", "lt", "<{now/d}>", {"ts": "not a date"})["met"] is False


def test_date_math_must_be_the_whole_string():
    # " <{now}>" is a plain string, compared as text.
    result = compare("ctx.payload.s", "eq", " <{now}>", {"s": " <{now}>"})
    assert result["met"] is True
    assert result["compare"]["resolved_values"] == {"ctx.payload.s": " <{now}>"}


def test_path_value_resolves_from_ctx():
    result = compare("ctx.payload.hits.total", "gte", "{{ctx.metadata.threshold}}", {"hits": {"total": 7}},
                     metadata={"threshold": 5})
    assert result["met"] is True
    assert result["compare"]["resolved_values"] == {"ctx.payload.hits.total": 7, "ctx.metadata.threshold": 5}
    # The resolved value keeps its type: a string threshold means a string comparison.
    assert compare("ctx.payload.n", "gte", "{{ctx.payload.t}}", {"n": 10, "t": "5"})["met"] is False
    # Blanks are part of the path (as in Watcher): nothing is found, so only not_eq holds.
    spaced = compare("ctx.payload.n", "eq", "{{ ctx.payload.n }}", {"n": 10})
    assert spaced["met"] is False
    assert spaced["compare"]["resolved_values"] == {"ctx.payload.n": 10, " ctx.payload.n ": None}


def test_dotted_path_with_list_indexes():
    payload = {"hits": {"hits": [{"_source": {"level": "warn"}}, {"_source": {"level": "error"}}]}}
    assert compare("ctx.payload.hits.hits.1._source.level", "eq", "error", payload)["met"] is True
    assert compare("ctx.payload.hits.hits.0._source.level", "eq", "error", payload)["met"] is False
    out_of_range = compare("ctx.payload.hits.hits.5._source.level", "not_eq", "error", payload)
    assert out_of_range["met"] is True
    assert out_of_range["compare"]["resolved_values"] == {"ctx.payload.hits.hits.5._source.level": None}


def test_operator_letter_case_is_ignored_like_watcher():
    component, problems = parse("condition:\n  compare:\n    ctx.payload.n: {GTE: 5}\n")
    assert problems == []
    assert component.config.op == "gte"
    assert component.body == {"ctx.payload.n": {"GTE": 5}}


@pytest.mark.parametrize("yaml_text, problem", [
    ("condition:\n  compare:\n    ctx.payload.hits.total:\n      gtt: 5\n",
     "w.yaml:4:7: condition.compare.ctx.payload.hits.total.gtt: unknown comparison operator 'gtt' "
     "(did you mean 'gt'?); expected one of: eq, gt, gte, lt, lte, not_eq"),
    ("condition:\n  compare:\n    payload.hits.total: {gt: 5}\n",
     "w.yaml:3:5: condition.compare.payload.hits.total: expected a path starting with 'ctx.' such as "
     "ctx.payload.hits.total, found 'payload.hits.total'"),
    ("condition:\n  compare:\n    ctx.payload.hits.total: {gt: [1, 2]}\n",
     "w.yaml:3:34: condition.compare.ctx.payload.hits.total.gt: expected a number, string, boolean or null "
     "for 'gt' (only eq and not_eq compare objects and arrays), found a list of 2 items"),
    ("condition:\n  compare:\n    ctx.payload.n: {lte: {a: 1}}\n",
     "w.yaml:3:26: condition.compare.ctx.payload.n.lte: expected a number, string, boolean or null for 'lte' "
     "(only eq and not_eq compare objects and arrays), found a mapping with keys a"),
    ("condition:\n  compare:\n    ctx.payload.hits.total: {gt: \"<{now-5x}>\"}\n",
     "w.yaml:3:34: condition.compare.ctx.payload.hits.total.gt: could not resolve date math \"now-5x\": "
     "unit \"x\" is not supported (units y, M, w, d, h, H, m, s)"),
    ("condition:\n  compare:\n    ctx.a: {gt: 1}\n    ctx.b: {gt: 1}\n",
     "w.yaml:2:3: condition.compare: expected exactly one path such as ctx.payload.hits.total, found 2: ctx.a, ctx.b"),
    ("condition:\n  compare: {}\n",
     "w.yaml:2:3: condition.compare: expected exactly one path such as ctx.payload.hits.total, found 0: none"),
    ("condition:\n  compare:\n    ctx.a: {gt: 1, lt: 5}\n",
     "w.yaml:3:5: condition.compare.ctx.a: expected exactly one operator (one of: eq, not_eq, gt, gte, lt, lte), "
     "found 2: gt, lt"),
    ("condition:\n  compare:\n    ctx.a: 5\n",
     "w.yaml:3:12: condition.compare.ctx.a: expected an operator and value such as {gte: 5}, found an integer 5"),
    ("condition:\n  compare: ctx.a > 5\n",
     "w.yaml:2:12: condition.compare: expected a mapping such as {ctx.payload.hits.total: {gte: 5}}, "
     "found a string 'ctx.a > 5'"),
])
def test_compare_parse_problems(yaml_text, problem):
    assert parse(yaml_text) == (None, [problem])


def test_compare_accepts_objects_for_eq_and_json_form():
    component, problems = parse('{"condition": {"compare": {"ctx.payload.tags": {"eq": ["a", "b"]}}}}')
    assert problems == []
    assert component.config.value == ["a", "b"]


# --------------------------------------------------------------------------------------------------
# array_compare

BUCKETS = {"aggregations": {"top": {"buckets": [{"key": "a", "doc_count": 30}, {"key": "b", "doc_count": 3}]}}}


def array_condition(op_body: str, path: str = "doc_count", array: str = "ctx.payload.aggregations.top.buckets"):
    path_line = f"      path: {path}\n" if path is not None else ""
    return f"condition:\n  array_compare:\n    {array}:\n{path_line}      {op_body}\n"


def test_array_compare_result_shape_and_default_quantifier():
    result = run_condition(array_condition("gte: {value: 25}"), BUCKETS)
    assert result == {"type": "array_compare", "status": "success", "met": True, "array_compare": {
        "resolved_values": {"ctx.payload.aggregations.top.buckets": BUCKETS["aggregations"]["top"]["buckets"]}}}


@pytest.mark.parametrize("op_body, expected", [
    ("gte: {value: 25, quantifier: some}", True),
    ("gte: {value: 25, quantifier: all}", False),
    ("gte: {value: 3, quantifier: all}", True),
    ("gt: {value: 30}", False),
    ("lt: {value: 3}", False),
    ("lte: {value: 3}", True),
    ("eq: {value: 3, quantifier: ALL}", False),
    ("not_eq: {value: 3, quantifier: some}", True),
    ("gte: {value: '5', quantifier: some}", False),  # text: "30" < "5" and "3" < "5"
])
def test_array_compare_operators_and_quantifiers(op_body, expected):
    assert run_condition(array_condition(op_body), BUCKETS)["met"] is expected


@pytest.mark.parametrize("quantifier, expected", [("some", False), ("all", True)])
@pytest.mark.parametrize("payload", [{"aggregations": {"top": {"buckets": []}}}, {}, {"aggregations": {"top": None}}])
def test_array_compare_empty_or_missing_array(quantifier, expected, payload):
    result = run_condition(array_condition(f"gte: {{value: 1, quantifier: {quantifier}}}"), payload)
    assert result["met"] is expected
    assert result["array_compare"]["resolved_values"] == {"ctx.payload.aggregations.top.buckets": []}


def test_array_compare_incomparable_is_false_even_for_not_eq():
    payload = {"aggregations": {"top": {"buckets": [{"key": "a"}, {"key": "b", "doc_count": "many"}]}}}
    assert run_condition(array_condition("not_eq: {value: 5}"), payload)["met"] is False
    assert run_condition(array_condition("not_eq: {value: 5, quantifier: all}"), payload)["met"] is False
    # compare, on the same missing value, says not_eq holds.
    assert compare("ctx.payload.aggregations.top.buckets.0.doc_count", "not_eq", 5, payload)["met"] is True


def test_array_compare_default_path_is_the_element_itself():
    definition = array_condition("gt: {value: 2}", path=None, array="ctx.payload.values")
    assert run_condition(definition, {"values": [1, 2, 3]})["met"] is True
    definition = array_condition("gt: {value: 2, quantifier: all}", path=None, array="ctx.payload.values")
    assert run_condition(definition, {"values": [1, 2, 3]})["met"] is False


def test_array_compare_nested_element_path_and_path_value():
    payload = {"threshold": 10, "hosts": [{"stats": [{"errors": 4}]}, {"stats": [{"errors": 12}]}]}
    definition = array_condition("gte: {value: '{{ctx.payload.threshold}}'}", path="stats.0.errors",
                                 array="ctx.payload.hosts")
    result = run_condition(definition, payload)
    assert result["met"] is True
    assert result["array_compare"]["resolved_values"] == {"ctx.payload.threshold": 10,
                                                          "ctx.payload.hosts": payload["hosts"]}


def test_array_compare_date_math():
    payload = {"events": [{"at": "2024-05-01T09:00:00Z"}, {"at": "2024-05-01T10:04:00Z"}]}
    definition = array_condition("gte: {value: '<{now-5m}>'}", path="at", array="ctx.payload.events")
    result = run_condition(definition, payload)
    assert result["met"] is True
    assert result["array_compare"]["resolved_values"]["now-5m"] == "2024-05-01T10:00:00.000Z"
    definition = array_condition("gte: {value: '<{now-5m}>', quantifier: all}", path="at", array="ctx.payload.events")
    assert run_condition(definition, payload)["met"] is False


def test_array_compare_non_array_is_an_error():
    component, _ = parse(array_condition("gte: {value: 1}"))
    run = make_run({"aggregations": {"top": {"buckets": {"a": 1}}}})
    with pytest.raises(ValueError) as error:
        evaluate(component, run, run.model())
    assert str(error.value) == ("array_compare: the array path [ctx.payload.aggregations.top.buckets] did not "
                                "evaluate to an array, found a mapping with keys a")


@pytest.mark.parametrize("yaml_text, problems", [
    (array_condition("gte: {value: 25, quantifer: all}"),
     ["w.yaml:5:24: condition.array_compare.ctx.payload.aggregations.top.buckets.gte.quantifer: unknown key "
      "'quantifer' (did you mean 'quantifier'?); expected one of: quantifier, value"]),
    (array_condition("gte: {quantifier: any}"),
     ["w.yaml:5:7: condition.array_compare.ctx.payload.aggregations.top.buckets.gte: missing required field 'value'",
      "w.yaml:5:25: condition.array_compare.ctx.payload.aggregations.top.buckets.gte.quantifier: expected 'some' "
      "or 'all' (Watcher has no 'any': use 'some'), found a string 'any'"]),
    ("condition:\n  array_compare:\n    ctx.payload.b:\n      pth: doc_count\n      gte: {value: 1}\n",
     ["w.yaml:4:7: condition.array_compare.ctx.payload.b.pth: unknown key 'pth' (did you mean 'path'?); "
      "expected one of: eq, gt, gte, lt, lte, not_eq, path"]),
    ("condition:\n  array_compare:\n    ctx.payload.b:\n      path: doc_count\n",
     ["w.yaml:3:5: condition.array_compare.ctx.payload.b: expected exactly one comparison operator "
      "(one of: eq, not_eq, gt, gte, lt, lte) besides 'path', found 0"]),
    ("condition:\n  array_compare:\n    ctx.payload.b:\n      path: 5\n      gte: {value: 1}\n",
     ["w.yaml:4:13: condition.array_compare.ctx.payload.b.path: expected a dot path inside each element such "
      "as doc_count, found an integer 5"]),
    ("condition:\n  array_compare:\n    ctx.payload.b:\n      gte: 5\n",
     ["w.yaml:4:12: condition.array_compare.ctx.payload.b.gte: expected a mapping such as "
      "{value: 25, quantifier: some}, found an integer 5"]),
    ("condition:\n  array_compare:\n    ctx.payload.b:\n      gt: {value: [1]}\n",
     ["w.yaml:4:19: condition.array_compare.ctx.payload.b.gt.value: expected a number, string, boolean or null "
      "for 'gt' (only eq and not_eq compare objects and arrays), found a list of 1 item"]),
    ("condition:\n  array_compare:\n    hits:\n      gt: {value: 1}\n",
     ["w.yaml:3:5: condition.array_compare.hits: expected a path starting with 'ctx.' such as "
      "ctx.payload.hits.total, found 'hits'"]),
])
def test_array_compare_parse_problems(yaml_text, problems):
    assert parse(yaml_text) == (None, problems)


# --------------------------------------------------------------------------------------------------
# script: parsing, the source rewrite, and the request/response plumbing (the real cluster is in
# tests/integration/test_conditions_es.py)


def test_script_forms_parse_to_source_or_id():
    assert parse("condition:\n  script: return ctx.payload.hits.total > 5\n")[0].config == {
        "source": "return ctx.payload.hits.total > 5", "params": {}}
    component, problems = parse("condition:\n  script:\n    source: return true\n    lang: painless\n"
                                "    params: {threshold: 5}\n")
    assert problems == [] and component.config == {"source": "return true", "params": {"threshold": 5}}
    assert parse("condition:\n  script: {id: my_check, params: {a: 1}}\n")[0].config == {
        "id": "my_check", "params": {"a": 1}}


@pytest.mark.parametrize("yaml_text, problems", [
    ("condition:\n  script:\n    sorce: return true\n",
     ["w.yaml:3:5: condition.script.sorce: unknown key 'sorce' (did you mean 'source'?); "
      "expected one of: id, lang, params, source"]),
    ("condition:\n  script:\n    source: return true\n    id: x\n    lang: mustache\n    params: [1]\n",
     ["w.yaml:2:3: condition.script: expected exactly one of 'source' (inline Painless) or 'id' (a stored script), "
      "found both",
      "w.yaml:5:11: condition.script.lang: expected 'painless' (the only script language supported), "
      "found a string 'mustache'",
      "w.yaml:6:13: condition.script.params: expected a mapping of script parameters, found a list of 1 item"]),
    ("condition:\n  script: {id: x, lang: painless}\n",
     ["w.yaml:2:19: condition.script.lang: lang cannot be given for a stored script (it keeps its own)"]),
    ("condition:\n  script: {params: {}}\n",
     ["w.yaml:2:3: condition.script: expected exactly one of 'source' (inline Painless) or 'id' (a stored script), "
      "found neither"]),
    ("condition:\n  script: ''\n",
     ["w.yaml:2:11: condition.script: expected a Painless script, found a string ''"]),
    ("condition:\n  script: {source: return true, params: {_watcher_ctx: 1}}\n",
     ["w.yaml:2:42: condition.script.params._watcher_ctx: the parameter name '_watcher_ctx' is reserved "
      "(it carries ctx)"]),
])
def test_script_parse_problems(yaml_text, problems):
    assert parse(yaml_text) == (None, problems)


def test_condition_rewrite_touches_only_the_ctx_identifier():
    source = ("// ctx in a comment\n"
              "def s = \"ctx.payload\" + 'ctx'; def r = /ctx+/; def half = 4 / 2 / 1;\n"
              "return ctx.payload.buckets.stream().anyMatch(b -> b.ctx == null && b.doc_count > params.min)")
    prepared = prepare_source(source, json_result=False)
    assert prepared.source == (DATES_PRELUDE + f"Map __watcher_ctx = __watcher_dates(params.{CTX_PARAM});\n"
                               + source.replace("return ctx.", "return __watcher_ctx."))
    offset = prepared.source.index("anyMatch")
    assert prepared.original_offset(offset) == source.index("anyMatch")
    # An offset inside the rewritten identifier maps to where "ctx" was written.
    assert prepared.original_offset(prepared.source.index("__watcher_ctx.payload") + 3) == source.index("ctx.payload.b")


def test_json_rewrite_wraps_the_body_and_keeps_functions_first():
    source = "boolean big(def x) { x > params_like }\nreturn ['big': big(ctx.payload.n), 'p': params.p]"
    prepared = prepare_source(source)
    sent = prepared.source
    # The user's function stays at the top level, after our serialiser, before the wrapper.
    assert sent.index("String __watcher_json(def v)") < sent.index("boolean big(def x) { x > params_like }") \
        < sent.index("def __watcher_main(Map __watcher_params, Map __watcher_ctx) {")
    assert "return ['big': big(__watcher_ctx.payload.n), 'p': __watcher_params.p]\n}\n" in sent
    assert sent.endswith("return __watcher_json(__watcher_main(params, __watcher_dates(params._watcher_ctx)));\n")
    with_null = prepare_source(source, append_return_null=True).source
    assert "__watcher_params.p]\nreturn null;\n}\n" in with_null


class RecordingCluster:
    """Answers like the Painless execute API (body ``{"result": "<String.valueOf(result)>"}``) and
    records what was sent: this checks our side of the protocol only."""

    def __init__(self, result: str):
        self.result, self.sent = result, []

    def scripts_painless_execute(self, *, script, context=None):
        self.sent.append({"script": script, "context": context})
        return {"result": self.result}


def test_script_condition_sends_ctx_as_a_parameter_and_reads_the_boolean():
    cluster = RecordingCluster("true")
    result = run_condition("condition:\n  script:\n    source: return ctx.payload.n > params.min\n"
                           "    params: {min: 5}\n", {"n": 7}, metadata={"team": "ops"}, es=cluster)
    assert result == {"type": "script", "status": "success", "met": True}
    sent = cluster.sent[0]["script"]
    assert sent["source"] == (DATES_PRELUDE + f"Map __watcher_ctx = __watcher_dates(params.{CTX_PARAM});\n"
                              "return __watcher_ctx.payload.n > params.min")
    assert sent["params"]["min"] == 5
    ctx = sent["params"][CTX_PARAM]
    assert ctx["payload"] == {"n": 7} and ctx["metadata"] == {"team": "ops"} and ctx["watch_id"] == "w"
    # Datetimes travel as ISO strings; __watcher_dates makes them ZonedDateTime objects on the cluster.
    assert ctx["execution_time"] == "2024-05-01T09:00:00.123Z"
    assert ctx["trigger"] == {"triggered_time": "2024-05-01T09:00:00.123Z",
                              "scheduled_time": "2024-05-01T09:00:00.123Z"}
    assert run_condition("condition: {script: 'false'}", {}, es=RecordingCluster("false"))["met"] is False


def test_script_condition_must_return_a_boolean():
    with pytest.raises(PainlessError) as error:
        run_condition("condition: {script: 'return 7'}", {}, es=RecordingCluster("7"))
    assert str(error.value) == "condition [script] must return a boolean value (true|false) but instead returned [7]"


def test_script_condition_without_a_cluster():
    with pytest.raises(ScriptUnavailable) as error:
        run_condition("condition: {script: 'return true'}", {})
    assert "no cluster connection" in str(error.value)


def test_json_result_is_decoded():
    cluster = RecordingCluster('{"count":7,"hosts":["a","b"],"ok":true,"none":null}')
    assert execute_script(cluster, {"source": "return [:]", "params": {}}, {"ctx": {}}) == {
        "count": 7, "hosts": ["a", "b"], "ok": True, "none": None}


def api_error(status: int, body):
    from elastic_transport import ApiResponseMeta, HttpHeaders, NodeConfig
    from elasticsearch import ApiError

    meta = ApiResponseMeta(status=status, http_version="1.1", headers=HttpHeaders(), duration=0.0,
                           node=NodeConfig("http", "127.0.0.1", 9200))
    return ApiError(message=str(body), meta=meta, body=body)


class FailingCluster:
    """Answers every execute call with the given errors in turn (then with ``result``)."""

    def __init__(self, *errors, result: str = "null"):
        self.errors, self.result, self.sent = list(errors), result, []

    def scripts_painless_execute(self, *, script, context=None):
        self.sent.append(script["source"])
        if self.errors:
            raise self.errors.pop(0)
        return {"result": self.result}


def compile_error(sent: str, symbol_offset: int, cause: str) -> dict:
    """An error body shaped as the Painless execute API returns it (status 400)."""
    details = {"type": "script_exception", "reason": "compile error", "script": sent, "lang": "painless",
               "script_stack": ["... " + sent[max(0, symbol_offset - 20):symbol_offset + 5], "    ^---- HERE"],
               "position": {"offset": symbol_offset, "start": 0, "end": len(sent)},
               "caused_by": {"type": "illegal_argument_exception", "reason": cause}}
    return {"error": {"root_cause": [details], **details}, "status": 400}


def test_compile_error_position_is_mapped_back_to_the_script_as_written():
    source = "def n = ctx.payload.n;\nreturn n > foo"
    sent = prepare_source(source, json_result=False).source
    body = compile_error(sent, sent.index("foo"), "cannot resolve symbol [foo]")
    with pytest.raises(PainlessError) as error:
        execute_script(FailingCluster(api_error(400, body)), {"source": source, "params": {}}, {"ctx": {}},
                       json_result=False)
    assert str(error.value) == ("compile error: illegal_argument_exception: cannot resolve symbol [foo] "
                                "(script line 2, column 12: return n > foo)")
    assert error.value.reason == "compile error"
    assert error.value.cause == "illegal_argument_exception: cannot resolve symbol [foo]"
    assert error.value.position == {"offset": 34, "start": 0, "end": len(source), "line": 2, "column": 12}
    assert error.value.script_stack == body["error"]["script_stack"]


def test_json_mode_retries_with_return_null_when_a_path_returns_nothing():
    source = "if (ctx.payload.n > 5) { return ['big': true] }"
    first = prepare_source(source).source
    body = compile_error(first, first.index("def __watcher_main"),
                         "not all paths provide a return value for function [__watcher_main] with [2] parameters")
    cluster = FailingCluster(api_error(400, body), result="null")
    assert execute_script(cluster, {"source": source, "params": {}}, {"ctx": {"payload": {"n": 1}}}) is None
    assert cluster.sent == [first, prepare_source(source, append_return_null=True).source]


@pytest.mark.parametrize("status, body", [
    (400, {"error": {"root_cause": [{"type": "illegal_argument_exception",
                                     "reason": "must specify lang for stored script"}],
                     "type": "illegal_argument_exception", "reason": "must specify lang for stored script"},
           "status": 400}),
    (400, {"error": "no handler found for uri [/_scripts/painless/_execute] and method [POST]"}),
    (404, {"error": {"type": "resource_not_found_exception", "reason": "not found"}, "status": 404}),
])
def test_a_cluster_without_painless_is_unavailable(status, body):
    with pytest.raises(ScriptUnavailable) as error:
        execute_script(FailingCluster(api_error(status, body)), {"source": "true", "params": {}}, {"ctx": {}})
    assert str(error.value).startswith("this Elasticsearch cluster cannot run Painless scripts "
                                       f"(POST /_scripts/painless/_execute answered {status}: ")


def test_ctx_values_become_json_for_the_cluster():
    from decimal import Decimal

    from watcher.es.painless import to_script_value

    assert to_script_value({"t": dt.datetime(2024, 5, 1, 10, 15, 30, 123456, tzinfo=UTC), "n": math.nan,
                            "inf": math.inf, "d": Decimal("2.5"), "i": Decimal("3"), "tags": ("a", "b"), 1: None}) \
        == {"t": "2024-05-01T10:15:30.123Z", "n": None, "inf": None, "d": 2.5, "i": 3, "tags": ["a", "b"], "1": None}


# --------------------------------------------------------------------------------------------------
# hits.total as an object (docs/correctness.md#hit-totals-as-objects)


def test_compare_with_a_total_resolved_from_a_path_on_the_right(caplog):
    payload = {"errors": 12, "hits": {"total": {"value": 10, "relation": "gte"}}}
    result = compare("ctx.payload.errors", "gt", "{{ctx.payload.hits.total}}", payload)
    assert result == {"type": "compare", "status": "success", "met": False, "compare": {
        "resolved_values": {"ctx.payload.errors": 12, "ctx.payload.hits.total": {"value": 10, "relation": "gte"}},
        "total_hits": {"ctx.payload.hits.total": {"compared": 10, "lower_bound": True}},
        "unsure": "ctx.payload.hits.total counts at least 10 hits, not an exact number (hits.total relation gte: "
                  "the search stopped counting at track_total_hits), so 'ctx.payload.errors gt ctx.payload.hits.total' "
                  "cannot be decided; reported as not met. Set track_total_hits to true, or to a number above 12, in "
                  "the search body."}}
    assert compare("ctx.payload.errors", "lt", "{{ctx.payload.hits.total}}", payload)["met"] is False
    assert "unsure" not in compare("ctx.payload.errors", "lt", "{{ctx.payload.hits.total}}", {
        **payload, "errors": 5})["compare"]


def test_array_compare_decides_with_the_elements_that_can_and_says_when_none_can(caplog):
    payload = {"responses": [{"hits": {"total": {"value": 3, "relation": "eq"}}},
                             {"hits": {"total": {"value": 10, "relation": "gte"}}}]}
    some = run_condition("condition: {array_compare: {ctx.payload.responses: {path: hits.total, gt: {value: 2}}}}",
                         payload)
    assert some["met"] is True and "unsure" not in some["array_compare"]
    assert some["array_compare"]["total_hits"] == {
        "ctx.payload.responses.0.hits.total": {"compared": 3, "lower_bound": False},
        "ctx.payload.responses.1.hits.total": {"compared": 10, "lower_bound": True}}
    with caplog.at_level("WARNING", logger="watcher.engine"):
        unsure = run_condition("condition: {array_compare: {ctx.payload.responses: "
                               "{path: hits.total, lt: {value: 20, quantifier: all}}}}", payload)
    assert unsure["met"] is False
    assert unsure["array_compare"]["unsure"] == (
        "ctx.payload.responses.1.hits.total counts at least 10 hits, not an exact number (hits.total relation gte: "
        "the search stopped counting at track_total_hits), so 'ctx.payload.responses.1.hits.total lt 20' cannot be "
        "decided and no other element decides the quantifier 'all'; reported as not met. Set track_total_hits to "
        "true, or to a number above 20, in the search body.")
    assert [r.getMessage()[:60] for r in caplog.records] == ["watch [w] condition array_compare cannot be decided: ctx.pay"]
    decided = run_condition("condition: {array_compare: {ctx.payload.responses: "
                            "{path: hits.total, lt: {value: 3, quantifier: all}}}}", payload)
    assert decided["met"] is False and "unsure" not in decided["array_compare"]
