"""Helpers for the HTTP API integration tests: tokens, the HTTP configuration file, and ``watcher run``
started with it as a real subprocess (:class:`daemon_helpers.DaemonProcess`)."""

from __future__ import annotations

import uuid

from daemon_helpers import DaemonProcess, free_port

ADMIN_TOKEN = "adm-" + uuid.uuid4().hex  # token "ops", role admin
READ_TOKEN = "rd-" + uuid.uuid4().hex    # token "board", role read
HTTP_CONFIG = ("tokens:\n  ops:\n    role: admin\n    token: ${ADMIN_TOKEN}\n"
               "  board:\n    role: read\n    token: ${READ_TOKEN}\n")


def write_http_config(folder, extra: str = ""):
    """``folder/http.yaml`` with the two tokens (from the environment) and ``extra`` YAML (``tls:``…)."""
    path = folder / "http.yaml"
    path.write_text(HTTP_CONFIG + extra)
    return path


def start_served(es_cluster, folder, prefix: str, rules, http_config, *, env: dict | None = None) -> DaemonProcess:
    """Start ``watcher run --http-config http_config`` over ``rules`` on a free port (state dir and log in
    ``folder``); the caller kills it."""
    args = ["--rules", str(rules), "--index-prefix", prefix, "--jitter", "0", "--max-retry-delay", "1",
            "--max-attempts", "1000", "--grace", "5", "--http-config", str(http_config)]
    environment = {"WATCHER_STATE_DIR": str(folder / "state"), **es_cluster.env(), "ADMIN_TOKEN": ADMIN_TOKEN,
                   "READ_TOKEN": READ_TOKEN, **(env or {})}
    return DaemonProcess(args, environment, folder / "daemon.log", free_port()).start()
