# The front door: `make` alone lists the targets with their `## ` help.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

# Embedded default: a SQLite store and an artifact folder in the working directory.
MLFLOW_TRACKING_URI ?= sqlite:///mlflow.db
export MLFLOW_TRACKING_URI
MODEL_NAME ?= product-classifier
PORT ?= 8000
TRAIN_ARGS ?=
PYTEST_ARGS ?=

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_.-]+:.*## / {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml constraints.txt
	@test -n "$(PYTHON)" || { echo "error: python3.11 not found; install Python 3.11 first" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[train,serve,dev]'
	@touch $@

.PHONY: install
install: $(STAMP) ## Create .venv and install the project with all extras (pinned by constraints.txt)

.PHONY: run
run: train serve ## Train on the bundled sample, register and promote, then serve the champion

.PHONY: train
train: $(STAMP) ## Train on the bundled sample into the embedded MLflow store (TRAIN_ARGS=... for more)
	$(VENV)/bin/product-train --model-name $(MODEL_NAME) $(TRAIN_ARGS)

.PHONY: serve
serve: $(STAMP) ## Serve models:/$(MODEL_NAME)@champion from the embedded store on $(PORT)
	MODEL_NAME=$(MODEL_NAME) PORT=$(PORT) $(VENV)/bin/product-serve

.PHONY: lint
lint: $(STAMP) ## ruff (lint + format check) and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

.PHONY: format
format: $(STAMP) ## Rewrite the code with ruff's formatter and fixes
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

.PHONY: test
test: lint ## Lint, then the whole test suite (unit, integration with real servers, platform checks)
	$(VENV)/bin/pytest $(PYTEST_ARGS)

.PHONY: test-unit
test-unit: $(STAMP) ## Only the fast unit tests (no servers, no external tools)
	$(VENV)/bin/pytest -m "not integration and not platform and not container" $(PYTEST_ARGS)

.PHONY: constraints
constraints: $(STAMP) ## Re-pin constraints.txt from the current virtual environment
	$(PY) -m pip freeze --exclude-editable | grep -v '^-e' > constraints.txt

.PHONY: clean-local
clean-local: ## Remove the embedded MLflow store and caches (keeps .venv)
	rm -rf mlflow.db mlruns mlartifacts .pytest_cache .mypy_cache .ruff_cache
