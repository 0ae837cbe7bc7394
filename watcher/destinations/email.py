"""Email connector: an SMTP account (Watcher's ``xpack.notification.email.account.<name>``).

Configuration (connectors.yaml)::

    mail:
      type: email
      host: smtp.example.com
      port: 587                      # default: 25 (security none), 587 (starttls), 465 (tls)
      security: starttls             # none | starttls (default) | tls
      user: ${SMTP_USER}             # SMTP AUTH; with a password, never over security: none
      password: ${SMTP_PASSWORD}     # a secret: never shown, never stored in the outbox
      from: 'Watcher <watcher@example.com>'   # From of every email unless the action sets one
      default: true                  # the account of email actions that name none
      email_defaults: {to: [oncall@example.com], cc: [], bcc: [], reply_to: [], subject: …, priority: high}
      timeout: 10s                   # connect (and the TLS handshake of security: tls)
      read_timeout: 60s              # the whole conversation after connecting, greeting to QUIT
      verify: true                   # verify the server's certificate and name
      ca_file: /etc/ssl/my-ca.pem

The action (a watch's ``email`` action, or a rule action naming an email connector), Watcher's fields
(docs/semantics.md#email-action)::

    {"account"?: "<email connector>", "connector"?: (same as account), "profile"?: standard|…,
     "from"?, "to", "cc"?, "bcc"?, "reply_to"?      # an address, a comma-separated list, or a list
     "subject"?, "body"?: "<text>" | {"text"?, "html"?}, "priority"?: highest|high|normal|low|lowest,
     "attachments"?: {"<file name>": {"data": {"format"?: json|yaml}}}, "attach_data"?: true | {format}}

Every field but ``account``/``profile``/``attachments`` is a text template. The account is our email
connector: named by ``account`` (or ``connector``), else the connector marked ``default: true``, else
the only email connector. A field the action leaves out comes from the connector's ``email_defaults``
(``from`` from the connector's ``from``, else its ``user`` when that is an address, else
``watcher@<host name>``). ``to`` is
required (here or in the defaults). A ``data`` attachment is the run's ``{"ctx": …}`` as pretty JSON
(default) or YAML, named by its key. The message is built by the standard library's ``email``
package and sent by :mod:`watcher.delivery.smtp`, through the outbox like every delivery, with
``Message-ID: <delivery id@from domain>`` (:func:`watcher.model.requests.email_message_id`).

Result ``{"email": {"account", "smtp": {"host", "port", "security", "user"?}, "message": {"id", "from",
"to", "cc"?, "bcc"?, "reply_to"?, "priority"?, "sent_date", "subject", "body": {"text"?, "html"?},
"attachments"?: [{"name", "content_type", "size"}]}, "response"?}}``; simulated, the same without
``response``. No password is ever part of it.
"""

from __future__ import annotations

import dataclasses
import io
import json
import socket
from collections.abc import Mapping
from typing import Any, Literal

import pydantic
from ruamel.yaml import YAML

from watcher.destinations.common import check_keys, parse_account, parse_text, parse_text_list
from watcher.destinations.common import render as render_text
from watcher.destinations.webhook import Seconds, StrictModel, readable_ca_file
from watcher.model.connector import find_connector
from watcher.model.problems import Reader
from watcher.model.requests import (EMAIL_PRIORITIES, EmailAttachment, EmailRequest, InvalidAddress, Outcome,
                                    SmtpReceipt, email_message_id, origin_delivery_id, parse_addresses)
from watcher.model.schema_parts import CONNECTOR_REF, TEMPLATE
from watcher.model.secrets import Secret, mask_data
from watcher.model.source import plain
from watcher.support.datemath import format_iso_millis
from watcher.templates.mustache import to_json

# ---- the connector (connectors.yaml) ------------------------------------------------------------

TYPE = "email"
DEFAULT_PORTS = {"none": 25, "starttls": 587, "tls": 465}
"""The port of each ``security`` when the connector gives none."""
PROFILES = ("standard", "std", "outlook", "gmail", "mac")
"""Watcher's email profiles: accepted, and all give the same message (as in Watcher)."""
DATA_FORMATS = {"json": "application/json", "yaml": "application/yaml"}
_ADDRESSES = {"anyOf": [TEMPLATE, {"type": "array", "items": TEMPLATE}]}
ACTION_SCHEMA = {
    "type": "object", "description": "An email through an email connector (Watcher's email action).",
    "properties": {
        "account": {"type": "string", "description": "The email connector (default: the default one)."},
        **CONNECTOR_REF,
        "profile": {"enum": list(PROFILES)},
        "from": TEMPLATE, "to": _ADDRESSES, "cc": _ADDRESSES, "bcc": _ADDRESSES, "reply_to": _ADDRESSES,
        "subject": TEMPLATE,
        "body": {"anyOf": [TEMPLATE, {"type": "object", "properties": {"text": TEMPLATE, "html": TEMPLATE},
                                      "additionalProperties": False}]},
        "priority": {"anyOf": [{"enum": list(EMAIL_PRIORITIES)}, TEMPLATE]},
        "attachments": {"type": "object", "additionalProperties": {
            "type": "object", "properties": {"data": {"type": "object", "properties": {
                "format": {"enum": list(DATA_FORMATS)}}, "additionalProperties": False}},
            "additionalProperties": False}},
        "attach_data": {"anyOf": [{"type": "boolean"}, {"type": "object", "properties": {
            "format": {"enum": list(DATA_FORMATS)}}, "additionalProperties": False}]},
    },
    "additionalProperties": False,
}
"""JSON Schema of the watch action body (editors; ``watcher validate`` stays the authority)."""


def _address_list(value: list[str]) -> list[str]:
    for item in value:
        try:
            parse_addresses(item)
        except InvalidAddress as error:
            raise ValueError(str(error)) from None
    return value


def _one_address(value: str | None) -> str | None:
    if value is not None:
        try:
            found = parse_addresses(value)
        except InvalidAddress as error:
            raise ValueError(str(error)) from None
        if len(found) != 1:
            raise ValueError(f"expected one address such as 'Watcher <watcher@example.com>', found {value!r}")
    return value


class EmailDefaults(StrictModel):
    """What an email gets when its action leaves a field out (Watcher's ``email_defaults``).

    Attributes:
        to, cc, bcc, reply_to: address lists (``"Name <user@domain>"`` or ``user@domain`` items).
        subject: the subject text (not a template).
        priority: one of highest, high, normal, low, lowest.
    """

    to: list[str] = []
    cc: list[str] = []
    bcc: list[str] = []
    reply_to: list[str] = []
    subject: str | None = None
    priority: Literal["highest", "high", "normal", "low", "lowest"] | None = None

    _addresses = pydantic.field_validator("to", "cc", "bcc", "reply_to")(_address_list)


class Config(StrictModel):
    """An email connector: one SMTP account (see the module docstring).

    Attributes:
        host: the SMTP server. port: its port (default by ``security``: 25, 587, 465).
        security: ``none``, ``starttls`` (default; refused when the server does not offer it) or
            ``tls`` (TLS from the first byte).
        user, password: SMTP AUTH credentials (both or neither; never with ``security: none``).
        from_: the From address (file key ``from``).
        default: the account of email actions that name none.
        email_defaults: fields for actions that leave them out.
        timeout: connect timeout, seconds (file: ``10s``). read_timeout: the conversation after
            connecting, in total, seconds (default 60 s; Watcher's accounts default to 2 minutes).
        verify, ca_file: certificate verification (default on, the system's CAs).
    """

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    type: Literal["email"]
    host: str = pydantic.Field(min_length=1)
    port: int | None = pydantic.Field(default=None, gt=0, lt=65536)
    security: Literal["none", "starttls", "tls"] = "starttls"
    user: str | None = None
    password: Secret | None = None
    from_: str | None = pydantic.Field(default=None, alias="from")
    default: bool = False
    email_defaults: EmailDefaults = EmailDefaults()
    timeout: Seconds = 10.0
    read_timeout: Seconds = 60.0
    verify: bool = True
    ca_file: str | None = None

    _from = pydantic.field_validator("from_")(_one_address)

    _ca_file_readable = pydantic.field_validator("ca_file")(readable_ca_file)

    @pydantic.model_validator(mode="after")
    def _credentials(self) -> "Config":
        if (self.user is None) != (self.password is None):
            raise ValueError("give both user and password for SMTP AUTH, or neither")
        if self.password is not None and self.security == "none":
            raise ValueError("a password would be sent in clear text: use security starttls or tls")
        return self

    def smtp_port(self) -> int:
        """``port``, or the default port of ``security``."""
        return self.port or DEFAULT_PORTS[self.security]

    def sender(self) -> str:
        """The From address when the action gives none: ``from``, else ``user`` if it is an address,
        else ``watcher@<this host's name>`` (as Watcher's mail library falls back to the local
        address)."""
        if self.from_:
            return self.from_
        if self.user and "@" in self.user:
            return self.user
        return f"watcher@{_local_domain()}"


def _local_domain() -> str:
    name = socket.gethostname().strip(".").lower()
    try:
        parse_addresses(f"watcher@{name}")
    except InvalidAddress:
        return "localhost"
    return name or "localhost"


def parse_connector(reader: Reader, body: Any, path) -> Config | None:
    """Validate a ``type: email`` connector body (problems go to ``reader``)."""
    return reader.validate(Config, body, path)


def build_request(config: Config, fields: Mapping[str, Any]) -> EmailRequest:
    """The request for one email through the account ``config``.

    Args:
        config: the connector.
        fields: rendered values: ``from`` (str), ``to``/``cc``/``bcc``/``reply_to`` (lists of address
            strings), ``subject`` (str), ``text``/``html`` (str or None), ``priority`` (a key of
            :data:`~watcher.model.requests.EMAIL_PRIORITIES` or None), ``date`` (aware datetime),
            ``attachments`` (:class:`~watcher.model.requests.EmailAttachment` values), ``secrets``
            (values to mask: the connector's), ``account`` (the connector's name).

    Raises:
        InvalidAddress: no ``to``.
    """
    sender = fields.get("from") or config.sender()
    to = tuple(fields.get("to") or ())
    if not to:
        raise InvalidAddress("missing required email [to] field (in the action or the connector's email_defaults)",
                             field="to")
    password = config.password.reveal() if config.password is not None else None
    secrets = tuple(dict.fromkeys(s for s in (password, *(fields.get("secrets") or ())) if s))
    return EmailRequest(
        host=config.host, port=config.smtp_port(), security=config.security, username=config.user, password=password,
        sender=sender, to=to, cc=tuple(fields.get("cc") or ()), bcc=tuple(fields.get("bcc") or ()),
        reply_to=tuple(fields.get("reply_to") or ()), subject=fields.get("subject") or "",
        text=fields.get("text"), html=fields.get("html"), priority=fields.get("priority"), date=fields.get("date"),
        attachments=tuple(fields.get("attachments") or ()), timeout_s=config.timeout,
        read_timeout_s=config.read_timeout, verify=config.verify, ca_file=config.ca_file, secrets=secrets,
        account=fields.get("account"), connector_type=TYPE)


def interpret(receipt: SmtpReceipt) -> Outcome:
    """The server accepted the message (the sender raises otherwise): ``success`` with the receipt."""
    return Outcome("success", response=receipt.as_record())


# ---- the action --------------------------------------------------------------------------------

KEYS = ("account", "connector", "profile", "from", "to", "cc", "bcc", "reply_to", "subject", "body", "priority",
        "attachments", "attach_data", "user", "password")
ADDRESS_FIELDS = ("to", "cc", "bcc", "reply_to")


@dataclasses.dataclass(frozen=True)
class EmailConfig:
    """A parsed email action; templates kept as parsed (see :func:`watcher.destinations.common.parse_text`).

    Attributes:
        connector: the account (email connector) named by ``account`` or ``connector``, or None for
            the default one.
        from_, subject, text, html, priority: templates, or None when not given.
        to, cc, bcc, reply_to: tuples of templates (each renders to an address list), or None.
        attachments: ``((file name, format), …)``, format ``json`` or ``yaml``.
    """

    connector: str | None = None
    from_: Any = None
    to: tuple | None = None
    cc: tuple | None = None
    bcc: tuple | None = None
    reply_to: tuple | None = None
    subject: Any = None
    text: Any = None
    html: Any = None
    priority: Any = None
    attachments: tuple[tuple[str, str], ...] = ()


def parse(reader: Reader, body: Any, path) -> EmailConfig | None:
    """Validate a Watcher ``email`` action body (module docstring); problems go to ``reader``, each
    at its file position, e.g. ``watch.json:12:15: actions.mail.email.to[1]: could not parse
    [ops@] in field [to]: expected user@domain, found [ops@]``."""
    holder = check_keys(reader, body, path, KEYS, "an email action such as {to: ops@example.com, subject: …, body: …}")
    if holder is None:
        return None
    before = len(reader.problems)
    fields: dict[str, Any] = {"connector": parse_account(reader, holder, path, "an email connector name")}
    for key in ("user", "password"):
        if key in holder:
            reader.problem((*path, key), "SMTP credentials in the action are not supported: give the account's user "
                                         "and password in its email connector (connectors.yaml), from ${ENV} or "
                                         "${file:/path}")
    profile = plain(holder.get("profile"))
    if profile is not None and (not isinstance(profile, str) or profile.lower() not in PROFILES):
        reader.expected((*path, "profile"), f"one of {', '.join(PROFILES[:1] + PROFILES[2:])}", profile)
    if "from" in holder:
        fields["from_"] = parse_text(reader, holder["from"], (*path, "from"))
        _check_static_addresses(reader, [fields["from_"]], (*path, "from"), "from", one=True)
    for key in ADDRESS_FIELDS:
        if key in holder:
            templates = tuple(parse_text_list(reader, holder[key], (*path, key)))
            listed = isinstance(plain(holder[key]), list)
            for index, template in enumerate(templates):
                _check_static_addresses(reader, [template], (*path, key, index) if listed else (*path, key), key)
            fields[key] = templates
    if "subject" in holder:
        fields["subject"] = parse_text(reader, holder["subject"], (*path, "subject"))
    if "body" in holder:
        fields.update(_body(reader, holder["body"], (*path, "body")))
    if "priority" in holder:
        priority = parse_text(reader, holder["priority"], (*path, "priority"))
        if isinstance(priority, str) and "{{" not in priority and priority.lower() not in EMAIL_PRIORITIES:
            reader.expected((*path, "priority"), f"one of {', '.join(EMAIL_PRIORITIES)}", priority)
        fields["priority"] = priority
    attachments = []
    if "attach_data" in holder:
        attachments += _attach_data(reader, holder["attach_data"], (*path, "attach_data"))
    if "attachments" in holder:
        attachments += _attachments(reader, holder["attachments"], (*path, "attachments"))
    names = [name for name, _ in attachments]
    for name in {n for n in names if names.count(n) > 1}:
        reader.problem((*path, "attachments", name), f"two attachments named {name!r}")
    if len(reader.problems) > before:
        return None
    return EmailConfig(attachments=tuple(attachments), **fields)


def _check_static_addresses(reader: Reader, templates: list, path, field: str, one: bool = False) -> None:
    # Watcher checks addresses written without a template when the watch is saved.
    for template in templates:
        if not isinstance(template, str) or "{{" in template:
            continue
        try:
            found = parse_addresses(template, field)
        except InvalidAddress as error:
            reader.problem(path, str(error), at_value=True)
            continue
        if one and len(found) != 1:
            reader.expected(path, "one address such as 'Watcher <watcher@example.com>'", template)


def _body(reader: Reader, value: Any, path) -> dict:
    data = plain(value)
    if isinstance(data, dict) and "source" not in data:  # {text, html}; a template object has 'source'
        body = check_keys(reader, value, path, ("text", "html"), "a body {text: …, html: …}")
        if body is None:
            return {}
        return {key: parse_text(reader, body[key], (*path, key)) for key in ("text", "html") if key in body}
    return {"text": parse_text(reader, value, path)}


def _data_format(reader: Reader, value: Any, path, default: str) -> str | None:
    options = check_keys(reader, value, path, ("format",), "{format: json} or {format: yaml}")
    if options is None:
        return None
    fmt = plain(options.get("format", default))
    if not isinstance(fmt, str) or fmt.lower() not in DATA_FORMATS:
        reader.expected((*path, "format"), "json or yaml", fmt)
        return None
    return fmt.lower()


def _attach_data(reader: Reader, value: Any, path) -> list[tuple[str, str]]:
    # Watcher's deprecated attach_data: true attaches the data as YAML, named "data"
    data = plain(value)
    if isinstance(data, bool):
        return [("data", "yaml")] if data else []
    fmt = _data_format(reader, value, path, "yaml")
    return [("data", fmt)] if fmt else []


def _attachments(reader: Reader, value: Any, path) -> list[tuple[str, str]]:
    holder = reader.mapping(path, value, "a mapping of file name to attachment, such as {data.json: {data: {}}}")
    if holder is None:
        return []
    out = []
    for name, attachment in holder.items():
        at = (*path, name)
        if not str(name).strip():
            reader.problem(at, "expected a file name for the attachment")
            continue
        kinds = reader.mapping(at, attachment, "an attachment such as {data: {format: json}}")
        if kinds is None:
            continue
        if set(kinds) & {"http", "reporting"}:
            kind = next(k for k in ("http", "reporting") if k in kinds)
            reader.problem((*at, kind), f"'{kind}' attachments are not supported; a 'data' attachment "
                                        "({data: {format: json}}) attaches the run's data")
            continue
        if list(kinds) != ["data"]:
            reader.check_keys(at, attachment, ("data",), "an attachment such as {data: {format: json}}")
            if "data" not in kinds:
                continue
        fmt = _data_format(reader, kinds["data"] if kinds["data"] is not None else {}, (*at, "data"), "json")
        if fmt:
            out.append((str(name), fmt))
    return out


def _connector(run: Any, name: str | None):
    connectors = getattr(run.services, "connectors", None) or {}
    if name is not None:
        return find_connector(connectors, name, TYPE)
    accounts = [c for c in connectors.values() if c.type == TYPE]
    defaults = [c for c in accounts if c.config.default]
    if len(defaults) == 1:
        return defaults[0]
    if len(defaults) > 1:
        raise LookupError(f"no email account given and {len(defaults)} email connectors are marked default "
                          f"({', '.join(c.name for c in defaults)}); set 'account' in the email action")
    if len(accounts) != 1:
        raise LookupError(f"no email account given and {len(accounts)} email connectors are defined; set 'account' "
                          "(or 'connector') in the email action, or mark one connector 'default: true'")
    return accounts[0]


def missing_for(config: EmailConfig, connector: Any) -> str | None:
    """What the email will certainly lack with ``connector`` as its account: no ``to`` in the action
    nor in the connector's ``email_defaults`` (checked when files load; None when nothing is lacking)."""
    if config.to is None and not connector.config.email_defaults.to:
        return "missing required email [to] field (in the action or the connector's email_defaults)"
    return None


def render(config: EmailConfig, run: Any, model: dict) -> EmailRequest:
    """The email to send (Watcher's EmailTemplate.render, then the account's defaults).

    Raises:
        LookupError: no usable email connector. InvalidAddress: a rendered address that does not
        parse, no from or no to. ValueError: a rendered priority that is not one of the five.
        TemplateRenderError: as the templates raise it.
    """
    connector = _connector(run, config.connector)
    settings: Config = connector.config
    defaults = settings.email_defaults

    def text(template: Any) -> str | None:
        return render_text(template, model) if template is not None else None

    def addresses(templates: tuple | None, field: str, default: list[str]) -> list[str]:
        if templates is None:
            return list(default)
        out = []
        for template in templates:  # each renders to a comma-separated list (Watcher)
            out += [str(address) for address in parse_addresses(text(template), field)]
        return out

    sender = text(config.from_)
    if sender is not None:
        found = parse_addresses(sender, "from")
        if len(found) != 1:
            raise InvalidAddress(f"expected one from address, found [{sender}]", field="from", text=sender)
        sender = str(found[0])
    priority = text(config.priority)
    if priority is not None:
        if priority.strip().lower() not in EMAIL_PRIORITIES:
            raise ValueError(f"[{priority}] is not a valid email priority; expected one of "
                             f"{', '.join(EMAIL_PRIORITIES)}")
        priority = priority.strip().lower()
    fields = {
        "from": sender,
        "to": addresses(config.to, "to", defaults.to),
        "cc": addresses(config.cc, "cc", defaults.cc),
        "bcc": addresses(config.bcc, "bcc", defaults.bcc),
        "reply_to": addresses(config.reply_to, "reply_to", defaults.reply_to),
        "subject": text(config.subject) if config.subject is not None else (defaults.subject or ""),
        "text": text(config.text),
        "html": text(config.html),
        "priority": priority or defaults.priority,
        "date": getattr(run, "execution_time", None),
        "attachments": [_attachment(name, fmt, model) for name, fmt in config.attachments],
        "secrets": connector.secrets,
        "account": connector.name,
    }
    return build_request(settings, fields)


def _attachment(name: str, fmt: str, model: Mapping) -> EmailAttachment:
    """The run's data ``{"ctx": …}`` (Watcher's data attachment) as pretty JSON or YAML."""
    data = json.loads(to_json({"ctx": model["ctx"]}))
    if fmt == "json":
        content = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    else:
        yaml = YAML(typ="safe", pure=True)
        yaml.default_flow_style = False
        out = io.StringIO()
        yaml.dump(data, out)
        content = out.getvalue()
    return EmailAttachment(filename=name, content_type=DATA_FORMATS[fmt], content=content)


def message_record(rendered: EmailRequest) -> dict:
    """The message as Watcher's records show it (Email.toXContent), secrets masked: ``{"id", "from",
    "reply_to"?, "priority"?, "sent_date", "to", "cc"?, "bcc"?, "subject", "body"?: {"text"?, "html"?},
    "attachments"?}``; ``id`` is the Message-ID the delivery sends (None without an origin)."""
    identifier = origin_delivery_id(rendered.origin)
    record: dict[str, Any] = {"id": email_message_id(identifier, rendered.sender) if identifier else None,
                              "from": rendered.sender}
    if rendered.reply_to:
        record["reply_to"] = list(rendered.reply_to)
    if rendered.priority:
        record["priority"] = rendered.priority
    if rendered.date is not None:
        record["sent_date"] = format_iso_millis(rendered.date)
    record["to"] = list(rendered.to)
    for key in ("cc", "bcc"):
        if getattr(rendered, key):
            record[key] = list(getattr(rendered, key))
    record["subject"] = rendered.subject
    body = {key: value for key, value in (("text", rendered.text), ("html", rendered.html)) if value is not None}
    if body:
        record["body"] = body
    if rendered.attachments:
        record["attachments"] = [{"name": a.filename, "content_type": a.content_type,
                                  "size": len(a.content.encode("utf-8"))} for a in rendered.attachments]
    return mask_data(record, rendered.secrets)


def result(config: EmailConfig, rendered: EmailRequest, outcome: Outcome) -> dict:
    """``{"email": {"account", "smtp", "message", "response"?}}`` (module docstring); never the password."""
    out: dict[str, Any] = {"account": rendered.account, "smtp": rendered.smtp_record(),
                           "message": message_record(rendered)}
    if outcome.response is not None:
        out["response"] = outcome.response
    return {"email": out}


# ---- the rule format ------------------------------------------------------------------------------

DEFAULT_RULE_SUBJECT = "{{ title }}"
"""The subject of a rule's email when the rule gives none (Jinja2)."""
DEFAULT_RULE_BODY = "{{ message }}"
"""The text body of a rule's email when the rule gives none (Jinja2)."""


def rule_defaults(connector: Any, overrides: Mapping[str, Any]) -> dict:
    """A rule action's subject and body when the rule gives none: the alert's title and message."""
    return {"subject": DEFAULT_RULE_SUBJECT, "body": DEFAULT_RULE_BODY}


def without_rule_defaults(action: dict) -> dict:
    """``action`` without what :func:`rule_defaults` adds (``watcher convert --to rule``)."""
    defaults = {"subject": DEFAULT_RULE_SUBJECT, "body": DEFAULT_RULE_BODY}
    return {k: v for k, v in action.items() if defaults.get(k) != v}
