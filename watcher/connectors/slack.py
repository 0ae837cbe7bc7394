"""Slack connector: an incoming-webhook URL (the URL itself is the secret).

Configuration (connectors.yaml)::

    team-slack:
      type: slack
      url: ${SLACK_WEBHOOK_URL}        # https://hooks.slack.com/services/T…/B…/…
      message_defaults: {from: watcher, to: ['#alerts'], icon: ':rotating_light:'}
      timeout: 10s  read_timeout: 10s  verify: true  ca_file: …  proxy: …

Mirrors a Watcher Slack *account* (``xpack.notification.slack.account.<name>.secure_url`` and
``message_defaults``; watcher-semantics §1.7 slack): one JSON POST per recipient with ``channel``,
``username`` (from), ``icon_url``/``icon_emoji``, ``text``, ``attachments``
(x-pack/plugin/watcher/.../notification/slack/SlackAccount.java). A message counts as sent only on a
2xx answer (SentMessages.SentMessage.isSuccess).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

import pydantic

from watcher.connectors.webhook import HttpSettings, StrictModel
from watcher.model.problems import Reader
from watcher.model.secrets import Secret
from watcher.engine.delivery import HttpRequest, HttpResponse, Outcome, http_outcome

TYPE = "slack"


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
    url: Secret
    message_defaults: MessageDefaults = MessageDefaults()

    @pydantic.field_validator("url")
    @classmethod
    def _https_url(cls, value: Secret) -> Secret:
        if not value.reveal().startswith(("https://", "http://")):
            # never echo the value: it is the secret
            raise ValueError("expected an incoming-webhook URL such as https://hooks.slack.com/services/…")
        return value


def parse(reader: Reader, body: Any, path) -> Config | None:
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


def secrets(config: Config) -> list[str]:
    """What to mask: the webhook URL's path and query (``https://hooks.slack.com/***``)."""
    from urllib.parse import urlsplit

    url = config.url.reveal()
    parts = urlsplit(url)
    hidden = parts.path.lstrip("/") + (f"?{parts.query}" if parts.query else "")
    return [hidden] if len(hidden) >= 4 else [url]


def build_request(config: Config, fields: Mapping[str, Any]) -> HttpRequest:
    """One POST of ``fields["payload"]`` (a dict, see :func:`payload`) as JSON to the webhook URL.

    ``fields["secrets"]`` adds values to mask; the URL's path is always masked.
    """
    url = config.url.reveal()
    secrets_ = tuple(dict.fromkeys(s for s in (*secrets(config), *(fields.get("secrets") or ())) if s))
    return HttpRequest(method="POST", url=url, headers={"Content-Type": "application/json"},
                       body=json.dumps(fields["payload"], ensure_ascii=False, separators=(",", ":")),
                       timeout_s=config.timeout, read_timeout_s=config.read_timeout, verify=config.verify,
                       ca_file=config.ca_file, proxy=config.proxy, secrets=secrets_, connector_type=TYPE)


def interpret(response: HttpResponse) -> Outcome:
    """2xx → success; anything else → failure ``received [<status>] status code``."""
    return http_outcome(response, success_below=300) if response.status >= 200 else \
        Outcome("failure", response=response.as_record(), reason=f"received [{response.status}] status code")
