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

demo: venv
	$(ES_RUN) $(VENV)/bin/watcher --help

es-start: venv
	$(PY) -m watcher.localcluster start
es-stop: venv
	$(PY) -m watcher.localcluster stop
es-status: venv
	$(PY) -m watcher.localcluster status

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
