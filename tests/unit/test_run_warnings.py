"""The run's warnings (one list, kept once each, logged once) and which rule conditions missing
documents can make true. What Elasticsearch answers (partial shards, ``sum_other_doc_count``) is
tested against the real node in tests/integration/test_partial_and_truncated.py."""

from __future__ import annotations

import logging

import pytest

import watcher.engine.ruletypes  # noqa: F401  (registers the rule types with the model)
from watcher.engine.rules import fires_on_absence
from watcher.engine.run_warnings import GROUPS_TRUNCATED, Warnings, check_groups
from watcher.model.rule import RuleSpec


def test_an_equal_warning_is_kept_and_logged_once(caplog):
    warnings = Warnings("ssh-bruteforce")
    with caplog.at_level(logging.WARNING, logger="watcher.warnings"):
        first = warnings.add("groups_truncated", "only 100 groups", groups_evaluated=100, other_documents=20)
        warnings.add("groups_truncated", "only 100 groups", groups_evaluated=100, other_documents=20)
        warnings.add("groups_truncated", "only 100 groups", groups_evaluated=100, other_documents=21)
    assert first == {"type": "groups_truncated", "message": "only 100 groups", "groups_evaluated": 100,
                     "other_documents": 20}
    assert [w["other_documents"] for w in warnings.to_json()] == [20, 21]
    assert [r.getMessage() for r in caplog.records if r.name == "watcher.warnings"] == [
        "ssh-bruteforce: only 100 groups", "ssh-bruteforce: only 100 groups"]
    assert warnings.partial is False


def test_partial_means_an_accepted_partial_answer():
    warnings = Warnings("r")
    warnings.add("partial_results", "refused", accepted=False)
    assert warnings.partial is False
    warnings.add("partial_results", "evaluated", accepted=True)
    assert warnings.partial is True


def test_held_lists_at_most_twenty_groups_and_counts_them_all():
    warnings = Warnings("r")
    assert warnings.held("absence_held", [], "nothing") is None and not warnings
    held = warnings.held("absence_held", [f"h{i}" for i in range(25)], "x did not fire")
    assert held["held"] == 25 and held["groups"] == [f"h{i}" for i in range(20)]
    assert held["message"].startswith("the answer was partial, so x did not fire for 25 group(s) (h0, h1,")
    assert held["message"].endswith(", h19, …)")
    whole = warnings.held("recoveries_held", [None], "y")
    assert (whole["groups"], whole["held"], whole["message"]) == (None, 1, "the answer was partial, so y for the rule")


@pytest.mark.parametrize("terms, raised", [
    ({"buckets": [{}] * 100, "sum_other_doc_count": 20}, True),
    ({"buckets": [{}] * 100, "sum_other_doc_count": 0}, False),    # exactly max_groups groups
    ({"buckets": [{}] * 60, "sum_other_doc_count": 5}, False),     # fewer buckets than max_groups: none cut by size
    (None, False),
])
def test_groups_are_truncated_when_max_groups_buckets_leave_documents_out(terms, raised):
    warnings = Warnings("r")
    assert check_groups(terms, 100, warnings, search="input", group_by="host.name") is raised
    assert bool(warnings.of_type(GROUPS_TRUNCATED)) is raised


@pytest.mark.parametrize("condition, absence", [
    ({"count": {"gt": 0}}, False),
    ({"count": {"gte": 10}}, False),
    ({"count": {"lt": 1}}, True),
    ({"count": {"lte": 0}}, True),
    ({"count": {"eq": 0}}, True),
    ({"count": {"not_eq": 5}}, True),
    ({"metric": {"agg": "avg", "field": "ms", "gt": 100}}, False),
    ({"metric": {"agg": "sum", "field": "bytes", "lt": 100}}, True),
    ({"compare": {"ctx.payload.hits.total": {"lte": 3}}}, True),
    ({"compare": {"ctx.payload.hits.total": {"gte": 3}}}, False),
    ({"array_compare": {"ctx.payload.aggregations.groups.buckets": {"path": "doc_count",
                                                                     "lt": {"value": 2, "quantifier": "some"}}}}, True),
])
def test_conditions_that_missing_documents_can_make_true(condition, absence):
    spec = RuleSpec.model_validate({"name": "r", "index": "logs", "window": "5m", "condition": condition})
    assert fires_on_absence(spec) is absence


def test_typed_rules_hold_their_own_matches():
    spec = RuleSpec.model_validate({"name": "r", "type": "flatline", "params": {"threshold": 1}, "index": "logs",
                                    "window": "5m"})
    assert fires_on_absence(spec) is False and fires_on_absence(None) is False
