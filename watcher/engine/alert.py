"""One alert of a rule (firing, recovered, or an aggregation summary): the value the rule steps
(:mod:`watcher.engine.rules`, :mod:`watcher.engine.alerting`) pass around and templates read."""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass
class Alert:
    """One alert of a rule: ``group`` is the group key (None for ungrouped rules).

    Attributes:
        status: ``firing`` or ``recovered`` (see :mod:`watcher.engine.alerting`).
        details: type-specific facts (``details`` in templates).
        fired_for: for recovered alerts, seconds between the first firing run and this run.
        matches, summary_table: for an aggregation summary, the collected alerts and their table.
        top_counts: ``{field: [{"key", "count"}]}`` when the rule has ``top_count_keys``.
        sequence: the delivery sequence (default ``group:<key>`` / ``recovered:<key>``).
    """

    group: Any
    count: int
    value: Any
    hits: list[dict]
    payload: dict
    status: str = "firing"
    details: dict = dataclasses.field(default_factory=dict)
    fired_for: float | None = None
    matches: list | None = None
    summary_table: str | None = None
    top_counts: dict = dataclasses.field(default_factory=dict)
    sequence: str | None = None

    def delivery_sequence(self) -> str:
        """With the record id, what makes the delivery id unique (no double sends on a re-run)."""
        if self.sequence:
            return self.sequence
        return f"{'recovered' if self.status == 'recovered' else 'group'}:{self.group}"
