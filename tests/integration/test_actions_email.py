"""The email action against a real SMTP server (aiosmtpd, its own process on 127.0.0.1, see
tests/smtp_server.py): what arrives is checked byte for byte where it matters; STARTTLS, TLS and AUTH
with real certificates; the outbox's retries (4xx), dead letters (5xx) and Message-ID on the real
Elasticsearch; ``watcher validate`` and ``watcher dry-run`` on watches written the way Elastic's
documentation writes them.

No test depends on thread timing: the server writes a message before it answers the end of DATA,
so a direct send that returned has its message on disk; outbox waits are on the stored state
(their timeouts only matter on failure).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email
import email.policy
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from outbox_helpers import make_outbox, prefix, tls_files  # noqa: F401  (fixtures)
from test_outbox import wait_until  # a bounded wait on a condition (its timeout matters on failure only)

from watcher.cli import main
from watcher.definitions.connectors import load_connectors
from watcher.delivery.direct import SendNow, Simulate
from watcher.delivery.outbox import Outbox
from watcher.destinations import ACTIONS
from watcher.engine.context import Run, Services
from watcher.es.outbox_store import DEAD, DELIVERED, DELIVERING
from watcher.model.problems import Reader
from watcher.model.requests import Origin, delivery_id, with_origin
from watcher.model.source import load_text
from watcher.model.watch import Component, Trigger, Watch

ROOT = Path(__file__).resolve().parents[2]
SERVER = ROOT / "tests" / "smtp_server.py"
T0 = dt.datetime(2024, 5, 1, 10, 15, 30, 123000, tzinfo=dt.timezone.utc)
RECORD = "errors_watch_1-2024-05-01T10:15:30.123Z"
PASSWORD = "s3cret-smtp-pässword"


class SmtpServer:
    """tests/smtp_server.py in its own process; ``messages()`` reads what it accepted."""

    def __init__(self, folder: Path, *args: str):
        self.folder = folder
        self.process = subprocess.Popen([sys.executable, str(SERVER), "--folder", str(folder), *args],
                                        stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()  # "PORT n" once it listens; "" if it died
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"the SMTP server did not start: {line!r}")
        self.port = int(line.split()[1])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process.stdout.close()

    def messages(self) -> list[tuple[bytes, dict]]:
        """``[(raw bytes, envelope)]`` in arrival order."""
        return [(info.with_suffix(".eml").read_bytes(), json.loads(info.read_text()))
                for info in sorted(self.folder.glob("*.json"))]

    def rcpts(self) -> list[str]:
        log = self.folder / "rcpt.log"
        return log.read_text().splitlines() if log.exists() else []


@pytest.fixture
def start_smtp(tmp_path):
    started: list[SmtpServer] = []

    def start(*args: str) -> SmtpServer:
        server = SmtpServer(tmp_path / f"smtp-{len(started)}", *args)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def connectors_from(text: str, environ=None):
    document = load_text(text, "connectors.yaml")
    reader = Reader(document)
    loaded = load_connectors(document, reader, environ=environ or {"SMTP_PASSWORD": PASSWORD})
    assert [str(p) for p in reader.problems] == []
    return loaded


def make_run(connectors, payload=None) -> Run:
    watch = Watch(id="errors_watch", file="errors_watch.json", trigger=Trigger("interval", None, None, {}),
                  input=Component("none", None, {}), condition=Component("always", None, {}), transform=None,
                  actions=(), throttle_period=None, metadata={"team": "sre"})
    return Run(watch=watch, execution_time=T0, triggered_time=T0, scheduled_time=T0,
               services=Services(connectors=connectors), payload=payload if payload is not None else {},
               record_id=RECORD)


def parse_action(text: str):
    document = load_text(text, "watch.yaml")
    reader = Reader(document)
    config = ACTIONS.get("email").parse(reader, document.data, ())
    assert [str(p) for p in reader.problems] == []
    return config


def execute(config, run: Run, delivery=None, action_id: str = "notify"):
    """Render as the engine does (origin included: it gives the Message-ID) and deliver."""
    module = ACTIONS.get("email")
    rendered = with_origin(module.render(config, run, run.model()), Origin(run.watch.id, run.record_id, action_id))
    outcome = (delivery or SendNow()).deliver(rendered, run.services)
    return rendered, outcome, module.result(config, rendered, outcome)


def headers_of(raw: bytes) -> list[bytes]:
    """The header lines (folded lines joined) of a raw message."""
    head = raw.split(b"\r\n\r\n", 1)[0]
    return head.replace(b"\r\n ", b" ").split(b"\r\n")


ACTION = """
to: ['Zoë Ops <ops@example.com>, dev@example.com', '{{ctx.metadata.team}}@example.org']
cc: cc@example.com
bcc: [audit@example.com]
reply_to: noreply@example.com
subject: 'Ärger: {{ctx.payload.count}} errors — ✓'
body:
  text: "Grüße, {{ctx.payload.count}} errors:\\n{{#ctx.payload.lines}}- {{.}}\\n{{/ctx.payload.lines}}"
  html: '<p>Grüße, <b>{{ctx.payload.count}}</b> errors</p>'
priority: high
attachments:
  data.json: {data: {format: json}}
"""
PAYLOAD = {"count": 2, "lines": ["disk full on /var — ärgerlich", "timeout"]}


def test_message_byte_for_byte(start_smtp):
    server = start_smtp()
    connectors = connectors_from(f"""
connectors:
  mail: {{type: email, host: 127.0.0.1, port: {server.port}, security: none,
         from: 'Watcher Bot <bot@example.com>'}}
""")
    rendered, outcome, result = execute(parse_action(ACTION), make_run(connectors, PAYLOAD))
    assert outcome.status == "success", outcome
    [(raw, envelope)] = server.messages()

    message_id = f"<{delivery_id(RECORD, 'notify', '0')}@example.com>"
    assert envelope == {"mail_from": "bot@example.com", "tls": False, "auth_user": None,
                        "rcpt_tos": ["ops@example.com", "dev@example.com", "sre@example.org", "cc@example.com",
                                     "audit@example.com"]}
    headers = headers_of(raw)
    assert headers[:10] == [
        b"Message-ID: " + message_id.encode(),
        b"Date: Wed, 01 May 2024 10:15:30 +0000",
        b"From: Watcher Bot <bot@example.com>",
        b"To: =?utf-8?q?Zo=C3=AB?= Ops <ops@example.com>, dev@example.com, sre@example.org",
        b"Cc: cc@example.com",
        b"Reply-To: noreply@example.com",
        b"Subject: =?utf-8?b?w4RyZ2VyOiAyIGVycm9ycyDigJQg4pyT?=",   # RFC 2047, UTF-8, base64
        b"X-Priority: 2",
        b"Auto-Submitted: auto-generated",
        b"MIME-Version: 1.0",
    ]
    assert not any(line.lower().startswith(b"bcc") for line in headers)   # bcc: envelope only
    assert max(raw) < 0x80                                                # 7-bit clean: any server takes it
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert str(parsed["Subject"]) == "Ärger: 2 errors — ✓"
    assert parsed.get_content_type() == "multipart/mixed"
    alternative, attachment = parsed.get_payload()
    text, html = alternative.get_payload()
    assert (alternative.get_content_type(), text.get_content_type(), html.get_content_type()) == \
        ("multipart/alternative", "text/plain", "text/html")
    assert text["Content-Type"] == 'text/plain; charset="utf-8"'
    assert text["Content-Transfer-Encoding"] == "quoted-printable"
    expected_text = "Grüße, 2 errors:\n- disk full on /var — ärgerlich\n- timeout\n"
    assert text.get_payload(decode=True) == expected_text.replace("\n", "\r\n").encode("utf-8")
    assert text.get_payload().startswith("Gr=C3=BC=C3=9Fe, 2 errors:\r\n- disk full on /var =E2=80=94 =C3=A4rgerlich")
    assert html.get_payload(decode=True).decode("utf-8").strip() == "<p>Grüße, <b>2</b> errors</p>"
    assert attachment["Content-Disposition"] == 'attachment; filename="data.json"'
    assert attachment.get_content_type() == "application/json"
    attached = json.loads(attachment.get_payload(decode=True).decode("utf-8"))
    assert attached["ctx"]["payload"] == PAYLOAD
    assert attached["ctx"]["watch_id"] == "errors_watch" and attached["ctx"]["id"] == RECORD

    shown = result["email"]
    assert shown["account"] == "mail" and shown["response"]["smtp_code"] == 250
    assert shown["message"]["id"] == message_id == shown["response"]["message_id"]
    assert shown["message"]["subject"] == "Ärger: 2 errors — ✓" and shown["message"]["bcc"] == ["audit@example.com"]


def test_the_same_delivery_gives_the_same_message_id_and_bytes(start_smtp):
    server = start_smtp()
    connectors = connectors_from(f"connectors:\n  mail: {{type: email, host: 127.0.0.1, port: {server.port}, "
                                 "security: none, from: bot@example.com}\n")
    run = make_run(connectors, PAYLOAD)
    execute(parse_action(ACTION), run)
    execute(parse_action(ACTION), run)                       # the same record and action again
    execute(parse_action(ACTION), run, action_id="other")    # another action: another id
    (first, _), (second, _), (third, _) = server.messages()
    assert first == second
    assert headers_of(third)[0] == f"Message-ID: <{delivery_id(RECORD, 'other', '0')}@example.com>".encode()


def test_starttls_with_auth_and_a_wrong_password(start_smtp, tls_files):
    cert, key = tls_files
    server = start_smtp("--cert", str(cert), "--key", str(key), "--auth", f"alerts:{PASSWORD}")
    connectors = connectors_from(f"""
connectors:
  mail: {{type: email, host: 127.0.0.1, port: {server.port}, security: starttls, ca_file: '{cert}',
         user: alerts, password: '${{SMTP_PASSWORD}}', from: alerts@example.com}}
  wrong: {{type: email, host: 127.0.0.1, port: {server.port}, security: starttls, ca_file: '{cert}',
          user: alerts, password: not-the-password, from: alerts@example.com}}
""")
    run = make_run(connectors, PAYLOAD)
    _, outcome, result = execute(parse_action("account: mail\nto: ops@example.com\nsubject: hi\nbody: hello\n"), run)
    assert outcome.status == "success", outcome
    [(raw, envelope)] = server.messages()
    assert envelope["tls"] is True and envelope["auth_user"] == "alerts"
    assert PASSWORD not in json.dumps(result, ensure_ascii=False)
    assert result["email"]["smtp"] == {"host": "127.0.0.1", "port": server.port, "security": "starttls",
                                       "user": "alerts"}

    _, refused, _ = execute(parse_action("account: wrong\nto: ops@example.com\nsubject: hi\n"), run)
    assert refused.status == "failure"
    assert refused.error["type"] == "smtp_permanent_error"    # 535: no retry fixes a wrong password
    assert "[535]" in refused.reason and "not-the-password" not in refused.reason
    assert len(server.messages()) == 1


def test_starttls_is_required_when_configured(start_smtp):
    server = start_smtp()  # offers no STARTTLS
    connectors = connectors_from(f"connectors:\n  mail: {{type: email, host: 127.0.0.1, port: {server.port}, "
                                 "security: starttls, from: bot@example.com}\n")
    _, outcome, _ = execute(parse_action("to: ops@example.com\nsubject: hi\n"), make_run(connectors))
    assert outcome.status == "failure" and outcome.error["type"] == "smtp_permanent_error"
    assert "does not offer STARTTLS" in outcome.reason
    assert server.messages() == [] and server.rcpts() == []


def test_implicit_tls_verifies_the_certificate(start_smtp, tls_files):
    cert, key = tls_files
    server = start_smtp("--cert", str(cert), "--key", str(key), "--implicit-tls")
    connectors = connectors_from(f"""
connectors:
  with-ca: {{type: email, host: 127.0.0.1, port: {server.port}, security: tls, ca_file: '{cert}', from: a@example.com}}
  system-ca: {{type: email, host: 127.0.0.1, port: {server.port}, security: tls, from: a@example.com}}
  no-verify: {{type: email, host: 127.0.0.1, port: {server.port}, security: tls, verify: false, from: a@example.com}}
""")
    run = make_run(connectors)
    outcomes = {name: execute(parse_action(f"account: {name}\nto: ops@example.com\nsubject: '{name}'\n"), run)[1]
                for name in ("with-ca", "system-ca", "no-verify")}
    assert outcomes["with-ca"].status == "success" and outcomes["no-verify"].status == "success"
    assert outcomes["system-ca"].status == "failure"
    assert outcomes["system-ca"].error["type"] == "smtp_permanent_error"
    assert "does not verify" in outcomes["system-ca"].reason
    subjects = [email.message_from_bytes(raw)["Subject"] for raw, _ in server.messages()]
    assert subjects == ["with-ca", "no-verify"]
    assert all(info["tls"] for _, info in server.messages())


def test_a_refused_recipient_sends_nothing_and_a_4xx_is_transient(start_smtp):
    server = start_smtp()
    connectors = connectors_from(f"connectors:\n  mail: {{type: email, host: 127.0.0.1, port: {server.port}, "
                                 "security: none, from: bot@example.com}\n")
    run = make_run(connectors)
    _, dead, _ = execute(parse_action("to: [ok@example.com, reject@example.com]\nsubject: x\n"), run)
    assert dead.status == "failure" and dead.error["type"] == "smtp_permanent_error"
    assert "[550]" in dead.reason and "RCPT TO:<reject@example.com>" in dead.reason
    _, busy, _ = execute(parse_action("to: [ok@example.com, tempfail-1@example.com]\nsubject: x\n"), run)
    assert busy.status == "failure" and busy.error["type"] == "smtp_transient_error" and "[451]" in busy.reason
    assert server.messages() == []      # all or nothing: ok@example.com got no copy either


def test_simulate_renders_without_sending_and_without_the_password(start_smtp, tls_files):
    cert, _ = tls_files
    server = start_smtp()
    connectors = connectors_from(f"""
connectors:
  mail: {{type: email, host: 127.0.0.1, port: {server.port}, security: starttls, ca_file: '{cert}',
         user: alerts, password: '${{SMTP_PASSWORD}}', from: alerts@example.com}}
""")
    _, outcome, result = execute(parse_action(ACTION), make_run(connectors, PAYLOAD), delivery=Simulate())
    assert outcome.status == "simulated"
    assert server.messages() == [] and server.rcpts() == []
    text = json.dumps(result, ensure_ascii=False)
    assert PASSWORD not in text
    assert result["email"]["message"]["id"] == f"<{delivery_id(RECORD, 'notify', '0')}@example.com>"
    assert result["email"]["message"]["body"]["html"] == "<p>Grüße, <b>2</b> errors</p>"


# ------------------------------------------------------------------------------- the outbox


def stored(outbox: Outbox, identifier: str) -> dict:
    item = outbox.store.get(identifier)
    return item.source if item else {}


def outbox_run(server: SmtpServer, security: str = "none", extra: str = ""):
    connectors = connectors_from(f"connectors:\n  mail: {{type: email, host: 127.0.0.1, port: {server.port}, "
                                 f"security: {security}, from: 'Watcher <bot@example.com>'{extra}}}\n")
    return connectors, make_run(connectors, PAYLOAD)


@pytest.mark.es
def test_outbox_retries_a_4xx_then_delivers_once_with_the_message_id_of_the_delivery(start_smtp, make_outbox,
                                                                                      tls_files):
    cert, key = tls_files
    server = start_smtp("--cert", str(cert), "--key", str(key), "--auth", f"alerts:{PASSWORD}")
    connectors, run = outbox_run(server, "starttls", f", ca_file: '{cert}', user: alerts, "
                                                     "password: '${SMTP_PASSWORD}'")
    secrets = [s for c in connectors.values() for s in c.secrets]
    outbox = make_outbox(secrets_provider=lambda: secrets)
    outbox.start()
    config = parse_action("to: [ops@example.com, tempfail-1@example.com]\nsubject: 'Ärger {{ctx.payload.count}}'\n")
    _, outcome, result = execute(config, run, delivery=outbox)
    identifier = outcome.response["outbox"]["id"]
    assert identifier == delivery_id(RECORD, "notify", "0")
    wait_until(lambda: stored(outbox, identifier).get("state") == DELIVERED)

    source = stored(outbox, identifier)
    assert source["attempts"] == 2 and source["last_status"] == 250 and source["last_error"] is None
    assert source["connector"] == "email@127.0.0.1:%d" % server.port
    assert PASSWORD not in json.dumps(source, ensure_ascii=False)           # never stored
    assert source["request"]["smtp"]["password"].startswith("${secret:hmac:")
    assert server.rcpts() == ["ops@example.com", "tempfail-1@example.com"] * 2  # 451 on the first try
    [(raw, envelope)] = server.messages()
    assert headers_of(raw)[0] == f"Message-ID: <{identifier}@example.com>".encode()
    assert envelope["auth_user"] == "alerts" and envelope["tls"] is True
    assert result["email"]["message"]["id"] == f"<{identifier}@example.com>"  # what the record says


@pytest.mark.es
def test_outbox_makes_a_5xx_dead_at_once(start_smtp, make_outbox):
    server = start_smtp()
    _, run = outbox_run(server)
    events: list[str] = []
    outbox = make_outbox(on_event=lambda kind, **fields: events.append(kind))
    outbox.start()
    _, outcome, _ = execute(parse_action("to: reject@example.com\nsubject: x\n"), run, delivery=outbox)
    identifier = outcome.response["outbox"]["id"]
    wait_until(lambda: stored(outbox, identifier).get("state") == DEAD)
    source = stored(outbox, identifier)
    assert source["attempts"] == 1 and source["last_status"] == 550
    assert source["last_error"].startswith("SmtpPermanentError: the SMTP server answered [550] to "
                                           "RCPT TO:<reject@example.com>: 5.1.1")
    assert source["last_error"].endswith("(not retried)")
    assert server.rcpts() == ["reject@example.com"] and server.messages() == []
    assert "retried" not in events


@pytest.mark.es
def test_outbox_gives_up_on_a_server_that_never_answers(make_outbox):
    with contextlib.closing(__import__("socket").socket()) as sock:  # a port with nothing listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    connectors = connectors_from(f"connectors:\n  mail: {{type: email, host: 127.0.0.1, port: {port}, "
                                 "security: none, from: bot@example.com, timeout: 2s}\n")
    outbox = make_outbox()
    outbox.start()
    _, outcome, _ = execute(parse_action("to: ops@example.com\n"), make_run(connectors), delivery=outbox)
    identifier = outcome.response["outbox"]["id"]
    wait_until(lambda: stored(outbox, identifier).get("state") == DEAD)
    source = stored(outbox, identifier)
    attempts = outbox.policy.max_attempts
    assert source["attempts"] == attempts                                # retried: connection refused
    assert source["last_error"].startswith(f"gave up after {attempts} attempts")
    assert "SmtpTransientError" in source["last_error"]


@pytest.mark.es
def test_a_delivery_sent_again_after_a_crash_carries_the_same_message_id(start_smtp, make_outbox):
    server = start_smtp()
    _, run = outbox_run(server)
    first = make_outbox()
    first.start()
    _, outcome, _ = execute(parse_action(ACTION), run, delivery=first)
    identifier = outcome.response["outbox"]["id"]
    wait_until(lambda: stored(first, identifier).get("state") == DELIVERED)
    first.stop(grace_s=0.5)
    # The process died after the server took the message and before the result was written: the row
    # is still "delivering", its lease long over. The next process sends it again.
    item = first.store.get(identifier)
    first.store.update(item, {"state": DELIVERING, "lease_until": "2000-01-01T00:00:00.000Z", "delivered_at": None})
    second = make_outbox()
    second.start()
    wait_until(lambda: stored(second, identifier).get("state") == DELIVERED
               and stored(second, identifier).get("attempts") == 2)
    (one, _), (two, _) = server.messages()
    assert one == two                                       # same Message-ID, same bytes: a duplicate
    assert headers_of(one)[0] == f"Message-ID: <{identifier}@example.com>".encode()
    # and the same record executed again writes nothing new and sends nothing
    again = second.enqueue(with_origin(ACTIONS.get("email").render(parse_action(ACTION), run, run.model()),
                                       Origin(run.watch.id, RECORD, "notify")),
                           record_id=RECORD, action_id="notify", watch_id=run.watch.id)
    assert again.response["outbox"] == {"id": identifier, "state": DELIVERED}


# ---------------------------------------------------------- validate and dry-run, as Watcher users write


DOC_WATCHES = ROOT / "tests" / "fixtures" / "watcher-docs"


@pytest.fixture
def doc_watches(tmp_path, es_cluster, start_smtp, index_name, es):
    """The documentation-style watches, pointed at this test's cluster, index and SMTP server."""
    server = start_smtp()
    es.index(index=index_name, id="1", refresh=True, document={
        "@timestamp": "2026-11-29T10:01:00Z", "message": "Error: payment declined — ünïcödé", "level": "error"})
    url = es_cluster.env()["ES_URL"].rstrip("/")
    host, port = url.split("://", 1)[1].split(":")
    folder = tmp_path / "watches"
    folder.mkdir()
    for path in sorted(DOC_WATCHES.glob("*.json")):
        text = path.read_text().replace("logs-docs", index_name)
        text = text.replace('"host": "localhost"', f'"host": "{host}"').replace('"port": 9200', f'"port": {port}')
        (folder / path.name).write_text(text)
    (folder / "connectors.yaml").write_text(
        f"connectors:\n  mail:\n    type: email\n    host: 127.0.0.1\n    port: {server.port}\n    security: none\n"
        "    from: 'Watcher <watcher@example.com>'\n    default: true\n")
    return folder, server


@pytest.mark.es
def test_documentation_watches_validate_and_dry_run_with_their_email_actions(doc_watches, es_cluster):
    folder, server = doc_watches
    names = sorted(p.stem for p in folder.glob("*.json"))
    assert len(names) == 9, names
    env = {**es_cluster.env(), "NO_COLOR": "1"}
    checked = CliRunner().invoke(main, ["validate", str(folder)], env=env, catch_exceptions=False)
    assert checked.exit_code == 0, checked.output
    assert "10 files OK" in checked.output                      # nine watches and connectors.yaml

    simulated = CliRunner().invoke(main, ["dry-run", str(folder / "log_error_watch.json"),
                                          "--at", "2026-11-29T10:05:00Z"], env=env, catch_exceptions=False)
    assert simulated.exit_code == 0, simulated.output
    assert "action send_email [email]: simulated" in simulated.output
    assert "Subject: 1 error(s) in the logs" in simulated.output
    assert "To: admin@example.com" in simulated.output
    assert "Auto-Submitted: auto-generated" in simulated.output  # the preview shows the headers that are sent
    assert server.messages() == []

    for name in names:
        result = CliRunner().invoke(main, ["dry-run", str(folder / f"{name}.json"), "--at", "2026-11-29T10:05:00Z",
                                           "--action-mode", "execute"], env=env, catch_exceptions=False)
        assert result.exit_code == 0, (name, result.output)
        assert "[email]: success" in result.output, (name, result.output)
    received = server.messages()
    assert len(received) >= len(names)
    for raw, envelope in received:
        assert envelope["mail_from"] == "watcher@example.com"
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert message["Message-ID"].endswith("@example.com>") and message["Subject"]
