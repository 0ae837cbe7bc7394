"""The email action and connector without a server: parsing (problems at file:line:column with the
field and what was expected), rendering, the MIME message, sealing for the outbox, retry classes,
rules and ElastAlert2's email alerter. Sending to a real SMTP server: tests/integration/test_actions_email.py."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json

import pytest

from watcher.definitions.connectors import load_connectors
from watcher.definitions.from_elastalert import convert_text
from watcher.definitions.load import load_paths
from watcher.delivery.outbox import UnresolvedSecret, seal_email, unseal_request
from watcher.delivery.retry import classify
from watcher.delivery.secretkey import SecretKey
from watcher.delivery.smtp import SmtpPermanentError, SmtpTransientError
from watcher.destinations import ACTIONS
from watcher.engine.context import Run, Services
from watcher.errors import FinalDeliveryError, RetryableDeliveryError, TemplateRenderError
from watcher.model.problems import Reader
from watcher.model.requests import (EmailRequest, InvalidAddress, Origin, delivery_id, email_message_id,
                                    parse_addresses, with_origin)
from watcher.model.source import load_text
from watcher.model.watch import Component, Trigger, Watch

T0 = dt.datetime(2024, 5, 1, 10, 15, 30, 123000, tzinfo=dt.timezone.utc)
EMAIL = ACTIONS.get("email")


def problems_of_action(text: str) -> list[str]:
    document = load_text(text, "watch.yaml")
    reader = Reader(document)
    EMAIL.parse(reader, document.data["actions"]["mail"]["email"], ("actions", "mail", "email"))
    return [str(p) for p in reader.problems]


def parse(text: str):
    document = load_text(text, "watch.yaml")
    reader = Reader(document)
    config = EMAIL.parse(reader, document.data, ())
    assert [str(p) for p in reader.problems] == []
    return config


def connectors(text: str, environ=None) -> tuple[dict, list[str]]:
    document = load_text(text, "connectors.yaml")
    reader = Reader(document)
    loaded = load_connectors(document, reader, environ=environ or {})
    return loaded, [str(p) for p in reader.problems]


def make_run(loaded, payload=None) -> Run:
    watch = Watch(id="w", file="w.json", trigger=Trigger("interval", None, None, {}), input=Component("none", None, {}),
                  condition=Component("always", None, {}), transform=None, actions=(), throttle_period=None,
                  metadata=None)
    return Run(watch=watch, execution_time=T0, triggered_time=T0, scheduled_time=T0,
               services=Services(connectors=loaded), payload=payload or {}, record_id="w_1")


MAIL = "connectors:\n  mail: {type: email, host: smtp.example.com, security: none, from: 'Bot <bot@example.com>'}\n"


# ---------------------------------------------------------------------------- parsing the action

def test_action_problems_name_file_line_field_and_what_was_expected():
    found = problems_of_action("""actions:
  mail:
    email:
      to: [ops@example.com, 'ops@']
      cc: 'a@example.com, <broken'
      priority: urgent
      subjet: hi
      body: {text: x, htm: y}
      user: bot
      attachments:
        report.pdf: {reporting: {url: 'http://kibana:5601/x'}}
        data.csv: {data: {format: csv}}
""")
    expected = "expected an address such as 'Ops <ops@example.com>', or a comma-separated list of them"
    assert found == [
        "watch.yaml:7:7: actions.mail.email.subjet: unknown key 'subjet' (did you mean 'subject'?); expected one of: "
        "account, attach_data, attachments, bcc, body, cc, connector, from, password, priority, profile, reply_to, "
        "subject, to, user",
        "watch.yaml:9:7: actions.mail.email.user: SMTP credentials in the action are not supported: give the "
        "account's user and password in its email connector (connectors.yaml), from ${ENV} or ${file:/path}",
        f"watch.yaml:4:29: actions.mail.email.to[1]: could not parse [ops@] in field [to]: {expected}",
        f"watch.yaml:5:11: actions.mail.email.cc: could not parse [a@example.com, <broken] in field [cc]: {expected} "
        "(missing trailing '>' on angle-addr)",
        "watch.yaml:8:23: actions.mail.email.body.htm: unknown key 'htm' (did you mean 'html'?); expected one of: "
        "html, text",
        "watch.yaml:6:17: actions.mail.email.priority: expected one of highest, high, normal, low, lowest, found a "
        "string 'urgent'",
        "watch.yaml:11:22: actions.mail.email.attachments.report.pdf.reporting: 'reporting' attachments are not "
        "supported; a 'data' attachment ({data: {format: json}}) attaches the run's data",
        "watch.yaml:12:35: actions.mail.email.attachments.data.csv.data.format: expected json or yaml, found a "
        "string 'csv'",
    ]


def test_templated_addresses_are_checked_when_rendered_not_when_loaded():
    config = parse("to: '{{ctx.payload.who}}'\nfrom: '{{ctx.payload.sender}}'\npriority: '{{ctx.payload.p}}'\n")
    assert config.to == ("{{ctx.payload.who}}",)
    loaded, _ = connectors(MAIL)
    with pytest.raises(InvalidAddress, match=r"\[not an address\] in field \[to\]") as caught:
        EMAIL.render(config, make_run(loaded, {"who": "not an address", "sender": "a@b.c", "p": "high"}), {
            "ctx": {"payload": {"who": "not an address", "sender": "a@b.c", "p": "high"}}})
    assert isinstance(caught.value, TemplateRenderError)   # one run's data: the action fails, the watch stays
    with pytest.raises(ValueError, match=r"\[urgent\] is not a valid email priority"):
        EMAIL.render(config, make_run(loaded), {"ctx": {"payload": {"who": "a@b.c", "sender": "a@b.c", "p": "urgent"}}})


# ------------------------------------------------------------------------------- the connector

def test_connector_problems():
    _, found = connectors("""connectors:
  plain-auth: {type: email, host: smtp.example.com, security: none, user: bot, password: '${PW}'}
  half: {type: email, host: smtp.example.com, user: bot}
  bad: {type: email, host: smtp.example.com, security: ssl, port: 70000, from: 'not an address',
        email_defaults: {to: ['ops@'], priority: urgent}}
""", environ={"PW": "secret-value"})
    expected = "expected an address such as 'Ops <ops@example.com>', or a comma-separated list of them"
    assert found == [
        "connectors.yaml:2:15: connectors.plain-auth: a password would be sent in clear text: use security starttls "
        "or tls",
        "connectors.yaml:3:9: connectors.half: give both user and password for SMTP AUTH, or neither",
        "connectors.yaml:4:67: connectors.bad.port: expected input should be less than 65536, found an integer 70000",
        "connectors.yaml:4:56: connectors.bad.security: expected one of 'none', 'starttls' or 'tls', found a string "
        "'ssl'",
        f"connectors.yaml:4:80: connectors.bad.from: could not parse [not an address]: {expected} (addr-spec local "
        "part with no domain)",
        f"connectors.yaml:5:30: connectors.bad.email_defaults.to: could not parse [ops@]: {expected}",
        "connectors.yaml:5:50: connectors.bad.email_defaults.priority: expected one of 'highest', 'high', 'normal', "
        "'low' or 'lowest', found a string 'urgent'",
    ]
    assert not any("secret-value" in line for line in found)


def test_defaults_come_from_the_account_and_the_default_account_is_chosen():
    loaded, found = connectors("""connectors:
  first: {type: email, host: a.example.com, security: none, from: a@example.com}
  second:
    type: email
    host: b.example.com
    security: tls
    user: robot@example.com
    password: '${PW}'
    default: true
    email_defaults: {to: [ops@example.com], subject: Alert, priority: low, bcc: [audit@example.com]}
""", environ={"PW": "pw-0123456789"})
    assert found == []
    rendered = EMAIL.render(parse("body: hi\n"), make_run(loaded), {"ctx": {}})
    assert (rendered.host, rendered.port, rendered.security) == ("b.example.com", 465, "tls")
    assert rendered.sender == "robot@example.com"           # the user, an address, when there is no from
    assert (rendered.to, rendered.bcc, rendered.subject, rendered.priority) == (
        ("ops@example.com",), ("audit@example.com",), "Alert", "low")
    assert "pw-0123456789" in rendered.secrets and "pw-0123456789" not in repr(rendered)
    named = EMAIL.render(parse("account: first\nto: x@example.com\n"), make_run(loaded), {"ctx": {}})
    assert (named.host, named.port, named.account) == ("a.example.com", 25, "first")
    two, _ = connectors("connectors:\n  a: {type: email, host: a, security: none}\n"
                        "  b: {type: email, host: b, security: none}\n")
    with pytest.raises(LookupError, match="2 email connectors are defined; set 'account'"):
        EMAIL.render(parse("to: x@example.com\n"), make_run(two), {"ctx": {}})
    fallback = EMAIL.render(parse("account: a\nto: x@example.com\n"), make_run(two), {"ctx": {}})
    assert fallback.sender.startswith("watcher@")            # no from anywhere: the local address


# ---------------------------------------------------------------------------------- the message

def request(**changes) -> EmailRequest:
    fields = dict(host="smtp.example.com", port=25, security="none", sender="Zoë <zoe@example.com>",
                  to=("ops@example.com",), bcc=("audit@example.com",), subject="Ärger\r\nBcc: evil@example.com",
                  text="ünï", date=T0)
    return EmailRequest(**{**fields, **changes})


def test_message_headers_are_encoded_and_injection_proof():
    raw = request().message("<id-1@example.com>").as_bytes()
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    lines = head.split("\r\n")
    assert "Subject: =?utf-8?q?=C3=84rger?= Bcc: evil@example.com" in lines   # RFC 2047; still one header
    assert "From: =?utf-8?q?Zo=C3=AB?= <zoe@example.com>" in lines
    assert not any(line.lower().startswith("bcc") for line in lines)
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Subject"] == "Ärger Bcc: evil@example.com"       # one header, the line break gone
    assert request().message("<id-1@example.com>").as_bytes() == raw  # the same email, the same bytes
    assert request().recipients() == ["ops@example.com", "audit@example.com"]
    with pytest.raises(InvalidAddress, match="line break"):
        request(to=("ops@example.com\r\nBcc: evil@example.com",)).message("<x@y>")
    with pytest.raises(InvalidAddress, match="non-ASCII characters in an address are not supported"):
        parse_addresses("zoë@example.com", "to")


def test_message_id_is_the_delivery_id_at_the_senders_domain():
    identifier = delivery_id("rec", "notify", "0")
    assert email_message_id(identifier, "Ops <ops@alerts.example.com>") == f"<{identifier}@alerts.example.com>"
    assert email_message_id(identifier, "") == f"<{identifier}@watcher.invalid>"
    loaded, _ = connectors(MAIL)
    run = make_run(loaded)
    rendered = with_origin(EMAIL.render(parse("to: ops@example.com\n"), run, {"ctx": {}}),
                           Origin("w", "rec", "notify"))
    from watcher.model.requests import Outcome
    assert EMAIL.result(None, rendered, Outcome("simulated"))["email"]["message"]["id"] == \
        f"<{identifier}@example.com>"


# --------------------------------------------------------------------------- outbox and retries

def test_sealed_email_holds_no_password_and_resolves_at_send_time():
    key = SecretKey.generate()
    secret = "hunter2-but-longer"
    sealed = seal_email(request(username="bot", password=secret, secrets=(secret,)), key)
    text = json.dumps(sealed, ensure_ascii=False)
    assert secret not in text and sealed["smtp"]["password"].startswith("${secret:hmac:")
    resolved, used = unseal_request(sealed, [secret], key)
    assert EmailRequest.from_dict(resolved, used).password == secret
    with pytest.raises(UnresolvedSecret):
        unseal_request(sealed, ["rotated-password"], key)


def test_smtp_errors_decide_retries_by_class():
    assert classify(SmtpTransientError("451", code=451, stage="rcpt")) == "retry"
    assert classify(SmtpPermanentError("550", code=550, stage="rcpt")) == "dead"
    assert issubclass(SmtpTransientError, RetryableDeliveryError) and issubclass(SmtpPermanentError, FinalDeliveryError)


# ------------------------------------------------------------------------------------- rules

def test_a_rule_action_on_an_email_connector_sends_title_and_message(tmp_path):
    (tmp_path / "connectors.yaml").write_text(MAIL)
    (tmp_path / "r.yaml").write_text("""name: r
index: logs-*
window: 5m
group_by: host.name
title: 'Errors on {{ group }}'
message: '{{ count }} errors'
actions:
  - connector: mail
    to: ['{{ group }}-owner@example.com']
    priority: hihg
""")
    result = load_paths([tmp_path])
    assert [str(p) for p in result.problems] == [
        f"{tmp_path / 'r.yaml'}:10:15: actions[0].priority: expected one of highest, high, normal, low, lowest, "
        "found a string 'hihg'"]
    (tmp_path / "r.yaml").write_text((tmp_path / "r.yaml").read_text().replace("hihg", "high"))
    result = load_paths([tmp_path])
    assert result.problems == []
    body = result.watches["r"].body["actions"]["mail"]["email"]
    assert body == {"connector": "mail", "subject": {"source": "{{ title }}", "lang": "jinja"},
                    "body": {"source": "{{ message }}", "lang": "jinja"},
                    "to": [{"source": "{{ group }}-owner@example.com", "lang": "jinja"}], "priority": "high"}


# ------------------------------------------------------------------------------------ ElastAlert2

def test_elastalert_email_alerter_becomes_an_email_connector_with_secrets_to_set():
    conversion = convert_text("""name: disk full
type: any
index: logs-*
alert: [email]
email: 'oncall@example.com, dba@example.com'
cc: lead@example.com
bcc: [audit@example.com]
email_reply_to: noreply@example.com
from_addr: elastalert@example.com
smtp_host: smtp.example.com
smtp_port: 465
smtp_ssl: true
smtp_auth_file: /etc/elastalert/smtp_auth.yaml
smtp_cert_file: /etc/elastalert/client.pem
""", "ea.yaml")
    assert conversion.connectors == {"disk-full-email": {
        "type": "email", "host": "smtp.example.com", "security": "tls", "port": 465, "from": "elastalert@example.com",
        "user": "${DISK_FULL_SMTP_USER}", "password": "${DISK_FULL_SMTP_PASSWORD}"}}
    assert conversion.rule["actions"] == [{"connector": "disk-full-email", "to": ["oncall@example.com", "dba@example.com"],
                                           "cc": ["lead@example.com"], "bcc": ["audit@example.com"],
                                           "reply_to": ["noreply@example.com"]}]
    assert conversion.not_carried == ["smtp_cert_file"]
    assert ("connectors: set DISK_FULL_SMTP_USER and DISK_FULL_SMTP_PASSWORD to the user and password in "
            "/etc/elastalert/smtp_auth.yaml (smtp_auth_file; secrets are not copied)") in conversion.notes
    plain = convert_text("name: x\ntype: any\nindex: a\nalert: email\nemail: a@example.com\n", "ea.yaml")
    assert plain.connectors["x-email"] == {"type": "email", "host": "localhost", "security": "starttls", "port": 25}
    assert any("requires STARTTLS" in note for note in plain.notes)
    assert any("no from_addr" in note for note in plain.notes)
