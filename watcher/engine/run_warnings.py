"""The warnings of one run: what the engine could not be sure of, said in the record and the log.

A run that cannot be sure of its answer says so rather than passing doubt off as "not met" or as an
alert (docs/correctness.md). Every such doubt is one warning, ``{"type", "message", <numbers>}``, in
the run's :class:`Warnings`; the record carries them as ``result.warnings``, each is logged once at
WARNING on logger ``watcher.warnings`` (naming the watch), the dry-run prints them, and the daemon
keeps the last run's in the watch state for ``watcher status``.

Types (the numbers each carries):

* ``partial_results`` — a search answered from only some of its shards: ``search`` (which search of
  the run), ``index``, ``failed_shards``, ``total_shards``, ``reason`` (the first failure) and
  ``accepted`` (false: the run failed and is retried; true: the rule allows partial results, or
  the run is a Watcher watch, and the answer was evaluated).
* ``groups_truncated`` — a ``group_by`` terms aggregation returned ``max_groups`` groups and left
  documents out: ``search``, ``group_by``, ``max_groups``, ``groups_evaluated``, ``other_documents``
  (Elasticsearch's ``sum_other_doc_count``: documents in groups that were not evaluated).
* ``absence_held`` — on a partial answer (accepted), a condition that missing documents can make
  true (flatline, ``lt``/``lte``…) would have fired and did not: ``groups`` (the group keys held,
  at most :data:`LISTED`; null for the rule as a whole), ``held`` (how many).
* ``recoveries_held`` — on a partial answer (accepted), groups that fired before were not matched;
  they are not declared recovered (they stay firing): ``groups``, ``held``.
* ``template_missing_value`` — a rule alert's templates read values its data does not have; it was
  sent with ``<MISSING VALUE>`` in their place: ``action``, ``sequence`` (the group), ``names``.

Other warnings join by adding a type here and calling :meth:`Warnings.add`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from watcher.es.shards import PartialResultsError, ShardFailures, shard_failures

__all__ = ["ABSENCE_HELD", "GROUPS_TRUNCATED", "LISTED", "PARTIAL_RESULTS", "RECOVERIES_HELD", "TEMPLATE_MISSING_VALUE",
           "Warnings",
           "check_groups", "check_search"]

PARTIAL_RESULTS = "partial_results"
GROUPS_TRUNCATED = "groups_truncated"
ABSENCE_HELD = "absence_held"
RECOVERIES_HELD = "recoveries_held"
TEMPLATE_MISSING_VALUE = "template_missing_value"
LISTED = 20
"""Most group keys listed in one warning (the count is always complete)."""

log = logging.getLogger("watcher.warnings")


class Warnings:
    """The warnings of one run, in the order they were raised; equal warnings are kept once.

    Args:
        subject: the watch or rule id, named in every log line.
    """

    def __init__(self, subject: str):
        self.subject = subject
        self._items: list[dict] = []

    def add(self, kind: str, message: str, **facts: Any) -> dict:
        """Record a warning and log it at WARNING (once: an equal warning is not added again).

        Args:
            kind: the warning type (module docstring).
            message: one sentence for people (record, dry-run, status, log).
            facts: the numbers and names of the type, JSON values.

        Returns:
            The warning as recorded: ``{"type": kind, "message": message, **facts}``.
        """
        warning = {"type": kind, "message": message, **facts}
        if warning not in self._items:
            self._items.append(warning)
            log.warning("%s: %s", self.subject, message, extra={"watch_id": self.subject, "warning": kind})
        return warning

    def held(self, kind: str, groups: list, what: str) -> dict | None:
        """Record that ``what`` was held back for ``groups`` on a partial answer (``absence_held``,
        ``recoveries_held``); None in ``groups`` is the rule as a whole. Nothing when ``groups`` is
        empty.

        Returns:
            The warning (``groups``: at most :data:`LISTED` keys, null for the whole rule;
            ``held``: how many), or None.
        """
        if not groups:
            return None
        named = [group for group in groups if group is not None]
        listed = ", ".join(map(str, named[:LISTED])) + (", …" if len(named) > LISTED else "")
        whom = f"{len(groups)} group(s) ({listed})" if named else "the rule"
        return self.add(kind, f"the answer was partial, so {what} for {whom}",
                        groups=named[:LISTED] if named else None, held=len(groups))

    def of_type(self, kind: str) -> list[dict]:
        """The warnings of type ``kind``."""
        return [item for item in self._items if item["type"] == kind]

    @property
    def partial(self) -> bool:
        """True when the run evaluated a partial answer (an accepted ``partial_results``): counts
        may be low, so nothing that missing documents can make true may fire."""
        return any(item.get("accepted") for item in self.of_type(PARTIAL_RESULTS))

    def to_json(self) -> list[dict]:
        """The warnings as plain JSON (a copy), for ``result.warnings``."""
        return [dict(item) for item in self._items]

    def __iter__(self) -> Iterator[dict]:
        return iter(self.to_json())

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)


def check_search(response: dict, warnings: Warnings, *, search: str, index: str,
                 allow_partial: bool) -> ShardFailures | None:
    """Look at a search response's shards; warn about a partial answer, and refuse it unless allowed.

    Args:
        response: the search response body.
        warnings: the run's warnings.
        search: which search of the run (``"input"``, ``"rule filter"``, ``"top counts"``…).
        index: the index pattern searched, for the message.
        allow_partial: evaluate a partial answer (with the warning) instead of failing.

    Returns:
        The shard failures (None when every shard answered).

    Raises:
        PartialResultsError: some shards failed and ``allow_partial`` is false (the warning, with
            ``accepted: false``, is recorded first).
    """
    failures = shard_failures(response)
    if failures is None:
        return None
    outcome = ("evaluated as is: counts may be low" if allow_partial
               else "the run failed (the daemon runs the window again)")
    warnings.add(PARTIAL_RESULTS,
                 f"{failures.failed} of {failures.total} shards failed in the {search} search on {index}; "
                 f"{outcome} ({failures.reason})",
                 search=search, index=index, failed_shards=failures.failed, total_shards=failures.total,
                 reason=failures.reason, accepted=allow_partial)
    if not allow_partial:
        raise PartialResultsError(failures, search, index)
    return failures


def check_groups(terms: Any, max_groups: int, warnings: Warnings, *, search: str, group_by: str) -> bool:
    """Warn when a ``group_by`` terms aggregation left groups out.

    Truncated means: the aggregation returned at least ``max_groups`` buckets and its
    ``sum_other_doc_count`` (documents in buckets not returned; Elasticsearch does not count
    documents of buckets under ``min_doc_count`` there) is above 0.

    Args:
        terms: the terms aggregation's result (``{"buckets": [...], "sum_other_doc_count": n}``);
            anything else is ignored.
        max_groups: the aggregation's ``size`` (the rule's ``max_groups``).
        warnings: the run's warnings.
        search: which search of the run, for the record.
        group_by: the field grouped on.

    Returns:
        True when a ``groups_truncated`` warning was raised.
    """
    if not isinstance(terms, dict):
        return False
    buckets = terms.get("buckets") or []
    other = terms.get("sum_other_doc_count") or 0
    if other <= 0 or len(buckets) < max_groups:
        return False
    warnings.add(GROUPS_TRUNCATED,
                 f"only the {len(buckets)} largest groups of {group_by} were evaluated (max_groups: {max_groups}) "
                 f"in the {search} search; {other} more documents are in groups that were not evaluated",
                 search=search, group_by=group_by, max_groups=max_groups, groups_evaluated=len(buckets),
                 other_documents=other)
    return True
