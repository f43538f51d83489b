# Two commands matter: `make run` (everything, locally) and `make test` (the whole suite).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
KAFKA_PORT ?= 9092
export KAFKA_PORT

.PHONY: install run test lint unit faults bench soak clean

include docker/kafka.mk

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $@

## run: local broker, topics, handlers and the webhook on 127.0.0.1:8080 (Ctrl-C stops them)
run: install kafka-up
	KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$(KAFKA_PORT) $(BIN)/agora-events topics create --partitions 3
	KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$(KAFKA_PORT) PATH=$(CURDIR)/$(BIN):$$PATH sh docker/run-local.sh

## test: lint, types, then every test (a broker is started unless KAFKA_BOOTSTRAP_SERVERS is set)
test: install kafka-fetch lint
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy webhook handlers
# Apart: with docker/ on its path, mypy would take docker/kafka/ for the kafka package.
	$(BIN)/mypy docker/kafkalocal docker/kafka_local.py

unit: install
	$(BIN)/pytest -m "not kafka"

faults: install kafka-fetch
	$(BIN)/pytest -m faults -s

bench: install kafka-fetch
	$(BIN)/python bench/ingest.py

## soak: webhook, handlers and reconciler at 50 callbacks/s for 10 min, RSS over time (SOAK_ARGS="--minutes 2")
soak: install kafka-fetch
	$(BIN)/python bench/soak.py $(SOAK_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache
