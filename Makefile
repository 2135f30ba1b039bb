# The two commands: `make run` and `make test`. Everything else supports them.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/vigil up

lint: $(STAMP)
	$(BIN)/ruff check core sidecar dashboards alerts tests
	$(BIN)/ruff format --check core sidecar dashboards alerts tests
	$(BIN)/mypy

test: $(STAMP) lint
	$(BIN)/python -m pytest -m 'not bench'

bench: $(STAMP)
	$(BIN)/python -m pytest tests/bench -m bench -p no:cacheprovider -s --timeout=1800

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache vigil.db
