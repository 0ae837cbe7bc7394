"""Sending one :class:`~watcher.model.requests.EmailRequest` over SMTP (``smtplib``), all or nothing.

One connection per email: connect (``tls``: TLS from the first byte), EHLO, STARTTLS then EHLO again
(``starttls``; refused when the server does not offer it: we never fall back to clear text), AUTH
when the account has a user, MAIL FROM, one RCPT TO per recipient, DATA, QUIT. When the server
refuses any recipient the transaction is reset and nothing is sent (as JavaMail, which Watcher uses,
does by default), so a retry never sends a second copy to the recipients that were accepted.

Every failure is raised as one of two classes, decided by what the server said, never by its text
(docs/semantics.md#email-delivery):

* :class:`SmtpTransientError` (a :class:`~watcher.errors.RetryableDeliveryError`): a 4xx reply (at
  any stage, a refused recipient among them), the connection refused, lost or timed out.
* :class:`SmtpPermanentError` (a :class:`~watcher.errors.FinalDeliveryError`): a 5xx reply (or any
  other code where a 2xx/3xx was expected), STARTTLS or AUTH not offered, a certificate that does
  not verify, an address the message cannot carry.

Timeouts: ``timeout_s`` bounds the connection (and the TLS handshake of ``tls``); ``read_timeout_s``
bounds the whole conversation after it, greeting to QUIT, as one deadline.
"""

from __future__ import annotations

import base64
import math
import socket
import smtplib
import ssl
import time

from watcher.errors import FinalDeliveryError, RetryableDeliveryError
from watcher.model.requests import EmailRequest, InvalidAddress, SmtpReceipt
from watcher.model.secrets import mask

__all__ = ["SmtpPermanentError", "SmtpTransientError", "send"]


class _SmtpFailure:
    """What both SMTP error classes carry.

    Attributes:
        code: the SMTP reply code (e.g. 451, 550), or None when the server gave none (connection
            refused or lost, timeout, TLS failure).
        stage: where it failed: ``connect``, ``starttls``, ``auth``, ``mail``, ``rcpt``, ``data``.
        reply: the server's reply text, or the local error's text.
    """

    code: int | None
    stage: str
    reply: str

    def _init(self, message: str, *, code: int | None, stage: str, reply: str) -> None:
        self.code, self.stage, self.reply = code, stage, reply


class SmtpTransientError(_SmtpFailure, RetryableDeliveryError):
    """The email was not sent, and trying again later may succeed: a 4xx reply, or the connection
    could not be made, was lost or timed out. The outbox retries with backoff; a direct send
    reports a failure. See :class:`_SmtpFailure` for the attributes."""

    def __init__(self, message: str, *, code: int | None = None, stage: str = "connect", reply: str = ""):
        super().__init__(message)
        self._init(message, code=code, stage=stage, reply=reply)


class SmtpPermanentError(_SmtpFailure, FinalDeliveryError):
    """The email was not sent and the same try will fail again: a 5xx reply, a server without the
    STARTTLS or AUTH the account needs, a certificate that does not verify, an address the message
    cannot carry. The outbox makes the delivery dead at once. See :class:`_SmtpFailure`."""

    def __init__(self, message: str, *, code: int | None = None, stage: str = "connect", reply: str = ""):
        super().__init__(message)
        self._init(message, code=code, stage=stage, reply=reply)


class _Deadline:
    """Mixin for ``smtplib.SMTP``: every command and reply after the connection shares one deadline
    (``deadline``, ``time.monotonic()`` seconds); passing it raises ``TimeoutError``."""

    deadline: float = math.inf

    def _arm(self) -> None:
        sock = getattr(self, "sock", None)
        if sock is None or self.deadline == math.inf:
            return
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the SMTP conversation took longer than its read timeout")
        sock.settimeout(left)

    def send(self, s):  # noqa: D102 - smtplib's
        self._arm()
        return super().send(s)

    def getreply(self):  # noqa: D102 - smtplib's
        self._arm()
        return super().getreply()


class _SMTP(_Deadline, smtplib.SMTP):
    def __init__(self, host: str, port: int, *, deadline: float, **kwargs):
        self.deadline = deadline
        super().__init__(host, port, **kwargs)


class _SMTPS(_Deadline, smtplib.SMTP_SSL):
    def __init__(self, host: str, port: int, *, deadline: float, **kwargs):
        self.deadline = deadline
        super().__init__(host, port, **kwargs)


def tls_context(verify: bool, ca_file: str | None) -> ssl.SSLContext:
    """The client TLS context: the system's CAs (or ``ca_file``) with host-name checks, or no
    verification at all when ``verify`` is false.

    Raises:
        SmtpPermanentError: ``ca_file`` cannot be read.
    """
    try:
        context = ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as error:
        raise SmtpPermanentError(f"cannot read CA file {ca_file}: {error}", stage="connect") from None
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _reply_error(code: int, reply: bytes | str, stage: str, what: str) -> Exception:
    """The error for reply ``code`` at ``stage``: transient for 4xx, permanent otherwise."""
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    message = f"the SMTP server answered [{code}] to {what}: {text}".rstrip(": ")
    kind = SmtpTransientError if 400 <= code < 500 else SmtpPermanentError
    return kind(message, code=code, stage=stage, reply=text)


def send(request: EmailRequest, message_id: str) -> SmtpReceipt:
    """Send ``request`` with the header ``Message-ID: message_id``.

    Args:
        request: the email and its account.
        message_id: ``<id@domain>`` (see :func:`watcher.model.requests.email_message_id`).

    Returns:
        The server's acceptance (:class:`~watcher.model.requests.SmtpReceipt`).

    Raises:
        SmtpTransientError: try again later (see the module docstring).
        SmtpPermanentError: no retry can succeed.
    """
    secrets = request.secrets
    try:
        sender = request.envelope_sender()
        recipients = request.recipients()
        data = request.message(message_id).as_bytes()
    except (InvalidAddress, ValueError) as error:
        raise SmtpPermanentError(f"the message cannot be sent: {mask(str(error), secrets)}", stage="mail") from None
    if not recipients:
        raise SmtpPermanentError("the message has no recipient (to, cc, bcc)", stage="rcpt")
    stage = "connect"
    client = None
    try:
        client = _connect(request)
        if request.security == "starttls":
            stage = "starttls"
            client.ehlo_or_helo_if_needed()
            if not client.has_extn("starttls"):
                raise SmtpPermanentError(f"the SMTP server {request.host}:{request.port} does not offer STARTTLS "
                                         "(security: starttls); not sent in clear", stage=stage)
            code, reply = client.starttls(context=tls_context(request.verify, request.ca_file))
            if code != 220:
                raise _reply_error(code, reply, stage, "STARTTLS")
            client.ehlo()
        if request.username:
            stage = "auth"
            client.ehlo_or_helo_if_needed()
            if not client.has_extn("auth"):
                raise SmtpPermanentError(f"the SMTP server {request.host}:{request.port} does not offer AUTH, and "
                                         "the account has a user", stage=stage)
            _login(client, request.username, request.password or "")
        stage = "mail"
        client.ehlo_or_helo_if_needed()
        code, reply = client.mail(sender)
        if code != 250:
            raise _reply_error(code, reply, stage, f"MAIL FROM:<{sender}>")
        stage = "rcpt"
        refused = []
        for recipient in recipients:
            code, reply = client.rcpt(recipient)
            if code not in (250, 251):
                refused.append(_reply_error(code, reply, stage, f"RCPT TO:<{recipient}>"))
        if refused:
            _reset(client)
            # transient when any refusal is: trying again may then get every recipient accepted
            raise next((e for e in refused if isinstance(e, SmtpTransientError)), refused[0])
        stage = "data"
        code, reply = client.data(data)  # raises SMTPDataError itself on a refusal
        _quit(client)
        client = None
        return SmtpReceipt(code=code, reply=reply.decode("utf-8", "replace"), recipients=tuple(recipients),
                           message_id=message_id)
    except (SmtpTransientError, SmtpPermanentError) as error:
        raise _masked(error, secrets) from None
    except smtplib.SMTPResponseException as error:  # a reply code: authentication, data, helo, connect
        raise _masked(_reply_error(error.smtp_code, error.smtp_error, stage, stage.upper()), secrets) from None
    except smtplib.SMTPNotSupportedError as error:
        raise SmtpPermanentError(mask(f"the SMTP server does not support what {stage} needs: {error}", secrets),
                                 stage=stage) from None
    except smtplib.SMTPServerDisconnected as error:
        raise SmtpTransientError(mask(f"the SMTP server closed the connection ({stage}): {error}", secrets),
                                 stage=stage) from None
    except ssl.SSLCertVerificationError as error:
        raise SmtpPermanentError(f"the certificate of {mask(request.host, secrets)} does not verify: "
                                 f"{error.verify_message or error}", stage=stage) from None
    except smtplib.SMTPException as error:  # no code: e.g. no AUTH mechanism in common
        raise SmtpPermanentError(mask(f"SMTP {stage} failed: {error}", secrets), stage=stage) from None
    except ValueError as error:  # what the message or the credentials cannot be written as
        raise SmtpPermanentError(mask(f"SMTP {stage} failed: {error}", secrets), stage=stage) from None
    except (OSError, EOFError) as error:  # refused, reset, timed out, TLS errors
        reason = str(error) or type(error).__name__
        raise SmtpTransientError(mask(f"SMTP {stage} to {request.host}:{request.port} failed: {reason}", secrets),
                                 stage=stage) from None
    finally:
        if client is not None:
            client.close()


def _connect(request: EmailRequest) -> smtplib.SMTP:
    deadline = time.monotonic() + request.timeout_s + request.read_timeout_s
    local = socket.gethostname() or "localhost"  # never getfqdn(): a DNS lookup with no timeout
    if request.security == "tls":
        return _SMTPS(request.host, request.port, deadline=deadline, timeout=request.timeout_s, local_hostname=local,
                      context=tls_context(request.verify, request.ca_file))
    return _SMTP(request.host, request.port, deadline=deadline, timeout=request.timeout_s, local_hostname=local)


def _login(client: smtplib.SMTP, user: str, password: str) -> None:
    """AUTH: ``smtplib``'s choice of mechanism for ASCII credentials; PLAIN with UTF-8 (RFC 4616)
    for others, which ``smtplib`` cannot encode."""
    if (user + password).isascii():
        client.login(user, password)
        return
    if "PLAIN" not in client.esmtp_features.get("auth", "").upper().split():
        raise SmtpPermanentError("non-ASCII SMTP credentials need AUTH PLAIN, which the server does not offer",
                                 stage="auth")
    token = base64.b64encode(f"\0{user}\0{password}".encode("utf-8")).decode("ascii")
    code, reply = client.docmd("AUTH", f"PLAIN {token}")
    if code != 235:
        raise _reply_error(code, reply, "auth", "AUTH PLAIN")


def _reset(client: smtplib.SMTP) -> None:
    try:
        client.rset()
    except (smtplib.SMTPException, OSError):
        pass  # the transaction is abandoned either way; closing the connection ends it


def _quit(client: smtplib.SMTP) -> None:
    try:
        client.quit()
    except (smtplib.SMTPException, OSError):
        client.close()  # the message was accepted already: a failed QUIT changes nothing


def _masked(error: Exception, secrets) -> Exception:
    text = mask(str(error), secrets)
    if text == str(error):
        return error
    return type(error)(text, code=error.code, stage=error.stage, reply=mask(error.reply, secrets))
