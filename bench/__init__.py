"""Benchmark harness (issue 8): evaluation throughput of the engine against the cluster's floor.

Not part of ``make test``. Run with ``make bench`` (provides Elasticsearch like ``make test``) or
``python -m bench`` with ``ES_URL`` set. See docs/benchmarks.md.
"""
