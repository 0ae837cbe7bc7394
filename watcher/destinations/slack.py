"""Slack connector: an incoming-webhook URL (the URL itself is the secret).

Configuration (connectors.yaml)::

    team-slack:
      type: slack
      url: ${SLACK_WEBHOOK_URL}        # https://hooks.slack.com/services/T…/B…/…
      message_defaults: {from: watcher, to: ['#alerts'], icon: ':rotating_light:'}
      timeout: 10s  read_timeout: 10s  verify: true  ca_file: …  proxy: …

Mirrors a Watcher Slack *account* (``xpack.notification.slack.account.<name>.secure_url`` and
``message_defaults``; docs/semantics.md#slack-action): one JSON POST per recipient with ``channel``,
``username`` (from), ``icon_url``/``icon_emoji``, ``text``, ``attachments``
(x-pack/plugin/watcher/.../notification/slack/SlackAccount.java). A message counts as sent only on a
2xx answer (SentMessages.SentMessage.isSuccess).

The action (a watch's ``slack`` action, or a rule action naming a slack connector):

The ``slack`` action: Watcher's Slack message posted to a slack connector's incoming webhook.

Body (docs/semantics.md#slack-action)::

    {"account"?: "<slack connector>", "connector"?: (same as account), "proxy"?: {host, port, scheme?},
     "message": {"from"?, "to"?: "#chan" | ["#chan", "@user"], "icon"?, "text"?, "attachments"?: [...],
                 "dynamic_attachments"?: {"list_path": "ctx.payload.items", "attachment_template": {...}}}}

Watcher's account is our slack connector; with neither ``account`` nor ``connector`` the only slack
connector is used (Watcher's default account). Rendering follows SlackMessage.Template.render:
``from`` defaults to the connector's ``message_defaults.from`` then the watch id; ``to``, ``text``,
``icon`` default to the connector's message defaults; every string of an attachment is a text
template; a dynamic attachment template is rendered with each list item as the whole model; text
and attachments cannot both be missing. One POST per recipient (none → one POST without channel).

Result ``{"slack": {"account"?, "sent_messages": [{"status", "to"?, "message", "request"?, "response"?}]}}``
(request/response only for failed messages, as SentMessages); simulated ``{"slack": {"message": …}}``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any, Literal

import pydantic

from watcher.destinations.common import account_connector, check_keys, parse_account_action, parse_text, parse_text_list
from watcher.destinations.common import render as render_text
from watcher.destinations.common import render_tree
from watcher.destinations.webhook import (HttpSettings, SecretUrl, StrictModel, post_to_secret_url, request_record,
                                          url_secrets)
from watcher.model.problems import Reader
from watcher.model.requests import HttpRequest, HttpResponse, Outcome, http_outcome
from watcher.model.schema_parts import CONNECTOR_REF
from watcher.model.source import plain
from watcher.support.paths import resolve_path

# ---- the connector (connectors.yaml) ------------------------------------------------------------

TYPE = "slack"
ACTION_SCHEMA = {"type": "object", "properties": {"account": {"type": "string"}, "message": {"type": "object"},
                                                 **CONNECTOR_REF}}
"""JSON Schema of the watch action body (editors; ``watcher validate`` stays the authority)."""


class MessageDefaults(StrictModel):
    """Used when the action's message leaves a field out (Watcher's ``message_defaults``)."""

    from_: str | None = pydantic.Field(default=None, alias="from")
    to: list[str] | None = None
    icon: str | None = None
    text: str | None = None

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Config(HttpSettings):
    """A Slack incoming webhook."""

    type: Literal["slack"]
    url: SecretUrl("https://hooks.slack.com/services/…")
    message_defaults: MessageDefaults = MessageDefaults()


def parse_connector(reader: Reader, body: Any, path) -> Config | None:
    """Validate a ``type: slack`` connector body (problems go to ``reader``)."""
    return reader.validate(Config, body, path)


def payload(message: Mapping[str, Any], to: str | None) -> dict:
    """The JSON Slack receives for one recipient, from a rendered message
    ``{"from"?, "icon"?, "text"?, "attachments"?}`` (SlackAccount.send field order and names)."""
    body: dict[str, Any] = {}
    if to is not None:
        body["channel"] = to
    if message.get("from") is not None:
        body["username"] = message["from"]
    icon = message.get("icon")
    if icon is not None:
        body["icon_url" if icon.startswith("http") else "icon_emoji"] = icon
    if message.get("text") is not None:
        body["text"] = message["text"]
    if message.get("attachments"):
        body["attachments"] = list(message["attachments"])
    return body


secrets = url_secrets
"""What to mask: the webhook URL's path and query (``https://hooks.slack.com/***``)."""


def build_request(config: Config, fields: Mapping[str, Any]) -> HttpRequest:
    """One POST of ``fields["payload"]`` (a dict, see :func:`payload`) as JSON to the webhook URL.

    ``fields["secrets"]`` adds values to mask; the URL's path is always masked.
    """
    return post_to_secret_url(config, fields["payload"], fields.get("secrets"), TYPE)


def interpret(response: HttpResponse) -> Outcome:
    """2xx → success; anything else → failure ``received [<status>] status code``."""
    return http_outcome(response, success_below=300) if response.status >= 200 else \
        Outcome("failure", response=response.as_record(), reason=f"received [{response.status}] status code")


# ---- the action --------------------------------------------------------------------------------

KEYS = ("account", "connector", "proxy", "message")
MESSAGE_KEYS = ("from", "to", "icon", "text", "attachments", "dynamic_attachments")


@dataclasses.dataclass(frozen=True)
class SlackConfig:
    """A parsed slack action; templates kept as parsed (see :func:`watcher.destinations.common.parse_text`)."""

    account: str | None
    proxy: str | None
    from_: Any = None
    to: tuple | None = None
    icon: Any = None
    text: Any = None
    attachments: tuple | None = None
    dynamic_list_path: str | None = None
    dynamic_template: Any = None


def parse(reader: Reader, body: Any, path) -> SlackConfig | None:
    """Validate a Watcher ``slack`` action body (``message``, ``account``/``connector``, ``proxy``); problems go to ``reader``."""
    return parse_account_action(reader, body, path, KEYS, "a slack action such as {message: {text: '…', to: ['#alerts']}}",
                                TYPE, lambda holder, account, proxy: _parse_message(reader, holder, path, account, proxy))


def _parse_message(reader: Reader, holder, path, account: str | None, proxy: str | None) -> SlackConfig | None:
    if "message" not in holder:
        reader.problem(path, "missing required field 'message'")
        return None
    message = check_keys(reader, holder["message"], (*path, "message"), MESSAGE_KEYS,
                         "a slack message such as {text: '…', to: ['#alerts']}")
    if message is None:
        return None
    at = (*path, "message")
    fields: dict[str, Any] = {}
    for key, name in (("from", "from_"), ("icon", "icon"), ("text", "text")):
        if key in message:
            fields[name] = parse_text(reader, message[key], (*at, key))
    if "to" in message:
        fields["to"] = tuple(parse_text_list(reader, message["to"], (*at, "to")))
    if "attachments" in message:
        attachments = plain(message["attachments"])
        attachments = attachments if isinstance(attachments, list) else [attachments]
        for index, item in enumerate(attachments):
            if not isinstance(item, dict):
                reader.expected((*at, "attachments", index), "an attachment object such as {title: …, text: …}", item)
        fields["attachments"] = tuple(attachments)
    if "dynamic_attachments" in message:
        dynamic = check_keys(reader, message["dynamic_attachments"], (*at, "dynamic_attachments"),
                             ("list_path", "attachment_template"),
                             "{list_path: ctx.payload.items, attachment_template: {…}}")
        if dynamic is not None:
            list_path, template = plain(dynamic.get("list_path")), plain(dynamic.get("attachment_template"))
            if not isinstance(list_path, str) or not list_path:
                reader.expected((*at, "dynamic_attachments", "list_path"), "a path such as ctx.payload.items", list_path)
            if not isinstance(template, dict):
                reader.expected((*at, "dynamic_attachments", "attachment_template"), "an attachment object", template)
            fields["dynamic_list_path"], fields["dynamic_template"] = list_path, template
    return SlackConfig(account=account, proxy=proxy, **fields)


def render(config: SlackConfig, run: Any, model: dict) -> tuple[HttpRequest, ...]:
    """One request per recipient.

    Raises:
        LookupError: no usable connector. ValueError: neither text nor attachments; a dynamic
        attachment list that is not a list of objects (Watcher's messages).
    """
    connector = account_connector(run, config.account, TYPE)
    defaults = connector.config.message_defaults
    message = _message(config, run, model, defaults)
    recipients = message.get("to") or [None]
    secrets = connector.secrets
    requests = []
    for to in recipients:
        request = build_request(connector.config, {"payload": payload(message, to), "secrets": secrets})
        if config.proxy:
            request = dataclasses.replace(request, proxy=config.proxy)
        requests.append(request)
    return tuple(requests)


def _message(config: SlackConfig, run: Any, model: dict, defaults) -> dict:
    def text(template: Any) -> str | None:
        return render_text(template, model) if template is not None else None

    sender = text(config.from_) if config.from_ is not None else (defaults.from_ or run.watch.id)
    to = [text(t) for t in config.to] if config.to is not None else (list(defaults.to) if defaults.to else None)
    body = text(config.text) if config.text is not None else defaults.text
    icon = text(config.icon) if config.icon is not None else defaults.icon
    attachments = None
    if config.attachments is not None:
        attachments = [render_tree(item, model) for item in config.attachments]
    if config.dynamic_list_path is not None:
        attachments = (attachments or []) + _dynamic(config, model)
    if body is None and attachments is None:
        raise ValueError("Both text and attachments cannot be null.")
    message: dict[str, Any] = {"from": sender}
    if to:
        message["to"] = to
    if icon is not None:
        message["icon"] = icon
    if body is not None:
        message["text"] = body
    if attachments is not None:
        message["attachments"] = attachments
    return message


def _dynamic(config: SlackConfig, model: dict) -> list:
    # DynamicAttachments.render: each item of the list is the model of one attachment
    items = resolve_path(model, config.dynamic_list_path)
    if not isinstance(items, (list, tuple)):
        raise ValueError(f"dynamic attachment could not be resolved. expected context [{config.dynamic_list_path}] "
                         f"to be a list, but found [{items}] instead")
    out = []
    for item in items:
        if not isinstance(item, Mapping):
            raise ValueError(f"dynamic attachment could not be resolved. expected [{config.dynamic_list_path}] "
                             f"list to contain key/value pairs, but found [{item}] instead")
        out.append(render_tree(config.dynamic_template, item))
    return out


def _sent_message(request: HttpRequest) -> tuple[str | None, dict]:
    """(recipient, message without ``to``) read back from the JSON body Slack receives."""
    body = json.loads(request.body or "{}")
    message: dict[str, Any] = {}
    if "username" in body:
        message["from"] = body["username"]
    icon = body.get("icon_url", body.get("icon_emoji"))
    if icon is not None:
        message["icon"] = icon
    if "text" in body:
        message["text"] = body["text"]
    if "attachments" in body:
        message["attachments"] = body["attachments"]
    return body.get("channel"), message


def result(config: SlackConfig, rendered: tuple[HttpRequest, ...], outcome: Outcome) -> dict:
    """Watcher's slack result (module docstring); the webhook URL's path is masked in requests."""
    recipients, message = [], {}
    for request in rendered:
        to, message = _sent_message(request)
        if to is not None:
            recipients.append(to)
    if outcome.status == "simulated":
        shown = dict(message)
        if recipients:
            shown = {"from": shown.pop("from", None), "to": recipients, **shown}
            if shown["from"] is None:
                del shown["from"]
        return {"slack": {"message": shown}}
    parts = outcome.parts or (outcome,)
    sent = []
    for request, part in zip(rendered, parts):
        to, text = _sent_message(request)
        entry: dict[str, Any] = {"status": "success" if part.status == "success" else "failure"}
        if part.status != "success":
            entry["request"] = request_record(request)
            if part.response is not None:
                entry["response"] = part.response
            if part.error is not None:
                entry["error"] = part.error
        if to is not None:
            entry["to"] = to
        entry["message"] = text
        sent.append(entry)
    out: dict[str, Any] = {"sent_messages": sent}
    if config.account:
        out = {"account": config.account, **out}
    return {"slack": out}


# ---- the rule format ------------------------------------------------------------------------------

DEFAULT_RULE_TEXT = "*{{ title }}*\n{{ message }}"
"""The text of a rule's Slack message when the rule gives none (Jinja2)."""


def rule_defaults(connector: Any, overrides: Mapping[str, Any]) -> dict:
    """A rule action's ``message``: the override's message with the default text filled in (a
    message with neither text nor attachments is refused by Slack)."""
    message = dict(overrides.get("message") or {})
    message.setdefault("text", DEFAULT_RULE_TEXT)
    return {"message": message}


def without_rule_defaults(action: dict) -> dict:
    """``action`` without what :func:`rule_defaults` adds (``watcher convert --to rule``)."""
    if not isinstance(action.get("message"), dict):
        return action
    message = {k: v for k, v in action["message"].items() if not (k == "text" and v == DEFAULT_RULE_TEXT)}
    return {k: v for k, v in action.items() if k != "message"} | ({"message": message} if message else {})
