"""A real Elasticsearch node in a local JVM, from artifacts that Maven Central serves.

The design asked for ``org.codelibs:elasticsearch-cluster-runner:8.14.1.0``; Maven Central only has
that runner up to 7.10.2.0, so this module uses the Elasticsearch distribution that Elastic publishes
to Central for integration tests: ``org.elasticsearch.distribution.integ-test-zip:elasticsearch:8.14.1``.
It is the real server (same ``lib/`` jars, x-pack core and security) with a reduced module set:
no ``lang-painless``, ``lang-mustache``, ``ingest-common``, ``aggregations`` (pipeline aggregations
such as ``bucket_selector``) and no ``rest-root`` (``GET /`` answers 405). Tests that need those
modules check the cluster and skip with that reason; point ``ES_URL`` at a full cluster to run them.

Maven resolves the zip once (into ``~/.m2`` and our cache folder, ignored by git); later starts
reuse the unpacked copy. Elasticsearch refuses to run as root, so when we are root the node runs
as ``nobody``. Each node gets its own config, data and log folders; the process runs in its own
session so that :meth:`JvmNode.stop` ends the launcher and the server JVM together.
"""

from __future__ import annotations

import contextlib
import fcntl
import grp
import json
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
import zipfile
from pathlib import Path

from watcher.localcluster.cluster import Cluster, ClusterUnavailable

VERSION = os.environ.get("WATCHER_ES_VERSION", "8.14.1")
MAVEN_ARTIFACT = "org.elasticsearch.distribution.integ-test-zip:elasticsearch:{version}:zip"
DEFAULT_HEAP = os.environ.get("WATCHER_ES_HEAP", "1g")
STOP_GRACE_SECONDS = 30.0


def cache_dir() -> Path:
    """Where distributions and node folders live: ``$WATCHER_ES_CACHE``, else ``<repo>/.cache/elasticsearch``.

    When running as root and the repository path is not traversable by other users (the node runs
    as ``nobody``), falls back to ``/var/tmp/watcher-elasticsearch``.
    """
    configured = os.environ.get("WATCHER_ES_CACHE")
    if configured:
        return Path(configured).resolve()
    repo = Path(__file__).resolve().parents[2]
    base = repo / ".cache" / "elasticsearch" if (repo / "pyproject.toml").exists() else (
        Path.home() / ".cache" / "watcher" / "elasticsearch")
    if os.geteuid() == 0 and not _traversable_by_others(base):
        return Path("/var/tmp/watcher-elasticsearch")
    return base


def _traversable_by_others(path: Path) -> bool:
    for parent in [path, *path.parents]:
        if parent.exists() and not parent.stat().st_mode & stat.S_IXOTH:
            return False
    return True


def _java_home() -> str:
    if os.environ.get("ES_JAVA_HOME"):
        return os.environ["ES_JAVA_HOME"]
    if os.environ.get("JAVA_HOME"):
        return os.environ["JAVA_HOME"]
    java = shutil.which("java")
    if not java:
        raise ClusterUnavailable("no Java found: install a JDK 17+ or set JAVA_HOME")
    return str(Path(java).resolve().parents[1])


@contextlib.contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_distribution(version: str = VERSION) -> Path:
    """Return the unpacked Elasticsearch home for ``version``, resolving it with Maven if needed.

    Raises:
        ClusterUnavailable: Maven is missing or could not resolve the artifact (message has its output).
    """
    root = cache_dir()
    home = root / f"elasticsearch-{version}"
    if (home / "bin" / "elasticsearch").exists():
        return home
    with _locked(root / ".download.lock"):
        if (home / "bin" / "elasticsearch").exists():
            return home
        download = root / "download"
        download.mkdir(parents=True, exist_ok=True)
        archive = download / f"elasticsearch-{version}.zip"
        if not archive.exists():
            mvn = shutil.which("mvn")
            if not mvn:
                raise ClusterUnavailable("Maven (mvn) is needed to fetch Elasticsearch from Maven Central")
            command = [mvn, "-q", "-B", "dependency:copy",
                       f"-Dartifact={MAVEN_ARTIFACT.format(version=version)}",
                       f"-DoutputDirectory={download}"]
            result = subprocess.run(command, capture_output=True, text=True)
            if result.returncode != 0 or not archive.exists():
                raise ClusterUnavailable("Maven could not resolve Elasticsearch:\n" + result.stdout[-3000:] + result.stderr[-2000:])
        staging = Path(tempfile.mkdtemp(prefix="unpack-", dir=root))
        _unzip_with_modes(archive, staging)
        (staging / f"elasticsearch-{version}").rename(home)
        shutil.rmtree(staging, ignore_errors=True)
    return home


def _unzip_with_modes(archive: Path, target: Path) -> None:
    # zipfile drops Unix modes; the launch scripts and the JDK-less layout need their exec bits.
    with zipfile.ZipFile(archive) as zipped:
        for info in zipped.infolist():
            extracted = Path(zipped.extract(info, target))
            mode = (info.external_attr >> 16) & 0o777
            if extracted.is_dir():
                extracted.chmod(0o755)
            else:
                extracted.chmod((mode | 0o644) & 0o755 if mode else 0o644)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class JvmNode:
    """One single-node Elasticsearch cluster on 127.0.0.1, security off (loopback only, for local use).

    Args:
        instance_dir: folder holding this node's ``config``, ``data``, ``logs`` and ``state.json``.
        http_port: HTTP port; 0 picks a free one at start.
        heap: JVM heap for ``-Xms``/``-Xmx`` (e.g. ``1g``).
        ephemeral: remove ``instance_dir`` on :meth:`stop`.
    """

    def __init__(self, instance_dir: Path, http_port: int = 0, heap: str = DEFAULT_HEAP, ephemeral: bool = False):
        self.instance_dir = instance_dir
        self.http_port = http_port
        self.heap = heap
        self.ephemeral = ephemeral
        self._process: subprocess.Popen | None = None

    @classmethod
    def ephemeral(cls) -> "JvmNode":
        """A throw-away node on a free port (tests, CI)."""
        root = cache_dir() / "instances"
        root.mkdir(parents=True, exist_ok=True)
        return cls(Path(tempfile.mkdtemp(prefix="node-", dir=root)), ephemeral=True)

    @classmethod
    def named(cls, name: str = "local", http_port: int = 9250) -> "JvmNode":
        """A node whose folder and data persist between ``start`` and ``stop`` (scripts/elasticsearch)."""
        return cls(cache_dir() / "nodes" / name, http_port=http_port)

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
        if running:
            return running
        home = ensure_distribution()
        port = self.http_port or free_port()
        self._prepare_instance(home, port)
        log = open(self.instance_dir / "logs" / "console.log", "ab")
        user = self._run_as()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ES_", "JAVA_TOOL"))}
        env.update({
            "ES_PATH_CONF": str(self.instance_dir / "config"),
            "ES_JAVA_HOME": _java_home(),
            "ES_TMPDIR": str(self.instance_dir / "tmp"),
            "HOME": str(self.instance_dir),
        })
        self._process = subprocess.Popen(
            [str(home / "bin" / "elasticsearch")], cwd=self.instance_dir, env=env,
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
            with contextlib.suppress(FileNotFoundError):
                (config / "elasticsearch.keystore").unlink()
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
            # Local, loopback-only node for tests and demos: security is off on purpose.
            "xpack.security.enabled": False,
            "cluster.routing.allocation.disk.threshold_enabled": False,
            "action.destructive_requires_name": False,
        }
        (config / "elasticsearch.yml").write_text(
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
