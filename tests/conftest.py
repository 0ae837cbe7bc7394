"""Shared fixtures: a real Elasticsearch for the tests that need one.

``make test`` provides the cluster and sets ``ES_URL`` before pytest starts; run alone, pytest
provides one itself through :func:`watcher.localcluster.provide` (ES_URL → Docker → local JVM node)
and stops it at the end of the session. The cluster is started only if a selected test uses it.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

import pytest

from watcher.es.client import ConnectionSettings, make_client

SHARED = Path(os.environ.get("WATCHER_SHARED_DIR", Path(__file__).resolve().parents[1].parent / "shared"))


@pytest.fixture(scope="session")
def es_cluster():
    """The running cluster (``watcher.localcluster.Cluster``) for this test session."""
    from watcher.localcluster import provide

    with provide() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def es_settings(es_cluster) -> ConnectionSettings:
    """Connection settings for the session's cluster."""
    return ConnectionSettings.from_env({**os.environ, **es_cluster.env()})


@pytest.fixture(scope="session")
def es(es_settings):
    """A synchronous ``elasticsearch.Elasticsearch`` client on the session's cluster."""
    client = make_client(es_settings)
    yield client
    client.close()


@pytest.fixture(scope="session")
def es_modules(es) -> set[str]:
    """Names of the modules and plugins the cluster's node has loaded (e.g. ``lang-painless``)."""
    nodes = es.nodes.info(node_id="_local", metric="plugins")["nodes"]
    node = next(iter(nodes.values()))
    return {m["name"] for m in node.get("modules", [])} | {p["name"] for p in node.get("plugins", [])}


@pytest.fixture
def requires_painless(es_modules):
    """Skip, with the reason, when the cluster cannot run Painless scripts."""
    if "lang-painless" not in es_modules:
        pytest.skip("the cluster has no lang-painless module (Maven Central's 8.14.1 integ-test "
                    "distribution lacks it); set ES_URL to a full Elasticsearch to run this test")


@pytest.fixture
def index_name(es):
    """A fresh index name for one test; the index (if created) is deleted afterwards."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    yield name
    with contextlib.suppress(Exception):
        es.options(ignore_status=404).indices.delete(index=name)
