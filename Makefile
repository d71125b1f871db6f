# leadsync: every target needs only python3 (3.11+) with pip. The virtualenv lives in .venv
# and is (re)installed from the lock files only when a lock file or pyproject.toml changed.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
PYTEST_ARGS ?=
DEMO_ARGS ?=
CHAOS_ARGS ?=
CONTRACT_DATABASE_URL ?= $(LEADSYNC_TEST_DATABASE_URL)
FUZZ_EXAMPLES ?= 200
FUZZ_STEPS ?= 25
SEED ?=

# Stamps inside the venv: deleting .venv forgets them, so a new venv is always installed.
CREATED := $(VENV)/.stamp-created
RUNTIME := $(VENV)/.stamp-runtime
DEV := $(VENV)/.stamp-dev

.DEFAULT_GOAL := install
.PHONY: demo test lint install bench chaos contract fuzz

## demo: leads through the service into a local HubSpot sandbox (DEMO_ARGS=--keep-running
## leaves the API and its /docs up afterwards)
demo: $(RUNTIME)
	$(BIN)/leadsync demo $(DEMO_ARGS)

## test: run the whole test suite (PostgreSQL cases need LEADSYNC_TEST_DATABASE_URL)
test: $(DEV)
	@# pytest exits 5 when it collected no test: say so, and keep failing.
	@echo "$(BIN)/pytest $(PYTEST_ARGS)"
	@$(BIN)/pytest $(PYTEST_ARGS) || { rc=$$?; \
		if [ $$rc -eq 5 ]; then echo "make test: pytest collected no test (exit 5)" >&2; fi; \
		exit $$rc; }

## lint: ruff, formatting, mypy --strict and the import layers, as CI runs them
lint: $(DEV)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict src
	$(BIN)/lint-imports

## bench: every benchmark in bench/ (PostgreSQL on 127.0.0.1:5432, wrk from Debian);
## each prints its ratios and rewrites its section of bench/RESULTS.md
bench: $(DEV)
	$(BIN)/python bench/sandbox_throughput.py
	$(BIN)/python bench/drain.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/latency.py
	$(BIN)/python bench/scale.py
	$(BIN)/python bench/console.py
	$(BIN)/python bench/retention.py

## chaos: the chaos test (20,000 leads, faults, workers killed); CHAOS_ARGS=--ci for 2 minutes
chaos: $(DEV)
	$(BIN)/python bench/chaos.py $(CHAOS_ARGS)

## contract: schemathesis (every check and phase, stateful included, fixed seed) against a
## live `leadsync serve` on a throw-away PostgreSQL database: CONTRACT_DATABASE_URL, by
## default LEADSYNC_TEST_DATABASE_URL (docs/api.md, "The contract test")
contract: $(DEV)
	@test -n "$(CONTRACT_DATABASE_URL)" || { echo "make contract: set CONTRACT_DATABASE_URL" \
		"(or LEADSYNC_TEST_DATABASE_URL) to a throw-away PostgreSQL database" >&2; exit 2; }
	VENV=$(VENV) scripts/contract.sh "$(CONTRACT_DATABASE_URL)"

## fuzz: the sync engine's state machine (tests/stateful) for longer: FUZZ_EXAMPLES examples
## (200) of up to FUZZ_STEPS steps (25) per database and write mode, shrinking failures, with
## a random seed it prints; `make fuzz SEED=<n>` replays a run (PostgreSQL variants need
## LEADSYNC_TEST_DATABASE_URL, as for make test)
fuzz: $(DEV)
	@seed="$(SEED)"; \
	if [ -z "$$seed" ]; then seed=$$($(BIN)/python -c 'import secrets; print(secrets.randbelow(2**32))'); fi; \
	echo "make fuzz: seed $$seed (replay: make fuzz SEED=$$seed)"; \
	STATEFUL_PROFILE=fuzz FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) FUZZ_STEPS=$(FUZZ_STEPS) \
		$(BIN)/pytest tests/stateful --timeout=0 --hypothesis-seed=$$seed \
		$(PYTEST_ARGS); \
	rc=$$?; echo "make fuzz: seed $$seed (replay: make fuzz SEED=$$seed)"; exit $$rc

## install: create .venv with the runtime and development dependencies
install: $(DEV)

$(CREATED):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "leadsync needs Python 3.11 or newer; $(PYTHON) is $$($(PYTHON) -V 2>&1)" >&2; exit 1; }
	@# Debian's python3 may lack ensurepip (python3-venv): then make the venv without pip
	@# and let the system pip install pip into it.
	@if $(BIN)/python -m pip --version >/dev/null 2>&1; then \
		echo "reusing $(VENV)"; \
	else \
		echo "$(PYTHON) -m venv $(VENV)"; \
		$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV) && $(PYTHON) -m venv --without-pip $(VENV) \
			&& $(PYTHON) -m pip --python $(BIN)/python install pip; }; \
	fi
	@touch $@

$(RUNTIME): requirements.lock pyproject.toml $(CREATED)
	$(PIP) install --quiet -r requirements.lock
	$(PIP) install --quiet --no-deps -e .
	@touch $@

$(DEV): requirements-dev.lock pyproject.toml $(CREATED)
	$(PIP) install --quiet -r requirements-dev.lock
	$(PIP) install --quiet --no-deps -e .
	@touch $@
