"""N count-threshold rules over the benchmark index, as YAML-equivalent rule documents.

Rule ``i`` counts one service's documents of one log level (from ``i = 80`` on, of one host too)
in the last hour and fires at ``count >= 10``, so some rules are met and some are not, as in real
use. ``hits: 0`` makes the search a pure count, the same request ElastAlert2's ``frequency`` rule
sends with ``use_count_query``. The one action is a webhook to 127.0.0.1, run in simulate mode
(rendered, never sent).
"""

from __future__ import annotations

import datetime as dt
import json

from bench.data import HOSTS, INDEX, LEVELS, SERVICES

WINDOW = "1h"
THRESHOLD = 10
CONNECTOR = "bench-webhook"
CONNECTORS_DOCUMENT = {"connectors": {CONNECTOR: {
    "type": "webhook", "url": "http://127.0.0.1:9/bench", "method": "post",
    "headers": {"Content-Type": "application/json"}, "body": "{{#toJson}}ctx.payload{{/toJson}}"}}}


def rule_query(i: int) -> str:
    """The Lucene query of rule ``i`` (service × level, plus a host from ``i = 80`` on)."""
    service = SERVICES[i % len(SERVICES)]
    level = LEVELS[(i // len(SERVICES)) % len(LEVELS)]
    query = f'service.name:"{service}" AND log.level:"{level}"'
    block = len(SERVICES) * len(LEVELS)
    if i >= block:
        query += f' AND host.name:"{HOSTS[(i // block - 1) % len(HOSTS)]}"'
    return query


def rule_document(i: int) -> dict:
    """Rule ``i`` as the mapping a YAML rule file would hold."""
    return {
        "name": f"bench-rule-{i:05d}",
        "index": INDEX,
        "schedule": "1m",
        "window": WINDOW,
        "query": rule_query(i),
        "condition": {"count": {"gte": THRESHOLD}},
        "hits": 0,
        "title": "{{ rule.name }}: {{ count }} documents",
        "message": "{{ count }} matching documents in {{ rule.window }} (up to {{ window.end }}).",
        "actions": [{"connector": CONNECTOR}],
    }


def connectors() -> dict:
    """``{name: Connector}`` for the rules' one webhook connector.

    Raises:
        DefinitionError: the connector document is refused (a bug here).
    """
    from watcher.definitions.connectors import load_connectors
    from watcher.model.problems import Reader
    from watcher.model.source import Document

    document = Document(file="bench-connectors.yaml", data=CONNECTORS_DOCUMENT, text="")
    reader = Reader(document)
    loaded = load_connectors(document, reader, environ={})
    reader.raise_if_problems()
    return loaded


def compile_rules(count: int) -> list:
    """Validate and compile rules ``0 … count−1`` → ``Watch`` objects (the daemon's load path).

    Raises:
        DefinitionError: a rule is refused (a bug in :func:`rule_document`).
    """
    from watcher.definitions.compile import compile_rule
    from watcher.model.problems import Reader
    from watcher.definitions.rule import parse_rule
    from watcher.model.source import Document

    loaded = connectors()
    watches = []
    for i in range(count):
        file = f"bench/rule-{i:05d}.yaml"
        document = Document(file=file, data=rule_document(i), text="")
        reader = Reader(document)
        spec = parse_rule(document, reader, loaded)
        reader.raise_if_problems()
        watches.append(compile_rule(spec, file, loaded))
    return watches


def rendered_search(watch, scheduled: dt.datetime) -> tuple[list[str], dict]:
    """``(indices, body)`` of ``watch``'s search input as the engine sends it at ``scheduled``.

    The body template is rendered with Watcher's Mustache in JSON mode, as the search input does,
    so the floor sends byte-for-byte the same query.
    """
    from watcher.templates.mustache import render

    request = watch.body["input"]["search"]["request"]
    model = {"ctx": {"trigger": {"scheduled_time": scheduled, "triggered_time": scheduled}}}
    return list(request["indices"]), json.loads(render(json.dumps(request["body"]), model, escape="json"))
