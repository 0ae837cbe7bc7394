"""Helpers every destination module shares: Watcher's text templates in action bodies, the
``connector`` key, rendering, and finding the named connector an action uses.

``render`` returns what would be sent (a request object of :mod:`watcher.model.requests`, which
decides whether it is sent, simulated or queued); ``result`` gives the ``<type>`` part of Watcher's
action result (``{"webhook": {"request": …, "response": …}}``). Rendering errors raise; the pipeline
turns them into failure results (docs/semantics.md#action-wrapper, docs/semantics.md#actions).

Our extension to Watcher's bodies: ``connector: NAME`` on webhook, slack, email, opsgenie, index, logging,
pagerduty, jira, ms_teams and discord actions takes the destination and its secrets from the named
connector (``run.services.connectors``); slack, pagerduty and jira also take Watcher's ``account``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from watcher.model.connector import find_connector
from watcher.model.problems import Reader
from watcher.model.source import plain
from watcher.templates.mustache import TemplateSyntaxError, compile_template
from watcher.templates.text import JSON_PREFIX, render_text

TEMPLATE_OBJECT_KEYS = ("source", "lang", "params", "options")


def check_keys(reader: Reader, body: Any, path: Sequence, allowed: Iterable[str], what: str) -> Mapping | None:
    """``body`` as a mapping whose keys are all in ``allowed`` (see :meth:`Reader.check_keys`), or None."""
    return reader.check_keys(path, body, allowed, what)


def parse_text(reader: Reader, value: Any, path: Sequence) -> Any:
    """A Watcher text template: a string (numbers are taken as their text) or a template object
    ``{source, lang?: mustache|jinja, params?, options?}`` (TextTemplate.parse). Mustache syntax is
    checked now, so a broken template is a definition problem with its line and column.

    Returns:
        The template as :func:`watcher.templates.text.render_text` takes it, or None on problems.
    """
    value = plain(value)
    if isinstance(value, bool) or value is None:
        reader.expected(path, "a template string or {source: '...', params: {...}}", value)
        return None
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return value if _mustache_ok(reader, value, path) else None
    if isinstance(value, dict) and isinstance(value.get("source"), str) and set(value) <= set(TEMPLATE_OBJECT_KEYS):
        lang = value.get("lang", "mustache")
        if lang not in ("mustache", "jinja"):
            reader.expected((*path, "lang"), "mustache or jinja", lang)
            return None
        if not isinstance(value.get("params", {}), dict):
            reader.expected((*path, "params"), "a mapping", value.get("params"))
            return None
        if lang == "mustache" and not _mustache_ok(reader, value["source"], (*path, "source")):
            return None
        return value
    if isinstance(value, dict) and "id" in value and "source" not in value:
        reader.problem(path, "stored templates (id) are not supported; give the template inline with 'source'")
        return None
    reader.expected(path, "a template string or {source: '...', params: {...}}", value)
    return None


def _mustache_ok(reader: Reader, source: str, path: Sequence) -> bool:
    text = source[len(JSON_PREFIX):] if source.startswith(JSON_PREFIX) else source
    if "{{" not in text:
        return True
    try:
        compile_template(text)
    except TemplateSyntaxError as error:
        reader.problem(path, f"invalid Mustache template: {error.message} (template line {error.line}, "
                             f"column {error.column})", at_value=True)
        return False
    return True


def parse_text_map(reader: Reader, value: Any, path: Sequence) -> dict[str, Any]:
    """``{name: template}`` (params, headers, details); problems for non-mappings and bad templates."""
    mapping = reader.mapping(path, value, "a mapping of name to template string")
    if mapping is None:
        return {}
    out = {}
    for name, item in mapping.items():
        template = parse_text(reader, item, (*path, name))
        if template is not None:
            out[str(name)] = template
    return out


def parse_text_list(reader: Reader, value: Any, path: Sequence) -> list[Any]:
    """A template or a list of templates (Watcher accepts a single value where a list is expected)."""
    value = plain(value)
    items = value if isinstance(value, list) else [value]
    out = []
    for position, item in enumerate(items):
        template = parse_text(reader, item, (*path, position) if isinstance(value, list) else path)
        if template is not None:
            out.append(template)
    return out


def parse_connector_name(reader: Reader, body: Mapping, path: Sequence) -> str | None:
    """The ``connector`` key's value (a non-empty string), or None when absent/invalid."""
    if "connector" not in body:
        return None
    name = plain(body["connector"])
    if not isinstance(name, str) or not name:
        reader.expected((*path, "connector"), "a connector name from connectors.yaml", name)
        return None
    return name


def parse_account(reader: Reader, body: Mapping, path: Sequence, what: str) -> str | None:
    """The connector named by Watcher's ``account`` key or our ``connector`` key (the same thing for
    actions whose Watcher form names an account: slack, pagerduty, jira), or None when neither is
    given; a problem when they name different connectors. ``what`` describes the connector type."""
    account = parse_connector_name(reader, body, path)
    if "account" in body:
        named = plain(body["account"])
        if not isinstance(named, str) or not named:
            reader.expected((*path, "account"), what, named)
        elif account is not None and named != account:
            reader.problem((*path, "account"),
                           f"'account' ({named}) and 'connector' ({account}) name different connectors")
        account = named if isinstance(named, str) and named else account
    return account


def parse_account_action(reader: Reader, body: Any, path: Sequence, keys: Iterable[str], example: str, kind: str,
                         build: Callable[[Mapping, str | None, str | None], Any]) -> Any:
    """Parse a Watcher action that names an account (slack, pagerduty, jira): ``body`` must be a
    mapping of ``keys`` (``example`` shows one); ``account``/``connector`` name a connector of type
    ``kind``; ``proxy`` is Watcher's proxy object. ``build(body, connector name or None, proxy URL or
    None)`` parses the rest (recording its problems on ``reader``) and returns the parsed action.

    Returns:
        What ``build`` returned, or None when anything was wrong.
    """
    before = len(reader.problems)
    holder = check_keys(reader, body, path, keys, example)
    if holder is None:
        return None
    connector = parse_account(reader, holder, path, f"a {kind} connector name")
    proxy = parse_proxy(reader, holder["proxy"], (*path, "proxy")) if "proxy" in holder else None
    parsed = build(holder, connector, proxy)
    return None if len(reader.problems) > before else parsed


@dataclasses.dataclass(frozen=True)
class MessageConfig:
    """A parsed message action of ours (ms_teams, discord): the connector's name, ``texts`` (the
    templates given, by key) and ``options`` (the action's other settings, checked by its module)."""

    connector: str
    texts: dict
    options: dict = dataclasses.field(default_factory=dict)


def parse_message_action(reader: Reader, body: Any, path: Sequence, *, keys: Iterable[str], texts: Iterable[str],
                         kind: str, text_is: str, options: Callable[[Mapping, dict], dict]) -> MessageConfig | None:
    """Parse one of our message actions: a mapping of ``keys`` with a required ``connector`` (of
    type ``kind``) and ``text`` (described by ``text_is``), text templates for the keys of ``texts``
    given, and ``options(body, texts)`` for the rest (it records its own problems on ``reader``).
    Returns None when anything was wrong."""
    before = len(reader.problems)
    article = "an" if kind[0] in "aeiou" or kind.startswith("ms_") else "a"
    holder = check_keys(reader, body, path, keys, f"{article} {kind} action such as {{connector: NAME, text: '…'}}")
    if holder is None:
        return None
    connector = parse_connector_name(reader, holder, path)
    for key, what in (("connector", f"{article} {kind} connector of connectors.yaml"), ("text", text_is)):
        if key not in holder:
            reader.problem(path, f"missing required field '{key}' ({what})")
    parsed = {key: parse_text(reader, holder[key], (*path, key)) for key in texts if key in holder}
    extra = options(holder, parsed)
    if len(reader.problems) > before or connector is None:
        return None
    return MessageConfig(connector=connector, texts=parsed, options=extra)


def render_message_texts(config: MessageConfig, run: Any, model: Mapping, kind: str) -> tuple[Any, dict]:
    """``(connector, {key: rendered text})`` of a message action (``kind``: its connector type).

    Raises:
        LookupError: unknown connector or wrong type. Template errors as the templates raise them.
    """
    connector = connector_for(run, config.connector, kind)
    return connector, {key: render(template, model) for key, template in config.texts.items()}


MESSAGE_RULE_DEFAULTS = {"title": "{{ title }}", "text": "{{ message }}"}
"""What a rule's message action (ms_teams, discord) shows when the rule gives no title or text (Jinja2)."""


def message_rule_defaults(connector: Any, overrides: Mapping[str, Any]) -> dict:
    """``rule_defaults`` of our message actions: :data:`MESSAGE_RULE_DEFAULTS`."""
    return dict(MESSAGE_RULE_DEFAULTS)


def without_message_rule_defaults(action: dict) -> dict:
    """``without_rule_defaults`` of our message actions (``watcher convert --to rule``)."""
    return {k: v for k, v in action.items() if MESSAGE_RULE_DEFAULTS.get(k) != v}


def parse_proxy(reader: Reader, value: Any, path: Sequence) -> str | None:
    """Watcher's action ``proxy`` object ``{host, port, scheme?: http|https}`` as a proxy URL."""
    value = plain(value)
    if (isinstance(value, dict) and isinstance(value.get("host"), str) and isinstance(value.get("port"), int)
            and value.get("scheme", "http") in ("http", "https") and set(value) <= {"host", "port", "scheme"}):
        return f"{value.get('scheme', 'http')}://{value['host']}:{value['port']}"
    reader.expected(path, "{host: ..., port: ..., scheme?: http|https}", value)
    return None


def account_connector(run: Any, name: str | None, action_type: str) -> Any:
    """The connector an action with a Watcher ``account`` uses: ``name``, else the only connector of
    type ``action_type`` (Watcher's default account).

    Raises:
        LookupError: unknown connector, wrong type, or no name while not exactly one connector of
            that type is defined (the message says how to fix it).
    """
    connectors = getattr(run.services, "connectors", None) or {}
    if name is not None:
        return find_connector(connectors, name, action_type)
    candidates = [c for c in connectors.values() if c.type == action_type]
    if len(candidates) != 1:
        raise LookupError(f"no {action_type} account given and {len(candidates)} {action_type} connectors are "
                          f"defined; set 'account' (or 'connector') in the {action_type} action")
    return candidates[0]


def render(template: Any, model: Mapping, *, escape: str = "none") -> str:
    """Render a parsed text template without escaping (``__json__::`` switches to JSON escaping);
    ``escape="json_strings"`` for a body declared JSON (see :func:`watcher.templates.text.render_text`)."""

    return render_text(template, model, escape=escape)


def render_tree(value: Any, model: Mapping) -> Any:
    """Render every string inside JSON-like ``value`` as a text template (Slack attachments)."""
    if isinstance(value, str):
        return render(value, model)
    if isinstance(value, Mapping):
        return {key: render_tree(item, model) for key, item in value.items()}
    if isinstance(value, list):
        return [render_tree(item, model) for item in value]
    return value


def connector_for(run: Any, name: str | None, action_type: str) -> Any:
    """The connector ``name`` (None → None) of type ``action_type`` from ``run.services.connectors``.

    Raises:
        LookupError: unknown connector or wrong type (the action then fails with this message).
    """
    if name is None:
        return None
    return find_connector(getattr(run.services, "connectors", None) or {}, name, action_type)
