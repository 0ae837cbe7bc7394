"""Jira connector: create an issue through Jira's REST API v2 (``POST /rest/api/2/issue``).

Configuration (connectors.yaml)::

    jira:
      type: jira
      url: https://example.atlassian.net        # or …/rest/api/2/issue; http only with allow_http: true
      user: alerts@example.com                  # basic auth: user + password (Jira Cloud: an API token)
      password: ${JIRA_API_TOKEN}
      # token: ${JIRA_PAT}                      # or a bearer token (Jira Data Center personal access token)
      issue_defaults: {project: {key: OPS}, issuetype: {name: Bug}, labels: [watcher]}
      timeout: 10s  read_timeout: 10s  verify: true  ca_file: …  proxy: …

Mirrors a Watcher Jira *account* (``xpack.notification.jira.account.<name>``: ``secure_url``,
``secure_user``, ``secure_password``, ``issue_defaults``, ``allow_http``;
docs/semantics.md#jira-action). ``password`` and ``token`` are secrets; give exactly one of them
(``user`` goes with ``password``). ``issue_defaults`` are fields (templates, like the action's)
an issue takes when the action does not give them.

The action (a watch's ``jira`` action, or a rule action naming a jira connector):

Body (docs/semantics.md#jira-action)::

    {"account"?: "<jira connector>", "connector"?: (same as account), "proxy"?: {host, port, scheme?},
     "fields": {"project": {"key": "OPS"}, "issuetype": {"name": "Bug"}, "summary": "...",
                "description"?: "...", "labels"?: ["..."], "priority"?: {"name": "High"}, …any Jira field}}

Every string in ``fields`` — keys too, at any depth — is a Mustache template rendered with the
watch's model; the action's fields come first, then the connector's ``issue_defaults`` for the
top-level fields the action lacks (maps and lists are not merged). With neither ``account`` nor
``connector`` the only jira connector is used (Watcher's default account). An issue needs
``project`` (``key`` or ``id``), ``issuetype`` (``name`` or ``id``) and ``summary``; a summary
longer than 255 characters (Jira's limit) is cut to 254 and ``…``.

The request: ``POST <url>/rest/api/2/issue`` with ``{"fields": {...}}``, ``Content-Type`` and
``Accept: application/json``, and ``Authorization: Basic …`` or ``Bearer …``. A 2xx answer (Jira
answers 201 ``{"id", "key", "self"}``) is a success; anything else a failure whose reason carries
Jira's ``errorMessages`` and field ``errors``; the outbox retries 429 and 5xx, and a 400 (a field
Jira refused) or another 4xx is final. Result: ``{"jira": {"account"?, "fields", "request",
"result"?: {"id", "key", "self"}, "reason"?, "response"?}}`` (``result`` once Jira answered 201),
simulated ``{"jira": {"account"?, "fields", "request"}}``; the Authorization value shows as
``::es_redacted::``, secrets as ``***``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

import pydantic

from watcher.destinations.common import TEMPLATE_OBJECT_KEYS, account_connector, parse_account_action
from watcher.destinations.common import render as render_text
from watcher.destinations.webhook import CheckedUrl, HttpSettings, detailed_outcome, json_request, request_record
from watcher.model.problems import Reader
from watcher.model.requests import HttpRequest, HttpResponse, Outcome, basic_auth_header
from watcher.model.schema_parts import CONNECTOR_REF
from watcher.model.secrets import Secret, mask_data
from watcher.model.source import plain
from watcher.templates.mustache import TemplateSyntaxError, compile_template

# ---- the connector (connectors.yaml) ------------------------------------------------------------

TYPE = "jira"
ISSUE_PATH = "/rest/api/2/issue"
SUMMARY_LIMIT = 255  # characters of an issue summary (Jira refuses longer ones)
ACTION_SCHEMA = {"type": "object", "description": "A Jira issue to create (Watcher's jira action).",
                 "properties": {"account": {"type": "string"}, **CONNECTOR_REF, "proxy": {"type": "object"},
                                "fields": {"type": "object", "description": "Jira issue fields; strings are "
                                                                            "Mustache templates.",
                                           "properties": {"project": {"type": "object"},
                                                          "issuetype": {"type": "object"},
                                                          "summary": {"type": "string"},
                                                          "description": {"type": "string"},
                                                          "labels": {"type": "array", "items": {"type": "string"}},
                                                          "priority": {"type": "object"}}}}}
"""JSON Schema of the watch action body (editors; ``watcher validate`` stays the authority)."""


class Config(HttpSettings):
    """A Jira site and how to authenticate to it (see the module docstring)."""

    type: Literal["jira"]
    url: CheckedUrl("https://example.atlassian.net")
    user: str | None = None
    password: Secret | None = None
    token: Secret | None = None
    allow_http: bool = False
    issue_defaults: dict[str, Any] = {}

    @pydantic.field_validator("issue_defaults")
    @classmethod
    def _templates(cls, value: dict) -> dict:
        for where, text in _strings(value, ()):
            error = _mustache_error(text)
            if error:
                raise ValueError(f"{'.'.join(map(str, where))}: {error}")
        return value

    @pydantic.model_validator(mode="after")
    def _auth(self) -> "Config":
        if urlsplit(self.url).scheme == "http" and not self.allow_http:
            raise ValueError("the url is http: Jira credentials would travel in clear; use https, or set "
                             "allow_http: true (Watcher's setting of the same name)")
        if (self.password is None) == (self.token is None):
            raise ValueError("expected exactly one of password (with user) or token, found "
                             + ("both" if self.password is not None else "neither"))
        if self.password is not None and not self.user:
            raise ValueError("password needs user (the Jira account's user name or e-mail)")
        if self.token is not None and self.user:
            raise ValueError("user goes with password; a token authenticates on its own")
        return self

    def endpoint(self) -> str:
        """The create-issue URL: ``url`` itself when it already ends with ``/rest/api/<n>/issue``,
        else ``url`` + ``/rest/api/2/issue`` (a context path such as ``/jira`` is kept)."""
        parts = urlsplit(self.url)
        path = parts.path.rstrip("/")
        segments = path.split("/")
        if len(segments) >= 4 and segments[-4:-2] == ["rest", "api"] and segments[-1] == "issue":
            return self.url
        return parts._replace(path=path + ISSUE_PATH).geturl()

    def authorization(self) -> str:
        """The Authorization header value."""
        if self.token is not None:
            return f"Bearer {self.token.reveal()}"
        assert self.password is not None and self.user is not None
        return basic_auth_header(self.user, self.password.reveal())


def parse_connector(reader: Reader, body: Any, path) -> Config | None:
    """Validate a ``type: jira`` connector body (problems go to ``reader``)."""
    return reader.validate(Config, body, path)


def build_request(config: Config, fields: Mapping[str, Any]) -> HttpRequest:
    """The POST creating one issue.

    Args:
        config: the connector.
        fields: ``fields`` (the rendered issue fields), optional ``secrets`` (more values to mask)
            and ``proxy`` (a proxy URL for this request).
    """
    secrets = [s.reveal() for s in (config.password, config.token) if s is not None]
    request = json_request(config, config.endpoint(), {"fields": fields["fields"]},
                           secrets=(*secrets, *(fields.get("secrets") or ())), connector_type=TYPE,
                           headers={"Accept": "application/json", "Authorization": config.authorization()})
    return dataclasses.replace(request, proxy=fields["proxy"]) if fields.get("proxy") else request


def interpret(response: HttpResponse) -> Outcome:
    """2xx (Jira answers 201 with ``{"id", "key", "self"}``) → success; else failure ``received
    [<status>] status code: <errorMessages>; Field [<name>] has error [<text>]`` from Jira's error
    body. Retries are decided by the status: 429 and 5xx are retried, other statuses are final."""
    return detailed_outcome(response, _error_detail)


def _error_detail(answer: dict) -> str:
    errors = [str(message) for message in answer.get("errorMessages") or []]
    if isinstance(answer.get("errors"), dict):
        errors += [f"Field [{name}] has error [{text}]" for name, text in answer["errors"].items()]
    return "; ".join(errors)


# ---- the action --------------------------------------------------------------------------------

KEYS = ("account", "connector", "proxy", "fields")
# Known fields whose shape Jira fixes: (what it must be, keys one of which it needs).
OBJECT_FIELDS = {"project": ("key", "id"), "issuetype": ("name", "id"), "priority": ("name", "id"),
                 "assignee": ("name", "accountId", "id"), "reporter": ("name", "accountId", "id"),
                 "parent": ("key", "id")}
TEXT_FIELDS = ("summary", "description", "environment")
REQUIRED_FIELDS = ("project", "issuetype", "summary")


@dataclasses.dataclass(frozen=True)
class JiraConfig:
    """A parsed jira action: ``fields`` as written (strings are templates; a ``{source, lang}``
    mapping is a template object, as rules compile their Jinja2 templates)."""

    connector: str | None = None
    proxy: str | None = None
    fields: dict = dataclasses.field(default_factory=dict)


def parse(reader: Reader, body: Any, path) -> JiraConfig | None:
    """Validate a Watcher ``jira`` action body (``fields``, ``account``/``connector``, ``proxy``);
    problems go to ``reader``."""
    return parse_account_action(reader, body, path, KEYS, "a jira action such as {fields: {project: {key: OPS}, "
                                                          "issuetype: {name: Bug}, summary: '…'}}", TYPE,
                                lambda holder, connector, proxy: _parse_fields(reader, holder, path, connector, proxy))


def _parse_fields(reader: Reader, holder, path, connector: str | None, proxy: str | None) -> JiraConfig | None:
    fields = plain(holder.get("fields", {}))
    if not isinstance(fields, dict):
        reader.expected((*path, "fields"), "a mapping of Jira field name to value, such as {summary: '…'}", fields)
        return None
    at = (*path, "fields")
    for where, text in _strings(fields, at):
        error = _mustache_error(text)
        if error:
            reader.problem(where, error, at_value=True)
    _check_shapes(reader, fields, at)
    return JiraConfig(connector=connector, proxy=proxy, fields=fields)


def _check_shapes(reader: Reader, fields: Mapping, at: tuple) -> None:
    """Problems for the fields whose shape Jira fixes, when written in another shape."""
    for name, needed in OBJECT_FIELDS.items():
        value = fields.get(name)
        if value is not None and not _template(value) and not (isinstance(value, dict) and set(needed) & set(value)):
            example = f"{{{needed[0]}: {'OPS' if name == 'project' else 'Bug' if name == 'issuetype' else '…'}}}"
            reader.expected((*at, name), f"an object with {' or '.join(needed)}, such as {example}", value)
    for name in TEXT_FIELDS:
        value = fields.get(name)
        if value is not None and not isinstance(value, str) and not _template(value):
            reader.expected((*at, name), "a text (template)", value)
    labels = fields.get("labels")
    if labels is not None:
        if not isinstance(labels, list) or not all(isinstance(x, str) or _template(x) for x in labels):
            reader.expected((*at, "labels"), "a list of label strings", labels)
        else:
            for index, label in enumerate(labels):
                if isinstance(label, str) and "{{" not in label and (not label or any(c.isspace() for c in label)):
                    reader.expected((*at, "labels", index), "a label without spaces (Jira refuses them)", label)


def _template(value: Any) -> bool:
    """A ``{source, lang, params?, options?}`` template object (rules compile Jinja2 to these)."""
    return (isinstance(value, Mapping) and isinstance(value.get("source"), str) and "lang" in value
            and set(value) <= set(TEMPLATE_OBJECT_KEYS))


def _strings(value: Any, where: tuple):
    """``(path, text)`` of every Mustache string in ``value`` (keys included; template objects
    skipped: their language is checked where they are written)."""
    if isinstance(value, str):
        yield where, value
    elif _template(value):
        return
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield (*where, key), str(key)
            yield from _strings(item, (*where, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*where, index))


def _mustache_error(text: str) -> str | None:
    if "{{" not in text:
        return None
    try:
        compile_template(text)
    except TemplateSyntaxError as error:
        return f"invalid Mustache template: {error.message} (template line {error.line}, column {error.column})"
    return None


def missing_for(config: JiraConfig, connector: Any) -> str | None:
    """The required issue fields neither the action's ``fields`` nor the connector's ``issue_defaults``
    give (checked when files load; None when all are there, even if a template may render empty)."""
    missing = [name for name in REQUIRED_FIELDS
               if name not in config.fields and name not in connector.config.issue_defaults]
    if missing:
        return (f"the jira issue has no {', '.join(missing)}: give them in the action's fields or the connector's "
                "issue_defaults (e.g. project: {key: OPS}, issuetype: {name: Bug}, summary: '…')")
    return None


def render(config: JiraConfig, run: Any, model: dict) -> HttpRequest:
    """The request creating the issue (see the module docstring).

    Raises:
        LookupError: unknown connector, or no account named while not exactly one jira connector
            is defined. ValueError: the issue lacks project, issuetype or summary.
        watcher.templates.mustache.TemplateSyntaxError / TemplateRenderError: from the templates.
    """
    connector = account_connector(run, config.connector, TYPE)
    fields = issue_fields(config.fields, connector.config.issue_defaults, model)
    return build_request(connector.config, {"fields": fields, "secrets": connector.secrets, "proxy": config.proxy})


def issue_fields(fields: Mapping, defaults: Mapping, model: dict) -> dict:
    """The action's fields rendered, then the defaults' (rendered) for top-level keys the action
    lacks (ExecutableJiraAction.merge); the summary cut to Jira's 255 characters.

    Raises:
        ValueError: project, issuetype or summary missing after the merge.
    """
    out = _render_tree(fields, model)
    for key, value in _render_tree(defaults, model).items():
        out.setdefault(key, value)
    missing = [name for name in REQUIRED_FIELDS if out.get(name) in (None, "", {})]
    if missing:
        raise ValueError(f"the jira issue has no {', '.join(missing)}: give them in the action's fields or the "
                         "connector's issue_defaults (e.g. project: {key: OPS}, issuetype: {name: Bug}, "
                         "summary: '…')")
    if isinstance(out["summary"], str) and len(out["summary"]) > SUMMARY_LIMIT:
        out["summary"] = out["summary"][:SUMMARY_LIMIT - 1] + "…"
    return out


def _render_tree(value: Any, model: dict) -> Any:
    if isinstance(value, str) or _template(value):
        return render_text(value, model)
    if isinstance(value, Mapping):
        return {render_text(str(key), model): _render_tree(item, model) for key, item in value.items()}
    if isinstance(value, list):
        return [_render_tree(item, model) for item in value]
    return value


def result(config: JiraConfig, rendered: HttpRequest, outcome: Outcome) -> dict:
    """Watcher's jira result (module docstring): the fields sent, and Jira's ``{id, key, self}``
    once it answered with them."""
    fields = mask_data(json.loads(rendered.body or "{}").get("fields") or {}, rendered.secrets)
    out: dict[str, Any] = {"account": config.connector} if config.connector else {}
    out["fields"] = fields
    out["request"] = request_record(rendered)
    created = _created(outcome) if outcome.status == "success" else None
    if created is not None:
        out["result"] = created
    if outcome.status not in ("success", "simulated") and outcome.reason:
        out["reason"] = outcome.reason
    if outcome.response is not None and outcome.status != "simulated":
        out["response"] = outcome.response
    return {"jira": out}


def delivered(outcome: Outcome) -> dict | None:
    """What creating the issue made, kept with the outbox's delivery as ``result``: Jira's
    ``{"id", "key", "self"}`` (the watch record was written when the issue entered the outbox)."""
    return _created(outcome)


def _created(outcome: Outcome) -> dict | None:
    """``{"id", "key", "self"}`` from Jira's 201 body (None when the answer is not there yet: the
    outbox accepted the issue and sends it later)."""
    response = outcome.response if isinstance(outcome.response, dict) else {}
    try:
        body = json.loads(response.get("body") or "")
    except (TypeError, ValueError):
        return None
    if not isinstance(body, dict) or "key" not in body:
        return None
    return {key: body[key] for key in ("id", "key", "self") if key in body}


# ---- the rule format ------------------------------------------------------------------------------

DEFAULT_RULE_FIELDS = {"summary": "{{ title }}", "description": "{{ message }}"}
"""A rule's issue summary and description when neither the rule nor the connector's
``issue_defaults`` give them (Jinja2)."""
_JINJA_MARKS = ("{{", "{%", "{#")


def rule_defaults(connector: Any, overrides: Mapping[str, Any]) -> dict:
    """A rule action's ``fields``: :data:`DEFAULT_RULE_FIELDS` (those the connector's issue_defaults
    lack) under the rule's own fields, every string at any depth as a Jinja2 template object (rules
    write Jinja2; a compiled rule's action carries ``{source, lang: jinja}``)."""
    issue_defaults = connector.config.issue_defaults
    given = overrides.get("fields")
    fields = {**{k: v for k, v in DEFAULT_RULE_FIELDS.items() if k not in issue_defaults},
              **(given if isinstance(given, Mapping) else {})}
    return {"fields": _jinja_tree(fields)}


def _jinja_tree(value: Any) -> Any:
    if isinstance(value, str):
        return {"source": value, "lang": "jinja"} if any(mark in value for mark in _JINJA_MARKS) else value
    if isinstance(value, Mapping) and not _template(value):
        return {key: _jinja_tree(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_jinja_tree(item) for item in value]
    return value


def without_rule_defaults(action: dict) -> dict:
    """``action`` without what :func:`rule_defaults` adds (``watcher convert --to rule``)."""
    fields = action.get("fields")
    if not isinstance(fields, dict):
        return action
    kept = {k: _plain_tree(v) for k, v in fields.items() if DEFAULT_RULE_FIELDS.get(k) != _plain_tree(v)}
    return {k: v for k, v in action.items() if k != "fields"} | ({"fields": kept} if kept else {})


def _plain_tree(value: Any) -> Any:
    """Template objects back to their source text (lists included)."""
    if _template(value):
        return value["source"]
    if isinstance(value, Mapping):
        return {key: _plain_tree(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain_tree(item) for item in value]
    return value
