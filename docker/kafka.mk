# Local Apache Kafka (KRaft) from Maven Central jars, no Docker: see docker/kafka_local.py.
# Included from the top-level Makefile. Override on the command line, e.g.
#   make kafka-up KAFKA_PORT=19092 KAFKA_NODES=3
KAFKA_LOCAL_PY := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))kafka_local.py)
KAFKA_PORT ?= 9092
KAFKA_NODES ?= 1
KAFKA_PARTITIONS ?= 1
KAFKA_DIR ?= $(abspath $(dir $(KAFKA_LOCAL_PY))../.kafka/local)
KAFKA_LOCAL := python3 $(KAFKA_LOCAL_PY)

.PHONY: kafka-fetch kafka-up kafka-down kafka-status

## kafka-fetch: copy the broker jars into .kafka/libs with Maven (once)
kafka-fetch:
	$(KAFKA_LOCAL) fetch

## kafka-up: start a local broker (or KAFKA_NODES=3 brokers) and print the bootstrap list
kafka-up:
	$(KAFKA_LOCAL) up --dir $(KAFKA_DIR) --port $(KAFKA_PORT) --nodes $(KAFKA_NODES) \
		--partitions $(KAFKA_PARTITIONS)

## kafka-down: stop the local broker(s), keeping their data
kafka-down:
	$(KAFKA_LOCAL) down --dir $(KAFKA_DIR)

## kafka-status: show the local broker(s); fails unless every node answers
kafka-status:
	$(KAFKA_LOCAL) status --dir $(KAFKA_DIR)
