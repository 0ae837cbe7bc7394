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


SCRIPTING_MODULES = ("lang-painless", "lang-mustache", "ingest-common")
"""What the ``scripting`` tests need: Painless, stored Mustache templates, grok/set/remove processors."""


def pytest_collection_modifyitems(items):
    # A test that asks for a scripting cluster is a `scripting` test: `make test` runs those on the
    # OpenSearch engine (WATCHER_TEST_ENGINE=opensearch) and leaves them out of the Elasticsearch 8 run.
    for item in items:
        if {"requires_painless", "requires_scripting"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.scripting)


def _skip_without(es_modules: set[str], needed) -> None:
    missing = [name for name in needed if name not in es_modules]
    if missing:
        pytest.skip(f"the cluster lacks {', '.join(missing)} (Maven Central's Elasticsearch integ-test distribution "
                    f"has none of them); run it with WATCHER_TEST_ENGINE=opensearch, or ES_URL=<a full cluster>")


@pytest.fixture
def requires_painless(es_modules):
    """Skip, with the reason, when the cluster cannot run Painless scripts (marks the test ``scripting``)."""
    _skip_without(es_modules, ("lang-painless",))


@pytest.fixture
def requires_scripting(es_modules):
    """Skip, with the reason, unless the cluster has every module of :data:`SCRIPTING_MODULES`."""
    _skip_without(es_modules, SCRIPTING_MODULES)


@pytest.fixture
def index_name(es):
    """A fresh index name for one test; the index (if created) is deleted afterwards."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    yield name
    with contextlib.suppress(Exception):
        es.options(ignore_status=404).indices.delete(index=name)
