# The single entry point: `make test`, `make demo`, `make bench`, `make lint`.
PYTHON ?= python3.11
# Python 3.12 is supported too: `make test` runs the suite on it when it is installed (pyenv or system), pure Python
# (3.11 runs it compiled, see `compile`), so both forms are tested.
PYTHON312 ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12) $(shell command -v python3.12 2>/dev/null))
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help venv compile test lint typecheck unit unit-py312 validate-rules demo bench faults clean postgres-up postgres-down

help:
	@echo "make demo   - a local broker, recovery serve (SQLite) and the simulator; live tasks and gestures (Ctrl-C ends)"
	@echo "make test   - lint, type-check and run the whole test suite"
	@echo "make bench  - throughput and memory; the Quix Streams peer, latency, outage fan-out, 1M customers (long)"
	@echo "make faults - the fault suite: kills, broker and database outages, hostile input; one table, PASS/FAIL"
	@echo "make compile - compile the hot modules with mypyc (done by test, demo and bench; setup.py says which)"
	@echo "make kafka-up / kafka-down - a local Kafka broker on 127.0.0.1:9092 (deploy/kafka)"
	@echo "make postgres-up / postgres-down - a local PostgreSQL on 127.0.0.1:55432 (deploy/postgres)"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip "setuptools>=77"
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# The modules setup.py lists, compiled by mypyc into the tree for $(VENV)'s Python (untracked *.so files, which
# Python imports in place of the .py). Any change under recovery/ compiles again: compiled code relies on the types
# of what it imports. tests/conftest.py refuses to run on compiled modules older than a source.
NATIVE := $(VENV)/.compiled
$(NATIVE): $(STAMP) setup.py $(shell find recovery -name '*.py')
	RECOVERY_COMPILE=1 $(BIN)/python setup.py --quiet build_ext --inplace --force
	touch $@

compile: $(NATIVE)

lint: $(STAMP)
	$(BIN)/ruff check recovery tests bench faults setup.py
	$(BIN)/ruff format --check recovery tests bench faults setup.py

typecheck: $(STAMP)
	$(BIN)/mypy

validate-rules: $(NATIVE)
	$(BIN)/recovery validate rules/
	$(BIN)/recovery test rules/
	$(BIN)/recovery validate rules/examples/
	$(BIN)/recovery test rules/examples/

unit: $(NATIVE)
	RECOVERY_EXPECT_COMPILED=1 $(BIN)/pytest

.venv312/.installed: pyproject.toml
	$(PYTHON312) -m venv .venv312
	.venv312/bin/pip install --quiet --upgrade pip "setuptools>=77"
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

demo: $(NATIVE)
	deploy/demo.sh

# bench.loop runs the serve loop without a broker: what the loop itself costs per event, the instrument for a change
# to the per-event path. The issue-18 benches after bench.end_to_end (docs/operations.md, "Capacity"): bench.peer
# installs quixstreams in .cache/peer/venv the first time, and measures recovery with each set of Kafka clients
# (kafka-python's, confluent-kafka's producer, confluent-kafka's consumer and producer: bench/servers.py CLIENTS);
# latency and fan-out and scale run with kafka-python's (the default) and confluent-kafka's.
# BENCH_LATENCY_SECONDS=10 shortens bench.latency's 60 s per rate.
bench: $(NATIVE)
	$(BIN)/python -m bench.replay_throughput
	$(BIN)/python -m bench.memory
	$(BIN)/python -m bench.loop
	$(BIN)/python -m bench.end_to_end
	$(BIN)/python -m bench.peer
	$(BIN)/python -m bench.latency
	$(BIN)/python -m bench.latency --clients confluent-kafka
	$(BIN)/python -m bench.fanout
	$(BIN)/python -m bench.fanout --clients confluent-kafka
	$(BIN)/python -m bench.scale
	$(BIN)/python -m bench.scale --clients confluent-kafka

# The fault suite (docs/operations.md, "Faults"): real servers and processes, a table of scenarios; exit 1 on a FAIL.
faults: $(NATIVE)
	$(BIN)/python -m faults

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
	rm -rf $(VENV) .venv312 .cache .pytest_cache .mypy_cache .ruff_cache .hypothesis build
	find recovery -name '*.so' -delete
