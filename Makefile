# Two commands work on a fresh machine with only Python 3: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo lint test bench soak clean-venv

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) docs/examples/baking_flow.py

# ruff and mypy are configured in pyproject.toml (mypy: strict for scout_persist, the plug-in checked too)
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: lint
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) bench/run.py

soak: $(STAMP)
	SCOUT_PERSIST_SOAK=1 $(PY) -m pytest -q tests/reliability tests/topology

clean-venv:
	rm -rf $(VENV)
