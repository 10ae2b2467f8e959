# The README's commands and a few more; `make help` lists them.
.DEFAULT_GOAL := help
SHELL := /bin/bash

VENV ?= .venv
BIN := $(VENV)/bin
# Python 3.12+: pyenv honours .python-version; otherwise the first python3.1x found.
PYTHON ?= $(shell for p in python3.12 python3.13 python3.14 python3; do \
	command -v $$p >/dev/null && $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null \
	&& { command -v $$p; break; }; done)
STAMP := $(VENV)/.installed

.PHONY: help demo test lint schema clients assets bench install clean

help:  ## list the commands
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.12 or newer is needed" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip uv
	$(BIN)/uv pip install -q --python $(BIN)/python -e '.[embedded]' --group dev
	touch $(STAMP)

install: $(STAMP)  ## create the virtualenv and install everything

demo: $(STAMP)  ## run the demo on http://127.0.0.1:8000/tasks-ui (PORT=, HOST=, ARGS="--flags")
	$(BIN)/gql-history demo $(if $(HOST),--host $(HOST)) $(if $(PORT),--port $(PORT)) $(ARGS)

test: $(STAMP)  ## run the test suite (local or embedded PostgreSQL and Redis)
	$(BIN)/pytest -q

lint: $(STAMP)  ## ruff, mypy and the import layers (import-linter)
	$(BIN)/ruff check gql_history tests bench examples scripts
	$(BIN)/ruff format --check gql_history tests bench examples scripts
	$(BIN)/mypy
	$(BIN)/lint-imports

schema: $(STAMP)  ## regenerate schema.graphql from the code
	$(BIN)/strawberry export-schema gql_history.schema:schema --output schema.graphql

clients: $(STAMP)  ## generate the typed Python and TypeScript clients from schema.graphql (needs npm)
	$(BIN)/python -m examples.clients.generate schema.graphql

assets: $(STAMP)  ## re-vendor the pages' browser assets from npm (pins: scripts/vendor_assets.py)
	$(BIN)/python -m scripts.vendor_assets

bench: $(STAMP)  ## run the benchmark (1,000,000 runs; slow, not part of the tests)
	$(BIN)/python -m bench

clean:  ## remove the virtualenv, embedded server data and generated clients
	rm -rf $(VENV) .gql-history examples/clients/*/generated \
		examples/clients/typescript/node_modules examples/clients/typescript/dist
