"""What a Painless script returns reaches the payload as Watcher puts it there, on a cluster that runs Painless.

A script transform's map becomes the payload; anything else becomes ``{"_value": …}``. The cluster's
execute API only gives back ``toString()`` of the result, so these tests pin that every kind of value
— Java arrays from ``stream().toArray()``, primitive arrays, lists, sets, maps, nested mixes, numbers
at the edges of double and long, strings needing escapes, null, dates — comes back as JSON values.
(``make test`` runs them on the OpenSearch engine; see docs/backends.md#painless.)
"""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest

from watcher.engine.context import Run, Services
from watcher.engine.conditions import REGISTRY as CONDITIONS
from watcher.engine.conditions import evaluate
from watcher.engine.transforms import REGISTRY as TRANSFORMS
from watcher.model.problems import Reader
from watcher.model.source import load_text
from watcher.model.watch import Component, Trigger, Watch

pytestmark = pytest.mark.usefixtures("requires_painless")

AT = dt.datetime(2026, 11, 29, 10, 5, tzinfo=dt.timezone.utc)


def make_run(es, payload=None) -> Run:
    watch = Watch(id="painless-values", file="painless-values.json", trigger=Trigger("interval", None, None, {}),
                  input=Component("none", None, {}), condition=Component("always", None, {}), transform=None,
                  actions=(), throttle_period=None, metadata={"team": "sre"})
    return Run(watch=watch, execution_time=AT, triggered_time=AT, scheduled_time=AT, services=Services(es=es),
               payload=payload or {})


def parse(registry, definition: dict):
    document = load_text(json.dumps({"x": definition}), "inline.json")
    reader = Reader(document)
    component = registry.parse(reader, document.data["x"], ("x",))
    assert reader.problems == []
    return component


def script_payload(es, source: str, payload=None, params=None) -> dict:
    """The payload a ``script`` transform of ``source`` produces."""
    component = parse(TRANSFORMS, {"script": {"source": source, "params": params or {}}})
    run = make_run(es, payload)
    result = TRANSFORMS.get("script").execute(component.config, run, run.model(payload))
    assert result["status"] == "success", result
    return result["payload"]


BUCKETS = {"aggregations": {"users": {"buckets": [
    {"key": "testUserA", "doc_count": 1}, {"key": "testUserB", "doc_count": 7}, {"key": "testUserC", "doc_count": 3}]}}}


@pytest.mark.parametrize(("source", "expected"), [
    # the defect this file started from: Object[] printed as "[Ljava.lang.Object;@16cf4191"
    ("return ctx.payload.aggregations.users.buckets.stream().filter(b -> b.doc_count > 5).map(b -> b.key).toArray()",
     {"_value": ["testUserB"]}),
    ("return new int[] {3, 1, 2}", {"_value": [3, 1, 2]}),
    ("long[] a = new long[2]; a[0] = 9007199254740993L; a[1] = -1L; return a", {"_value": [9007199254740993, -1]}),
    ("return new double[] {0.5, 1e300}", {"_value": [0.5, 1e300]}),
    ("return new boolean[] {true, false}", {"_value": [True, False]}),
    ("return new String[] {'a', 'b\"c'}", {"_value": ["a", 'b"c']}),
    ("return new char[] {(char) 104, (char) 105}", {"_value": "hi"}),
    ("return [new int[] {1}, [2, 3].stream().toArray()]", {"_value": [[1], [2, 3]]}),
    ("return [1, 'two', null, true, 2.5]", {"_value": [1, "two", None, True, 2.5]}),
    ("Set s = new TreeSet(); s.add('b'); s.add('a'); return s", {"_value": ["a", "b"]}),
    ("return ['ids': ctx.payload.aggregations.users.buckets.stream().map(b -> b.key).toArray(), 'n': 3]",
     {"ids": ["testUserA", "testUserB", "testUserC"], "n": 3}),
    ("return ['outer': ['inner': [1, ['deep': null]]]]", {"outer": {"inner": [1, {"deep": None}]}}),
    ("return 42", {"_value": 42}),
    ("return 9223372036854775807L", {"_value": 9223372036854775807}),
    ("return 0.1", {"_value": 0.1}),
    ("return Double.NaN", {"_value": None}),
    ("return 'line' + (char) 10 + 'break \"quoted\" \\\\ tab' + (char) 9 + ' é 日本 ' + (char) 1",
     {"_value": 'line\nbreak "quoted" \\ tab\t é 日本 \x01'}),
    ("return null", {"_value": None}),
    ("return ZonedDateTime.of(2024, 5, 1, 10, 15, 30, 123000000, ZoneId.of('UTC'))",
     {"_value": "2024-05-01T10:15:30.123Z"}),
    ("return ZonedDateTime.of(2024, 5, 1, 10, 15, 30, 0, ZoneId.of('Europe/Paris'))",
     {"_value": "2024-05-01T10:15:30.000+02:00"}),
    ("return ctx.metadata", {"team": "sre"}),
])
def test_script_transform_values_reach_the_payload_as_json(es, source, expected):
    assert script_payload(es, source, BUCKETS) == expected


def test_a_script_without_a_return_on_every_path_gives_null(es):
    assert script_payload(es, "if (ctx.payload.n > 5) { return 'big' }", {"n": 1}) == {"_value": None}
    assert script_payload(es, "if (ctx.payload.n > 5) { return 'big' }", {"n": 9}) == {"_value": "big"}


def test_functions_declared_by_the_script_stay_callable(es):
    source = "int twice(int x) { return 2 * x } return ['n': twice(params.n)]"
    assert script_payload(es, source, params={"n": 21}) == {"n": 42}


def test_stored_condition_script_with_a_lambda_over_buckets(es):
    script_id = f"busy-users-{uuid.uuid4().hex[:8]}"
    es.put_script(id=script_id, script={"lang": "painless", "source":
                  "return ctx.payload.aggregations.users.buckets.stream().filter(b -> b.doc_count >= params.min)"
                  ".count() >= params.users"})
    try:
        def met(**params) -> bool:
            component = parse(CONDITIONS, {"script": {"id": script_id, "params": params}})
            run = make_run(es, BUCKETS)
            return evaluate(component, run, run.model())["met"]

        assert met(min=3, users=2) is True    # testUserB (7) and testUserC (3)
        assert met(min=3, users=3) is False
        assert met(min=8, users=1) is False
    finally:
        es.options(ignore_status=404).delete_script(id=script_id)


def test_ctx_bindings_a_watcher_script_reads(es):
    """Watcher gives scripts ZonedDateTime times (docs/backends.md#the-ctx-a-script-sees)."""
    source = ("return ['id': ctx.watch_id, 'scheduled': ctx.trigger.scheduled_time, 'at': ctx.execution_time,"
              " 'team': ctx.metadata.team, 'n': ctx.payload.n, 'hour': ctx.execution_time.getHour(),"
              " 'earlier': ctx.trigger.scheduled_time.minusMinutes(5), 'text': '' + ctx.execution_time,"
              " 'millis': ctx.trigger.triggered_time.toInstant().toEpochMilli(),"
              " 'in_lambda': [1].stream().map(x -> ctx.execution_time.getMinute()).toArray()]")
    assert script_payload(es, source, {"n": 1}) == {
        "id": "painless-values", "scheduled": "2026-11-29T10:05:00.000Z", "at": "2026-11-29T10:05:00.000Z",
        "team": "sre", "n": 1, "hour": 10, "earlier": "2026-11-29T10:00:00.000Z", "text": "2026-11-29T10:05Z",
        "millis": 1795946700000, "in_lambda": [5]}


def test_a_condition_reads_ctx_times_as_zoned_date_times(es):
    component = parse(CONDITIONS, {"script": "return ctx.execution_time.getDayOfWeek() == DayOfWeek.SUNDAY "
                                             "&& ctx.trigger.scheduled_time.isBefore(ctx.execution_time.plusSeconds(1))"})
    run = make_run(es)
    assert evaluate(component, run, run.model())["met"] is True  # 2026-11-29 is a Sunday
