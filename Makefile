# The single entry point: `make test`, `make demo`, `make bench`, `make lint`.
PYTHON ?= python3.11
# Python 3.12 is supported too: `make test` runs the suite on it when it is installed (pyenv or system).
PYTHON312 ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12) $(shell command -v python3.12 2>/dev/null))
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help venv test lint typecheck unit unit-py312 validate-rules demo bench clean postgres-up postgres-down

help:
	@echo "make demo   - a local broker, recovery serve (SQLite) and the simulator; live tasks and gestures (Ctrl-C ends)"
	@echo "make test   - lint, type-check and run the whole test suite"
	@echo "make bench  - throughput and memory benchmarks"
	@echo "make kafka-up / kafka-down - a local Kafka broker on 127.0.0.1:9092 (deploy/kafka)"
	@echo "make postgres-up / postgres-down - a local PostgreSQL on 127.0.0.1:55432 (deploy/postgres)"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check recovery tests bench
	$(BIN)/ruff format --check recovery tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

validate-rules: $(STAMP)
	$(BIN)/recovery validate rules/
	$(BIN)/recovery test rules/

unit: $(STAMP)
	$(BIN)/pytest

.venv312/.installed: pyproject.toml
	$(PYTHON312) -m venv .venv312
	.venv312/bin/pip install --quiet --upgrade pip
	.venv312/bin/pip install --quiet -e '.[dev]'
	touch $@

unit-py312:
ifeq ($(strip $(PYTHON312)),)
	@echo "python3.12 not found: skipping the Python 3.12 run"
else
	$(MAKE) .venv312/.installed
	.venv312/bin/pytest -q -p no:cacheprovider
endif

test: lint typecheck validate-rules unit unit-py312

demo: $(STAMP)
	deploy/demo.sh

bench: $(STAMP)
	$(BIN)/python -m bench.replay_throughput
	$(BIN)/python -m bench.memory
	$(BIN)/python -m bench.end_to_end

# A local single-node Kafka broker (jars from Maven Central, cached in deploy/kafka/.cache); see deploy/kafka/README.md.
kafka-up:
	deploy/kafka/start.sh

kafka-down:
	deploy/kafka/stop.sh

# A local PostgreSQL (the Debian package, installed if missing; data in deploy/postgres/.cache); see
# deploy/postgres/README.md. Prints the store URL, postgresql://postgres@127.0.0.1:55432/recovery.
postgres-up:
	deploy/postgres/start.sh

postgres-down:
	deploy/postgres/stop.sh

clean:
	rm -rf $(VENV) .venv312 .cache .pytest_cache .mypy_cache .ruff_cache .hypothesis
