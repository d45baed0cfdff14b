# Vortex developer entry points. `make run` starts local mode; `make test` installs what the
# tests need and runs them all.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install deps test unit lint fmt bench run cluster-up cluster-down cluster-status images clean

install: $(STAMP)

$(STAMP): runtime-image/pyproject.toml api/pyproject.toml operator/pyproject.toml tests/requirements.txt
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ./runtime-image -e ./api -e ./operator -r tests/requirements.txt
	touch $(STAMP)

deps:
	tests/deps.sh

test: install deps
	$(PY) -m pytest tests

unit: install
	$(PY) -m pytest tests/unit

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy runtime-image/src/vortex_runtime api/src/vortex_api operator/src/vortex_operator

fmt: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install deps
	$(PY) -m bench

run: install
	$(PY) -m vortex_api

cluster-up:
	tests/cluster/up

cluster-down:
	tests/cluster/down

cluster-status:
	tests/cluster/status

images:
	tests/cluster/images

clean:
	rm -rf $(VENV) .vortex .pytest_cache .mypy_cache .ruff_cache
