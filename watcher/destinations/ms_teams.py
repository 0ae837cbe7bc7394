"""Microsoft Teams connector: a message card posted to a Teams incoming webhook (ElastAlert2's
``ms_teams`` alerter).

Configuration (connectors.yaml)::

    teams:
      type: ms_teams
      url: ${TEAMS_WEBHOOK_URL}        # https://<tenant>.webhook.office.com/webhookb2/… (the URL is the secret)
      theme_color: ff0000              # optional default accent colour (hex, no '#')
      timeout: 10s  read_timeout: 10s  verify: true  ca_file: …  proxy: …

The action (our ``ms_teams`` type, in a watch or as a rule action naming an ms_teams connector)::

    {"connector": "teams",
     "text": "...",                    # the card's text (required; Teams renders Markdown)
     "title"?: "...",                  # default: none for watches; rules: the alert title
     "summary"?: "...",                # what notifications show; default: the title, else the text
     "theme_color"?: "ff0000",         # default: the connector's
     "fixed_width"?: false}            # ElastAlert2's ms_teams_alert_fixed_width

``text``, ``title``, ``summary`` and ``theme_color`` are text templates. The request is one POST of
the Office 365 connector card (docs/semantics.md#elastalert2-microsoft-teams-alerter)::

    {"@type": "MessageCard", "@context": "http://schema.org/extensions", "summary", "title"?,
     "text", "themeColor"?}

With ``fixed_width`` every line of the text is shown in code formatting (backticks in it become
``'``), as ElastAlert2 does. A 2xx answer is a success; the outbox retries 429 and 5xx, other
statuses are final. The webhook URL's path (its secret part) shows as ``***``. Result
``{"ms_teams": {"request": {...}, "response"?: {...}}}``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import pydantic

from watcher.destinations.common import (MessageConfig, message_rule_defaults, parse_message_action,
                                         render_message_texts, without_message_rule_defaults)
from watcher.destinations.webhook import HttpSettings, SecretUrl, http_result, post_to_secret_url, url_secrets
from watcher.model.problems import Reader
from watcher.model.requests import HttpRequest, HttpResponse, Outcome, http_outcome
from watcher.model.schema_parts import CONNECTOR_REF, TEMPLATE
from watcher.model.source import plain

# ---- the connector (connectors.yaml) ------------------------------------------------------------

TYPE = "ms_teams"
CARD_CONTEXT = "http://schema.org/extensions"
ACTION_SCHEMA = {"type": "object", "description": "A Microsoft Teams message card: {connector: NAME, text, …}.",
                 "properties": {**CONNECTOR_REF, "text": TEMPLATE, "title": TEMPLATE, "summary": TEMPLATE,
                                "theme_color": TEMPLATE, "fixed_width": {"type": "boolean"}},
                 "required": ["connector"]}
"""JSON Schema of the watch action body (editors; ``watcher validate`` stays the authority)."""
_HEX_COLOR = re.compile(r"#?[0-9A-Fa-f]{6}")


class Config(HttpSettings):
    """A Teams incoming webhook."""

    type: Literal["ms_teams"]
    url: SecretUrl("https://example.webhook.office.com/webhookb2/…")
    theme_color: Annotated[str, pydantic.AfterValidator(lambda value: _hex_color(value))] | None = None


def _hex_color(value: str) -> str:
    if not _HEX_COLOR.fullmatch(value):
        raise ValueError(f"expected a hex colour such as ff0000, found {value!r}")
    return value


def parse_connector(reader: Reader, body: Any, path) -> Config | None:
    """Validate a ``type: ms_teams`` connector body (problems go to ``reader``)."""
    return reader.validate(Config, body, path)


secrets = url_secrets
"""What to mask: the webhook URL's path and query."""


def build_request(config: Config, fields: Mapping[str, Any]) -> HttpRequest:
    """One POST of ``fields["card"]`` (a dict, see :func:`card`) to the webhook; ``fields["secrets"]``
    adds values to mask."""
    return post_to_secret_url(config, fields["card"], fields.get("secrets"), TYPE)


def interpret(response: HttpResponse) -> Outcome:
    """2xx → success; any other status → failure ``received [<status>] status code``."""
    return http_outcome(response, success_below=300)


# ---- the action --------------------------------------------------------------------------------

TEXT_KEYS = ("text", "title", "summary", "theme_color")
KEYS = ("connector", *TEXT_KEYS, "fixed_width")


def parse(reader: Reader, body: Any, path) -> MessageConfig | None:
    """Validate an ``ms_teams`` action body (module docstring); problems go to ``reader``.
    ``options`` of the result: ``fixed_width``."""

    def options(holder: Mapping, texts: dict) -> dict:
        color = texts.get("theme_color")
        if isinstance(color, str) and "{{" not in color and "{%" not in color and not _HEX_COLOR.fullmatch(color):
            reader.expected((*path, "theme_color"), "a hex colour such as ff0000", color)
        fixed = plain(holder.get("fixed_width", False))
        if not isinstance(fixed, bool):
            reader.expected((*path, "fixed_width"), "true or false", fixed)
        return {"fixed_width": fixed is True}

    return parse_message_action(reader, body, path, keys=KEYS, texts=TEXT_KEYS, kind=TYPE, text_is="the card's text",
                                options=options)


def render(config: MessageConfig, run: Any, model: dict) -> HttpRequest:
    """The request posting the card.

    Raises:
        LookupError: unknown connector or wrong type.
        watcher.templates.mustache.TemplateSyntaxError / TemplateRenderError: from the templates.
    """
    connector, texts = render_message_texts(config, run, model, TYPE)
    return build_request(connector.config, {"card": card(texts, connector.config, config.options["fixed_width"]),
                                            "secrets": connector.secrets})


def card(texts: Mapping[str, str], config: Config, fixed_width: bool = False) -> dict:
    """The MessageCard for rendered ``texts`` (``text``, ``title``?, ``summary``?, ``theme_color``?):
    the summary defaults to the title, else the first 100 characters of the text; an empty title is
    left out; the colour defaults to the connector's and loses a leading ``#``."""
    text = fixed_width_text(texts["text"]) if fixed_width else texts["text"]
    title = texts.get("title") or None
    out: dict[str, Any] = {"@type": "MessageCard", "@context": CARD_CONTEXT,
                           "summary": texts.get("summary") or title or texts["text"][:100]}
    if title:
        out["title"] = title
    out["text"] = text
    color = texts.get("theme_color") or config.theme_color
    if color:
        out["themeColor"] = color.lstrip("#")
    return out


def fixed_width_text(text: str) -> str:
    """ElastAlert2's ``ms_teams_alert_fixed_width``: backticks become ``'``, then each line is put
    in its own code span (````line````), empty lines dropped between them."""
    text = text.replace("`", "'")
    return "```{0}```".format("```\n\n```".join(text.split("\n"))).replace("\n``````", "")


def result(config: MessageConfig, rendered: HttpRequest, outcome: Outcome) -> dict:
    """``{"ms_teams": {"request", "response"?}}``: the card as posted, the webhook's secret path masked."""
    return http_result(TYPE, rendered, outcome)


# ---- the rule format: a rule's card shows its title and message (common.MESSAGE_RULE_DEFAULTS) --------

rule_defaults = message_rule_defaults
without_rule_defaults = without_message_rule_defaults
