# The README's two commands: `make demo` and `make test`, each with its own environment.
#   make demo  builds .venv-demo with ml4t's runtime dependencies only (no dev extra: no
#              Ray, NATS or browser test tools) and runs the demo into $(DEMO_DIR)/.
#              Files you edited there are never overwritten: `make demo DEMO_ARGS=--force`.
#   make test  builds .venv with the dev and validate extras and the in-repo plugins, installs the
#              system packages the tests need, then runs ruff, mypy and pytest.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_VENV := .venv-demo
DEMO_STAMP := $(DEMO_VENV)/.installed
DEMO_DIR ?= ml4t-demo
DEMO_ARGS ?=
VALIDATE_STAMP := $(VENV)/.validate-installed

.PHONY: demo test lint bench validate validate-small clean

$(STAMP): pyproject.toml plugins/ml4t-commission-schedule/pyproject.toml plugins/ml4t-nats/pyproject.toml \
		plugins/ml4t-csv-feed/pyproject.toml plugins/ml4t-delay-broker/pyproject.toml \
		plugins/ml4t-alpaca/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip install --quiet -e plugins/ml4t-commission-schedule -e plugins/ml4t-nats \
		-e plugins/ml4t-csv-feed -e plugins/ml4t-delay-broker -e 'plugins/ml4t-alpaca[test]'
	touch $(STAMP)

# editable, as the test venv: the demo runs this checkout's code, never a stale copy
$(DEMO_STAMP): pyproject.toml
	$(PYTHON) -m venv $(DEMO_VENV)
	$(DEMO_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -e .
	touch $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	@$(DEMO_VENV)/bin/ml4t demo $(DEMO_DIR) $(DEMO_ARGS) || { status=$$?; \
		if [ $$status -eq 2 ]; then echo "make demo: run your files with" \
			"$(DEMO_VENV)/bin/ml4t run $(DEMO_DIR)/config.yaml, or start over with" \
			"make demo DEMO_ARGS=--force" >&2; fi; exit $$status; }

# the validate extra too: the benchmark harness's own tests run vectorbt
test: $(VALIDATE_STAMP)
	bash scripts/system-deps.sh
	$(BIN)/python -m ruff check ml4t tests benchmarks examples
	$(BIN)/python -m mypy
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/python -m ruff check ml4t tests benchmarks examples validation
	$(BIN)/python -m ruff format --check ml4t tests benchmarks examples validation
	$(BIN)/python -m mypy

# every benchmark (docs/performance.md); vectorbt, for the comparison, is the validate extra.
# make bench BENCH_ARGS=--big adds the 3,000-symbol year (18 GB of data, generated once).
BENCH_ARGS ?=

bench: $(VALIDATE_STAMP)
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

# Parity with vectorbt and backtrader (docs/validation.md); the peers are the `validate` extra.

$(VALIDATE_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev,validate]'
	touch $(VALIDATE_STAMP)

validate: $(VALIDATE_STAMP)
	$(BIN)/python -m validation

validate-small: $(VALIDATE_STAMP)
	$(BIN)/python -m validation --small

clean:
	rm -rf $(VENV) $(DEMO_VENV) .pytest_cache .hypothesis .mypy_cache .ruff_cache
