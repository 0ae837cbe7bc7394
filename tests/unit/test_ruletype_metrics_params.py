"""Params of ``cardinality``, ``metric_aggregation`` and ``percentage_match``: what loads, and the
exact ``file:line:column`` messages of what does not (through the loader, as ``watcher validate``)."""

from __future__ import annotations

import datetime as dt
import textwrap

import pytest

from watcher.definitions.load import load_paths
from watcher.engine.ruletypes import bounds, metric_aggregation, percentage_match

CONNECTORS = "connectors:\n  log:\n    type: logging\n"


def load(tmp_path, rule_type: str, params: str, window: str = "1h") -> tuple[list[str], dict]:
    """Load one rule (``params`` as YAML lines under ``params:``, from line 6); returns the problems
    (with the file name only) and the loaded watches."""
    (tmp_path / "connectors.yaml").write_text(CONNECTORS)
    body = textwrap.indent(textwrap.dedent(params).strip(), "  ")
    (tmp_path / "rule.yaml").write_text(
        f"name: r\ntype: {rule_type}\nindex: logs\nwindow: {window}\nparams:\n{body}\nactions:\n  - connector: log\n")
    result = load_paths([tmp_path])
    return [str(p).replace(str(tmp_path) + "/", "") for p in result.problems], result.watches


def test_valid_params_load(tmp_path):
    problems, watches = load(tmp_path, "metric_aggregation", """
        metric_agg_key: ms
        metric_agg_type: percentiles
        percentile_range: 99.5
        max_threshold: 300
        bucket_interval: 15m
    """)
    assert problems == []
    params = watches["r"].rule.type_params
    assert (params.percentile_range, params.bucket_interval, params.min_doc_count) == (
        99.5, dt.timedelta(minutes=15), 1)


def test_percentiles_without_percentile_range(tmp_path):
    problems, _ = load(tmp_path, "metric_aggregation", """
        metric_agg_key: ms
        metric_agg_type: percentiles
        max_threshold: 300
    """)
    assert problems == ["rule.yaml:7:3: params.metric_agg_type: expected percentile_range (0–100) with "
                        "metric_agg_type percentiles, found none"]


def test_percentile_range_without_percentiles_or_out_of_range(tmp_path):
    problems, _ = load(tmp_path, "metric_aggregation", """
        metric_agg_key: ms
        metric_agg_type: avg
        percentile_range: 50
        max_threshold: 300
    """)
    assert problems == ["rule.yaml:8:3: params.percentile_range: expected percentile_range only with "
                        "metric_agg_type percentiles, found metric_agg_type avg"]
    problems, _ = load(tmp_path, "metric_aggregation", """
        metric_agg_key: ms
        metric_agg_type: percentiles
        percentile_range: 101
        max_threshold: 300
    """)
    assert problems == ["rule.yaml:8:21: params.percentile_range: expected a percentile between 0 and 100, found 101"]


@pytest.mark.parametrize("rule_type, params, names", [
    ("cardinality", "cardinality_field: user", "min_cardinality, max_cardinality"),
    ("metric_aggregation", "metric_agg_key: ms\nmetric_agg_type: sum", "min_threshold, max_threshold"),
    ("percentage_match", "match_bucket_filter: 'status:error'", "min_percentage, max_percentage"),
])
def test_no_bounds_given(tmp_path, rule_type, params, names):
    problems, _ = load(tmp_path, rule_type, params)
    assert problems == [f"rule.yaml:5:1: params: expected at least one of {names}, found neither"]


def test_min_above_max(tmp_path):
    problems, _ = load(tmp_path, "cardinality", """
        cardinality_field: user
        max_cardinality: 2
        min_cardinality: 5
    """)
    assert problems == ["rule.yaml:8:3: params.min_cardinality: expected min_cardinality at most max_cardinality (2), "
                        "found 5 (every value would fire)"]


@pytest.mark.parametrize("window, interval, ok", [("1h", "15m", True), ("1h", "1h", True), ("1h", "7m", False),
                                                  ("1h", "2h", False), ("{minutes: 90}", "30m", True)])
def test_bucket_interval_must_divide_the_window(tmp_path, window, interval, ok):
    problems, _ = load(tmp_path, "metric_aggregation", f"""
        metric_agg_key: ms
        metric_agg_type: max
        max_threshold: 1
        bucket_interval: {interval}
    """, window=window)
    shown = "1h30m" if window.startswith("{") else window
    assert problems == ([] if ok else [f"rule.yaml:9:3: params.bucket_interval: expected a duration that divides "
                                       f"the window ({shown}) evenly, found {interval}"])


def test_bad_values_are_reported_at_the_value(tmp_path):
    problems, _ = load(tmp_path, "percentage_match", """
        match_bucket_filter: []
        min_percentage: true
        min_denominator: -1
    """)
    assert problems == [
        "rule.yaml:6:24: params.match_bucket_filter: expected a Lucene query string, a query DSL object with one "
        "query type such as {term: {field: value}}, or a list of them (ANDed), found an empty list",
        "rule.yaml:7:19: params.min_percentage: expected a number, found a boolean true",
        "rule.yaml:8:20: params.min_denominator: expected a number of at least 0, found an integer -1",
    ]
    problems, _ = load(tmp_path, "metric_aggregation", """
        metric_agg_key: ms
        metric_agg_type: median
        max_threshold: 1
    """)
    assert len(problems) == 1 and problems[0].startswith("rule.yaml:7:20: params.metric_agg_type: expected ")


def test_bucket_filter_forms_become_queries():
    assert percentage_match.bucket_query("status:error") == {"query_string": {"query": "status:error"}}
    assert percentage_match.bucket_query({"term": {"status": "error"}}) == {"term": {"status": "error"}}
    assert percentage_match.bucket_query([{"term": {"status": "error"}}, "ms:>100"]) == {
        "bool": {"filter": [{"term": {"status": "error"}}, {"query_string": {"query": "ms:>100"}}]}}


def test_crossed_bounds_are_exclusive_and_ignore_null():
    assert bounds.crossed(10, None, 10, "lo", "hi") is None
    assert bounds.crossed(10.5, None, 10, "lo", "hi") == {"crossed": "hi", "limit": 10}
    assert bounds.crossed(1, 2, None, "lo", "hi") == {"crossed": "lo", "limit": 2}
    assert bounds.crossed(None, 2, 10, "lo", "hi") is None


def test_percentiles_agg_asks_for_one_unkeyed_percent():
    params = metric_aggregation.Params.model_validate({"metric_agg_key": "ms", "metric_agg_type": "percentiles",
                                                      "percentile_range": 95, "max_threshold": 1})
    assert metric_aggregation.metric_agg(params) == {"percentiles": {"field": "ms", "percents": [95.0], "keyed": False}}
    assert metric_aggregation.metric_value(params, {"values": [{"key": 95.0, "value": 7.5}]}) == 7.5
