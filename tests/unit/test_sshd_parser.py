"""The sshd parser (watcher.demo.sshd) on real lines from Loghub's OpenSSH_2k.log, on lines of newer
OpenSSH versions, and the time rule and generator of the demo loader."""

from __future__ import annotations

import collections
import datetime as dt
import os
import re
from pathlib import Path

import pytest

from conftest import SHARED
from watcher.demo import generate, sshd
from watcher.demo.load import TimeRule, events_from_lines

LOG = Path(os.environ.get("WATCHER_SSH_LOG", SHARED / "data" / "loghub" / "OpenSSH" / "OpenSSH_2k.log"))
needs_log = pytest.mark.skipif(not LOG.is_file(), reason=f"real sshd log not found at {LOG} (set WATCHER_SSH_LOG)")

# Lines copied verbatim from OpenSSH_2k.log (quoted as test input, Loghub: https://github.com/logpai/loghub).
REAL = {
    "Dec 10 06:55:46 LabSZ sshd[24200]: reverse mapping checking getaddrinfo for ns.marryaldkfaczcz.com "
    "[173.234.31.186] failed - POSSIBLE BREAK-IN ATTEMPT!":
        {"event.action": "possible_break_in", "event.outcome": "unknown", "source.domain": "ns.marryaldkfaczcz.com",
         "source.ip": "173.234.31.186"},
    "Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186":
        {"event.action": "invalid_user", "event.outcome": "failure", "user.name": "webmaster",
         "source.ip": "173.234.31.186"},
    "Dec 10 06:55:46 LabSZ sshd[24200]: input_userauth_request: invalid user webmaster [preauth]":
        {"event.action": "invalid_user_request", "event.outcome": "failure", "user.name": "webmaster"},
    "Dec 10 06:55:46 LabSZ sshd[24200]: pam_unix(sshd:auth): check pass; user unknown":
        {"event.action": "pam_user_unknown", "event.outcome": "failure"},
    "Dec 10 06:55:46 LabSZ sshd[24200]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 "
    "tty=ssh ruser= rhost=173.234.31.186 ":
        {"event.action": "pam_auth_failure", "event.outcome": "failure", "source.address": "173.234.31.186"},
    "Dec 10 07:13:31 LabSZ sshd[24227]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 "
    "tty=ssh ruser= rhost=5.36.59.76.dynamic-dsl-ip.omantel.net.om  user=root":
        {"event.action": "pam_auth_failure", "event.outcome": "failure",
         "source.address": "5.36.59.76.dynamic-dsl-ip.omantel.net.om", "user.name": "root"},
    "Dec 10 06:55:48 LabSZ sshd[24200]: Failed password for invalid user webmaster from 173.234.31.186 port 38926 ssh2":
        {"event.action": "ssh_login", "event.outcome": "failure", "ssh.method": "password", "user.name": "webmaster",
         "source.ip": "173.234.31.186", "source.port": 38926},
    "Dec 10 07:13:43 LabSZ sshd[24227]: Failed password for root from 5.36.59.76 port 42393 ssh2":
        {"event.action": "ssh_login", "event.outcome": "failure", "ssh.method": "password", "user.name": "root",
         "source.ip": "5.36.59.76", "source.port": 42393},
    "Dec 10 08:24:35 LabSZ sshd[24361]: Failed password for invalid user  0101 from 5.188.10.180 port 36279 ssh2":
        {"event.action": "ssh_login", "event.outcome": "failure", "ssh.method": "password", "user.name": " 0101",
         "source.ip": "5.188.10.180", "source.port": 36279},
    "Dec 10 08:24:40 LabSZ sshd[24363]: Failed none for invalid user 0 from 5.188.10.180 port 49811 ssh2":
        {"event.action": "ssh_login", "event.outcome": "failure", "ssh.method": "none", "user.name": "0",
         "source.ip": "5.188.10.180", "source.port": 49811},
    "Dec 10 09:32:20 LabSZ sshd[24680]: Accepted password for fztu from 119.137.62.142 port 49116 ssh2":
        {"event.action": "ssh_login", "event.outcome": "success", "ssh.method": "password", "user.name": "fztu",
         "source.ip": "119.137.62.142", "source.port": 49116},
    "Dec 10 06:55:48 LabSZ sshd[24200]: Connection closed by 173.234.31.186 [preauth]":
        {"event.action": "connection_closed", "event.outcome": "unknown", "source.ip": "173.234.31.186"},
    "Dec 10 07:07:45 LabSZ sshd[24206]: Received disconnect from 52.80.34.196: 11: Bye Bye [preauth]":
        {"event.action": "disconnect", "event.outcome": "unknown", "source.ip": "52.80.34.196"},
}


@pytest.mark.parametrize("line", list(REAL))
def test_real_lines_parse_to_ecs_fields(line):
    fields = sshd.parse_line(line)
    assert fields["host.name"] == "LabSZ" and fields["process.name"] == "sshd"
    assert isinstance(fields["process.pid"], int)
    assert fields["message"] == line.split("]: ", 1)[1]
    assert {k: v for k, v in fields.items() if k not in ("host.name", "process.name", "process.pid", "message")} \
        == REAL[line]


def test_message_repeated_counts_as_n_events():
    line = ("Dec 10 07:13:56 LabSZ sshd[24227]: message repeated 5 times: [ Failed password for root from "
            "5.36.59.76 port 42393 ssh2]")
    expanded = sshd.expand_repeats(line)
    assert expanded == ["Dec 10 07:13:56 LabSZ sshd[24227]: Failed password for root from 5.36.59.76 port 42393 ssh2"] * 5
    assert sshd.parse_line(expanded[0])["source.ip"] == "5.36.59.76"
    assert sshd.expand_repeats("Dec 10 07:13:56 LabSZ sshd[1]: Failed password for root") == \
        ["Dec 10 07:13:56 LabSZ sshd[1]: Failed password for root"]


@pytest.mark.parametrize("message, expected", [
    ("Invalid user admin from 203.0.113.5 port 51234", {"user.name": "admin", "source.port": 51234}),
    ("Connection closed by invalid user admin 203.0.113.5 port 51234 [preauth]",
     {"event.action": "connection_closed", "user.name": "admin", "source.ip": "203.0.113.5"}),
    ("Accepted publickey for alice from 2001:db8::7 port 22 ssh2: ED25519 SHA256:abc",
     {"event.outcome": "success", "ssh.method": "publickey", "source.ip": "2001:db8::7"}),
    ("Received disconnect from 203.0.113.5 port 51234:11: Bye Bye [preauth]", {"source.port": 51234}),
    ("Something sshd never says", {}),
])
def test_newer_openssh_messages(message, expected):
    fields = sshd.parse_message(message)
    assert {k: fields.get(k) for k in expected} == expected


def test_rfc3339_header():
    fields = sshd.parse_header("2024-05-01T12:00:00.123456+02:00 web-1 sshd[77]: Invalid user x from 192.0.2.1")
    assert fields["_tmp.time"] == "2024-05-01T12:00:00.123456+02:00" and fields["process.pid"] == 77


def test_grok_translation_names_fields_and_converts_types():
    compiled, groups = sshd.grok_to_regex(r"^pid %{SSHD_INT:process.pid:int} ip %{SSHD_IP:source.ip}$")
    match = compiled.search("pid 42 ip 10.1.2.3")
    assert sorted(groups.values()) == [("process.pid", "int"), ("source.ip", None)]
    assert {groups[g][0]: match[g] for g in groups} == {"process.pid": "42", "source.ip": "10.1.2.3"}
    with pytest.raises(KeyError):
        sshd.grok_to_regex("%{NOT_DEFINED:x}")


def test_pipeline_uses_the_same_patterns():
    body = sshd.pipeline_body()
    groks = [p["grok"] for p in body["processors"] if "grok" in p]
    assert groks[0]["patterns"] == [sshd.HEADER]
    assert groks[1]["patterns"] == [kind.pattern for kind in sshd.KINDS] and groks[1]["trace_match"] is True
    assert all(g["pattern_definitions"] == sshd.PATTERN_DEFINITIONS for g in groks)
    sets = [p["set"] for p in body["processors"] if "set" in p and p["set"]["field"] == "event.action"]
    assert [s["value"] for s in sets] == [kind.action for kind in sshd.KINDS]
    assert sets[3]["if"] == "ctx._tmp?.kind == '3'"


@needs_log
def test_every_real_line_is_parsed_and_counts_match_the_raw_text():
    lines = list(sshd.iter_lines(LOG.read_text(encoding="utf-8")))
    assert len(lines) == 2000
    actions = collections.Counter()
    failed_by_ip = collections.Counter()
    for line in lines:
        for expanded in sshd.expand_repeats(line):
            fields = sshd.parse_line(expanded)
            assert fields is not None, line
            actions[(fields.get("event.action"), fields.get("event.outcome"), fields.get("ssh.method"))] += 1
            if fields.get("event.action") == "ssh_login" and fields["event.outcome"] == "failure" \
                    and fields["ssh.method"] == "password":
                failed_by_ip[fields["source.ip"]] += 1
    text = LOG.read_text(encoding="utf-8")
    raw_failed = len(re.findall(r"sshd\[\d+\]: Failed password", text))
    repeated = [int(n) for n in re.findall(r"message repeated (\d+) times: \[ Failed password", text)]
    assert actions[("ssh_login", "failure", "password")] == raw_failed + sum(repeated) == 528  # 518 lines + 2 × 5
    assert len(failed_by_ip) == 23 and failed_by_ip["183.62.140.253"] == 286
    assert actions[("invalid_user", "failure", None)] == text.count(": Invalid user ") == 113
    assert actions[("possible_break_in", "unknown", None)] == 85
    assert actions[("pam_auth_failure", "failure", None)] == 494
    assert actions[("ssh_login", "success", "password")] == 1  # fztu, the only success
    unparsed = [k for k in actions if k[0] is None]
    assert sum(actions[k] for k in unparsed) == 8  # "PAM service(sshd) ignoring max retries" ×7, one "fatal:"


def test_time_rule_year_zone_and_rollover():
    rule = TimeRule(year=2024, timezone="Asia/Shanghai")
    first, second, third = rule.instants(["Dec 31 23:59:59", "Jan  1 00:00:01", "2024-05-01T12:00:00Z"])
    assert first == dt.datetime(2024, 12, 31, 15, 59, 59, tzinfo=dt.timezone.utc)
    assert second == dt.datetime(2024, 12, 31, 16, 0, 1, tzinfo=dt.timezone.utc)  # next year, 8 h ahead of UTC
    assert third == dt.datetime(2024, 5, 1, 12, tzinfo=dt.timezone.utc)


def test_shift_to_now_keeps_the_gaps():
    now = dt.datetime(2030, 6, 1, 12, 0, tzinfo=dt.timezone.utc)
    instants = TimeRule(now=now).instants(["Dec 10 06:55:46", "Dec 10 07:02:47", "Dec 10 11:04:45"])
    assert instants[-1] == now
    assert instants[1] - instants[0] == dt.timedelta(minutes=7, seconds=1)
    assert now - instants[0] == dt.timedelta(hours=4, minutes=8, seconds=59)


def test_events_expand_repeats_with_the_line_time():
    lines = ["Dec 10 07:13:43 h sshd[1]: Failed password for root from 192.0.2.1 port 1 ssh2",
             "Dec 10 07:13:56 h sshd[1]: message repeated 2 times: [ Failed password for root from 192.0.2.1 port 1 ssh2]",
             "not a syslog line"]
    events, skipped = events_from_lines(lines, TimeRule(year=2024))
    assert skipped == 1 and len(events) == 3
    assert events[1].timestamp == events[2].timestamp == dt.datetime(2024, 12, 10, 7, 13, 56, tzinfo=dt.timezone.utc)
    assert events[2].parsed_document()["source"]["ip"] == "192.0.2.1"
    assert events[2].parsed_document()["event"]["original"].endswith("port 1 ssh2")


def _alerting(lines, window_min: int, threshold: int, distinct_users: bool) -> set[str]:
    events, _ = events_from_lines(lines, TimeRule(year=2024))
    failures = []
    for event in events:
        fields = sshd.parse_line(event.line)
        if fields.get("event.action") == "ssh_login" and fields["event.outcome"] == "failure" and \
                (distinct_users or fields["ssh.method"] == "password"):
            failures.append((event.timestamp, fields["source.ip"], fields["user.name"]))
    out = set()
    tick = failures[0][0].replace(second=0)
    window, delay = dt.timedelta(minutes=window_min), dt.timedelta(seconds=30)
    while tick - window - delay <= failures[-1][0]:
        groups = collections.defaultdict(list)
        for at, ip, user in failures:
            if tick - window - delay <= at < tick - delay:
                groups[ip].append(user)
        out |= {ip for ip, users in groups.items() if len(set(users) if distinct_users else users) >= threshold}
        tick += dt.timedelta(minutes=1)
    return out


def test_generator_is_deterministic_and_holds_the_scenarios():
    end = dt.datetime(2024, 12, 10, 12, 0)
    lines = generate.history(end, seed=7)
    assert lines == generate.history(end, seed=7) != generate.history(end, seed=8)
    assert all(sshd.parse_line(line) is not None for line in lines)
    assert _alerting(lines, 5, 10, distinct_users=False) == set(generate.BRUTE_FORCE)
    assert _alerting(lines, 15, 15, distinct_users=True) == {generate.SPRAYER}
    assert any("message repeated 5 times" in line for line in lines)
    live = generate.live_attack(dt.datetime(2024, 12, 10, 12, 5))
    assert sum("Failed password" in line for line in live) == 30

