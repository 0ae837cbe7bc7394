"""sshd log lines → ECS fields: one set of grok patterns, run by the cluster or here.

The patterns below are the single source of truth. :func:`pipeline_body` turns them into an
Elasticsearch ingest pipeline (``grok`` + ``set`` + ``remove`` processors, ingest-common); when the
cluster lacks those processors, :func:`parse_message` runs the *same* patterns in Python, translated
by :func:`grok_to_regex` (every ``%{NAME}`` used here is defined in :data:`PATTERN_DEFINITIONS`, so
no built-in grok library pattern is involved and both engines see identical regular expressions).

What the loader decides, not the patterns (see :mod:`watcher.demo.load`):

* ``@timestamp``: syslog lines carry no year and no zone, so the loader computes it (``--year``/
  ``--timezone`` or shift-to-now) and sends it with the line; the header's time text is ignored.
* ``message repeated N times: [ … ]`` (rsyslog's duplicate suppression) stands for N events:
  :func:`expand_repeats` turns the line into N copies of the inner message before parsing, on both
  paths (an ingest pipeline cannot make several documents from one).

Fields produced: ``host.name``, ``process.name``, ``process.pid`` (int), ``message`` (the text after
``sshd[pid]: ``), ``event.action``, ``event.outcome``, ``source.ip``, ``source.port``,
``source.address`` (PAM's ``rhost``, which may be a host name), ``source.domain``, ``user.name``,
``ssh.method`` (password, publickey, none…). ``event.original`` keeps the raw line.

``event.action`` values (ours; ECS leaves them free): ``ssh_login`` (``Failed``/``Accepted <method>
for …``, outcome failure/success), ``invalid_user``, ``invalid_user_request``,
``possible_break_in``, ``pam_auth_failure``, ``pam_more_failures``, ``pam_user_unknown``,
``too_many_auth_failures``, ``disconnect``, ``connection_closed``, ``no_identification``,
``session_opened``, ``session_closed``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from typing import Any

__all__ = ["HEADER", "KINDS", "Kind", "PATTERN_DEFINITIONS", "PIPELINE_PROCESSORS", "expand_repeats", "iter_lines", "nest",
           "grok_to_regex", "parse_header", "parse_line", "parse_message", "pipeline_body"]

PATTERN_DEFINITIONS: dict[str, str] = {
    # Timestamps the header accepts: syslog "Dec 10 06:55:46" / "Dec  1 06:55:46", or RFC 3339
    # ("2024-05-01T12:00:00.123456+02:00", newer rsyslog defaults).
    "SSHD_SYSLOGTIME": r"[A-Z][a-z]{2} +\d{1,2} \d{2}:\d{2}:\d{2}",
    "SSHD_ISOTIME": r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?",
    "SSHD_HOST": r"[^ ]+",
    "SSHD_PROG": r"[^ \[:]+",
    "SSHD_INT": r"\d+",
    "SSHD_WORD": r"[A-Za-z0-9_-]+",
    # IPv4 first, so "1.2.3.4: 11: Bye" stops at the address; IPv6 must end on a hex digit.
    "SSHD_IP": r"(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f]*:[0-9A-Fa-f:.]*[0-9A-Fa-f])",
    # sshd prints the user name as sent, spaces included (the real log has "invalid user  0101"):
    # lazy, so the fixed text after it decides where it ends.
    "SSHD_USER": r".*?",
    "SSHD_NOTSPACE": r"[^ ]*",
    "SSHD_REST": r".*",
}

HEADER = (r"^(?:%{SSHD_SYSLOGTIME:_tmp.time}|%{SSHD_ISOTIME:_tmp.time}) %{SSHD_HOST:host.name} "
          r"%{SSHD_PROG:process.name}(?:\[%{SSHD_INT:process.pid:int}\])?: %{SSHD_REST:message}$")
"""Grok pattern of the syslog header, applied to ``event.original``."""

_PORT = r"(?: port %{SSHD_INT:source.port:int})?"
_PREAUTH = r"(?: \[preauth\])?"


@dataclasses.dataclass(frozen=True)
class Kind:
    """One kind of sshd message: its grok pattern and the constant fields it sets."""

    action: str
    outcome: str
    pattern: str


KINDS: tuple[Kind, ...] = (
    Kind("ssh_login", "failure", r"^Failed %{SSHD_WORD:ssh.method} for (?:invalid user )?%{SSHD_USER:user.name} "
                                 r"from %{SSHD_IP:source.ip}" + _PORT + r"(?: ssh2)?(?:: %{SSHD_REST})?$"),
    Kind("ssh_login", "success", r"^Accepted %{SSHD_WORD:ssh.method} for %{SSHD_USER:user.name} "
                                 r"from %{SSHD_IP:source.ip}" + _PORT + r"(?: ssh2)?(?:: %{SSHD_REST})?$"),
    Kind("invalid_user", "failure", r"^Invalid user %{SSHD_USER:user.name} from %{SSHD_IP:source.ip}" + _PORT + "$"),
    Kind("invalid_user_request", "failure",
         r"^input_userauth_request: invalid user %{SSHD_USER:user.name}" + _PREAUTH + "$"),
    Kind("possible_break_in", "unknown",
         r"^reverse mapping checking getaddrinfo for %{SSHD_NOTSPACE:source.domain} \[%{SSHD_IP:source.ip}\] "
         r"failed(?: -)? POSSIBLE BREAK-IN ATTEMPT!$"),
    Kind("possible_break_in", "unknown",
         r"^Address %{SSHD_IP:source.ip} maps to %{SSHD_NOTSPACE:source.domain}, but this does not map back "
         r"to the address(?: -)? POSSIBLE BREAK-IN ATTEMPT!$"),
    Kind("pam_auth_failure", "failure",
         r"^pam_unix\(sshd:auth\): authentication failure; logname=%{SSHD_NOTSPACE} uid=%{SSHD_INT} "
         r"euid=%{SSHD_INT} tty=%{SSHD_NOTSPACE} ruser=%{SSHD_NOTSPACE} rhost=%{SSHD_NOTSPACE:source.address}"
         r"(?: +user=%{SSHD_NOTSPACE:user.name})? *$"),
    Kind("pam_more_failures", "failure",
         r"^PAM %{SSHD_INT:ssh.pam_more_failures:int} more authentication failures?; %{SSHD_REST}$"),
    Kind("pam_user_unknown", "failure", r"^pam_unix\(sshd:auth\): check pass; user unknown$"),
    Kind("too_many_auth_failures", "failure",
         r"^Disconnecting: Too many authentication failures(?: for %{SSHD_USER:user.name})?" + _PREAUTH + "$"),
    Kind("disconnect", "unknown",
         r"^(?:error: )?Received disconnect from %{SSHD_IP:source.ip}" + _PORT + r":%{SSHD_REST}$"),
    Kind("connection_closed", "unknown",
         r"^Connection closed by (?:(?:invalid|authenticating) user %{SSHD_USER:user.name} )?%{SSHD_IP:source.ip}"
         + _PORT + _PREAUTH + "$"),
    Kind("no_identification", "failure",
         r"^Did not receive identification string from %{SSHD_IP:source.ip}" + _PORT + "$"),
    Kind("session_opened", "success",
         r"^pam_unix\(sshd:session\): session opened for user %{SSHD_USER:user.name}(?: by %{SSHD_REST})?$"),
    Kind("session_closed", "success", r"^pam_unix\(sshd:session\): session closed for user %{SSHD_USER:user.name}$"),
)
"""Message kinds, tried in order (the first match wins, as in grok's ``patterns`` list)."""

_REPEATED = re.compile(r"^(?P<head>.*?: )message repeated (?P<n>\d+) times: \[ ?(?P<inner>.*)\]\s*$")
_GROK_REF = re.compile(r"%\{(?P<name>[A-Z0-9_]+)(?::(?P<field>[A-Za-z0-9_.@]+))?(?::(?P<type>int|long|float|double))?\}")
_CONVERT = {"int": int, "long": int, "float": float, "double": float}


def grok_to_regex(pattern: str) -> tuple[re.Pattern, dict[str, tuple[str, str | None]]]:
    """Translate a grok pattern (using only :data:`PATTERN_DEFINITIONS`) into a Python regex.

    Args:
        pattern: e.g. ``"^Invalid user %{SSHD_USER:user.name} from %{SSHD_IP:source.ip}$"``.

    Returns:
        ``(compiled, groups)`` where ``groups`` maps each Python group name to ``(field, type)``
        (``type`` is None, ``int``, ``long``, ``float`` or ``double``, grok's conversions).

    Raises:
        KeyError: a ``%{NAME}`` that :data:`PATTERN_DEFINITIONS` does not define.
    """
    groups: dict[str, tuple[str, str | None]] = {}

    def replace(match: re.Match) -> str:
        definition = PATTERN_DEFINITIONS[match["name"]]
        if not match["field"]:
            return f"(?:{definition})"
        group = f"g{len(groups)}"
        groups[group] = (match["field"], match["type"])
        return f"(?P<{group}>{definition})"

    return re.compile(_GROK_REF.sub(replace, pattern)), groups


_HEADER_RE = grok_to_regex(HEADER)
_KIND_RES = [(kind, *grok_to_regex(kind.pattern)) for kind in KINDS]


def _captures(match: re.Match, groups: dict[str, tuple[str, str | None]]) -> dict[str, Any]:
    """Dotted field → value, as grok stores them (unmatched optional groups are left out)."""
    out: dict[str, Any] = {}
    for group, (field, kind) in groups.items():
        value = match[group]
        if value is None:
            continue
        out[field] = _CONVERT[kind](value) if kind else value
    return out


def expand_repeats(line: str) -> list[str]:
    """``… sshd[1]: message repeated 5 times: [ Failed password …]`` → 5 lines
    ``… sshd[1]: Failed password …`` (same header); any other line → ``[line]``.

    rsyslog writes this line instead of N identical messages, so it counts as N events.
    """
    match = _REPEATED.match(line)
    if not match:
        return [line]
    return [match["head"] + match["inner"].rstrip()] * int(match["n"])


def parse_header(line: str) -> dict[str, Any] | None:
    """The header fields of one line (``host.name``, ``process.name``, ``process.pid``, ``message``,
    ``_tmp.time`` = the timestamp text), or None when the line is not a syslog line."""
    compiled, groups = _HEADER_RE
    match = compiled.search(line)
    return _captures(match, groups) if match else None


def parse_message(message: str) -> dict[str, Any]:
    """The fields of one sshd message (the text after ``sshd[pid]: ``): ``event.action``,
    ``event.outcome`` and the kind's captures, dotted keys; ``{}`` when no kind matches."""
    for kind, compiled, groups in _KIND_RES:
        match = compiled.search(message)
        if match:
            return {"event.action": kind.action, "event.outcome": kind.outcome, **_captures(match, groups)}
    return {}


def parse_line(line: str) -> dict[str, Any] | None:
    """Header and message fields of one (already expanded) line, dotted keys, ``_tmp.*`` removed;
    None when the header does not match. ``@timestamp`` is not included (the loader's job)."""
    header = parse_header(line)
    if header is None:
        return None
    fields = {key: value for key, value in header.items() if not key.startswith("_tmp.")}
    fields.update(parse_message(fields.get("message", "")))
    return fields


def nest(dotted: dict[str, Any]) -> dict[str, Any]:
    """``{"source.ip": x}`` → ``{"source": {"ip": x}}`` (the shape the pipeline produces)."""
    out: dict[str, Any] = {}
    for key, value in dotted.items():
        node = out
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return out


def iter_lines(text: str) -> Iterator[str]:
    """Non-empty lines of a log file's text, CR/LF stripped (the Loghub files are CRLF)."""
    for raw in text.splitlines():
        line = raw.rstrip("\r\n")
        if line.strip():
            yield line


PIPELINE_PROCESSORS = ("grok", "set", "remove")
"""Ingest processors :func:`pipeline_body` uses (module ingest-common), plus Painless ``if``
conditions (lang-painless) and a Mustache value (lang-mustache)."""


def pipeline_body() -> dict:
    """The ingest pipeline (``PUT _ingest/pipeline/<id>`` body) running :data:`HEADER` and
    :data:`KINDS` on ``event.original``.

    grok with ``trace_match`` records which pattern matched (``_ingest._grok_match_index``,
    elasticsearch/reference/current/grok-processor.html); a ``set`` copies it to ``_tmp.kind``,
    then one ``set`` pair per kind (``if`` on ``_tmp.kind``) writes ``event.action`` and
    ``event.outcome``; ``_tmp`` is removed. Lines no kind matches keep their header fields.
    """
    processors: list[dict] = [
        {"grok": {"field": "event.original", "patterns": [HEADER], "pattern_definitions": PATTERN_DEFINITIONS,
                  "description": "syslog header"}},
        {"grok": {"field": "message", "patterns": [kind.pattern for kind in KINDS],
                  "pattern_definitions": PATTERN_DEFINITIONS, "trace_match": True, "ignore_failure": True,
                  "description": "sshd message kinds (watcher.demo.sshd.KINDS)"}},
        {"set": {"field": "_tmp.kind", "value": "{{{_ingest._grok_match_index}}}", "ignore_empty_value": True}},
    ]
    for index, kind in enumerate(KINDS):
        condition = f"ctx._tmp?.kind == '{index}'"
        processors.append({"set": {"field": "event.action", "value": kind.action, "if": condition}})
        processors.append({"set": {"field": "event.outcome", "value": kind.outcome, "if": condition}})
    processors.append({"remove": {"field": "_tmp", "ignore_missing": True}})
    return {"description": "sshd syslog lines to ECS (watcher demo; patterns in watcher/demo/sshd.py)",
            "processors": processors,
            "on_failure": [{"set": {"field": "error.message", "value": "{{{_ingest.on_failure_message}}}"}}]}
