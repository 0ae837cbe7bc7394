"""PagerDuty connector: events through PagerDuty's Events API v2 (trigger, acknowledge, resolve).

Configuration (connectors.yaml)::

    pd:
      type: pagerduty
      routing_key: ${PAGERDUTY_ROUTING_KEY}   # the integration key of an Events API v2 integration (a secret)
      url: https://events.pagerduty.com/v2/enqueue   # the default; EU service region:
                                                     # https://events.eu.pagerduty.com/v2/enqueue
      event_defaults: {client: watcher, client_url: https://kibana.example.com, severity: error}
      timeout: 10s  read_timeout: 10s  verify: true  ca_file: …  proxy: …

Mirrors a Watcher PagerDuty *account* (``xpack.notification.pagerduty.account.<name>``: the secure
``service_api_key`` is our ``routing_key``, ``event_defaults`` the same; docs/semantics.md#pagerduty-action).
``event_defaults`` holds plain values (not templates) used when the action leaves a field out:
``description``, ``incident_key``, ``client``, ``client_url``, ``event_type``, ``attach_payload``,
and the Events API v2 payload fields ``severity``, ``source``, ``component``, ``group``, ``class``.

The action (a watch's ``pagerduty`` action, or a rule action naming a pagerduty connector):

Body — Watcher's fields, every text a template (docs/semantics.md#pagerduty-action)::

    {"account"?: "<pagerduty connector>", "connector"?: (same as account), "proxy"?: {host, port, scheme?},
     "description": "...",                          # the event's summary (required here or in event_defaults)
     "event_type"?: "trigger" | "acknowledge" | "resolve",     # default trigger
     "incident_key"?: "...",                        # the dedup key; default: the watch id
     "client"?: "...", "client_url"?: "...", "attach_payload"?: false,
     "contexts"?: [{"type": "link", "href": "...", "text"?: "..."}, {"type": "image", "src": "...", "href"?, "alt"?}],
     # our extension, the rest of the Events API v2 payload:
     "severity"?: "critical" | "error" | "warning" | "info",   # default critical (as Watcher sends)
     "source"?: "...",                              # default: the watch id
     "component"?, "group"?, "class"?: "...", "custom_details"?: {"name": "template", …}}

Watcher's account is our pagerduty connector; with neither ``account`` nor ``connector`` the only
pagerduty connector is used (Watcher's default account). ``context`` is read as ``contexts``
(Watcher's pre-6.0 spelling). The request (docs/semantics.md#pagerduty-events-api-v2)::

    POST <url>   Content-Type: application/json
    {"routing_key", "event_action", "dedup_key"?, "payload": {"summary", "source", "severity",
     "component"?, "group"?, "class"?, "custom_details"?}, "client"?, "client_url"?, "links"?, "images"?}

``summary`` is cut to 1024 characters; a dedup key longer than 255 characters is sent as
``sha-<sha256 hex>`` (the same for a trigger and its resolve); ``attach_payload`` puts the payload
under ``custom_details.payload``. An ``acknowledge`` or ``resolve`` needs a dedup key.

A 2xx answer (PagerDuty answers 202) is a success. Anything else is a failure whose reason carries
PagerDuty's ``message`` and ``errors``; the outbox retries 429 and 5xx with backoff, and a 400
(an invalid event) or another 4xx is final. Result ``{"pagerduty": {"event": {...}, "request": {...}}}``
when simulated; else ``{"pagerduty": {"account"?, "sent_event": {"event", "reason"?}, "request",
"response"?}}``; the routing key shows as ``***``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from typing import Any, Literal

import pydantic

from watcher.destinations.common import (account_connector, check_keys, parse_account_action, parse_text,
                                         parse_text_map)
from watcher.destinations.common import render as render_text
from watcher.destinations.webhook import (CheckedUrl, HttpSettings, StrictModel, detailed_outcome, json_request,
                                          request_record)
from watcher.model.problems import Reader
from watcher.model.requests import HttpRequest, HttpResponse, Outcome
from watcher.model.schema_parts import CONNECTOR_REF, TEMPLATE
from watcher.model.secrets import Secret
from watcher.model.source import plain

# ---- the connector (connectors.yaml) ------------------------------------------------------------

TYPE = "pagerduty"
DEFAULT_URL = "https://events.pagerduty.com/v2/enqueue"
EVENT_TYPES = ("trigger", "acknowledge", "resolve")
SEVERITIES = ("critical", "error", "warning", "info")
SUMMARY_LIMIT = 1024  # characters of payload.summary (Events API v2)
DEDUP_KEY_LIMIT = 255  # characters of dedup_key (Events API v2)
CONTEXT_TYPES = ("link", "image")
ACTION_SCHEMA = {"type": "object", "description": "A PagerDuty event (Watcher's pagerduty action).",
                 "properties": {"account": {"type": "string"}, **CONNECTOR_REF,
                                "description": TEMPLATE, "event_type": TEMPLATE, "incident_key": TEMPLATE,
                                "client": TEMPLATE, "client_url": TEMPLATE, "attach_payload": {"type": "boolean"},
                                "contexts": {"type": "array", "items": {"type": "object"}},
                                "context": {"type": "array", "items": {"type": "object"}},
                                "severity": TEMPLATE, "source": TEMPLATE, "component": TEMPLATE, "group": TEMPLATE,
                                "class": TEMPLATE,
                                "custom_details": {"type": "object", "additionalProperties": TEMPLATE},
                                "proxy": {"type": "object"}}}
"""JSON Schema of the watch action body (editors; ``watcher validate`` stays the authority)."""


class EventDefaults(StrictModel):
    """Values an event takes when the action leaves them out (Watcher's ``event_defaults``; plain text)."""

    description: str | None = None
    incident_key: str | None = None
    client: str | None = None
    client_url: str | None = None
    event_type: Literal["trigger", "acknowledge", "resolve"] | None = None
    attach_payload: bool = False
    severity: Literal["critical", "error", "warning", "info"] | None = None
    source: str | None = None
    component: str | None = None
    group: str | None = None
    class_: str | None = pydantic.Field(default=None, alias="class")

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Config(HttpSettings):
    """A PagerDuty Events API v2 integration (see the module docstring)."""

    type: Literal["pagerduty"]
    routing_key: Secret
    url: CheckedUrl(DEFAULT_URL) = DEFAULT_URL
    event_defaults: EventDefaults = EventDefaults()


def parse_connector(reader: Reader, body: Any, path) -> Config | None:
    """Validate a ``type: pagerduty`` connector body (problems go to ``reader``)."""
    return reader.validate(Config, body, path)


def build_request(config: Config, fields: Mapping[str, Any]) -> HttpRequest:
    """The POST of one event.

    Args:
        config: the connector.
        fields: ``event`` (the Events API v2 body without ``routing_key``: ``event_action``,
            ``dedup_key``?, ``payload``, ``client``?, ``client_url``?, ``links``?, ``images``?),
            optional ``secrets`` (more values to mask) and ``proxy`` (a proxy URL for this request).
    """
    key = config.routing_key.reveal()
    request = json_request(config, config.url, {"routing_key": key, **fields["event"]},
                           secrets=(key, *(fields.get("secrets") or ())), connector_type=TYPE)
    return dataclasses.replace(request, proxy=fields["proxy"]) if fields.get("proxy") else request


def interpret(response: HttpResponse) -> Outcome:
    """2xx (PagerDuty answers 202 ``{"status", "message", "dedup_key"}``) → success; any other status
    → failure ``received [<status>] status code: <message>: <errors>`` from PagerDuty's error body
    (``{"status": "invalid event", "message": "Event object is invalid", "errors": [...]}``). Whether a
    failure is retried is decided by its status (429 and 5xx are, docs/semantics.md#pagerduty-events-api-v2)."""
    return detailed_outcome(response, _error_detail)


def delivered(outcome: Outcome) -> dict | None:
    """What the event made, kept with the outbox's delivery as ``result``: ``{"dedup_key"}`` from
    PagerDuty's 202 answer (the key it files the alert under)."""
    try:
        answer = json.loads((outcome.response or {}).get("body") or "")
    except (AttributeError, ValueError):
        return None
    return {"dedup_key": answer["dedup_key"]} if isinstance(answer, dict) and answer.get("dedup_key") else None


def _error_detail(answer: dict) -> str:
    parts = [str(answer["message"])] if answer.get("message") else []
    errors = answer.get("errors")
    if isinstance(errors, list) and errors:
        parts.append("; ".join(map(str, errors)))
    return ": ".join(parts)


# ---- the action --------------------------------------------------------------------------------

TEXT_KEYS = ("description", "event_type", "incident_key", "client", "client_url", "severity", "source",
             "component", "group", "class")
KEYS = ("account", "connector", "proxy", *TEXT_KEYS, "attach_payload", "contexts", "context", "custom_details")
CONTEXT_KEYS = {"link": ("type", "href", "text"), "image": ("type", "src", "href", "alt")}


@dataclasses.dataclass(frozen=True)
class PagerdutyConfig:
    """A parsed pagerduty action: ``texts`` maps the keys of :data:`TEXT_KEYS` that were given to their
    templates; ``contexts`` are ``{"type", <key>: template}``; ``attach_payload`` None = the connector's."""

    connector: str | None = None
    proxy: str | None = None
    texts: dict = dataclasses.field(default_factory=dict)
    attach_payload: bool | None = None
    contexts: tuple = ()
    custom_details: dict = dataclasses.field(default_factory=dict)


def parse(reader: Reader, body: Any, path) -> PagerdutyConfig | None:
    """Validate a Watcher ``pagerduty`` action body (see the module docstring); problems go to ``reader``."""
    return parse_account_action(reader, body, path, KEYS,
                                "a pagerduty action such as {description: 'Disk full on {{ctx.payload.host}}'}", TYPE,
                                lambda holder, connector, proxy: _parse_event(reader, holder, path, connector, proxy))


def _parse_event(reader: Reader, holder, path, connector: str | None, proxy: str | None) -> PagerdutyConfig:
    texts = {key: parse_text(reader, holder[key], (*path, key)) for key in TEXT_KEYS if key in holder}
    for key, allowed in (("event_type", EVENT_TYPES), ("severity", SEVERITIES)):
        if _static(texts.get(key)) and texts[key] not in allowed:
            reader.expected((*path, key), f"one of {', '.join(allowed)} (or a template that renders one)", texts[key])
    attach = plain(holder.get("attach_payload"))
    if attach is not None and not isinstance(attach, bool):
        reader.expected((*path, "attach_payload"), "true or false", attach)
    if "contexts" in holder and "context" in holder:
        reader.problem((*path, "context"), "give 'contexts' only ('context' is its old spelling)")
    key = "contexts" if "contexts" in holder else "context"
    contexts = _contexts(reader, holder[key], (*path, key)) if key in holder else ()
    details = parse_text_map(reader, holder["custom_details"], (*path, "custom_details")) \
        if "custom_details" in holder else {}
    return PagerdutyConfig(connector=connector, proxy=proxy, texts=texts, attach_payload=attach,
                           contexts=contexts, custom_details=details)


def _static(template: Any) -> bool:
    """A template whose text is its value (no Mustache or Jinja2 markup), so it can be checked now."""
    return isinstance(template, str) and "{{" not in template and "{%" not in template


def _contexts(reader: Reader, value: Any, path) -> tuple:
    """Watcher's incident contexts: links need ``href`` (and may have ``text``), images need ``src``
    (and may have ``href``, ``alt``)."""
    items = plain(value)
    if not isinstance(items, list):
        reader.expected(path, "a list of contexts such as [{type: link, href: 'https://…'}]", items)
        return ()
    out = []
    for index, item in enumerate(value):
        at = (*path, index)
        kind = plain(item.get("type")) if isinstance(plain(item), dict) else None
        if kind not in CONTEXT_TYPES:
            if isinstance(plain(item), dict):
                reader.expected((*at, "type"), "link or image", kind)
            else:
                reader.expected(at, "a context such as {type: link, href: 'https://…', text: '…'}", plain(item))
            continue
        holder = check_keys(reader, item, at, CONTEXT_KEYS[kind], f"a {kind} context")
        if holder is None:
            continue
        required = "href" if kind == "link" else "src"
        if required not in holder:
            reader.problem(at, f"missing required field '{required}' for a {kind} context")
            continue
        parsed = {name: parse_text(reader, holder[name], (*at, name)) for name in holder if name != "type"}
        out.append({"type": kind, **parsed})
    return tuple(out)


def missing_for(config: PagerdutyConfig, connector: Any) -> str | None:
    """What the event will certainly lack with ``connector`` as its account: no ``description`` in the
    action nor in the connector's ``event_defaults`` (checked when files load; else None)."""
    if "description" not in config.texts and connector.config.event_defaults.description is None:
        return ("missing required [description] (give it in the action or in the connector's event_defaults); "
                "it is the event's summary")
    return None


def render(config: PagerdutyConfig, run: Any, model: dict) -> HttpRequest:
    """The Events API v2 request for this event (see the module docstring).

    Raises:
        LookupError: unknown connector, or no account named while not exactly one pagerduty
            connector is defined. ValueError: no description; an event type or severity that
            rendered outside the allowed values; an acknowledge or resolve without a dedup key.
        watcher.templates.mustache.TemplateSyntaxError / TemplateRenderError: from the templates.
    """
    connector = account_connector(run, config.connector, TYPE)
    return build_request(connector.config, {"event": event(config, connector.config.event_defaults, run, model),
                                            "secrets": connector.secrets, "proxy": config.proxy})


def event(config: PagerdutyConfig, defaults: EventDefaults, run: Any, model: dict) -> dict:
    """The Events API v2 body without ``routing_key``: the action's templates rendered, else the
    connector's defaults, else Watcher's (``trigger``, dedup key and source = the watch id,
    severity ``critical``)."""

    def text(key: str) -> str | None:
        if key in config.texts:
            return render_text(config.texts[key], model)
        return getattr(defaults, "class_" if key == "class" else key)

    description = text("description")
    if description is None:
        raise ValueError("could not create pagerduty event: missing required [description] (give it in the action "
                         "or in the connector's event_defaults)")
    action = (text("event_type") or "").strip() or "trigger"
    if action not in EVENT_TYPES:
        raise ValueError(f"pagerduty event_type rendered as {action!r}; expected one of {', '.join(EVENT_TYPES)}")
    severity = (text("severity") or "").strip() or "critical"
    if severity not in SEVERITIES:
        raise ValueError(f"pagerduty severity rendered as {severity!r}; expected one of {', '.join(SEVERITIES)}")
    dedup_key = text("incident_key")
    dedup_key = run.watch.id if dedup_key is None else dedup_key
    if len(dedup_key) > DEDUP_KEY_LIMIT:
        dedup_key = "sha-" + hashlib.sha256(dedup_key.encode("utf-8")).hexdigest()
    if not dedup_key and action != "trigger":
        raise ValueError(f"a pagerduty {action} event needs a dedup key: incident_key rendered empty")
    payload: dict[str, Any] = {"summary": description[:SUMMARY_LIMIT], "source": text("source") or run.watch.id,
                               "severity": severity}
    for key in ("component", "group", "class"):
        if text(key):
            payload[key] = text(key)
    details = {name: render_text(template, model) for name, template in config.custom_details.items()}
    if config.attach_payload if config.attach_payload is not None else defaults.attach_payload:
        details["payload"] = (model.get("ctx") or {}).get("payload")
    if details:
        payload["custom_details"] = details
    body: dict[str, Any] = {"event_action": action}
    if dedup_key:
        body["dedup_key"] = dedup_key
    body["payload"] = payload
    for key in ("client", "client_url"):
        if text(key):
            body[key] = text(key)
    links, images = _rendered_contexts(config.contexts, model)
    if links:
        body["links"] = links
    if images:
        body["images"] = images
    return body


def _rendered_contexts(contexts: tuple, model: dict) -> tuple[list, list]:
    """Watcher's contexts as the Events API v2 lists ``links`` ``[{href, text?}]`` and ``images``
    ``[{src, href?, alt?}]`` (IncidentEvent.toXContentV2Contexts)."""
    links, images = [], []
    for context in contexts:
        rendered = {key: render_text(value, model) for key, value in context.items() if key != "type"}
        (links if context["type"] == "link" else images).append(rendered)
    return links, images


def result(config: PagerdutyConfig, rendered: HttpRequest, outcome: Outcome) -> dict:
    """Watcher's pagerduty result (module docstring): the event as Watcher shows it, read back from
    the body sent (never its routing key), and the request with the key masked."""
    sent = json.loads(rendered.body or "{}")
    payload = sent.get("payload") or {}
    shown: dict[str, Any] = {"description": payload.get("summary")}
    if "dedup_key" in sent:
        shown["incident_key"] = sent["dedup_key"]
    for key in ("client", "client_url"):
        if key in sent:
            shown[key] = sent[key]
    if config.connector:
        shown["account"] = config.connector
    shown["attach_payload"] = "payload" in (payload.get("custom_details") or {})
    shown["event_type"] = sent.get("event_action")
    contexts = [{"type": "link", **link} for link in sent.get("links") or []] + \
               [{"type": "image", **image} for image in sent.get("images") or []]
    if contexts:
        shown["contexts"] = contexts
    request = request_record(rendered)
    if outcome.status == "simulated":
        return {"pagerduty": {"event": shown, "request": request}}
    out: dict[str, Any] = {"sent_event": {"event": shown}}
    if outcome.status != "success" and outcome.reason:
        out["sent_event"]["reason"] = outcome.reason
    if config.connector:
        out = {"account": config.connector, **out}
    out["request"] = request
    if outcome.response is not None:
        out["response"] = outcome.response
    return {"pagerduty": out}


# ---- the rule format ------------------------------------------------------------------------------

DEFAULT_RULE_EVENT = {
    "description": "{{ title }}",
    "event_type": "{% if status == 'recovered' %}resolve{% else %}trigger{% endif %}",
    "incident_key": "{{ rule.name }}{% if group is not none %}:{{ group }}{% endif %}",
}
"""A rule's event when the rule overrides nothing (Jinja2): the title as summary; a recovered
alert (``on: [firing, recovered]``) resolves the incident its firing opened, both keyed
``<rule>[:<group>]``. The message goes to ``custom_details.message``."""
DEFAULT_RULE_DETAILS = {"message": "{{ message }}"}


def rule_defaults(connector: Any, overrides: Mapping[str, Any]) -> dict:
    """A rule action's event fields when the rule gives none (:data:`DEFAULT_RULE_EVENT`), except
    those the connector's ``event_defaults`` set; ``custom_details`` gets ``message`` unless the
    rule's own custom_details name it."""
    defaults = connector.config.event_defaults
    out = {key: value for key, value in DEFAULT_RULE_EVENT.items() if getattr(defaults, key) is None}
    given = overrides.get("custom_details")
    out["custom_details"] = {**DEFAULT_RULE_DETAILS, **(given if isinstance(given, Mapping) else {})}
    return out


def without_rule_defaults(action: dict) -> dict:
    """``action`` without what :func:`rule_defaults` adds (``watcher convert --to rule``)."""
    out = {k: v for k, v in action.items() if DEFAULT_RULE_EVENT.get(k) != v}
    if isinstance(out.get("custom_details"), dict):
        details = {k: v for k, v in out["custom_details"].items() if DEFAULT_RULE_DETAILS.get(k) != v}
        out = {k: v for k, v in out.items() if k != "custom_details"} | ({"custom_details": details} if details else {})
    return out
