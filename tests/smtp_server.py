"""A real SMTP server for the tests (aiosmtpd), run as its own process on 127.0.0.1.

    python tests/smtp_server.py --folder DIR [--cert CERT --key KEY [--implicit-tls]] [--auth USER:PASSWORD]

Listens on a port the system picks and prints ``PORT <n>`` on stdout once it accepts connections
(the test reads that line: no guessed delay, no race for a free port). With ``--cert``/``--key`` it
offers STARTTLS, or speaks TLS from the first byte with ``--implicit-tls``. With ``--auth`` it
offers AUTH (PLAIN, LOGIN) after TLS only, and accepts only that user and password.

What it answers depends on the recipient, so each test scripts its own failures:

* ``reject…@…``      RCPT TO is answered ``550 5.1.1`` (permanent);
* ``tempfail-N…@…``  RCPT TO is answered ``451 4.3.0`` the first N times that address is given in
                     the life of the server, then accepted.

Every accepted message is written as ``DIR/<nnnn>.eml`` (the DATA bytes as received, after
dot-unstuffing, line ends as sent) and ``DIR/<nnnn>.json`` (``mail_from``, ``rcpt_tos``, ``tls``,
``auth_user``), the JSON last, so a test that sees the JSON sees the whole message. Every RCPT TO is
appended to ``DIR/rcpt.log``. Stop it with SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import re
import ssl
import sys
from pathlib import Path

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

TEMPFAIL = re.compile(r"^tempfail-(\d+)")


class Handler:
    def __init__(self, folder: Path):
        self.folder = folder
        self.count = 0
        self.seen: collections.Counter = collections.Counter()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with (self.folder / "rcpt.log").open("a", encoding="utf-8") as log:
            log.write(address + "\n")
        self.seen[address] += 1
        local = address.split("@", 1)[0].lower()
        if local.startswith("reject"):
            return "550 5.1.1 <%s>: recipient address rejected: no such user" % address
        match = TEMPFAIL.match(local)
        if match and self.seen[address] <= int(match.group(1)):
            return "451 4.3.0 <%s>: temporary failure, try again later" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        stem = self.folder / f"{self.count:04d}"
        stem.with_suffix(".eml").write_bytes(envelope.original_content)
        auth = session.auth_data
        tls = session.ssl is not None or server.transport.get_extra_info("sslcontext") is not None
        info = {"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos, "tls": tls,
                "auth_user": auth.login.decode() if isinstance(auth, LoginPassword) else None}
        stem.with_suffix(".json").write_text(json.dumps(info), encoding="utf-8")
        return f"250 2.0.0 Ok: queued as {self.count:04d}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--folder", required=True, type=Path)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--implicit-tls", action="store_true")
    parser.add_argument("--auth")
    args = parser.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    context = None
    if args.cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.cert, args.key)
    options: dict = {"hostname": "smtp.test", "decode_data": False}
    if context is not None and not args.implicit_tls:
        options["tls_context"] = context
    if args.auth:
        user, password = args.auth.split(":", 1)

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user \
                and auth_data.password.decode() == password
            return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

        options.update(authenticator=authenticator, auth_require_tls=True)
    handler = Handler(args.folder)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(loop.create_server(
        lambda: SMTP(handler, loop=loop, **options), host="127.0.0.1", port=0,
        ssl=context if args.implicit_tls else None))
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    try:
        loop.run_forever()
    finally:
        server.close()
        sys.stdout.flush()


if __name__ == "__main__":
    main()
