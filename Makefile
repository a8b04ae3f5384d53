# complaintflow — `make run` serves the product, `make test` checks it. Both start from a fresh
# clone: they create .venv and install what they need.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
export COMPLAINTFLOW_HOME ?= $(CURDIR)/var

.PHONY: run install install-test test-env modeler-if-npm lint test bench lock clean

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

# Pin again what pyproject.toml's ranges resolve to today, in a venv of its own, tests included.
lock:
	rm -rf $(VENV).lock && $(PYTHON) -m venv $(VENV).lock
	$(VENV).lock/bin/pip install --quiet -e '.[test]'
	grep '^#' constraints.txt > constraints.new
	$(VENV).lock/bin/pip freeze --exclude-editable >> constraints.new
	mv constraints.new constraints.txt && rm -rf $(VENV).lock

install: $(VENV)/.installed

# The in-browser diagram editor (bpmn-js, pinned in package-lock.json). `make run` carries on
# without it when there is no npm (the edit pages then point to the upload page); the tests need it.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

modeler-if-npm:
	@if command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory node_modules/.installed; \
	else echo "npm not found: serving without the in-browser diagram editor (the rest works)"; fi

install-test: $(VENV)/.installed-test

run: install modeler-if-npm
	$(BIN)/complaintflow init --demo-users
	$(BIN)/complaintflow serve --host $(HOST) --port $(PORT)

# PostgreSQL, Redis, Chromium, a Chinese font and npm for the tests and the benchmark: installed from
# Debian when missing, PostgreSQL and Redis started when stopped; fails loudly when that cannot be done.
test-env:
	scripts/ensure-test-env

lint: install-test
	$(BIN)/ruff check complaintflow workers webhooks tests bench
	$(BIN)/ruff format --check complaintflow workers webhooks tests bench
	$(BIN)/mypy

test: install-test test-env node_modules/.installed lint
	$(BIN)/pytest

# The engine layer against bare SpiffWorkflow, completions over HTTP against the servers a
# deployment runs, and the inbox and search over 100,000 complaints (README: the figures).
bench: install-test test-env
	$(BIN)/python bench/run.py
	$(BIN)/python bench/api_load.py
	$(BIN)/python bench/search.py --complaints 100000

clean:
	rm -rf $(VENV) var tests/artifacts node_modules
