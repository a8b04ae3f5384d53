# complaintflow — `make run` serves the product, `make test` checks it. Both start from a fresh
# clone: they create .venv and install what they need.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
export COMPLAINTFLOW_HOME ?= $(CURDIR)/var

.PHONY: run install install-test test-env lint test bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

run: install
	$(BIN)/complaintflow init --demo-users
	$(BIN)/complaintflow serve --host $(HOST) --port $(PORT)

# PostgreSQL, Chromium and a Chinese font for the tests and the benchmark: installed from Debian
# when missing, PostgreSQL started when stopped; fails loudly when that cannot be done.
test-env:
	scripts/ensure-test-env

lint: install-test
	$(BIN)/ruff check complaintflow workers webhooks tests bench
	$(BIN)/ruff format --check complaintflow workers webhooks tests bench
	$(BIN)/mypy

test: install-test test-env lint
	$(BIN)/pytest

bench: install-test test-env
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) var tests/artifacts
