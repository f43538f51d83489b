"""How much the operator commands read: time to the first (newest) dead letter and to a
channel's timeline, against reading the whole topics as the former `dlq list` did, in
the same run.

    KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 python bench/operator_reads.py [--letters 20000]

Writes ``--letters`` dead letters over 200 channels to a fresh 6-partition DLQ (and as
many events), then measures, three times each, taking the best:

- ``dlq list --limit 20`` (newest first, chunked from the end) vs a full read of the DLQ;
- ``timeline --cname C`` over events + DLQ (one partition by key) vs a full read of both.

Prints the figures in seconds and the ratios. Needs a running broker.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable

from kafka import KafkaProducer

from handlers.runtime import dlq
from handlers.runtime.replay import DlqReader, LetterFilter
from handlers.runtime.scan import bounds, open_consumer, read_forward
from handlers.testing.fresh_topics import create_topics, unique_topics
from handlers.timeline import read_timeline

CHANNELS = 200


def fill(bootstrap: str, events: str, dlq_topic: str, letters: int) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=256_000)
    try:
        for i in range(letters):
            cname = f"class-{i % CHANNELS}"
            body = json.dumps({"noticeId": f"n{i}", "productId": 3, "eventType": 1,
                               "notifyMs": 0, "payload": {"cname": cname, "sid": "s",
                                                          "details": {"msgName": "x"}}})
            producer.send(events, key=cname.encode(), value=body.encode())
            record = dlq.dead_letter(
                dlq_topic=dlq_topic, source_topic=events, partition=0, offset=i,
                key=cname.encode(), value=body.encode(), headers=[("noticeId", b"n")],
                handler="notify", error="TransientError: HTTP 500", attempts=3, at_ms=0)
            producer.send(dlq_topic, key=record.key, value=record.value,
                          headers=list(record.headers))
        producer.flush(timeout=120)
    finally:
        producer.close()


def whole(config: dict[str, object], topic: str) -> int:
    consumer = open_consumer(config)
    try:
        return sum(1 for _ in read_forward(consumer, topic, bounds(consumer, topic)))
    finally:
        consumer.close()


def best(what: Callable[[], object], runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        what()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--letters", type=int, default=20_000)
    args = parser.parse_args()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    names = unique_topics(bootstrap, partitions=6)
    dlq_topic = names.dlq + "6"
    create_topics(bootstrap, [dlq_topic], partitions=6)
    names = names.model_copy(update={"dlq": dlq_topic})
    fill(bootstrap, names.events, dlq_topic, args.letters)
    config: dict[str, object] = {"bootstrap_servers": bootstrap}

    def newest_20() -> None:
        reader = DlqReader(config, dlq_topic, "bench")
        letters = reader.newest_first(LetterFilter())
        for _, _letter in zip(range(20), letters, strict=False):
            pass
        letters.close()

    def full_dlq() -> None:
        assert whole(config, dlq_topic) == args.letters

    def timeline() -> None:
        entries = read_timeline(config, names, "class-7", since_ms=None, until_ms=None,
                                sources=("events", "dlq"))
        assert len(entries) == 2 * args.letters // CHANNELS

    def full_both() -> None:
        whole(config, names.events)
        whole(config, dlq_topic)

    figures = {
        "dlq list --limit 20 (newest first)": best(newest_20),
        "full read of the DLQ (former dlq list)": best(full_dlq),
        "timeline --cname, events + DLQ": best(timeline),
        "full read of events + DLQ": best(full_both),
    }
    print(f"{args.letters} dead letters and events, 6 partitions, {CHANNELS} channels")
    for name, seconds in figures.items():
        print(f"  {name:42} {seconds:7.3f} s")
    values = list(figures.values())
    print(f"  first 20 letters: {values[1] / values[0]:.1f}x faster than the full read")
    print(f"  one channel's timeline: {values[3] / values[2]:.1f}x faster than the full read")


if __name__ == "__main__":
    main()
