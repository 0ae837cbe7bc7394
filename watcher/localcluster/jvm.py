"""A real search engine node in a local JVM, from artifacts that Maven Central serves.

Which engine — Elasticsearch 8.14.1 (default), OpenSearch 2.19.6 with its script and ingest modules, or
Elasticsearch 9.2.0 — is :func:`watcher.localcluster.engines.selected_engine` (``WATCHER_TEST_ENGINE``);
:mod:`watcher.localcluster.distribution` fetches and assembles it once into the cache folder (ignored by
git), and later starts reuse it. The engines refuse to run as root, so when we are root the node runs as
``nobody``. Each node gets its own config, data and log folders; the process runs in its own session
so that :meth:`JvmNode.stop` ends the launcher and the server JVM together.
"""

from __future__ import annotations

import contextlib
import grp
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from watcher.localcluster.cluster import Cluster, ClusterUnavailable
from watcher.localcluster.distribution import cache_dir, ensure_distribution, java_home
from watcher.localcluster.engines import Engine, selected_engine

DEFAULT_HEAP = os.environ.get("WATCHER_ES_HEAP", "1g")
STOP_GRACE_SECONDS = 30.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class JvmNode:
    """One single-node cluster on 127.0.0.1, security off (loopback only, for local use).

    Args:
        engine: what to run (default: :func:`~watcher.localcluster.engines.selected_engine`).
        instance_dir: folder holding this node's ``config``, ``data``, ``logs`` and ``state.json``.
        http_port: HTTP port; 0 picks a free one at start.
        heap: JVM heap for ``-Xms``/``-Xmx`` (e.g. ``1g``).
        ephemeral: remove ``instance_dir`` on :meth:`stop`.
    """

    def __init__(self, instance_dir: Path, http_port: int = 0, heap: str = DEFAULT_HEAP, ephemeral: bool = False,
                 engine: Engine | None = None):
        self.engine = engine or selected_engine()
        self.instance_dir = instance_dir
        self.http_port = http_port
        self.heap = heap
        self.ephemeral = ephemeral
        self._process: subprocess.Popen | None = None

    @classmethod
    def ephemeral(cls, engine: Engine | None = None) -> "JvmNode":
        """A throw-away node on a free port (tests, CI)."""
        root = cache_dir() / "instances"
        root.mkdir(parents=True, exist_ok=True)
        return cls(Path(tempfile.mkdtemp(prefix="node-", dir=root)), ephemeral=True, engine=engine)

    @classmethod
    def named(cls, name: str = "local", http_port: int = 9250, engine: Engine | None = None) -> "JvmNode":
        """A node whose folder and data persist between ``start`` and ``stop`` (scripts/elasticsearch).

        Each engine and port has its own folder (``nodes/<name>`` for Elasticsearch 8 on 9250,
        ``nodes/<name>-<engine>-<port>`` otherwise): data written by one engine is not readable by
        another, and ``stop --port P`` must stop the node on P, not another one.
        """
        engine = engine or selected_engine()
        folder = name if (engine.name, http_port) == ("elasticsearch", 9250) else f"{name}-{engine.name}-{http_port}"
        return cls(cache_dir() / "nodes" / folder, http_port=http_port, engine=engine)

    @property
    def state_file(self) -> Path:
        return self.instance_dir / "state.json"

    def state(self) -> dict | None:
        """``{"pid", "pgid", "url"}`` of a node started from this folder and still alive, else None."""
        try:
            state = json.loads(self.state_file.read_text())
            os.killpg(state["pgid"], 0)
            return state
        except (OSError, ValueError, KeyError):
            return None

    def cluster(self) -> Cluster | None:
        state = self.state()
        return Cluster(url=state["url"], kind="jvm") if state else None

    def start(self, timeout: float = 180.0) -> Cluster:
        """Start the node in the background and wait until the cluster is yellow.

        Returns:
            The running cluster (``kind="jvm"``).

        Raises:
            ClusterUnavailable: the distribution could not be fetched, the node exited, or it was not ready
                within ``timeout`` seconds; the message ends with the node's last log lines.
        """
        running = self.cluster()
        if running:  # started by another command, maybe a moment ago: ready only when it answers
            running.wait_until_ready(timeout=timeout, alive=lambda: self.state() is not None)
            return running
        engine = self.engine
        home = ensure_distribution(engine)
        java = java_home(engine.min_java)
        port = self.http_port or free_port()
        self._prepare_instance(home, port)
        log = open(self.instance_dir / "logs" / "console.log", "ab")
        user = self._run_as()
        prefix = engine.env_prefix
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ES_", "OPENSEARCH_", "JAVA_TOOL"))}
        env.update({
            f"{prefix}_PATH_CONF": str(self.instance_dir / "config"),
            f"{prefix}_JAVA_HOME": str(java),
            f"{prefix}_TMPDIR": str(self.instance_dir / "tmp"),
            "HOME": str(self.instance_dir),
        })
        self._process = subprocess.Popen(
            [str(home / "bin" / engine.launcher)], cwd=self.instance_dir, env=env,
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            **user)
        log.close()
        url = f"http://127.0.0.1:{port}"
        self.state_file.write_text(json.dumps({"pid": self._process.pid, "pgid": self._process.pid, "url": url}))
        cluster = Cluster(url=url, kind="jvm")
        try:
            cluster.wait_until_ready(timeout=timeout, alive=lambda: self._process.poll() is None)
        except ClusterUnavailable as error:
            tail = self.log_tail()
            self.stop()
            raise ClusterUnavailable(f"{error}\n--- last lines of the node's log ---\n{tail}") from None
        return cluster

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the node's console log (for error messages)."""
        path = self.instance_dir / "logs" / "console.log"
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> bool:
        """Stop the node (SIGTERM, then SIGKILL after 30 s) and wait until every process is gone.

        Returns:
            True if a running node was stopped.
        """
        state = self.state()
        stopped = False
        process = self._process
        if state:
            # Our own child stays a zombie until reaped, which would look alive to killpg(…, 0).
            stopped = _terminate_group(state["pgid"], reap=process.poll if process else None)
        if process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
            self._process = None
        with contextlib.suppress(FileNotFoundError):
            self.state_file.unlink()
        if self.ephemeral:
            shutil.rmtree(self.instance_dir, ignore_errors=True)
        return stopped

    def _run_as(self) -> dict:
        if os.geteuid() != 0:
            return {}
        nobody = pwd.getpwnam("nobody")
        group = grp.getgrgid(nobody.pw_gid).gr_name
        return {"user": nobody.pw_uid, "group": group, "extra_groups": []}

    def _prepare_instance(self, home: Path, port: int) -> None:
        for sub in ("data", "logs", "tmp"):
            (self.instance_dir / sub).mkdir(parents=True, exist_ok=True)
        config = self.instance_dir / "config"
        if not config.exists():
            shutil.copytree(home / "config", config)
            for keystore in config.glob("*.keystore"):
                keystore.unlink()
        # jvm.options names gc.log, heap dumps and error files relative to the working directory
        # that the launcher picks; make them absolute inside this node's folder.
        options = (home / "config" / "jvm.options").read_text()
        logs = self.instance_dir / "logs"
        options = (options.replace("file=logs/gc.log", f"file={logs}/gc.log")
                   .replace("HeapDumpPath=data", f"HeapDumpPath={self.instance_dir / 'data'}")
                   .replace("ErrorFile=logs/", f"ErrorFile={logs}/"))
        (config / "jvm.options").write_text(options)
        (config / "jvm.options.d").mkdir(exist_ok=True)
        (config / "jvm.options.d" / "heap.options").write_text(f"-Xms{self.heap}\n-Xmx{self.heap}\n")
        settings = {
            "cluster.name": "watcher-local",
            "node.name": "watcher-local-node",
            "discovery.type": "single-node",
            "network.host": "127.0.0.1",
            "http.port": port,
            "transport.port": free_port(),
            "path.data": str(self.instance_dir / "data"),
            "path.logs": str(logs),
            **dict(self.engine.settings),
            "cluster.routing.allocation.disk.threshold_enabled": False,
            "action.destructive_requires_name": False,
        }
        (config / self.engine.config_file).write_text(
            "# Written by watcher.localcluster for a local, loopback-only node.\n"
            + "".join(f"{key}: {json.dumps(value)}\n" for key, value in settings.items()))
        if os.geteuid() == 0:
            owner = self._run_as()
            for path in [self.instance_dir, *self.instance_dir.rglob("*")]:
                os.chown(path, owner["user"], grp.getgrnam(owner["group"]).gr_gid)


def _terminate_group(pgid: int, reap=None) -> bool:
    def alive() -> bool:
        if reap is not None:
            reap()
        try:
            os.killpg(pgid, 0)
            return True
        except ProcessLookupError:
            return False

    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    while time.monotonic() < deadline:
        if not alive():
            return True
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    while alive():
        time.sleep(0.1)
    return True
