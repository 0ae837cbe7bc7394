"""Discord connector: a message with one embed posted to a Discord webhook (ElastAlert2's
``discord`` alerter).

Configuration (connectors.yaml)::

    discord:
      type: discord
      url: ${DISCORD_WEBHOOK_URL}      # https://discord.com/api/webhooks/<id>/<token> (the URL is the secret)
      timeout: 10s  read_timeout: 10s  verify: true  ca_file: …  proxy: …

The action (our ``discord`` type, in a watch or as a rule action naming a discord connector)::

    {"connector": "discord",
     "text": "...",                    # the embed's description (required)
     "title"?: "...",                  # the message content, between two emoji; rules: the alert title
     "emoji_title"?: ":warning:",      # ElastAlert2's discord_emoji_title (default :warning:; '' for none)
     "embed_color"?: 16777215,         # 0 … 0xFFFFFF (default white, as ElastAlert2)
     "embed_footer"?: "...", "embed_icon_url"?: "https://…"}   # the footer, and its icon (with a footer only)

``text``, ``title``, ``emoji_title``, ``embed_footer`` and ``embed_icon_url`` are text templates. The
request is one POST (docs/semantics.md#elastalert2-discord-alerter)::

    {"content": "<emoji> <title> <emoji>", "embeds": [{"description": text, "color": n,
                                                      "footer"?: {"text", "icon_url"?}}]}

Discord's limits are kept: content 2000 characters, embed description 4096, footer 2048; a longer
description is cut and says so. A 2xx answer (Discord answers 204) is a success; the outbox
retries 429 (honouring ``Retry-After``) and 5xx, other statuses are final. The webhook URL's path
(id and token) shows as ``***``. Result ``{"discord": {"request": {...}, "response"?: {...}}}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from watcher.destinations.common import (MessageConfig, message_rule_defaults, parse_message_action,
                                         render_message_texts, without_message_rule_defaults)
from watcher.destinations.webhook import HttpSettings, SecretUrl, http_result, post_to_secret_url, url_secrets
from watcher.model.problems import Reader
from watcher.model.requests import HttpRequest, HttpResponse, Outcome, http_outcome
from watcher.model.schema_parts import CONNECTOR_REF, TEMPLATE
from watcher.model.source import plain

# ---- the connector (connectors.yaml) ------------------------------------------------------------

TYPE = "discord"
DEFAULT_EMOJI = ":warning:"
DEFAULT_COLOR = 0xFFFFFF
CONTENT_LIMIT = 2000      # characters of a message's content (Discord)
DESCRIPTION_LIMIT = 4096  # characters of an embed description (Discord)
FOOTER_LIMIT = 2048       # characters of an embed footer (Discord)
CROPPED = "\n*message was cropped according to Discord's embed description limit*"
ACTION_SCHEMA = {"type": "object", "description": "A Discord webhook message: {connector: NAME, text, …}.",
                 "properties": {**CONNECTOR_REF, "text": TEMPLATE, "title": TEMPLATE, "emoji_title": TEMPLATE,
                                "embed_color": {"type": "integer", "minimum": 0, "maximum": 0xFFFFFF},
                                "embed_footer": TEMPLATE, "embed_icon_url": TEMPLATE},
                 "required": ["connector"]}
"""JSON Schema of the watch action body (editors; ``watcher validate`` stays the authority)."""


class Config(HttpSettings):
    """A Discord webhook."""

    type: Literal["discord"]
    url: SecretUrl("https://discord.com/api/webhooks/…")


def parse_connector(reader: Reader, body: Any, path) -> Config | None:
    """Validate a ``type: discord`` connector body (problems go to ``reader``)."""
    return reader.validate(Config, body, path)


secrets = url_secrets
"""What to mask: the webhook URL's path (its id and token) and query."""


def interpret(response: HttpResponse) -> Outcome:
    """2xx (Discord answers 204 No Content) → success; any other status → failure
    ``received [<status>] status code``."""
    return http_outcome(response, success_below=300)


def build_request(config: Config, fields: Mapping[str, Any]) -> HttpRequest:
    """One POST of ``fields["message"]`` (a dict, see :func:`message`); ``fields["secrets"]`` adds
    values to mask."""
    return post_to_secret_url(config, fields["message"], fields.get("secrets"), TYPE)


# ---- the action --------------------------------------------------------------------------------

TEXT_KEYS = ("text", "title", "emoji_title", "embed_footer", "embed_icon_url")
KEYS = ("connector", *TEXT_KEYS, "embed_color")


def parse(reader: Reader, body: Any, path) -> MessageConfig | None:
    """Validate a ``discord`` action body (module docstring); problems go to ``reader``.
    ``options`` of the result: ``embed_color``."""

    def options(holder: Mapping, texts: dict) -> dict:
        color = plain(holder.get("embed_color", DEFAULT_COLOR))
        if isinstance(color, bool) or not isinstance(color, int) or not 0 <= color <= 0xFFFFFF:
            reader.expected((*path, "embed_color"), "a colour number from 0 to 16777215 (0xFFFFFF)", color)
        return {"embed_color": color}

    return parse_message_action(reader, body, path, keys=KEYS, texts=TEXT_KEYS, kind=TYPE,
                                text_is="the embed's description", options=options)


def render(config: MessageConfig, run: Any, model: dict) -> HttpRequest:
    """The request posting the message.

    Raises:
        LookupError: unknown connector or wrong type.
        watcher.templates.mustache.TemplateSyntaxError / TemplateRenderError: from the templates.
    """
    connector, texts = render_message_texts(config, run, model, TYPE)
    return build_request(connector.config, {"message": message(texts, config.options["embed_color"]),
                                            "secrets": connector.secrets})


def message(texts: Mapping[str, str], color: int = DEFAULT_COLOR) -> dict:
    """The webhook message for rendered ``texts`` (``text``, ``title``?, ``emoji_title``?,
    ``embed_footer``?, ``embed_icon_url``?), within Discord's limits (module docstring)."""
    emoji = texts.get("emoji_title", DEFAULT_EMOJI)
    content = " ".join(part for part in (emoji, texts.get("title") or "", emoji) if part)[:CONTENT_LIMIT]
    description = texts["text"]
    if len(description) > DESCRIPTION_LIMIT:
        description = description[:DESCRIPTION_LIMIT - len(CROPPED)] + CROPPED
    embed: dict[str, Any] = {"description": description, "color": color}
    if texts.get("embed_footer"):
        embed["footer"] = {"text": texts["embed_footer"][:FOOTER_LIMIT]}
        if texts.get("embed_icon_url"):
            embed["footer"]["icon_url"] = texts["embed_icon_url"]
    out: dict[str, Any] = {"content": content} if content else {}
    out["embeds"] = [embed]
    return out


def result(config: MessageConfig, rendered: HttpRequest, outcome: Outcome) -> dict:
    """``{"discord": {"request", "response"?}}``: the message as posted, the webhook's id and token masked."""
    return http_result(TYPE, rendered, outcome)


# ---- the rule format: a rule's message shows its title and message (common.MESSAGE_RULE_DEFAULTS) -----

rule_defaults = message_rule_defaults
without_rule_defaults = without_message_rule_defaults
