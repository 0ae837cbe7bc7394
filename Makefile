# Two commands matter on a fresh machine: `make demo` (the main job) and `make test` (the tests).
# Both create the virtual environment and provide a real Elasticsearch (see README.md).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
ES_RUN := $(PY) -m watcher.localcluster run --

.PHONY: venv test test-opensearch test-es9 unit demo es-start es-stop es-status clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("Python >= 3.11 is required") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

# The whole suite on Elasticsearch 8 (ES_URL, else Docker, else a local JVM node), then the integration
# suite on OpenSearch 2 with Painless, Mustache and ingest (docs/backends.md); each cluster is stopped after.
# Tests that need those modules are marked `scripting` and run on OpenSearch only; the HTTP surface
# tests (`http_surface`: API, streams, outbox secrets) run on Elasticsearch 8 only, since the event log,
# state, stored-watch and outbox stores under them are checked on every product by the other tests.
test: venv
	$(ES_RUN) $(PY) -m pytest -m "not scripting" $(PYTEST_ARGS)
	$(MAKE) --no-print-directory test-opensearch
	@if $(PY) -m watcher.localcluster has-java 21 >/dev/null; then $(MAKE) --no-print-directory test-es9; \
	else echo "[test] no Java 21 or newer here: the Elasticsearch 9 run (make test-es9) is left out"; fi

test-opensearch: venv
	WATCHER_TEST_ENGINE=opensearch $(ES_RUN) $(PY) -m pytest tests/integration -m "not without_scripting and not http_surface" $(PYTEST_ARGS)

# The integration suite on Elasticsearch 9.2.0 (needs a Java 21 or newer; found under /usr/lib/jvm or
# WATCHER_JAVA_HOME). `make test` runs it too when such a Java exists.
test-es9: venv
	WATCHER_TEST_ENGINE=elasticsearch9 $(ES_RUN) $(PY) -m pytest tests/integration -m "not scripting and not http_surface" $(PYTEST_ARGS)

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

# Event streams under load (issue 13): SSE subscribers + stalled ones while the daemon fires alerts,
# with and without subscribers (docs/benchmarks.md#event-streams). STREAMS_ARGS e.g. "--subscribers 200 --seconds 30".
STREAMS_ARGS ?=
.PHONY: bench-streams
bench-streams: venv
	$(ES_RUN) $(PY) -m bench.streams $(STREAMS_ARGS)
