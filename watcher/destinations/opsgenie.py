"""OpsGenie connector: the Watcher integration endpoint, or the Alert API v2.

Configuration (connectors.yaml)::

    ops:
      type: opsgenie
      api_key: ${OPSGENIE_API_KEY}          # the integration's key (a secret)
      api_url: https://api.opsgenie.com     # EU accounts: https://api.eu.opsgenie.com
      mode: eswatcher                       # or alert_v2
      priority: P3                          # alert_v2 defaults (optional): priority, tags, source, entity
      timeout: 10s  read_timeout: 10s  verify: true  ca_file: …  proxy: …

Modes:

* ``eswatcher`` (default) — OpsGenie's "Elasticsearch Watcher" integration: ``POST
  <api_url>/v1/json/eswatcher?apiKey=<key>`` with ``Content-Type: application/json`` and the JSON of
  the whole ``ctx`` as body (``{{#toJson}}ctx{{/toJson}}``); docs/semantics.md#opsgenie-watcher-integration,
  support.atlassian.com/opsgenie/docs/integrate-opsgenie-with-x-pack-elasticsearch-watcher/.
* ``alert_v2`` — ``POST <api_url>/v2/alerts`` with ``Authorization: GenieKey <key>`` and an alert
  body ``{message, alias, description, priority, tags, details, entity, source}`` (Kibana's
  ``.opsgenie`` createAlert, docs/semantics.md#kibana-opsgenie-connector).

The action (a watch's ``opsgenie`` action, or a rule action naming a opsgenie connector):

The ``opsgenie`` action (our type; Watcher reaches OpsGenie through a webhook): send an alert
through an OpsGenie connector.

Body::

    {"connector": "ops",                       # an opsgenie connector (or api_key [+ api_url] inline)
     "mode": "eswatcher" | "alert_v2",         # default: the connector's (eswatcher)
     # alert_v2 only — text templates:
     "message": "...", "alias": "...", "description": "...", "priority": "P1".."P5",
     "tags": ["..."], "details": {"k": "..."}, "entity": "...", "source": "..."}

``eswatcher`` sends the JSON of the whole ``ctx`` (``{{#toJson}}ctx{{/toJson}}``) to OpsGenie's
Watcher integration, exactly what the documented Watcher webhook sends
(docs/semantics.md#opsgenie-watcher-integration); ``alert_v2`` creates an alert through the Alert API
(docs/semantics.md#kibana-opsgenie-connector): ``message`` defaults to ``{{ctx.watch_id}}`` and ``alias``
(OpsGenie's de-duplication key) to ``{{ctx.watch_id}}``. Result ``{"opsgenie": {"mode", "request": {...},
"response"?: {...}}}``, the request shown as a webhook's with the API key masked.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from typing import Any, Literal

import pydantic

from watcher.destinations.common import (check_keys, connector_for, parse_connector_name, parse_text, parse_text_list,
                                         parse_text_map)
from watcher.destinations.common import render as render_text
from watcher.destinations.webhook import HttpSettings, build_url, parse_url, request_record
from watcher.model.problems import Reader
from watcher.model.requests import HttpRequest, HttpResponse, Outcome, http_outcome
from watcher.model.schema_parts import CONNECTOR_REF
from watcher.model.secrets import Secret, reveal
from watcher.model.source import plain
from watcher.templates.mustache import render as mustache

# ---- the connector (connectors.yaml) ------------------------------------------------------------

TYPE = "opsgenie"
ACTION_SCHEMA = {"type": "object", "description": "OpsGenie through a connector: {connector: NAME, …overrides}.",
                 "properties": CONNECTOR_REF}
"""JSON Schema of the watch action body (editors; ``watcher validate`` stays the authority)."""
DEFAULT_API_URL = "https://api.opsgenie.com"
EU_API_URL = "https://api.eu.opsgenie.com"
MODES = ("eswatcher", "alert_v2")
PRIORITIES = ("P1", "P2", "P3", "P4", "P5")


class Config(HttpSettings):
    """An OpsGenie connector (see the module docstring)."""

    type: Literal["opsgenie"]
    api_key: Secret
    api_url: str = DEFAULT_API_URL
    mode: Literal["eswatcher", "alert_v2"] = "eswatcher"
    priority: Literal["P1", "P2", "P3", "P4", "P5"] | None = None
    tags: list[str] = []
    source: str | None = None
    entity: str | None = None

    @pydantic.field_validator("api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        parts = parse_url(value)
        if not value.startswith(("http://", "https://")) or not parts["host"]:
            raise ValueError(f"expected a URL such as {DEFAULT_API_URL} or {EU_API_URL}, found {value!r}")
        return value.rstrip("/")


def parse_connector(reader: Reader, body: Any, path) -> Config | None:
    """Validate a ``type: opsgenie`` connector body (problems go to ``reader``)."""
    return reader.validate(Config, body, path)


def build_request(config: Config, fields: Mapping[str, Any]) -> HttpRequest:
    """The request for one alert.

    Args:
        config: the connector.
        fields: ``mode`` (overrides the connector's), and for ``eswatcher`` ``body`` (the rendered
            JSON of ctx, text), for ``alert_v2`` ``alert`` (a dict: the rendered alert fields);
            optional ``api_key``/``api_url`` overrides, ``secrets`` (extra values to mask).

    Raises:
        ValueError: an unknown mode.
    """
    mode = fields.get("mode") or config.mode
    key = reveal(fields.get("api_key")) or config.api_key.reveal()
    base = parse_url((fields.get("api_url") or config.api_url).rstrip("/"))
    prefix = base["path"].rstrip("/")
    secrets = tuple(dict.fromkeys(s for s in (key, *(fields.get("secrets") or ())) if s))
    common = dict(timeout_s=config.timeout, read_timeout_s=config.read_timeout, verify=config.verify,
                  ca_file=config.ca_file, proxy=config.proxy, secrets=secrets, connector_type=TYPE)
    if mode == "eswatcher":
        url = build_url(base["scheme"], base["host"], base["port"], f"{prefix}/v1/json/eswatcher",
                        {**base["params"], "apiKey": key})
        return HttpRequest(method="POST", url=url, headers={"Content-Type": "application/json"},
                           body=fields.get("body"), **common)
    if mode == "alert_v2":
        alert = alert_body(config, fields.get("alert") or {})
        url = build_url(base["scheme"], base["host"], base["port"], f"{prefix}/v2/alerts", base["params"])
        return HttpRequest(method="POST", url=url,
                           headers={"Content-Type": "application/json", "Authorization": f"GenieKey {key}"},
                           body=json.dumps(alert, ensure_ascii=False, separators=(",", ":")), **common)
    raise ValueError(f"unknown opsgenie mode {mode!r}; expected one of {', '.join(MODES)}")


def alert_body(config: Config, alert: Mapping[str, Any]) -> dict:
    """Alert API v2 body: connector defaults under the action's values, limits applied.

    ``message`` is cut to 130 characters and an ``alias`` longer than 512 becomes
    ``sha-<sha256 hex>`` (OpsGenie's limits, applied as Kibana's connector does,
    docs/semantics.md#kibana-opsgenie-connector). Empty values are left out.
    """

    body = {"message": alert.get("message") or "", "alias": alert.get("alias"),
            "description": alert.get("description"),
            "priority": alert.get("priority") or config.priority,
            "tags": list(alert.get("tags") or config.tags) or None,
            "details": dict(alert.get("details") or {}) or None,
            "entity": alert.get("entity") or config.entity,
            "source": alert.get("source") or config.source}
    body["message"] = body["message"][:130]
    if body["alias"] and len(body["alias"]) > 512:
        body["alias"] = "sha-" + hashlib.sha256(body["alias"].encode("utf-8")).hexdigest()
    return {key: value for key, value in body.items() if value not in (None, "") or key == "message"}


def interpret(response: HttpResponse) -> Outcome:
    """OpsGenie answers 200/202 with ``{"result", "took", "requestId"}``; status ≥ 400 is a failure
    with Watcher's reason ``received [<status>] status code``."""
    return http_outcome(response)


# ---- the action --------------------------------------------------------------------------------

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
        reader.expected((*path, "api_url"), f"a URL such as {EU_API_URL}", api_url)
    mode = plain(holder.get("mode"))
    if mode is not None and mode not in MODES:
        reader.expected((*path, "mode"), f"one of {', '.join(MODES)}", mode)
    if mode == "eswatcher":
        for key in ALERT_FIELDS:
            if key in holder:
                reader.problem((*path, key), f"'{key}' is only used in mode alert_v2 (mode eswatcher sends ctx as JSON)")
    fields: dict[str, Any] = {}
    for key in ("message", "alias", "description", "entity", "source", "priority"):
        if key in holder:
            fields[key] = parse_text(reader, holder[key], (*path, key))
    priority = fields.get("priority")
    if isinstance(priority, str) and "{{" not in priority and priority not in PRIORITIES:
        reader.expected((*path, "priority"), f"one of {', '.join(PRIORITIES)}", priority)
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

    connector = connector_for(run, config.connector, TYPE)
    if connector is not None:
        settings, secrets = connector.config, connector.secrets
    else:
        settings = Config(type="opsgenie", api_key=config.api_key, api_url=config.api_url or DEFAULT_API_URL)
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
    return build_request(settings, fields)


def _alert(config: OpsgenieConfig, model: dict) -> dict:
    def text(template: Any) -> str | None:
        return render_text(template, model) if template is not None else None

    priority = text(config.priority)
    if priority and priority not in PRIORITIES:
        raise ValueError(f"opsgenie priority rendered as {priority!r}; expected one of "
                         f"{', '.join(PRIORITIES)}")
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


# ---- the rule format ------------------------------------------------------------------------------

DEFAULT_RULE_ALERT = {"message": "{{ title }}", "description": "{{ message }}",
                      "alias": "{{ rule.name }}{% if group is not none %}:{{ group }}{% endif %}"}
"""A rule's Alert API v2 alert when the rule overrides nothing (Jinja2). The Watcher integration
needs nothing: its body is the JSON of ctx, which carries the alert as ``ctx.vars.alert``."""


def rule_defaults(connector: Any, overrides: Mapping[str, Any]) -> dict:
    """A rule action's body when the rule overrides nothing (see :data:`DEFAULT_RULE_ALERT`)."""
    return dict(DEFAULT_RULE_ALERT) if getattr(connector.config, "mode", None) == "alert_v2" else {}


def without_rule_defaults(action: dict) -> dict:
    """``action`` without what :func:`rule_defaults` adds (``watcher convert --to rule``)."""
    return {k: v for k, v in action.items() if DEFAULT_RULE_ALERT.get(k) != v}
