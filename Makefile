# Vortex developer entry points. `make run` starts local mode; `make test` installs and builds what
# the tests need (tests/deps.sh), starts the local cluster, then runs every test; `make test-fresh`
# runs CI (.ci/run) as on a fresh machine, with empty caches; `make bench` builds the same and starts
# the same cluster, then prints every benchmark.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install deps test test-fresh unit lint fmt bench run cluster-up cluster-down cluster-status images clean

install: $(STAMP)

$(STAMP): runtime-image/pyproject.toml api/pyproject.toml operator/pyproject.toml tests/requirements.txt
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ./runtime-image -e './api[cli]' -e ./operator -r tests/requirements.txt
	touch $(STAMP)

deps:
	tests/deps.sh

# Every slow, one-time step (Debian packages, Go builds, images) runs here, never under a test's
# timeout; tests only start and use what is built.
test: install deps cluster-up
	$(PY) -m pytest tests

test-fresh:
	tests/fresh-machine

unit: install
	$(PY) -m pytest tests/unit

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy runtime-image/src/vortex_runtime api/src/vortex_kube api/src/vortex_api api/src/vortex_cli operator/src/vortex_operator
	$(VENV)/bin/lint-imports --no-cache

fmt: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The cluster benchmark installs the chart on the local cluster, so the cluster comes up first.
bench: install deps cluster-up
	$(PY) -m bench

run: install
	$(PY) -m vortex_api

cluster-up: deps
	@[ "$$(id -u)" = 0 ] || { echo "the local cluster needs root: run \`make test\` as root (\`make unit\` runs the unit tests alone)"; exit 1; }
	tests/cluster/up

cluster-down:
	tests/cluster/down

cluster-status:
	tests/cluster/status

images:
	tests/cluster/images

clean:
	rm -rf $(VENV) .vortex .pytest_cache .mypy_cache .ruff_cache
