"""``spike``, ``spike_aggregation`` and ``flatline``: params validation (exact file:line:column
messages through the loader) and the shared spike decision (no cluster)."""

from __future__ import annotations

import datetime as dt
import textwrap

import pytest

from watcher.definitions.load import load_paths
from watcher.engine.ruletypes import REGISTRY, flatline, spike, spike_aggregation
from watcher.engine.ruletypes.spike import spike_direction, spike_ratio

CONNECTORS = "connectors:\n  log:\n    type: logging\n"


def problems(tmp_path, rule_type: str, params: str, extra: str = "") -> list[str]:
    """Load one rule with ``params`` (YAML lines, indented under ``params:``); its problems as text."""
    (tmp_path / "connectors.yaml").write_text(CONNECTORS)
    body = f"name: r\ntype: {rule_type}\nindex: logs\nwindow: 10m\n{extra}"
    if params is not None:
        body += "params:\n" + textwrap.indent(textwrap.dedent(params).strip() + "\n", "  ")
    (tmp_path / "r.yaml").write_text(body)
    return [str(p) for p in load_paths([tmp_path]).problems]


def test_the_three_types_are_registered():
    assert {"spike", "spike_aggregation", "flatline"} <= set(REGISTRY.names())
    assert REGISTRY.get("spike") is spike and REGISTRY.get("flatline") is flatline
    assert REGISTRY.get("spike_aggregation") is spike_aggregation


def test_valid_params_load(tmp_path):
    assert problems(tmp_path, "spike", "spike_height: 2.5\nspike_type: both\nthreshold_ref: 0\n"
                                       "threshold_cur: 10\nalert_on_new_data: true") == []
    assert problems(tmp_path, "spike_aggregation", "spike_height: 3\nspike_type: down\nmetric_agg_key: bytes\n"
                                                   "metric_agg_type: value_count\nthreshold_cur: 0.5") == []
    assert problems(tmp_path, "flatline", "threshold: 1\nforget_keys: true", extra="group_by: host\n") == []


def test_spike_type_sideways(tmp_path):
    assert problems(tmp_path, "spike", "spike_height: 2\nspike_type: sideways") == [
        f"{tmp_path}/r.yaml:7:15: params.spike_type: expected one of 'up', 'down' or 'both', found a string 'sideways'"]


def test_spike_height_must_be_a_positive_number(tmp_path):
    assert problems(tmp_path, "spike", "spike_height: 0\nspike_type: up") == [
        f"{tmp_path}/r.yaml:6:17: params.spike_height: expected a number greater than 0, found an integer 0"]
    assert problems(tmp_path, "spike", "spike_height: true\nspike_type: up") == [
        f"{tmp_path}/r.yaml:6:17: params.spike_height: expected a number greater than 0, found a boolean true"]


def test_spike_required_and_unknown_params(tmp_path):
    assert problems(tmp_path, "spike", "spike_type: up\nspike_heigth: 2") == [
        f"{tmp_path}/r.yaml:5:1: params: missing required field 'spike_height'",
        f"{tmp_path}/r.yaml:7:3: params.spike_heigth: unknown key 'spike_heigth' (did you mean 'spike_height'?); "
        "expected one of: alert_on_new_data, spike_height, spike_type, threshold_cur, threshold_ref"]


def test_spike_thresholds_are_counts(tmp_path):
    assert problems(tmp_path, "spike", "spike_height: 2\nspike_type: up\nthreshold_ref: -1\nthreshold_cur: 2.5") == [
        f"{tmp_path}/r.yaml:8:18: params.threshold_ref: expected a number of at least 0, found an integer -1",
        f"{tmp_path}/r.yaml:9:18: params.threshold_cur: expected an integer, found a number 2.5"]


def test_spike_aggregation_metric_type_and_thresholds(tmp_path):
    assert problems(tmp_path, "spike_aggregation", "spike_height: 2\nspike_type: up\nmetric_agg_key: bytes\n"
                                                   "metric_agg_type: median\nthreshold_cur: -0.5") == [
        # reported in the order of the Params fields (spike's first)
        f"{tmp_path}/r.yaml:10:18: params.threshold_cur: expected a number of at least 0, found a number -0.5",
        f"{tmp_path}/r.yaml:9:20: params.metric_agg_type: expected one of 'min', 'max', 'avg', 'sum', "
        "'cardinality' or 'value_count', found a string 'median'"]


def test_flatline_without_threshold(tmp_path):
    assert problems(tmp_path, "flatline", "forget_keys: false") == [
        f"{tmp_path}/r.yaml:5:1: params: missing required field 'threshold'"]
    assert problems(tmp_path, "flatline", None) == [
        f"{tmp_path}/r.yaml:1:1: params: missing required field 'threshold'"]


def test_flatline_threshold_at_least_one(tmp_path):
    assert problems(tmp_path, "flatline", "threshold: 0") == [
        f"{tmp_path}/r.yaml:6:14: params.threshold: expected a number of at least 1, found an integer 0"]


def test_flatline_forget_keys_needs_group_by(tmp_path):
    assert problems(tmp_path, "flatline", "threshold: 2\nforget_keys: true") == [
        f"{tmp_path}/r.yaml:7:3: params.forget_keys: forget_keys needs group_by (it forgets group keys after "
        "they alert); remove it or set group_by"]


def params(**kw):
    return spike.Params.model_validate({"spike_height": 2, "spike_type": "both", **kw})


@pytest.mark.parametrize(("ref", "cur", "kw", "expected"), [
    (10, 20, {}, "up"),                      # cur = ref × height: fires (≥)
    (10, 19, {}, None),
    (10, 5, {}, "down"),                     # cur = ref ÷ height: fires (≤)
    (10, 6, {}, None),
    (4, 0, {}, "down"),                      # a group only in the reference window
    (10, 20, {"spike_type": "down"}, None),
    (10, 5, {"spike_type": "up"}, None),
    (0, 0, {"alert_on_new_data": True}, None),   # nothing happened
    (0, 5, {}, None),                            # new data, not asked for
    (0, 5, {"alert_on_new_data": True}, "up"),
    (0, 5, {"alert_on_new_data": True, "spike_type": "down"}, None),
    (None, 5, {"alert_on_new_data": True}, "up"),  # a metric with no reference value
    (10, None, {}, None),                          # a metric with no current value
    (2, 10, {"threshold_ref": 3}, None),
    (3, 10, {"threshold_ref": 3}, "up"),
    (0, 10, {"threshold_ref": 1, "alert_on_new_data": True}, None),
    (12, 4, {"threshold_cur": 5}, None),
    (12, 5, {"threshold_cur": 5}, "down"),
    (30, 3, {"spike_height": 10}, "down"),
    (30, 3, {"spike_height": 0.1, "spike_type": "up"}, "up"),   # exact: 30 × 0.1 is 3, not 3.0000000000000004
    (0.3, 0.1, {"spike_height": 3, "spike_type": "down"}, "down"),  # 0.3 ÷ 3 is 0.1 exactly
    (-5, 1, {}, None),                              # a negative reference is no reference
])
def test_spike_direction(ref, cur, kw, expected):
    assert spike_direction(ref, cur, params(**kw)) == expected


def test_spike_ratio():
    assert spike_ratio(2, 6) == 3.0
    assert spike_ratio(0, 6) is None and spike_ratio(None, 6) is None and spike_ratio(4, None) is None


def test_flatline_forget_after_is_a_week_or_ten_windows():
    assert flatline.forget_after(dt.timedelta(minutes=10)) == dt.timedelta(days=7)
    assert flatline.forget_after(dt.timedelta(days=1)) == dt.timedelta(days=10)
