# labelapp: `make run` starts everything on one machine; `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
REQS := requirements/base.txt requirements/ml.txt requirements/dev.txt
PYTEST_ARGS ?=

.PHONY: venv run test test-quick test-fast lint format bench services browser clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip wheel

# torch first, pinned: anything that depends on torch would otherwise pull a multi-GB CUDA build.
$(STAMP): $(PY) $(REQS) package.json
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -r requirements/dev.txt
	npm ci --no-audit --no-fund --silent
	touch $(STAMP)

venv: $(STAMP)

run: venv
	./scripts/run.sh

services:
	./scripts/services.sh

browser:
	./scripts/browser.sh

# CI: a fresh test database every run.
test: venv services browser
	$(VENV)/bin/pytest --create-db -q $(PYTEST_ARGS)

# Local runs keep the test database between runs (only new migrations are applied); after a
# migration changed in place, run `make test` once.
test-quick: venv services browser
	$(VENV)/bin/pytest --reuse-db -q $(PYTEST_ARGS)

test-fast: venv services
	$(VENV)/bin/pytest --reuse-db -q -m "not browser and not training" $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/djlint templates --lint
	$(PY) scripts/check_access.py
	$(VENV)/bin/mypy

format: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: venv services
	$(PY) bench/import_prompts.py

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .hypothesis
