# The two commands: `make run` and `make test`. Everything else supports them.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint generate bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/vigil up

# Regenerate every generated file from its one source: the rule file and its SLO tests, the
# dashboards, and the chart's copies of both (the tests fail while any of them is stale).
generate: $(STAMP)
	$(BIN)/python -m alerts.generate
	$(BIN)/python -m dashboards.build
	$(BIN)/python helm/sync.py

lint: $(STAMP)
	$(BIN)/ruff check core sidecar dashboards alerts tests helm/sync.py
	$(BIN)/ruff format --check core sidecar dashboards alerts tests helm/sync.py
	$(BIN)/mypy

test: $(STAMP) lint
	$(BIN)/python -m pytest -m 'not bench'

bench: $(STAMP)
	$(BIN)/python -m pytest tests/bench -m bench -p no:cacheprovider -s --timeout=1800

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache vigil.db
