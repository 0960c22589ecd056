# The README's two commands: `make run` (set up and start the bot) and `make test` (set up and pass the tests).
# Console options go in ARGS: `make run ARGS=--admin`, `make console ARGS="--user ada --channel demo"`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
ARGS ?=
VERSION := $(shell cksum pyproject.toml | cut -d' ' -f1)
RUN_STAMP := $(VENV)/.installed-run-$(VERSION)
DEV_STAMP := $(VENV)/.installed-dev-$(VERSION)
# pip's and setuptools' chatter goes to a log, shown only when the install fails.
INSTALL_LOG := $(VENV)/install.log
QUIET_PIP := $(PY) -m pip install --quiet --disable-pip-version-check

.PHONY: run console test lint bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# What running needs: the bot and its dependencies, no test or lint tools.
$(RUN_STAMP): pyproject.toml | $(PY)
	@echo "Installing teambot into $(VENV) (log: $(INSTALL_LOG))…"
	@$(QUIET_PIP) -e . >$(INSTALL_LOG) 2>&1 || { cat $(INSTALL_LOG); exit 1; }
	@rm -f $(VENV)/.installed-run-*
	@touch $@

# `make test` and `make lint` add the dev tools (pytest, ruff, mypy).
$(DEV_STAMP): $(RUN_STAMP)
	@echo "Installing the test and lint tools…"
	@$(QUIET_PIP) -e '.[dev]' >$(INSTALL_LOG) 2>&1 || { cat $(INSTALL_LOG); exit 1; }
	@rm -f $(VENV)/.installed-dev-*
	@touch $@

run: $(RUN_STAMP)
	@$(PY) -m bot run $(ARGS)

console: $(RUN_STAMP)
	@$(PY) -m bot console $(ARGS)

test: $(DEV_STAMP)
	$(PY) -m pytest -q

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check bot adapters storage tests benchmarks
	$(VENV)/bin/ruff format --check bot adapters storage tests benchmarks
	$(VENV)/bin/mypy bot adapters storage tests benchmarks

bench: $(DEV_STAMP)
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
