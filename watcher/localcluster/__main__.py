"""``python -m watcher.localcluster start|stop|status|run -- CMD…`` (also ``scripts/elasticsearch``).

* ``start`` starts a persistent local node (port 9250 unless ``--port``) and prints the URL;
  ``stop`` and ``status`` act on it. With ``ES_URL`` set, nothing is started.
* ``run -- CMD…`` provides a cluster as :func:`watcher.localcluster.provide` does, runs CMD with
  ``ES_URL`` (and auth variables) set, stops what it started, and exits with CMD's exit code.
* ``has-java N`` prints the home of a Java N or newer and exits 0, else says what it saw and exits 1
  (``make test`` asks it before the Elasticsearch 9 run).

``WATCHER_TEST_ENGINE`` (``elasticsearch``, ``opensearch``, ``elasticsearch9``) picks what a local
node runs; see :mod:`watcher.localcluster.engines`.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

from watcher.es.client import redact_url
from watcher.localcluster import ClusterUnavailable, from_environment, provide
from watcher.localcluster.distribution import java_home
from watcher.localcluster.engines import selected_engine
from watcher.localcluster.jvm import JvmNode


def _start(args) -> int:
    existing = from_environment()
    if existing:
        print(f"ES_URL is set; using {redact_url(existing.url)} (nothing started)")
        return 0
    node = JvmNode.named(http_port=args.port)
    began = time.monotonic()
    cluster = node.start()
    print(f"{node.engine.product} {node.engine.version} is up after "
          f"{time.monotonic() - began:.1f}s (data in {node.instance_dir})")
    print(f"export ES_URL={cluster.url}")
    return 0


def _stop(args) -> int:
    stopped = JvmNode.named(http_port=args.port).stop()
    print("stopped" if stopped else "not running")
    return 0


def _status(args) -> int:
    cluster = JvmNode.named(http_port=args.port).cluster()
    if cluster is None:
        print("not running")
        return 3
    print(f"running: export ES_URL={cluster.url}")
    return 0


def _run(args) -> int:
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        print("run needs a command after --", file=sys.stderr)
        return 2
    # SIGTERM (CI timeouts, Ctrl-C in make) must still stop the node: turn it into an exception.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    began = time.monotonic()
    with provide() as cluster:
        what = f"{selected_engine().product} {selected_engine().version} node" if cluster.kind == "jvm" else "cluster"
        print(f"[cluster] {cluster.kind} {what} at {redact_url(cluster.url)} "
              f"(ready in {time.monotonic() - began:.1f}s)", flush=True)
        child = subprocess.Popen(command, env={**os.environ, **cluster.env()})
        try:
            return child.wait()
        except KeyboardInterrupt:
            child.terminate()
            child.wait()
            return 130
        finally:
            print(f"[cluster] stopping the {cluster.kind} cluster", flush=True)


def _has_java(args) -> int:
    try:
        print(java_home(args.version))
    except ClusterUnavailable as error:
        print(error, file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``) and run the verb; returns the process exit code."""
    parser = argparse.ArgumentParser(prog="scripts/elasticsearch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="verb", required=True)
    for verb, handler in (("start", _start), ("stop", _stop), ("status", _status)):
        command = sub.add_parser(verb)
        command.add_argument("--port", type=int, default=9250, help="HTTP port of the local node")
        command.set_defaults(handler=handler)
    run = sub.add_parser("run", help="provide a cluster, run a command with ES_URL set, stop it")
    run.add_argument("command", nargs=argparse.REMAINDER)
    run.set_defaults(handler=_run)
    has_java = sub.add_parser("has-java", help="print the home of a Java VERSION or newer (exit 1 if none)")
    has_java.add_argument("version", type=int)
    has_java.set_defaults(handler=_has_java)
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except ClusterUnavailable as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
