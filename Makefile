# Frontoffice — the two commands are `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev
export FRONTOFFICE_DATA_DIR ?= data

.PHONY: run test lint typecheck unit bench messages clean

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

## run: set up, create the SQLite database with demo data on first run, serve on 127.0.0.1:8080
run: $(STAMP)
	$(VENV)/bin/frontoffice init
	$(VENV)/bin/frontoffice serve

# The suite runs on this many worker processes (pytest-xdist): most tests wait on real peers
# (servers starting, sipp, Chromium), so two workers on two cores keep both busy. 0 runs in one process.
PYTEST_WORKERS ?= 2

## test: lint, type check and the whole pytest suite (exit code 5, "no tests ran", is a failure)
test: $(STAMP) lint typecheck
	@$(PY) -m pytest -q -p no:cacheprovider -n $(PYTEST_WORKERS) $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

unit: $(STAMP)
	@$(PY) -m pytest -q tests/unit; rc=$$?; [ $$rc -ne 5 ] || exit 1; exit $$rc

## bench: every benchmark in bench/, full size (QUICK=1 for the quick variants)
bench: $(STAMP)
	@for b in bench/[!_]*.py; do echo "== $$b"; $(PY) $$b $(if $(QUICK),--quick,) || exit 1; done

## messages: extract UI strings and update the en/ru catalogs
messages: $(STAMP)
	$(VENV)/bin/pybabel extract -F babel.cfg -k NotFound -k InvalidInput -k Conflict -k Forbidden -k Unauthenticated -k Throttled -k Unavailable -k Gone -k DomainError -k ApiError:3 --no-location --sort-output -o frontoffice/locale/messages.pot frontoffice
	$(VENV)/bin/pybabel update -i frontoffice/locale/messages.pot -d frontoffice/locale --no-fuzzy-matching

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
