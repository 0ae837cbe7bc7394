"""The ``opsgenie`` action (our type; Watcher reaches OpsGenie through a webhook): send an alert
through an OpsGenie connector.

Body::

    {"connector": "ops",                       # an opsgenie connector (or api_key [+ api_url] inline)
     "mode": "eswatcher" | "alert_v2",         # default: the connector's (eswatcher)
     # alert_v2 only — text templates:
     "message": "...", "alias": "...", "description": "...", "priority": "P1".."P5",
     "tags": ["..."], "details": {"k": "..."}, "entity": "...", "source": "..."}

``eswatcher`` sends the JSON of the whole ``ctx`` (``{{#toJson}}ctx{{/toJson}}``) to OpsGenie's
Watcher integration, exactly what the documented Watcher webhook sends (watcher-semantics §6.7);
``alert_v2`` creates an alert through the Alert API (§6.6): ``message`` defaults to
``{{ctx.watch_id}}`` and ``alias`` (OpsGenie's de-duplication key) to ``{{ctx.watch_id}}``.
Result ``{"opsgenie": {"mode", "request": {...}, "response"?: {...}}}``, the request shown as a
webhook's with the API key masked.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from watcher.connectors import opsgenie as opsgenie_connector
from watcher.model.problems import Reader
from watcher.model.secrets import Secret
from watcher.model.source import plain
from watcher.engine.actions import (check_keys, connector_for, parse_connector_name, parse_text, parse_text_list,
                                    parse_text_map, render as render_text)
from watcher.engine.actions.webhook import request_record
from watcher.engine.delivery import HttpRequest, Outcome

TYPE = "opsgenie"
ESWATCHER_BODY = "{{#toJson}}ctx{{/toJson}}"
DEFAULT_MESSAGE = "{{ctx.watch_id}}"
DEFAULT_ALIAS = "{{ctx.watch_id}}"
ALERT_FIELDS = ("message", "alias", "description", "priority", "tags", "details", "entity", "source")
KEYS = ("connector", "mode", "api_key", "api_url", *ALERT_FIELDS)


@dataclasses.dataclass(frozen=True)
class OpsgenieConfig:
    """A parsed opsgenie action: ``mode`` None = the connector's; templates for the alert fields."""

    connector: str | None = None
    mode: str | None = None
    api_key: Secret | None = dataclasses.field(default=None, repr=False)
    api_url: str | None = None
    message: Any = None
    alias: Any = None
    description: Any = None
    priority: Any = None
    tags: tuple = ()
    details: dict = dataclasses.field(default_factory=dict)
    entity: Any = None
    source: Any = None


def parse(reader: Reader, body: Any, path) -> OpsgenieConfig | None:
    """Validate an ``opsgenie`` action body (connector, mode eswatcher|alert_v2, alert fields); problems go to ``reader``."""
    holder = check_keys(reader, body, path, KEYS, "an opsgenie action such as {connector: ops}")
    if holder is None:
        return None
    before = len(reader.problems)
    connector = parse_connector_name(reader, holder, path)
    api_key = plain(holder.get("api_key"))
    if connector is None and api_key is None:
        reader.problem(path, "missing required field 'connector' (an opsgenie connector of connectors.yaml)")
    if api_key is not None and (not isinstance(api_key, str) or not api_key):
        reader.problem((*path, "api_key"), "expected an OpsGenie API key string", at_value=True)
    api_url = plain(holder.get("api_url"))
    if api_url is not None and (not isinstance(api_url, str) or not api_url.startswith(("http://", "https://"))):
        reader.expected((*path, "api_url"), f"a URL such as {opsgenie_connector.EU_API_URL}", api_url)
    mode = plain(holder.get("mode"))
    if mode is not None and mode not in opsgenie_connector.MODES:
        reader.expected((*path, "mode"), f"one of {', '.join(opsgenie_connector.MODES)}", mode)
    if mode == "eswatcher":
        for key in ALERT_FIELDS:
            if key in holder:
                reader.problem((*path, key), f"'{key}' is only used in mode alert_v2 (mode eswatcher sends ctx as JSON)")
    fields: dict[str, Any] = {}
    for key in ("message", "alias", "description", "entity", "source", "priority"):
        if key in holder:
            fields[key] = parse_text(reader, holder[key], (*path, key))
    priority = fields.get("priority")
    if isinstance(priority, str) and "{{" not in priority and priority not in opsgenie_connector.PRIORITIES:
        reader.expected((*path, "priority"), f"one of {', '.join(opsgenie_connector.PRIORITIES)}", priority)
    tags = parse_text_list(reader, holder["tags"], (*path, "tags")) if "tags" in holder else []
    details = parse_text_map(reader, holder["details"], (*path, "details")) if "details" in holder else {}
    if len(reader.problems) > before:
        return None
    return OpsgenieConfig(connector=connector, mode=mode, api_key=Secret(api_key) if api_key else None,
                          api_url=api_url, tags=tuple(tags), details=details, **fields)


def render(config: OpsgenieConfig, run: Any, model: dict) -> HttpRequest:
    """The request to OpsGenie.

    Raises:
        LookupError: unknown connector. ValueError: a rendered priority outside P1..P5.
    """
    from watcher.templates.mustache import render as mustache

    connector = connector_for(run, config.connector, TYPE)
    if connector is not None:
        settings, secrets = connector.config, connector.secrets
    else:
        settings = opsgenie_connector.Config(type="opsgenie", api_key=config.api_key,
                                             api_url=config.api_url or opsgenie_connector.DEFAULT_API_URL)
        secrets = ()
    mode = config.mode or settings.mode
    fields: dict[str, Any] = {"mode": mode, "secrets": secrets}
    if config.api_key is not None:
        fields["api_key"] = config.api_key
    if config.api_url is not None:
        fields["api_url"] = config.api_url
    if mode == "eswatcher":
        fields["body"] = mustache(ESWATCHER_BODY, model)
    else:
        fields["alert"] = _alert(config, model)
    return opsgenie_connector.build_request(settings, fields)


def _alert(config: OpsgenieConfig, model: dict) -> dict:
    def text(template: Any) -> str | None:
        return render_text(template, model) if template is not None else None

    priority = text(config.priority)
    if priority and priority not in opsgenie_connector.PRIORITIES:
        raise ValueError(f"opsgenie priority rendered as {priority!r}; expected one of "
                         f"{', '.join(opsgenie_connector.PRIORITIES)}")
    return {"message": text(config.message if config.message is not None else DEFAULT_MESSAGE),
            "alias": text(config.alias if config.alias is not None else DEFAULT_ALIAS),
            "description": text(config.description), "priority": priority or None,
            "tags": [tag for tag in (text(t) for t in config.tags) if tag],
            "details": {name: text(value) for name, value in config.details.items()},
            "entity": text(config.entity), "source": text(config.source)}


def result(config: OpsgenieConfig, rendered: HttpRequest, outcome: Outcome) -> dict:
    """``{"opsgenie": {"mode", "request", "response"?}}``."""
    mode = "eswatcher" if "/v1/json/eswatcher" in rendered.url else "alert_v2"
    out: dict[str, Any] = {"mode": mode, "request": request_record(rendered)}
    if outcome.response is not None:
        out["response"] = outcome.response
    return {"opsgenie": out}
