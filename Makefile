# The two set-up commands of README.md, and the developer's checks.
#   make demo   install the core into .venv and start the registry with sample adapters
#   make test   install everything (CPU torch first) and run the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: demo test check fmt install-core install-all system-deps screenshots bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.core-installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e .
	touch $@

# CPU torch first: the pinned build lies on this machine's disk; anything else pulls a multi-GB CUDA build.
$(VENV)/.all-installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[diffusers,s3,postgres,hsm,dev]"
	touch $@ $(VENV)/.core-installed

install-core: $(VENV)/.core-installed
install-all: $(VENV)/.all-installed

system-deps:
	bash scripts/install-system-deps.sh

demo: install-core
	$(BIN)/lorareg serve --demo --data $${LORAREG_HOME:-./lorareg-data} --host $(HOST) --port $(PORT)

test: system-deps install-all
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest $(PYTEST_ARGS)

check: install-all
	$(BIN)/ruff format --check lorareg tests benchmarks
	$(BIN)/ruff check lorareg tests benchmarks
	$(BIN)/mypy

fmt: install-all
	$(BIN)/ruff format lorareg tests benchmarks
	$(BIN)/ruff check --fix lorareg tests benchmarks

screenshots: system-deps install-all
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest tests/test_web_browser.py -k screenshots --screenshots-dir docs/screenshots
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest tests/test_login_cli.py -k identity_provider --screenshots-dir docs/screenshots

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
