"""What a search response says about its shards: complete, or partial (``_shards.failed > 0``).

Elasticsearch answers a search with HTTP 200 even when some of the shards it searched failed (a
query that cannot be parsed against one index's mapping, a shard that is being relocated, a
circuit breaker on one node): ``_shards.failed`` counts them, ``_shards.failures`` says why, and
the hits, totals and aggregations hold only what the other shards found. Such an answer is not
the truth about the window, so the engine must not read it as one (docs/correctness.md).

:func:`shard_failures` reads a response; :class:`PartialResultsError` is what a search raises when
it refuses a partial answer (a :class:`~watcher.errors.TransientClusterError`: the daemon records
the run as failed and runs the same window again).
"""

from __future__ import annotations

import dataclasses

from watcher.errors import TransientClusterError

__all__ = ["REASON_CHARS", "PartialResultsError", "ShardFailures", "shard_failure_reason", "shard_failures"]

REASON_CHARS = 300
"""A shard failure's reason is cut to this many characters (records and log lines stay short)."""


@dataclasses.dataclass(frozen=True)
class ShardFailures:
    """The shards one search could not read.

    Attributes:
        failed: shards that failed (> 0).
        total: shards the search went to.
        reason: the first failure, one line (:func:`shard_failure_reason`).
    """

    failed: int
    total: int
    reason: str


class PartialResultsError(TransientClusterError):
    """A search answered with results from only some of its shards, and the caller does not accept
    partial results (a rule without ``allow_partial_results: true``).

    Raised by the engine's searches for rules. The run is recorded as failed (the record's error
    type is ``partial_results_error``); the daemon does not advance the watch's progress and runs
    the same window again at the next tick, as for any other transient cluster error.

    Attributes:
        failures: what failed (:class:`ShardFailures`).
        search: which search of the run it was (``"input"``, ``"rule filter"``, ``"top counts"``…).
        index: the index pattern searched (comma-separated).
    """

    def __init__(self, failures: ShardFailures, search: str, index: str):
        super().__init__(f"{failures.failed} of {failures.total} shards failed in the {search} search on "
                         f"{index}, so its results are incomplete: {failures.reason}")
        self.failures, self.search, self.index = failures, search, index


def shard_failures(response: dict) -> ShardFailures | None:
    """The failed shards of a search response, or None when every shard answered.

    Args:
        response: a search response body (``_search`` or one ``_msearch`` item).

    Returns:
        :class:`ShardFailures` when ``_shards.failed > 0``, else None (a response without
        ``_shards`` counts as complete).
    """
    shards = response.get("_shards") if isinstance(response, dict) else None
    if not isinstance(shards, dict):
        return None
    failed = shards.get("failed") or 0
    if not failed:
        return None
    return ShardFailures(failed=int(failed), total=int(shards.get("total") or 0),
                         reason=shard_failure_reason(shards.get("failures") or []))


def shard_failure_reason(failures: list[dict]) -> str:
    """One line for the first of ``_shards.failures``: ``index [NAME]: TYPE: REASON (caused by:
    TYPE: REASON)``, cut to :data:`REASON_CHARS` characters; ``"unknown"`` without failures."""
    if not failures:
        return "unknown"
    first = failures[0]
    cause = first.get("reason") or {}
    text = f"{cause.get('type', 'error')}: {cause.get('reason', '')}".strip() if isinstance(cause, dict) else str(cause)
    inner = cause.get("caused_by") if isinstance(cause, dict) else None
    if isinstance(inner, dict) and inner.get("reason") and inner.get("reason") not in text:
        text += f" (caused by: {inner.get('type', 'error')}: {inner['reason']})"
    if first.get("index"):
        text = f"index [{first['index']}]: {text}"
    text = " ".join(text.split())
    return text if len(text) <= REASON_CHARS else text[:REASON_CHARS - 1] + "…"
