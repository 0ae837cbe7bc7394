"""watcher.daemon.metrics and watcher.http.operations: real HTTP requests to uvicorn on 127.0.0.1."""

from __future__ import annotations

import gzip

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from watcher.daemon.metrics import CONTENT_TYPE, Metrics
from watcher.http.app import create_app
from watcher.http.server import HttpServer


class StandInDaemon:
    """What the operations routes read of the daemon: ``health()`` and ``metrics``."""

    def __init__(self, metrics: Metrics, health):
        self.metrics = metrics
        self.health = health


def OperationsServer(host: str, port: int, metrics: Metrics, health) -> HttpServer:
    return HttpServer(create_app(StandInDaemon(metrics, health)), host, port)


def samples(text: str) -> dict[tuple, float]:
    """``{(sample name, sorted labels…): value}`` parsed by prometheus_client's own parser."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, *sorted(sample.labels.items()))] = sample.value
    return out


RECORD = {
    "watch_id": "disk-full",
    "state": "executed",
    "result": {
        "condition": {"type": "compare", "status": "success", "met": True},
        "actions": [
            {"id": "page", "type": "webhook", "status": "success"},
            {"id": "chat", "type": "slack", "status": "failure", "reason": "500"},
        ],
    },
}


# --- metrics ------------------------------------------------------------------------------------------

def test_observe_record_counts_executions_conditions_and_actions():
    metrics = Metrics()
    metrics.observe_record(RECORD)
    metrics.observe_record(RECORD)
    metrics.observe_record({"watch_id": "disk-full", "state": "execution_not_needed",
                            "result": {"condition": {"met": False}, "actions": []}})
    metrics.observe_record({"watch_id": "other", "state": "failed", "result": {"input": {"status": "failure"}}})
    values = samples(metrics.render().decode())
    assert values[("watcher_executions_total", ("state", "executed"), ("watch", "disk-full"))] == 2
    assert values[("watcher_executions_total", ("state", "execution_not_needed"), ("watch", "disk-full"))] == 1
    assert values[("watcher_executions_total", ("state", "failed"), ("watch", "other"))] == 1
    assert values[("watcher_conditions_met_total", ("watch", "disk-full"))] == 2
    assert ("watcher_conditions_met_total", ("watch", "other")) not in values
    assert values[("watcher_actions_total", ("action", "page"), ("status", "success"), ("watch", "disk-full"))] == 2
    assert values[("watcher_actions_total", ("action", "chat"), ("status", "failure"), ("watch", "disk-full"))] == 2


def test_delivery_outbox_lag_and_watch_gauges():
    metrics = Metrics()
    metrics.observe_delivery("ops-webhook", 0.03, "delivered")
    metrics.observe_delivery("ops-webhook", 2.0, "retry")
    metrics.set_outbox_depth({"pending": 3, "dead": 1})
    metrics.set_outbox_depth({"pending": 2})
    metrics.observe_lag(0.2)
    metrics.observe_lag(12)
    metrics.set_watch_counts(active=5, inactive=2, invalid=1)
    values = samples(metrics.render().decode())
    assert values[("watcher_delivery_latency_seconds_count", ("connector", "ops-webhook"))] == 2
    assert values[("watcher_delivery_latency_seconds_sum", ("connector", "ops-webhook"))] == pytest.approx(2.03)
    assert values[("watcher_delivery_latency_seconds_bucket", ("connector", "ops-webhook"), ("le", "0.05"))] == 1
    assert values[("watcher_deliveries_total", ("connector", "ops-webhook"), ("outcome", "retry"))] == 1
    assert values[("watcher_outbox_depth", ("state", "pending"))] == 2
    assert values[("watcher_outbox_depth", ("state", "dead"))] == 0  # gone from the report → 0, not stale
    assert values[("watcher_schedule_lag_seconds_count",)] == 2
    assert values[("watcher_schedule_lag_seconds_bucket", ("le", "0.25"))] == 1
    assert values[("watcher_schedule_lag_seconds_bucket", ("le", "30.0"))] == 2
    assert values[("watcher_watches", ("state", "active"))] == 5
    assert values[("watcher_watches", ("state", "inactive"))] == 2
    assert values[("watcher_watches", ("state", "invalid"))] == 1


def test_each_metrics_object_has_its_own_registry():
    first, second = Metrics(), Metrics()
    first.observe_lag(1)
    assert samples(first.render().decode())[("watcher_schedule_lag_seconds_count",)] == 1
    assert samples(second.render().decode())[("watcher_schedule_lag_seconds_count",)] == 0


# --- HTTP ---------------------------------------------------------------------------------------------

@pytest.fixture
def health_document():
    return {"status": "ok", "watches": 3}


@pytest.fixture
def server(health_document):
    metrics = Metrics()
    metrics.observe_record(RECORD)
    with OperationsServer("127.0.0.1", 0, metrics, lambda: health_document) as running:
        yield running


def test_healthz_ok(server):
    response = httpx.get(f"{server.url}/healthz")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    assert response.json() == {"status": "ok", "watches": 3}
    assert server.port > 0 and server.url == f"http://127.0.0.1:{server.port}"


def test_healthz_unhealthy_answers_503(server, health_document):
    health_document["status"] = "degraded"
    health_document["cluster"] = "unreachable"
    response = httpx.get(f"{server.url}/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "degraded", "watches": 3, "cluster": "unreachable"}


def test_healthz_when_the_check_raises_hides_the_message():
    def broken():
        raise RuntimeError("password=hunter2")

    with OperationsServer("127.0.0.1", 0, Metrics(), broken) as running:
        response = httpx.get(f"{running.url}/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "error", "reason": "health check raised RuntimeError"}


def test_metrics_in_prometheus_text_format(server):
    response = httpx.get(f"{server.url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE
    assert "# TYPE watcher_executions_total counter" in response.text
    assert 'watcher_executions_total{state="executed",watch="disk-full"} 1.0' in response.text.splitlines()
    assert samples(response.text)[("watcher_conditions_met_total", ("watch", "disk-full"))] == 1


def test_metrics_in_openmetrics_when_prometheus_asks_for_it(server):
    response = httpx.get(f"{server.url}/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")


def test_metrics_gzip_when_asked(server):
    with httpx.Client() as client:
        request = client.build_request("GET", f"{server.url}/metrics", headers={"Accept-Encoding": "gzip"})
        response = client.send(request, stream=True)
        raw = b"".join(response.iter_raw())
    assert response.headers["content-encoding"] == "gzip"
    assert b"watcher_watches" in gzip.decompress(raw)


def test_unknown_path_and_wrong_method(server):
    assert httpx.get(f"{server.url}/nope").status_code == 404
    response = httpx.post(f"{server.url}/healthz")
    assert response.status_code == 405
    assert "GET" in response.headers["allow"].split(", ")
    assert httpx.post(f"{server.url}/metrics").status_code == 405


def test_stop_closes_the_port():
    running = OperationsServer("127.0.0.1", 0, Metrics(), lambda: {"status": "ok"})
    running.start()
    url = running.url
    assert httpx.get(f"{url}/healthz").status_code == 200
    running.stop()
    running.stop()  # idempotent
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/healthz", timeout=1)
