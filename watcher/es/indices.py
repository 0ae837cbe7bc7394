"""Every index of ours, in one place: names under the prefix, mappings, settings, and how they are made.

* :data:`STATE` — ``<prefix>-state``, one document per watch (:mod:`watcher.es.state`);
* :data:`HISTORY` — daily ``<prefix>-history-YYYY.MM.DD``, one watch record per execution, made from
  the index template ``<prefix>-history`` (:mod:`watcher.es.history`);
* :data:`OUTBOX` — ``<prefix>-outbox``, one document per delivery (:mod:`watcher.es.outbox_store`);
* :data:`EVENTS` — ``<prefix>-events``, the event log read by cursor (:mod:`watcher.es.events`); one
  shard always, since the cursor is the shard's sequence number;
* :data:`WATCHES` — ``<prefix>-watches``, watches stored through ``PUT _watcher/watch/<id>``
  (:mod:`watcher.es.watch_store`), one document per watch id.

Each has an explicit mapping (``dynamic: false``): what is queried is mapped (keywords, dates…),
and payloads, requests and status objects are stored but not indexed (``enabled: false``). One
shard, one replica when the cluster has a second node (``auto_expand_replicas: 0-1``).

:func:`ensure_index` is the one way they are made: idempotent, and it brings the mapping of an
existing index (or the template of the daily ones) up to date.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

SETTINGS = {"number_of_shards": 1, "auto_expand_replicas": "0-1"}
_STORED_ONLY = {"type": "object", "enabled": False}

STATE_MAPPINGS = {
    "dynamic": False,
    "properties": {
        "watch_id": {"type": "keyword"},
        "updated_at": {"type": "date"},
        "active": {"type": "boolean"},
        "last_window_end": {"type": "date"},
        "status": {"type": "object", "enabled": False},
        "rule_state": {"type": "object", "enabled": False},
        "silences": {"type": "object", "enabled": False},
        "warnings": {"type": "object", "enabled": False},
    },
}

HISTORY_MAPPINGS = {
    "dynamic": False,
    "properties": {
        "watch_id": {"type": "keyword"},
        "node": {"type": "keyword"},
        "state": {"type": "keyword"},
        "@timestamp": {"type": "date"},
        "trigger_event": {"properties": {
            "type": {"type": "keyword"},
            "triggered_time": {"type": "date"},
            "schedule": {"properties": {"scheduled_time": {"type": "date"}, "catch_up": {"type": "boolean"}}},
            "manual": {"properties": {"schedule": {"properties": {"scheduled_time": {"type": "date"}}}}},
        }},
        "status": _STORED_ONLY,
        "input": _STORED_ONLY,
        "condition": _STORED_ONLY,
        "metadata": _STORED_ONLY,
        "exception": _STORED_ONLY,
        "messages": {"type": "text"},
        "result": {"properties": {
            "execution_time": {"type": "date"},
            "execution_duration": {"type": "long"},
            "input": {"properties": {"type": {"type": "keyword"}, "status": {"type": "keyword"},
                                     "payload": _STORED_ONLY, "search": _STORED_ONLY, "http": _STORED_ONLY,
                                     "error": _STORED_ONLY}},
            "condition": {"properties": {"type": {"type": "keyword"}, "status": {"type": "keyword"},
                                         "met": {"type": "boolean"}}},
            "transform": _STORED_ONLY,
            "rule": _STORED_ONLY,
            "warnings": {"properties": {"type": {"type": "keyword"}}},
            "actions": {"type": "nested", "include_in_parent": True, "properties": {
                "id": {"type": "keyword"}, "type": {"type": "keyword"},
                "status": {"type": "keyword"}, "reason": {"type": "text"},
            }},
        }},
    },
}

OUTBOX_MAPPINGS = {
    "dynamic": False,
    "properties": {
        "delivery_id": {"type": "keyword"},
        "watch_id": {"type": "keyword"},
        "action_id": {"type": "keyword"},
        "record_id": {"type": "keyword"},
        "connector": {"type": "keyword"},
        "state": {"type": "keyword"},
        "attempts": {"type": "integer"},
        "created_at": {"type": "date"},
        "next_attempt_at": {"type": "date"},
        "updated_at": {"type": "date"},
        "lease_until": {"type": "date"},
        "delivered_at": {"type": "date"},
        "last_error": {"type": "text"},
        "last_status": {"type": "integer"},
        "request": _STORED_ONLY,
    },
}


@dataclasses.dataclass(frozen=True)
class OurIndex:
    """One index of ours (or one family of daily indices).

    Attributes:
        suffix: what follows ``<prefix>-`` in its name (``state``, ``outbox``, ``history``).
        mappings: its explicit mapping.
        daily: daily indices ``<prefix>-<suffix>-YYYY.MM.DD`` made from the index template
            ``<prefix>-<suffix>`` (priority :attr:`template_priority`), rather than one index.
        settings: index settings.
    """

    suffix: str
    mappings: dict
    daily: bool = False
    settings: dict = dataclasses.field(default_factory=lambda: SETTINGS)
    template_priority: int = 500

    def name(self, prefix: str) -> str:
        """``<prefix>-<suffix>``: the index, or the index template of daily indices."""
        return f"{prefix}-{self.suffix}"

    def pattern(self, prefix: str) -> str:
        """The pattern matching every daily index (``<prefix>-<suffix>-*``)."""
        return f"{prefix}-{self.suffix}-*"

    def daily_name(self, prefix: str, when: dt.datetime) -> str:
        """The daily index for ``when`` (its UTC date): ``<prefix>-<suffix>-YYYY.MM.DD``."""
        return f"{prefix}-{self.suffix}-{when.astimezone(dt.timezone.utc):%Y.%m.%d}"


EVENTS_MAPPINGS = {
    "dynamic": False,
    "properties": {
        "@timestamp": {"type": "date"},           # when the event was written
        "time": {"type": "date"},                 # when it happened
        "kind": {"type": "keyword"},
        "watch_id": {"type": "keyword"},
        "group": {"type": "keyword"},
        "record_id": {"type": "keyword"},
        "action_id": {"type": "keyword"},
        "delivery_id": {"type": "keyword"},
        "connector": {"type": "keyword"},
        "scheduled_time": {"type": "date"},
        "actor": {"type": "keyword"},
        "message": {"type": "text"},
        "details": _STORED_ONLY,
    },
}

WATCHES_MAPPINGS = {
    "dynamic": False,
    "properties": {
        "watch_id": {"type": "keyword"},
        "updated_at": {"type": "date"},
        "watch": _STORED_ONLY,                   # the definition as PUT (Watcher's JSON)
    },
}

STATE = OurIndex("state", STATE_MAPPINGS)
HISTORY = OurIndex("history", HISTORY_MAPPINGS, daily=True)
OUTBOX = OurIndex("outbox", OUTBOX_MAPPINGS)
EVENTS = OurIndex("events", EVENTS_MAPPINGS)
WATCHES = OurIndex("watches", WATCHES_MAPPINGS)
ALL = (STATE, HISTORY, OUTBOX, EVENTS, WATCHES)


def ensure_index(es, index: OurIndex, prefix: str) -> None:
    """Make ``index`` of ``prefix`` ready to write (idempotent).

    One index: created with its settings and mapping if missing (a 400 from a concurrent creation is
    ignored); if it exists, its mapping is updated. Daily indices: their index template is created
    or updated (the indices themselves are made by the first write of each day).

    Args:
        es: a synchronous ``elasticsearch.Elasticsearch`` client.

    Raises:
        elasticsearch.ApiError / TransportError on cluster errors.
    """
    if index.daily:
        es.indices.put_index_template(
            name=index.name(prefix), index_patterns=[index.pattern(prefix)], priority=index.template_priority,
            template={"settings": index.settings, "mappings": index.mappings})
        return
    name = index.name(prefix)
    if es.indices.exists(index=name):
        es.indices.put_mapping(index=name, **index.mappings)
        return
    es.options(ignore_status=400).indices.create(index=name, settings=index.settings, mappings=index.mappings)
