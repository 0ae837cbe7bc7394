"""Realistic sshd syslog lines for the demo, from our own code (no third-party data).

:func:`history` writes a stretch of an Internet-facing server's ``auth.log``: colleagues logging in
(publickey and password, sessions opened and closed), background scanners (one or two guesses,
banner grabs), two brute-force bursts (one with rsyslog's ``message repeated 5 times``), and a slow
password-spraying run (many user names, too slow for the brute-force threshold). :func:`live_attack`
writes a brute-force burst to replay while the daemon runs. Same ``seed`` → same lines.
Addresses come from the documentation ranges (RFC 5737: 192.0.2.0/24, 198.51.100.0/24,
203.0.113.0/24), so nothing points at a real host.

Who the demo rules should alert (with the shipped thresholds): ssh-bruteforce → 203.0.113.45 and
203.0.113.77 (history) and 203.0.113.99 (live); ssh-user-enumeration → 198.51.100.23.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random

__all__ = ["BRUTE_FORCE", "LIVE_ATTACKER", "SPRAYER", "history", "live_attack", "syslog_line"]

HOST = "bastion"
BRUTE_FORCE = ("203.0.113.45", "203.0.113.77")
SPRAYER = "198.51.100.23"
LIVE_ATTACKER = "203.0.113.99"
COLLEAGUES = {"alice": "192.0.2.10", "bob": "192.0.2.11", "deploy": "192.0.2.20"}
SPRAY_USERS = ("admin", "test", "oracle", "postgres", "ubuntu", "git", "guest", "user", "ftp", "pi", "support",
               "jenkins", "hadoop", "mysql", "www", "nagios", "backup", "demo", "dev", "tomcat", "minecraft",
               "teamspeak", "elastic", "kafka")


@dataclasses.dataclass(order=True)
class _Line:
    at: dt.datetime
    seq: int
    pid: int
    text: str


class _Writer:
    """Collects messages with their times and process ids; renders syslog lines in time order."""

    def __init__(self, rng: random.Random, host: str):
        self.rng, self.host = rng, host
        self.lines: list[_Line] = []
        self.next_pid = rng.randint(20000, 30000)

    def pid(self) -> int:
        self.next_pid += self.rng.randint(1, 7)
        return self.next_pid

    def add(self, at: dt.datetime, pid: int, text: str) -> None:
        self.lines.append(_Line(at, len(self.lines), pid, text))

    def port(self) -> int:
        return self.rng.randint(32768, 60999)

    def failed_password(self, at: dt.datetime, ip: str, user: str, invalid: bool, pid: int, port: int) -> None:
        if invalid:
            self.add(at, pid, "pam_unix(sshd:auth): check pass; user unknown")
            self.add(at, pid, f"pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={ip} ")
        else:
            self.add(at, pid, f"pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= "
                              f"rhost={ip}  user={user}")
        who = f"invalid user {user}" if invalid else user
        self.add(at + dt.timedelta(seconds=2), pid, f"Failed password for {who} from {ip} port {port} ssh2")

    def render(self) -> list[str]:
        return [syslog_line(line.at, self.host, line.pid, line.text) for line in sorted(self.lines)]


def syslog_line(at: dt.datetime, host: str, pid: int, text: str) -> str:
    """``Dec  1 06:55:46 host sshd[pid]: text`` (classic syslog: day padded with a space, no year)."""
    return f"{at:%b} {at.day:>2} {at:%H:%M:%S} {host} sshd[{pid}]: {text}"


def _login(w: _Writer, at: dt.datetime, user: str, ip: str) -> None:
    pid, port = w.pid(), w.port()
    method = w.rng.choice(("publickey", "publickey", "password"))
    suffix = ": ED25519 SHA256:" + "".join(w.rng.choice("ABCDEFGHabcdefgh0123456789") for _ in range(43)) \
        if method == "publickey" else ""
    w.add(at, pid, f"Accepted {method} for {user} from {ip} port {port} ssh2{suffix}")
    w.add(at, pid, f"pam_unix(sshd:session): session opened for user {user} by (uid=0)")
    end = at + dt.timedelta(minutes=w.rng.randint(2, 40))
    w.add(end, pid, f"Received disconnect from {ip} port {port}:11: disconnected by user")
    w.add(end, pid, f"pam_unix(sshd:session): session closed for user {user}")


def _scanner(w: _Writer, at: dt.datetime, ip: str) -> None:
    pid, port = w.pid(), w.port()
    if w.rng.random() < 0.3:
        w.add(at, pid, f"Did not receive identification string from {ip} port {port}")
        return
    for attempt in range(w.rng.randint(1, 2)):
        w.failed_password(at + dt.timedelta(seconds=3 * attempt), ip, "root", False, pid, port)
    w.add(at + dt.timedelta(seconds=8), pid, f"Received disconnect from {ip} port {port}:11: Bye Bye [preauth]")


def _burst(w: _Writer, at: dt.datetime, ip: str, attempts: int, pace_s: float, repeat_once: bool = False) -> None:
    """``attempts`` failed root passwords, ``pace_s`` apart, 6 per connection (sshd's MaxAuthTries)."""
    w.add(at, w.pid(), f"reverse mapping checking getaddrinfo for scan-{ip.replace('.', '-')}.example.net [{ip}] "
                       f"failed - POSSIBLE BREAK-IN ATTEMPT!")
    done = 0
    while done < attempts:
        pid, port = w.pid(), w.port()
        start = at + dt.timedelta(seconds=done * pace_s)
        if repeat_once and done == 0:
            w.failed_password(start, ip, "root", False, pid, port)
            w.add(start + dt.timedelta(seconds=2 + 5 * pace_s), pid,
                  f"message repeated 5 times: [ Failed password for root from {ip} port {port} ssh2]")
            w.add(start + dt.timedelta(seconds=3 + 5 * pace_s), pid,
                  "Disconnecting: Too many authentication failures for root [preauth]")
            done += 6
            continue
        tries = min(6, attempts - done)
        for k in range(tries):
            w.failed_password(start + dt.timedelta(seconds=k * pace_s), ip, "root", False, pid, port)
        w.add(start + dt.timedelta(seconds=tries * pace_s), pid,
              f"Received disconnect from {ip} port {port}:11: Bye Bye [preauth]")
        done += tries


def _spray(w: _Writer, at: dt.datetime, ip: str, users: tuple[str, ...], pace_s: float) -> None:
    for k, user in enumerate(users):
        pid, port = w.pid(), w.port()
        t = at + dt.timedelta(seconds=k * pace_s)
        w.add(t, pid, f"Invalid user {user} from {ip} port {port}")
        w.add(t, pid, f"input_userauth_request: invalid user {user} [preauth]")
        w.failed_password(t, ip, user, True, pid, port)
        w.add(t + dt.timedelta(seconds=3), pid, f"Connection closed by invalid user {user} {ip} port {port} [preauth]")


def history(end: dt.datetime, *, hours: float = 2.0, seed: int = 7, host: str = HOST) -> list[str]:
    """Lines covering ``[end − hours, end]`` (``end`` naive or aware; rendered as its wall time).

    Returns:
        syslog lines in time order (no year, like a classic ``auth.log``).
    """
    rng = random.Random(seed)
    w = _Writer(rng, host)
    start = end - dt.timedelta(hours=hours)
    span = (end - start).total_seconds()

    def at(fraction: float) -> dt.datetime:
        return start + dt.timedelta(seconds=int(span * fraction))

    for user, ip in COLLEAGUES.items():
        for _ in range(max(1, int(hours * 2))):
            _login(w, at(rng.uniform(0.0, 0.95)), user, ip)
    for _ in range(int(hours * 30)):
        _scanner(w, at(rng.random() * 0.98), f"198.51.100.{rng.randint(100, 250)}")
    _burst(w, at(0.25), BRUTE_FORCE[0], attempts=42, pace_s=4.0, repeat_once=True)
    _burst(w, at(0.70), BRUTE_FORCE[1], attempts=24, pace_s=7.0)
    _spray(w, at(0.45), SPRAYER, SPRAY_USERS, pace_s=40.0)  # 7–8 per 5 min: under the brute-force bar
    lines = [line for line in w.lines if line.at <= end]
    w.lines = lines
    return w.render()


def live_attack(start: dt.datetime, *, seed: int = 7, host: str = HOST, attempts: int = 30,
                pace_s: float = 2.0) -> list[str]:
    """A brute-force burst from :data:`LIVE_ATTACKER` beginning at ``start`` (``attempts`` failed
    passwords ``pace_s`` seconds apart), for replay while the daemon runs."""
    w = _Writer(random.Random(seed + 1), host)
    _burst(w, start, LIVE_ATTACKER, attempts=attempts, pace_s=pace_s)
    return w.render()
