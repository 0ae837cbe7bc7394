"""A real Elasticsearch (or OpenSearch) for tests, the demo, CI and local runs.

One entry point, :func:`provide`, picks the cluster in the order the project's design sets:

1. ``ES_URL`` is set: use that cluster (auth from ``ES_API_KEY`` or ``ES_USERNAME``/``ES_PASSWORD``,
   CA bundle from ``ES_CA_CERTS``). Nothing is started or stopped.
2. A Docker engine answers and the default engine is wanted: testcontainers starts Elasticsearch
   8.14 single-node.
3. Otherwise: a real node runs in a local JVM, from what Maven Central serves — the engine named by
   ``WATCHER_TEST_ENGINE`` (``elasticsearch`` 8.14.1, ``opensearch`` 2.19.6, ``elasticsearch9``
   9.2.0; see :mod:`watcher.localcluster.engines`).

``WATCHER_ES_PROVIDER=url|docker|jvm`` forces one of them.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from watcher.localcluster import jvm
from watcher.localcluster.cluster import Cluster, ClusterUnavailable
from watcher.localcluster.engines import selected_engine

__all__ = ["Cluster", "ClusterUnavailable", "provide", "from_environment"]


def from_environment() -> Cluster | None:
    """The cluster named by ``ES_URL`` (and its auth variables), or None when ``ES_URL`` is unset."""
    url = os.environ.get("ES_URL", "").strip()
    if not url:
        return None
    return Cluster(
        url=url,
        kind="url",
        api_key=os.environ.get("ES_API_KEY") or None,
        username=os.environ.get("ES_USERNAME") or None,
        password=os.environ.get("ES_PASSWORD") or None,
        ca_certs=os.environ.get("ES_CA_CERTS") or None,
    )


@contextlib.contextmanager
def provide() -> Iterator[Cluster]:
    """Yield a running cluster, chosen as the module docstring says; stop what was started on exit.

    Raises:
        ClusterUnavailable: no cluster could be provided (the message says why for each option).
    """
    forced = os.environ.get("WATCHER_ES_PROVIDER", "").strip().lower()
    existing = from_environment()
    if existing is not None and forced in ("", "url"):
        yield existing
        return
    if forced == "url":
        raise ClusterUnavailable("WATCHER_ES_PROVIDER=url but ES_URL is not set")

    from watcher.localcluster import docker  # deferred: optional (testcontainers comes with the test extra)

    engine = selected_engine()
    # The container is Elasticsearch 8 only; the other engines are assembled for the JVM.
    if forced in ("", "docker") and engine.name == "elasticsearch" and docker.engine_available():
        with docker.run_container() as cluster:
            yield cluster
        return
    if forced == "docker":
        raise ClusterUnavailable("WATCHER_ES_PROVIDER=docker but no Docker engine answers")

    node = jvm.JvmNode.ephemeral(engine)
    try:
        yield node.start()
    finally:
        node.stop()
