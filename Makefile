# Two commands matter: `make demo` runs the main job, `make test` checks everything.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# bench is included so the quick benchmark run in the tests exercises every peer.
EXTRAS ?= dev,oracles,services,bench
PYENV_ROOT ?= $(shell pyenv root 2>/dev/null || echo $(HOME)/.pyenv)
MATRIX := 3.10 3.11 3.12 3.13

.PHONY: test lint typecheck pytest matrix bench demo reliability clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $(STAMP)

test: $(STAMP) lint typecheck pytest

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: $(STAMP)
	$(PY) -m mypy --strict

pytest: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS)

# Run the suite on every CPython 3.10-3.13 pyenv has, each in its own venv.
matrix:
	@for v in $(MATRIX); do \
	  bin=$$(ls -d $(PYENV_ROOT)/versions/$$v*/bin/python 2>/dev/null | sort -V | tail -n 1); \
	  if [ -z "$$bin" ]; then echo "matrix: CPython $$v not installed, skipped"; continue; fi; \
	  venv=.venv-$$v; \
	  [ -x $$venv/bin/python ] || $$bin -m venv $$venv || exit 1; \
	  $$venv/bin/python -m pip install --quiet --upgrade pip || exit 1; \
	  $$venv/bin/python -m pip install --quiet -e '.[$(EXTRAS)]' || exit 1; \
	  echo "matrix: CPython $$($$venv/bin/python -c 'import platform; print(platform.python_version())')"; \
	  $$venv/bin/python -m pytest -q -p no:cacheprovider $(MATRIX_ARGS) || exit 1; \
	done

bench: $(STAMP)
	$(PY) -m benchmarks

# Full sizes, on both cores; the local PostgreSQL is used unless a DSN is given.
reliability: $(STAMP)
	IAP_POSTGRES_DSN=$${IAP_POSTGRES_DSN:-postgresql://127.0.0.1:5432/test} \
	IAP_RELIABILITY=full IAP_RELIABILITY_REPORT=docs/reliability.md \
	  $(PY) -m pytest -q -n 2 --timeout=1800 tests/reliability

# Needs nothing but Python: the script finds the package in src/ when it is not installed.
demo:
	$(PYTHON) examples/end_to_end.py $(DEMO_ARGS)

clean:
	rm -rf $(VENV) .venv-3.* build dist .mypy_cache .pytest_cache .ruff_cache
