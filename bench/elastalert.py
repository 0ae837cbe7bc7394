"""ElastAlert2 2.31 on the same rules, in its own Python 3.12 virtual environment.

ElastAlert2 2.31 needs Python ≥ 3.12, so it cannot share our 3.11 environment: :func:`ensure_venv`
creates ``bench/.venv-ea2`` with a 3.12 interpreter (``EA2_PYTHON``, else pyenv's 3.12.x, else
``python3.12``) and installs ``elastalert2==2.31.0`` from PyPI with pip. :func:`measure` writes the
rules as ``frequency`` rules with ``use_count_query`` (``num_events`` = our threshold, ``timeframe``
= our window), a config pointing at the same cluster (``run_every`` = the window: count queries are
cut into ``run_every`` segments, so each rule run is one ``_count`` request, like our one search),
the writeback index ``bench_elastalert``, creates the writeback indices
(``elastalert-create-index``), and runs :mod:`bench.ea2_driver` inside that environment.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from bench.data import INDEX
from bench.rules import THRESHOLD, rule_query

VERSION = "2.31.0"
HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv-ea2"
WRITEBACK = "bench_elastalert"


def find_python312() -> str | None:
    """A Python 3.12 interpreter: ``EA2_PYTHON``, pyenv's newest 3.12.x, or ``python3.12`` on PATH."""
    if os.environ.get("EA2_PYTHON"):
        return os.environ["EA2_PYTHON"]
    found = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.12.*/bin/python")))
    return found[-1] if found else shutil.which("python3.12")


def ensure_venv() -> Path:
    """``bench/.venv-ea2/bin/python`` with elastalert2 installed (created on first use).

    Raises:
        RuntimeError: no Python 3.12 interpreter, or venv creation / pip install failed.
    """
    python = VENV / "bin" / "python"
    marker = VENV / f".installed-{VERSION}"
    if marker.exists():
        return python
    base = find_python312()
    if base is None:
        raise RuntimeError("ElastAlert2 2.31 needs Python >= 3.12 and none was found (set EA2_PYTHON)")
    for step in ([base, "-m", "venv", str(VENV)],
                 [str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
                 [str(python), "-m", "pip", "install", "--quiet", f"elastalert2=={VERSION}"]):
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(step)} failed:\n{done.stderr[-3000:]}")
    marker.touch()
    return python


def rule_yaml(i: int) -> dict:
    """Rule ``i`` of :mod:`bench.rules` as an ElastAlert2 ``frequency`` rule with ``use_count_query``."""
    return {
        "name": f"bench-rule-{i:05d}",
        "type": "frequency",
        "index": INDEX,
        "timestamp_field": "@timestamp",
        "num_events": THRESHOLD,
        "timeframe": {"hours": 1},
        "use_count_query": True,
        "filter": [{"query": {"query_string": {"query": rule_query(i)}}}],
        "alert": ["post"],
        "http_post_url": "http://127.0.0.1:9/bench",
    }


def write_setup(workdir: Path, count: int, es_url: str) -> Path:
    """Write ``count`` rule files and ``config.yaml`` under ``workdir``; returns the config path."""
    from urllib.parse import urlsplit

    # JSON is YAML: no YAML writer needed in our environment (ElastAlert2 reads them with its own).
    rules = workdir / "rules"
    shutil.rmtree(rules, ignore_errors=True)
    rules.mkdir(parents=True)
    for i in range(count):
        (rules / f"rule-{i:05d}.yaml").write_text(json.dumps(rule_yaml(i), indent=1))
    url = urlsplit(es_url)
    config = {"rules_folder": str(rules), "run_every": {"hours": 1}, "buffer_time": {"hours": 1},
              "es_host": url.hostname, "es_port": url.port or 9200, "use_ssl": url.scheme == "https",
              "writeback_index": WRITEBACK, "alert_time_limit": {"days": 1}}
    path = workdir / "config.yaml"
    path.write_text(json.dumps(config, indent=1))
    return path


def measure(count: int, scheduled, es_url: str, workdir: Path, es_version: str) -> dict:
    """Run ElastAlert2 over the ``count`` rules once at ``scheduled``; the driver's JSON result.

    ``es_version`` is given to ElastAlert2 as ``ES_VERSION``: it otherwise asks ``GET /``, which
    the Maven Central integration-test distribution answers with 405 (no ``rest-root`` module).

    Raises:
        RuntimeError: installation, index creation or the run failed.
    """
    python = ensure_venv()
    config = write_setup(workdir, count, es_url)
    index_marker = workdir / ".writeback-created"
    env = {**os.environ, "PYTHONPATH": str(HERE.parent), "ES_VERSION": es_version}
    if not index_marker.exists():
        create = [str(python), "-m", "elastalert.create_index", "--config", str(config), "--recreate", "True",
                  "--no-auth"]
        done = subprocess.run(create, capture_output=True, text=True, env=env)
        if done.returncode != 0:
            raise RuntimeError(f"elastalert-create-index failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}")
        index_marker.touch()
    command = [str(python), "-m", "bench.ea2_driver", "--config", str(config), "--scheduled", scheduled.isoformat()]
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"ElastAlert2 run failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":  # python -m bench.elastalert: just install, to check the environment
    print(ensure_venv(), file=sys.stderr)
