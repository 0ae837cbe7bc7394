# Two commands matter on a fresh machine: `make demo` (the main job) and `make test` (the tests).
# Both create the virtual environment and provide a real Elasticsearch (see README.md).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
ES_RUN := $(PY) -m watcher.localcluster run --

.PHONY: venv test unit demo es-start es-stop es-status clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("Python >= 3.11 is required") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

# Provides Elasticsearch (ES_URL, else Docker, else a local JVM node), runs pytest, stops it.
test: venv
	$(ES_RUN) $(PY) -m pytest $(PYTEST_ARGS)

# Tests that need no cluster.
unit: venv
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

# The SSH brute-force demo (README "Demo"): generated sshd lines, or DEMO_LOG=PATH for a real log;
# the daemon runs DEMO_SECONDS (default 90; 45 with DEMO_LOG) after loading, then everything stops and
# a per-rule summary is printed.
DEMO_LOG     ?=
DEMO_SECONDS ?=
demo: venv
	$(ES_RUN) $(PY) -m watcher.cli demo run $(if $(DEMO_SECONDS),--seconds $(DEMO_SECONDS)) $(if $(DEMO_LOG),--log "$(DEMO_LOG)")

es-start: venv
	$(PY) -m watcher.localcluster start
es-stop: venv
	$(PY) -m watcher.localcluster stop
es-status: venv
	$(PY) -m watcher.localcluster status

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info

# Benchmarks (issue 8; not part of `make test`): evaluation throughput (ours vs the _msearch floor vs
# ElastAlert2), delivery throughput and schedule lag; one table, one JSON result.
# BENCH_ARGS e.g. "--parts eval,delivery,lag --rules 100,1000,10000 --alerts 10000 --lag-rules 10000
# --lag-seconds 180 --profile --out /tmp/bench.json"; quick check: "--rules 100 --alerts 200 --lag-rules 1000
# --lag-seconds 75" (see docs/benchmarks.md).
BENCH_ARGS ?= --profile
.PHONY: bench
bench: venv
	$(ES_RUN) $(PY) -m bench $(BENCH_ARGS)
