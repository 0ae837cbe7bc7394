"""Elasticsearch 8.14 single-node in Docker, through testcontainers (used when an engine answers)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from testcontainers.elasticsearch import ElasticSearchContainer

from watcher.localcluster.cluster import Cluster

IMAGE = "docker.elastic.co/elasticsearch/elasticsearch:8.14.1"


def engine_available() -> bool:
    """True when a Docker engine answers a ping (the docker CLI alone is not enough)."""
    try:
        import docker  # deferred: optional (installed with testcontainers, the test extra)
    except ImportError:
        return False
    try:
        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # any failure to reach the engine means "not available"
        return False


@contextlib.contextmanager
def run_container() -> Iterator[Cluster]:
    """Start the container with security off and a 1 GB heap; remove it on exit."""

    container = ElasticSearchContainer(IMAGE, mem_limit="2G")
    container.with_env("discovery.type", "single-node")
    container.with_env("xpack.security.enabled", "false")
    container.with_env("ES_JAVA_OPTS", "-Xms1g -Xmx1g")
    with container:
        host = container.get_container_host_ip()
        port = container.get_exposed_port(container.port)
        cluster = Cluster(url=f"http://{host}:{port}", kind="docker")
        cluster.wait_until_ready()
        yield cluster
