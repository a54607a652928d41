# The README's two commands: `make demo` and `make test`. Each builds .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/ml4t demo

test: $(STAMP)
	bash scripts/system-deps.sh
	$(BIN)/python -m ruff check ml4t tests benchmarks examples
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/python -m ruff check ml4t tests benchmarks examples
	$(BIN)/python -m ruff format --check ml4t tests benchmarks examples

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
