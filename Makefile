# The README's two commands: `make demo` and `make test`. Each builds .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench validate validate-small clean

$(STAMP): pyproject.toml plugins/ml4t-commission-schedule/pyproject.toml plugins/ml4t-nats/pyproject.toml \
		plugins/ml4t-csv-feed/pyproject.toml plugins/ml4t-delay-broker/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip install --quiet -e plugins/ml4t-commission-schedule -e plugins/ml4t-nats \
		-e plugins/ml4t-csv-feed -e plugins/ml4t-delay-broker
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/ml4t demo

test: $(STAMP)
	bash scripts/system-deps.sh
	$(BIN)/python -m ruff check ml4t tests benchmarks examples
	$(BIN)/python -m mypy
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/python -m ruff check ml4t tests benchmarks examples validation
	$(BIN)/python -m ruff format --check ml4t tests benchmarks examples validation
	$(BIN)/python -m mypy

bench: $(STAMP)
	$(BIN)/python -m benchmarks

# Parity with vectorbt and backtrader (docs/validation.md); the peers are the `validate` extra.
VALIDATE_STAMP := $(VENV)/.validate-installed

$(VALIDATE_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev,validate]'
	touch $(VALIDATE_STAMP)

validate: $(VALIDATE_STAMP)
	$(BIN)/python -m validation

validate-small: $(VALIDATE_STAMP)
	$(BIN)/python -m validation --small

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .mypy_cache .ruff_cache
