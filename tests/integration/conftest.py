"""Fixtures shared by the tests that run the daemon as a process (test_daemon*.py)."""

from __future__ import annotations

import pytest

from daemon_helpers import DaemonProcess, free_port


@pytest.fixture
def start_daemon(es_cluster, prefix, rules_dir, tmp_path):
    """Start ``watcher run`` as a subprocess over the test module's ``rules_dir`` and ``prefix``;
    every process started is killed in teardown. Their state directory (the deployment key file) is
    the test's, never the user's."""
    started: list[DaemonProcess] = []

    def start(*extra: str, env: dict | None = None, http_port: int | None = None) -> DaemonProcess:
        args = ["--rules", str(rules_dir), "--index-prefix", prefix, "--jitter", "0", "--max-retry-delay", "1",
                "--max-attempts", "1000", "--grace", "10", *extra]
        daemon = DaemonProcess(args, {"WATCHER_STATE_DIR": str(tmp_path / "state"), **es_cluster.env(), **(env or {})},
                               tmp_path / "daemon.log", http_port or free_port())
        started.append(daemon.start())
        return daemon

    yield start
    for daemon in started:
        daemon.kill()
