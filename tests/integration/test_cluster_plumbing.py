"""The cluster under test is real: mappings, date ranges and aggregations decided by the server."""

from __future__ import annotations

import re

from watcher.es.client import server_description, server_version
from watcher.localcluster.engines import selected_engine


def test_server_is_the_engine_under_test(es, es_cluster):
    version = server_version(es)
    if es_cluster.kind == "url":  # a cluster of the user's: any product we support
        assert es.product in ("elasticsearch", "opensearch")
        assert re.fullmatch(r"(8|9)\.\d+\.\d+" if es.product == "elasticsearch" else r"2\.\d+\.\d+", version)
        return
    engine = selected_engine() if es_cluster.kind == "jvm" else None
    expected = (engine.product, engine.version) if engine else ("Elasticsearch", "8.14.1")
    assert server_description(es) == " ".join(expected)
    assert es.product == expected[0].lower()
    response = es.perform_request("GET", "/_cluster/health", headers={"accept": "application/json"})
    if es.product == "elasticsearch":
        # elasticsearch-py refuses servers that do not identify as Elasticsearch; check the header too.
        assert response.meta.headers.get("X-Elastic-Product") == "Elasticsearch"
    else:
        assert response["cluster_name"] == "watcher-local"


def test_mapping_range_and_terms_aggregation(es, index_name):
    es.indices.create(index=index_name, mappings={"properties": {
        "@timestamp": {"type": "date"},
        "source.ip": {"type": "ip"},
        "event.outcome": {"type": "keyword"},
        "message": {"type": "text"},
    }})
    docs = [
        ("2026-11-29T10:00:00Z", "10.0.0.1", "failure"),
        ("2026-11-29T10:01:00Z", "10.0.0.1", "failure"),
        ("2026-11-29T10:02:00Z", "10.0.0.2", "failure"),
        ("2026-11-29T10:04:59.999Z", "10.0.0.1", "success"),
        ("2026-11-29T10:05:00Z", "10.0.0.3", "failure"),  # on the exclusive upper bound: out
        ("2026-11-29T09:59:59Z", "10.0.0.3", "failure"),  # before the window: out
    ]
    for i, (ts, ip, outcome) in enumerate(docs):
        es.index(index=index_name, id=str(i), document={
            "@timestamp": ts, "source.ip": ip, "event.outcome": outcome, "message": f"event {i}"})
    es.indices.refresh(index=index_name)

    mapping = es.indices.get_mapping(index=index_name)[index_name]["mappings"]["properties"]
    assert mapping["source"]["properties"]["ip"]["type"] == "ip"

    result = es.search(index=index_name, size=0, rest_total_hits_as_int=True, query={"range": {
        "@timestamp": {"gte": "2026-11-29T10:00:00Z", "lt": "2026-11-29T10:05:00Z"}}},
        aggs={"by_ip": {"terms": {"field": "source.ip", "order": {"_key": "asc"}}}})
    assert result["hits"]["total"] == 4
    buckets = [(b["key"], b["doc_count"]) for b in result["aggregations"]["by_ip"]["buckets"]]
    assert buckets == [("10.0.0.1", 3), ("10.0.0.2", 1)]

    # The server's own date math, relative to an anchor, with rounding down to the minute.
    anchored = es.count(index=index_name, query={"range": {
        "@timestamp": {"gte": "2026-11-29T10:03:30Z||-3m/m", "lt": "2026-11-29T10:03:30Z||/m"}}})
    assert anchored["count"] == 3  # 10:00, 10:01, 10:02

    failures = es.search(index=index_name, size=0, track_total_hits=True,
                         query={"bool": {"filter": [{"term": {"event.outcome": "failure"}}]}})
    assert failures["hits"]["total"] == {"value": 5, "relation": "eq"}
