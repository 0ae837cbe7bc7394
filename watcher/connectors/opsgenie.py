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
  the whole ``ctx`` as body (``{{#toJson}}ctx{{/toJson}}``); watcher-semantics §6.7,
  support.atlassian.com/opsgenie/docs/integrate-opsgenie-with-x-pack-elasticsearch-watcher/.
* ``alert_v2`` — ``POST <api_url>/v2/alerts`` with ``Authorization: GenieKey <key>`` and an alert
  body ``{message, alias, description, priority, tags, details, entity, source}`` (Kibana's
  ``.opsgenie`` createAlert, §6.6).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

import pydantic

from watcher.connectors.webhook import HttpSettings, build_url, parse_url
from watcher.model.problems import Reader
from watcher.model.secrets import Secret, reveal
from watcher.engine.delivery import HttpRequest, HttpResponse, Outcome, http_outcome

TYPE = "opsgenie"
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


def parse(reader: Reader, body: Any, path) -> Config | None:
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
    ``sha-<sha256 hex>`` (OpsGenie's limits, applied as Kibana's connector does, §6.6).
    Empty values are left out.
    """
    import hashlib

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
