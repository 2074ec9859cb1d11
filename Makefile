# Two commands work on a fresh machine with only Python 3: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
INSTALL_LOG := $(VENV)/install.log
# The demo shows the demo: Prefect's own INFO lines and its usage telemetry (which the server reports as an error on a
# machine without network) stay off. The plug-in gives Prefect's first server the time it needs to start.
DEMO_ENV := PREFECT_LOGGING_LEVEL=WARNING PREFECT_SERVER_ANALYTICS_ENABLED=false DO_NOT_TRACK=1

.PHONY: demo lint test bench soak clean-venv

# pip's output goes to $(INSTALL_LOG), shown only when the install fails
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing scout-persist and its development tools into $(VENV) (a minute or two; log: $(INSTALL_LOG))"
	@$(PY) -m pip install --upgrade pip > $(INSTALL_LOG) 2>&1 || { cat $(INSTALL_LOG); exit 1; }
	@$(PY) -m pip install -e '.[dev]' >> $(INSTALL_LOG) 2>&1 || { cat $(INSTALL_LOG); exit 1; }
	@touch $(STAMP)

demo: $(STAMP)
	@$(DEMO_ENV) $(PY) docs/examples/baking_flow.py

# ruff and mypy are configured in pyproject.toml (mypy: strict for scout_persist, the plug-in checked too)
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# Most of the suite's time is spent waiting on servers and child processes, so it runs in 3 workers even on 2 cores;
# each file stays on one worker, the longest files start first (tests/conftest.py). TEST_WORKERS=0: one process.
TEST_WORKERS ?= 3
test: lint
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile

# BENCH_ARGS: e.g. "--only cached_tasks.first_run_vs_prefect --repeat 3" (bench/run.py --help)
bench: $(STAMP)
	$(PY) bench/run.py $(BENCH_ARGS)

soak: $(STAMP)
	SCOUT_PERSIST_SOAK=1 $(PY) -m pytest -q tests/reliability tests/topology

clean-venv:
	rm -rf $(VENV)
