"""What actions render and what delivering it gave: the values between the engine and delivery.

Actions only *render* a request value; a delivery (:mod:`watcher.delivery`) decides what happens to
it (simulate, send now, or the durable outbox). Rendered request kinds: :class:`HttpRequest`
(webhook, opsgenie, slack), :class:`EmailRequest` (email, sent over SMTP), :class:`LogMessage`
(logging), :class:`IndexRequest` (index), or a tuple of them (one Slack message per recipient).
Each carries ``connector_type``, the destination (:mod:`watcher.destinations`) whose ``interpret``
turns the raw response into an :class:`Outcome`.

Every delivery of one rendered request has an id derived from where it comes from
(:func:`delivery_id`): the outbox's document id and ``Idempotency-Key``, and an email's Message-ID
(:func:`email_message_id`), so that the same delivery sent again is recognisably the same.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import email.utils
import hashlib
import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from email.errors import HeaderParseError, NonASCIILocalPartDefect
from email.headerregistry import Address, HeaderRegistry
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from typing import Any, Union

from watcher import errors
from watcher.model.secrets import mask, mask_data

REDACTED = "::es_redacted::"  # what Watcher records show for Authorization values (docs/semantics.md#secrets)
_REDACTED_HEADERS = {"authorization", "proxy-authorization"}
TRACE = 5  # Python has no TRACE level; Watcher's logging action has one


@dataclasses.dataclass(frozen=True)
class Origin:
    """Where a rendered request comes from; the outbox derives the delivery id from it.

    Attributes:
        watch_id, record_id (``Run.record_id``), action_id: the execution and action.
        sequence: ``"0"``, ``"foreach:<i>"`` or ``"group:<key>"`` — stable across re-runs of a record.
        connector: the connector name (per-connector limits), or None.
    """

    watch_id: str
    record_id: str
    action_id: str
    sequence: str = "0"
    connector: str | None = None


def with_origin(rendered, origin: Origin):
    """``rendered`` with ``origin`` set on every :class:`HttpRequest` and :class:`EmailRequest` in it
    (tuples keep their order)."""
    if isinstance(rendered, tuple):
        return tuple(with_origin(item, origin) for item in rendered)
    return dataclasses.replace(rendered, origin=origin) if isinstance(rendered, (HttpRequest, EmailRequest)) \
        else rendered


# Fixed namespace of delivery ids (uuid5): the same record, action and sequence give the same id.
DELIVERY_NAMESPACE = uuid.UUID("5b0f8e4e-6a53-4c1e-9a59-2f7f3f3c2d10")


def delivery_id(record_id: str, action_id: str, sequence: str | int = 0, part: int = 0) -> str:
    """The deterministic id of one delivery: uuid5 over record id, action id, sequence and part.

    Args:
        record_id: the watch record id (``Run.record_id``).
        action_id: the action's id in the watch.
        sequence: which request of this action in this record (foreach index, group key; "0" if one).
        part: index inside a tuple of requests (one Slack message per recipient).

    Returns:
        A UUID string such as ``"0b6e…-…"``; the same arguments always give the same id.
    """
    return str(uuid.uuid5(DELIVERY_NAMESPACE, f"{record_id}\x1f{action_id}\x1f{sequence}\x1f{part}"))


def origin_delivery_id(origin: "Origin | None", part: int = 0) -> str | None:
    """:func:`delivery_id` of a request that carries ``origin`` (None when it carries none)."""
    if origin is None:
        return None
    return delivery_id(origin.record_id, origin.action_id, origin.sequence, part)


@dataclasses.dataclass(frozen=True)
class HttpRequest:
    """One HTTP request, fully rendered, ready to send.

    Attributes:
        method: upper-case HTTP method (``POST``).
        url: absolute URL including the query string (secrets in it are masked by :meth:`masked`).
        headers: header name → value, exactly what is sent (no Content-Type is added here).
        body: the body text (sent UTF-8 encoded), or None for no body.
        timeout_s: connect timeout in seconds.
        read_timeout_s: read timeout in seconds.
        verify: verify the server's TLS certificate.
        ca_file: PEM bundle to verify against (None = system/certifi defaults).
        proxy: proxy URL (``http://host:port``) or None.
        secrets: values to mask wherever this request is shown.
        connector_type: the connector module that interprets the response (``webhook``…).
        record: the request as Watcher's action result shows it (``{"host", "port", "scheme",
            "method", "path"?, "params"?, "headers"?, "auth"?, "body"?}``, secrets already masked),
            or None to derive it from the request (see ``watcher.destinations.webhook``).
    """

    method: str
    url: str
    headers: dict = dataclasses.field(default_factory=dict)
    body: str | None = None
    timeout_s: float = 10.0
    read_timeout_s: float = 10.0
    verify: bool = True
    ca_file: str | None = None
    proxy: str | None = None
    secrets: tuple[str, ...] = ()
    connector_type: str = "webhook"
    record: dict | None = dataclasses.field(default=None, compare=False)
    origin: "Origin | None" = dataclasses.field(default=None, compare=False)

    def masked(self) -> dict:
        """``{"method", "url", "headers", "body"}`` safe to print or store.

        Every secret value is replaced with ``***``; ``Authorization`` and ``Proxy-Authorization``
        values show ``::es_redacted::`` as in Watcher records.
        """
        headers = {name: REDACTED if name.lower() in _REDACTED_HEADERS else mask(str(value), self.secrets)
                   for name, value in self.headers.items()}
        return {"method": self.method, "url": mask(self.url, self.secrets), "headers": headers,
                "body": mask(self.body, self.secrets) if self.body is not None else None}

    def __repr__(self) -> str:  # never show secrets, even in a debugger or a traceback
        shown = self.masked()
        return f"HttpRequest({shown['method']} {shown['url']})"


@dataclasses.dataclass(frozen=True)
class HttpResponse:
    """What came back: status code, headers as (name, value) pairs in received order, body text."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: str | None = None

    def as_record(self) -> dict:
        """Watcher's response shape: ``{"status", "headers"?: {name: [values]}, "body"?}``.

        Header names are lower-cased with ``.`` replaced by ``_``; values are lists
        (Watcher HttpResponse.toXContent, docs/semantics.md#webhook-status-codes).
        """
        record: dict[str, Any] = {"status": self.status}
        headers: dict[str, list[str]] = {}
        for name, value in self.headers:
            headers.setdefault(name.lower().replace(".", "_"), []).append(value)
        if headers:
            record["headers"] = headers
        if self.body is not None:
            record["body"] = self.body
        return record


@dataclasses.dataclass(frozen=True)
class LogMessage:
    """A line for Python logging: ``level`` is error|warn|info|debug|trace, ``category`` the logger name."""

    level: str
    category: str
    text: str
    connector_type: str = "logging"


@dataclasses.dataclass(frozen=True)
class IndexRequest:
    """Documents to index in Elasticsearch.

    Attributes:
        docs: ``[{"index": str|None, "id": str|None, "source": dict}]`` in payload order.
        op_type: ``index`` or ``create``.
        refresh: None, ``"true"``, ``"false"`` or ``"wait_for"``.
        bulk: True when the payload's ``_doc`` was a list (the result is then a list too).
        timeout_s: request timeout in seconds (Watcher's default 60 s).
    """

    docs: tuple[dict, ...]
    op_type: str = "index"
    refresh: str | None = None
    bulk: bool = False
    timeout_s: float = 60.0
    connector_type: str = "index"


# ---- email -----------------------------------------------------------------------------------------

SMTP_SECURITY = ("none", "starttls", "tls")
"""How the SMTP connection is protected: in clear, upgraded with STARTTLS, or TLS from the start."""
EMAIL_PRIORITIES = {"highest": 1, "high": 2, "normal": 3, "low": 4, "lowest": 5}
"""Watcher's priority names → the value of the ``X-Priority`` header (docs/semantics.md#email-action)."""
EMAIL_KIND = "email"
"""``kind`` of an :class:`EmailRequest` stored as a dict (:meth:`EmailRequest.as_dict`)."""
# Headers and bodies are written 7-bit clean (RFC 2047 encoded words, quoted-printable or base64
# bodies), so any SMTP server takes them, with or without 8BITMIME; lines end in CRLF.
MESSAGE_POLICY = SMTP_POLICY.clone(cte_type="7bit")
_HEADERS = HeaderRegistry()


class InvalidAddress(errors.TemplateRenderError):
    """An email address (list) that does not parse as RFC 5322 ``name <user@domain>`` items, or that
    has no ``user@domain``, or non-ASCII characters in ``user@domain`` (internationalised addresses
    need SMTPUTF8, which we do not use).

    Raised when a rendered ``from``/``to``/``cc``/``bcc``/``reply_to`` is parsed (a definition whose
    addresses have no template is checked when it is loaded, with the file position). Like any
    render error it concerns one run's data: the action fails with this reason, nothing is sent.

    Attributes:
        field: the field whose value it was (``to``, ``from``…), or None.
        text: the text that did not parse.
    """

    def __init__(self, message: str, *, field: str | None = None, text: str = "") -> None:
        super().__init__(message)
        self.field, self.text = field, text


def parse_addresses(text: str, field: str | None = None) -> tuple[Address, ...]:
    """The addresses of a comma-separated RFC 5322 address list (``"Ops <ops@example.com>,
    dev@example.com"``; a group's members are taken, the group name dropped).

    Args:
        text: the list, as written or rendered.
        field: the field name for messages (``to``…).

    Returns:
        ``email.headerregistry.Address`` values in order (empty for a blank text).

    Raises:
        InvalidAddress: a defect in the list, an item without ``user@domain``, or a non-ASCII
            ``user@domain``.
    """
    where = f" in field [{field}]" if field else ""
    if not text or not text.strip():
        return ()
    if "\r" in text or "\n" in text:
        raise InvalidAddress(f"could not parse [{text.strip()}]{where} as an address list: it contains a line break",
                             field=field, text=text)
    expected = "expected an address such as 'Ops <ops@example.com>', or a comma-separated list of them"
    try:
        header = _HEADERS("To", text)
    except (HeaderParseError, IndexError, ValueError):  # what the parser raises on some inputs
        raise InvalidAddress(f"could not parse [{text}]{where}: {expected}", field=field, text=text) from None
    for defect in header.defects:
        if isinstance(defect, NonASCIILocalPartDefect):
            raise InvalidAddress(f"[{text}]{where}: non-ASCII characters in an address are not supported (they "
                                 "need SMTPUTF8); a non-ASCII display name is fine", field=field, text=text)
    if header.defects:
        raise InvalidAddress(f"could not parse [{text}]{where}: {expected} ({header.defects[0]})", field=field,
                             text=text)
    out = []
    for address in header.addresses:
        if not address.username or not address.domain:
            raise InvalidAddress(f"could not parse [{text}]{where}: {expected}; [{address}] is not user@domain",
                                 field=field, text=text)
        if not address.addr_spec.isascii():
            raise InvalidAddress(f"[{address.addr_spec}]{where}: non-ASCII characters in an address are not "
                                 "supported (they need SMTPUTF8); a non-ASCII display name is fine",
                                 field=field, text=text)
        out.append(address)
    return tuple(out)


def email_message_id(delivery: str, sender: str) -> str:
    """The Message-ID of the email of delivery ``delivery``: ``<delivery@domain of sender>``
    (RFC 5322 msg-id; ``watcher.invalid`` when the sender has no domain). The same delivery always
    has the same Message-ID, so a copy sent again after a crash is recognisably the same message."""
    try:
        senders = parse_addresses(sender)
    except InvalidAddress:
        senders = ()
    domain = senders[0].domain if senders else "watcher.invalid"
    return f"<{delivery}@{domain}>"


@dataclasses.dataclass(frozen=True)
class EmailAttachment:
    """One attached file.

    Attributes:
        filename: the file name shown to the reader (Watcher: the attachment's id).
        content_type: ``application/json`` or ``application/yaml``.
        content: the file's text; attached UTF-8 encoded, base64 transfer encoding.
    """

    filename: str
    content_type: str
    content: str


@dataclasses.dataclass(frozen=True)
class EmailRequest:
    """One email, fully rendered, and the SMTP account that sends it.

    Attributes:
        host: SMTP server host name or address.
        port: SMTP port (1–65535).
        security: one of :data:`SMTP_SECURITY`.
        username: SMTP AUTH user, or None for no AUTH.
        password: SMTP AUTH password (also in ``secrets``; never shown, never stored).
        sender: the ``From`` address (``"Name <user@domain>"`` or ``user@domain``); also the
            envelope sender (MAIL FROM).
        to, cc, bcc, reply_to: addresses, each ``"Name <user@domain>"`` or ``user@domain``; ``bcc``
            is in the envelope only, never in a header.
        subject: the subject (any Unicode; RFC 2047 encoded when sent).
        text: the plain-text body (None = empty text part).
        html: the HTML body, sent as the alternative of the text body, or None.
        priority: a key of :data:`EMAIL_PRIORITIES` (``X-Priority`` header), or None.
        date: the ``Date`` header (aware datetime; the run's execution time), or None for now.
        attachments: files attached after the body.
        timeout_s: connect timeout (TCP and, for ``tls``, the handshake), seconds.
        read_timeout_s: the rest of the SMTP conversation, greeting to QUIT, in total, seconds.
        verify: verify the server's certificate and host name (``starttls``/``tls``).
        ca_file: PEM bundle to verify against (None = the system's).
        secrets: values to mask wherever this request is shown (the password among them).
        account: the email connector's name (shown in records), or None.
        connector_type: the destination module that reads the server's answer (``email``).
        origin: where the request comes from (:class:`Origin`; gives the Message-ID), or None.
    """

    host: str
    port: int
    security: str = "starttls"
    username: str | None = None
    password: str | None = None
    sender: str = ""
    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()
    reply_to: tuple[str, ...] = ()
    subject: str = ""
    text: str | None = None
    html: str | None = None
    priority: str | None = None
    date: dt.datetime | None = None
    attachments: tuple[EmailAttachment, ...] = ()
    timeout_s: float = 10.0
    read_timeout_s: float = 60.0
    verify: bool = True
    ca_file: str | None = None
    secrets: tuple[str, ...] = ()
    account: str | None = None
    connector_type: str = "email"
    origin: "Origin | None" = dataclasses.field(default=None, compare=False)

    def envelope_sender(self) -> str:
        """The ``user@domain`` of :attr:`sender` (MAIL FROM). Raises :class:`InvalidAddress`."""
        senders = parse_addresses(self.sender, "from")
        if len(senders) != 1:
            raise InvalidAddress(f"expected one from address, found {len(senders)}", field="from", text=self.sender)
        return senders[0].addr_spec

    def recipients(self) -> list[str]:
        """``user@domain`` of every to, cc and bcc address, each once, in that order (RCPT TO)."""
        found: list[str] = []
        for field, values in (("to", self.to), ("cc", self.cc), ("bcc", self.bcc)):
            for value in values:
                found += [address.addr_spec for address in parse_addresses(value, field)]
        return list(dict.fromkeys(found))

    def message(self, message_id: str | None = None) -> EmailMessage:
        """The MIME message (policy :data:`MESSAGE_POLICY`: 7-bit, CRLF).

        Headers: Message-ID (when given), Date, From, To, Cc, Reply-To, Subject (RFC 2047 encoded
        when not ASCII), X-Priority, Auto-Submitted: auto-generated, MIME-Version. Body: a
        ``text/plain; charset="utf-8"`` part, quoted-printable (empty when there is no text), with
        the HTML (the same) as its ``multipart/alternative`` when given; attachments (base64) make the
        whole ``multipart/mixed``. Bcc never appears in a header. The same request and Message-ID
        always give the same bytes (:meth:`EmailMessage.as_bytes`).

        Raises:
            InvalidAddress: an address that does not parse.
        """
        message = EmailMessage(policy=MESSAGE_POLICY)
        if message_id is not None:
            message["Message-ID"] = message_id
        date = self.date or dt.datetime.now(dt.timezone.utc)
        message["Date"] = email.utils.format_datetime(date.astimezone(dt.timezone.utc))
        message["From"] = parse_addresses(self.sender, "from")
        for header, field, values in (("To", "to", self.to), ("Cc", "cc", self.cc),
                                      ("Reply-To", "reply_to", self.reply_to)):
            addresses = tuple(a for value in values for a in parse_addresses(value, field))
            if addresses:
                message[header] = addresses
        message["Subject"] = " ".join(self.subject.splitlines())  # a line break never starts a header
        if self.priority is not None:
            message["X-Priority"] = str(EMAIL_PRIORITIES[self.priority])
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to alerts
        message.set_content(self.text or "", subtype="plain", charset="utf-8", cte="quoted-printable")
        if self.html is not None:
            message.add_alternative(self.html, subtype="html", charset="utf-8", cte="quoted-printable")
        for attachment in self.attachments:
            maintype, _, subtype = attachment.content_type.partition("/")
            message.add_attachment(attachment.content.encode("utf-8"), maintype=maintype, subtype=subtype,
                                   filename=attachment.filename, cte="base64")
        # The same email gives the same bytes: boundaries derived from its Message-ID (random ones
        # otherwise), and no MIME-Version repeated inside the parts.
        seed = hashlib.sha256(f"{message_id}\x1f{self.subject}\x1f{date.isoformat()}".encode("utf-8")).hexdigest()
        for index, part in enumerate(message.walk()):
            if part is not message:
                del part["MIME-Version"]
            if part.is_multipart():
                part.set_boundary(f"==watcher-{seed[:24]}-{index}==")
        return message

    def smtp_record(self) -> dict:
        """``{"host", "port", "security", "user"?}`` (no password), secrets masked."""
        record: dict[str, Any] = {"host": self.host, "port": self.port, "security": self.security}
        if self.username:
            record["user"] = self.username
        return mask_data(record, self.secrets)

    def as_dict(self) -> dict:
        """Every field as plain JSON data, the password **in clear**: only for
        :func:`watcher.delivery.outbox.seal_email`, which replaces every secret before storing.
        ``{"kind": "email", "connector_type", "timeout_s", "read_timeout_s", "smtp": {…}, "message": {…}}``."""
        return {
            "kind": EMAIL_KIND,
            "connector_type": self.connector_type,
            "timeout_s": self.timeout_s,
            "read_timeout_s": self.read_timeout_s,
            "smtp": {"host": self.host, "port": self.port, "security": self.security, "username": self.username,
                     "password": self.password, "verify": self.verify, "ca_file": self.ca_file,
                     "account": self.account},
            "message": {"from": self.sender, "to": list(self.to), "cc": list(self.cc), "bcc": list(self.bcc),
                        "reply_to": list(self.reply_to), "subject": self.subject, "text": self.text,
                        "html": self.html, "priority": self.priority,
                        "date": self.date.isoformat() if self.date is not None else None,
                        "attachments": [dataclasses.asdict(a) for a in self.attachments]},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], secrets: Sequence[str] = ()) -> "EmailRequest":
        """The request :meth:`as_dict` gave (placeholders already resolved).

        Raises:
            KeyError, ValueError, TypeError: ``data`` is not such a dict.
        """
        smtp, message = data["smtp"], data["message"]
        return cls(host=smtp["host"], port=int(smtp["port"]), security=smtp["security"],
                   username=smtp.get("username"), password=smtp.get("password"), verify=bool(smtp.get("verify", True)),
                   ca_file=smtp.get("ca_file"), account=smtp.get("account"),
                   sender=message["from"], to=tuple(message.get("to") or ()), cc=tuple(message.get("cc") or ()),
                   bcc=tuple(message.get("bcc") or ()), reply_to=tuple(message.get("reply_to") or ()),
                   subject=message.get("subject") or "", text=message.get("text"), html=message.get("html"),
                   priority=message.get("priority"),
                   date=dt.datetime.fromisoformat(message["date"]) if message.get("date") else None,
                   attachments=tuple(EmailAttachment(**a) for a in message.get("attachments") or ()),
                   timeout_s=float(data.get("timeout_s") or 10.0),
                   read_timeout_s=float(data.get("read_timeout_s") or 60.0),
                   secrets=tuple(secrets), connector_type=data.get("connector_type") or "email")

    def __repr__(self) -> str:  # never show secrets, even in a debugger or a traceback
        return f"EmailRequest({mask(self.host, self.secrets)}:{self.port} {self.security}, {len(self.to)} to)"


@dataclasses.dataclass(frozen=True)
class SmtpReceipt:
    """What the SMTP server said when it accepted a message.

    Attributes:
        code: the reply code to the end of DATA (250).
        reply: the reply text (``2.0.0 Ok: queued as …``).
        recipients: the ``user@domain`` the server accepted (RCPT TO).
        message_id: the Message-ID header sent.
    """

    code: int
    reply: str
    recipients: tuple[str, ...] = ()
    message_id: str | None = None

    def as_record(self) -> dict:
        """``{"smtp_code", "smtp_reply", "accepted", "message_id"}`` for the action result."""
        return {"smtp_code": self.code, "smtp_reply": self.reply, "accepted": list(self.recipients),
                "message_id": self.message_id}


Rendered = Union[HttpRequest, EmailRequest, LogMessage, IndexRequest, tuple]


def json_content_type(headers: Mapping[str, Any]) -> str | None:
    """The Content-Type value of ``headers`` when it declares JSON, else None.

    A header named ``Content-Type`` in any spelling declares JSON when its media type (the part
    before ``;``, case-insensitive) is ``application/json`` or ends in ``+json`` (RFC 6839's
    structured suffix: ``application/vnd.api+json``, ``application/problem+json``…).
    ``application/x-ndjson`` and ``text/plain`` do not (docs/correctness.md#json-bodies).
    """
    for name, value in headers.items():
        if str(name).lower() != "content-type" or value is None:
            continue
        media = str(value).split(";", 1)[0].strip().lower()
        if media == "application/json" or (media.endswith("+json") and "/" in media):
            return str(value)
    return None


class InvalidJsonBody(errors.TemplateRenderError):
    """A rendered request declares a JSON Content-Type but its body does not parse as JSON.

    Created (not raised) by :func:`json_body_error` before a request is handed to a delivery; the
    action then fails with this reason and nothing is sent (docs/correctness.md#json-bodies). Like
    any render error it concerns one run's data: the next run may render valid JSON.

    Attributes:
        content_type: the Content-Type header value that declares JSON.
        body_line, body_column: 1-based position in the body where parsing stopped (None when the
            body is empty).
    """

    def __init__(self, message: str, *, content_type: str, body_line: int | None = None,
                 body_column: int | None = None) -> None:
        super().__init__(message)
        self.content_type, self.body_line, self.body_column = content_type, body_line, body_column


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def json_body_error(rendered: Any) -> InvalidJsonBody | None:
    """The first :class:`HttpRequest` of ``rendered`` (a request, a tuple of them, or any other
    rendered value) whose Content-Type declares JSON (:func:`json_content_type`) while its body is
    not one JSON text (RFC 8259: ``NaN``/``Infinity`` refused, any value allowed at the top), as an
    :class:`InvalidJsonBody`; None when every such body parses. A request without a body (None)
    is not checked; an empty body is not JSON. The message never quotes the body (it may hold
    secrets)."""
    for request in rendered if isinstance(rendered, tuple) else (rendered,):
        if not isinstance(request, HttpRequest) or request.body is None:
            continue
        content_type = json_content_type(request.headers)
        if content_type is None:
            continue
        if not request.body.strip():
            return InvalidJsonBody(f"the body is empty, but its Content-Type is {content_type}; not sent",
                                   content_type=content_type)
        try:
            json.loads(request.body, parse_constant=_no_constants)
        except json.JSONDecodeError as error:
            return InvalidJsonBody(
                f"the body is not valid JSON ({error.msg.removesuffix(' at')} at body line {error.lineno}, "
                f"column {error.colno}), "
                f"but its Content-Type is {content_type}; not sent",
                content_type=content_type, body_line=error.lineno, body_column=error.colno)
        except ValueError as error:  # NaN, Infinity
            return InvalidJsonBody(f"the body is not valid JSON ({error}), but its Content-Type is {content_type}; "
                                   "not sent", content_type=content_type)
    return None


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What delivering one rendered request gave.

    Attributes:
        status: ``success`` | ``failure`` | ``partial_failure`` | ``simulated`` (Watcher's action statuses).
        response: the response in Watcher's record shape (HTTP: ``{"status","headers","body"}``;
            index: the index response or the list of bulk item responses), or None.
        reason: Watcher's failure reason, e.g. ``received [503] status code``.
        error: ``{"type", "reason"}`` for transport errors and the like.
        parts: per-request outcomes when a tuple of requests was delivered (Slack recipients).
    """

    status: str
    response: Any = None
    reason: str | None = None
    error: dict | None = None
    parts: tuple["Outcome", ...] = ()


def combine(parts: Sequence[Outcome]) -> Outcome:
    """One outcome for several: the common status if all agree, else ``partial_failure``."""
    statuses = {part.status for part in parts}
    status = statuses.pop() if len(statuses) == 1 else "partial_failure"
    reasons = [part.reason for part in parts if part.reason]
    return Outcome(status, response=[part.response for part in parts],
                   reason=reasons[0] if status != "success" and reasons else None, parts=tuple(parts))


def http_outcome(response: HttpResponse, *, success_below: int = 400) -> Outcome:
    """Watcher's webhook rule: status < 400 is ``success``, else ``failure`` with reason
    ``received [<status>] status code`` (ExecutableWebhookAction; docs/semantics.md#webhook-action)."""
    record = response.as_record()
    if response.status < success_below:
        return Outcome("success", response=record)
    return Outcome("failure", response=record, reason=f"received [{response.status}] status code")


def basic_auth_header(username: str, password: str) -> str:
    """``Basic <base64(username:password)>`` (RFC 7617, UTF-8)."""
    token = base64.b64encode(f"{username}:{password}".encode("utf-8")).decode("ascii")
    return f"Basic {token}"


def log_level(level: str) -> int:
    """Watcher's level names → Python logging levels (``warn`` → WARNING, ``trace`` → 5)."""
    return {"error": logging.ERROR, "warn": logging.WARNING, "info": logging.INFO,
            "debug": logging.DEBUG, "trace": TRACE}.get(level.lower(), logging.INFO)
