# Developer entry points. `make test` and `make demo` work on a fresh machine: they build
# .venv first. PYTHON picks the interpreter that creates it (3.11 or newer).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=
LINT_PATHS := operator tests $(wildcard benchmarks)

.PHONY: help venv test lint format crds clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml scripts/install-k8s-tools.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, pinned: an open range would let pip resolve a multi-GB CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[runtime,sandbox,dev]'
	PYTHON=$(BIN)/python scripts/install-k8s-tools.sh $(BIN)
	touch $@

venv: $(STAMP)  ## create .venv with the project, its extras, kubectl and helm

lint: $(STAMP)  ## ruff (lint + format check) and mypy
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy

format: $(STAMP)  ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix $(LINT_PATHS)
	$(BIN)/ruff format $(LINT_PATHS)

test: lint  ## lint, then every test (e2e tests skip without a cluster)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/pytest $(PYTEST_ARGS)

crds: $(STAMP)  ## regenerate crds/ and docs/api-reference.md from the API models
	$(BIN)/bigmodel crds --out crds --reference docs/api-reference.md

clean:  ## remove the virtual environment and caches
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
