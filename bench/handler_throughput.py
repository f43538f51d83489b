"""Throughput of the handler runtime (echo action) against a bare kafka-python consumer.

Fills a fresh events topic with N callback records shaped exactly as the webhook publishes
them (original body bytes, key = cname, the standard headers), then, in the same run:

1. a raw ``KafkaConsumer`` (no group, ``read_committed``) reads all N records;
2. the ``echo`` action runs on the real runtime: decode, per-key scheduling, one outcome
   record per event, and offsets committed in Kafka transactions.

Both rates are measured from the first record received to the last record done, so group
join and start-up are reported apart. Prints records/s of both and the ratio.

With ``--action restart`` the stream is realistic for the restart handler instead: one
record in ``--failure-every`` (default 50) is a ``session_exit`` with exitStatus 1 of a
registered recording (the fake Agora restarts it, zero latency), the rest are callbacks the
action ignores. The figure is the rate at which the handler reads the stream (every
record finished, the restarts included) against the raw consumer.

``--profile FILE`` writes the runner thread's cProfile top lines.

    .venv/bin/python bench/handler_throughput.py --records 20000 --partitions 3 --rounds 3
    .venv/bin/python bench/handler_throughput.py --action restart
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import statistics
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from handlers.echo import EchoAction
from handlers.runtime.metrics import RuntimeMetrics
from handlers.runtime.retry import RetryPolicy
from handlers.runtime.runner import ActionRunner, RunnerConfig
from webhook.shared.event_records import event_record
from webhook.shared.events import parse_notification
from webhook.shared.kafka_settings import KafkaSettings, TopicNames
from webhook.shared.topic_catalog import create_topics

EVENT_TYPES = (40, 41, 30, 31, 32, 11, 4, 1)


def sample_body(index: int) -> bytes:
    """A Cloud Recording callback as NCS sends it (compact JSON, ~400 bytes)."""
    now = int(time.time() * 1000)
    body = {
        "noticeId": uuid.uuid4().hex,
        "productId": 3,
        "eventType": EVENT_TYPES[index % len(EVENT_TYPES)],
        "notifyMs": now,
        "payload": {
            "cname": f"class-{index % 200}",
            "uid": "900001",
            "sid": f"{index % 200:032x}",
            "sequence": index,
            "sendts": now,
            "serviceType": 0,
            "details": {"msgName": "recorder_started", "status": 0},
        },
    }
    return json.dumps(body, separators=(",", ":")).encode()


def fill(bootstrap: str, topic: str, count: int,
         failures: dict[int, bytes] | None = None) -> None:
    """``count`` callbacks; with ``failures``, those at their indexes and well-formed
    ``recorder_started`` callbacks (which the restart action ignores) elsewhere."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=10, batch_size=256 * 1024)
    for i in range(count):
        if failures is None:
            body = sample_body(i)
        else:
            body = failures.get(i) or json.dumps(
                {**json.loads(sample_body(i)), "eventType": 40}, separators=(",", ":")
            ).encode()
        record = event_record(topic, body, parse_notification(body), int(time.time() * 1000), "v2")
        producer.send(topic, key=record.key, value=record.value, headers=list(record.headers))
    producer.flush()
    producer.close()


def raw_rate(bootstrap: str, topic: str, count: int, reads: int = 3) -> float:
    """Records/s of a bare consumer reading the topic; the median of ``reads`` full reads,
    because one read of a few thousand records takes well under a second and its rate
    moves with whatever else the machine did in that instant."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
        isolation_level="read_committed", auto_offset_reset="earliest",
    )
    partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
    consumer.assign(partitions)
    rates = []
    for _ in range(reads):
        consumer.seek_to_beginning(*partitions)
        seen = 0
        first = None
        while seen < count:
            for records in consumer.poll(timeout_ms=500).values():
                if first is None:
                    first = time.perf_counter()
                seen += len(records)
        rates.append(count / (time.perf_counter() - (first or time.perf_counter())))
    consumer.close()
    return statistics.median(rates)


def echo_rate(
    bootstrap: str, names: TopicNames, count: int, profile: str | None = None,
    action: Any = None, tables: list[Any] | None = None, ignored_expected: int | None = None,
) -> tuple[float, float, float]:
    """Records/s until every record is done, records/s until the ``ignored_expected``
    records the action ignores are done (the stream read, the actions' own work aside;
    the first figure again when not given), and the start-up time."""
    metrics = RuntimeMetrics()
    action = action or EchoAction()
    tag = uuid.uuid4().hex[:8]
    config = RunnerConfig(
        group_id=f"bench-{tag}.echo",
        transactional_id=f"bench-{tag}.echo.1",
        topics=names,
        retry=RetryPolicy(max_attempts=3, budget_s=60),
        client_config={"bootstrap_servers": bootstrap},
        max_poll_records=500,
    )
    stop = threading.Event()
    runner = ActionRunner(action, config, metrics=metrics, stop=stop, tables=tables or [])
    def run() -> None:
        if profile is None:
            runner.run()
            return
        # cProfile sees only its own thread: profile the runner's loop where it runs.
        profiler = cProfile.Profile()
        profiler.runcall(runner.run)
        with open(profile, "w") as out:
            pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)

    thread = threading.Thread(target=run, daemon=True)
    started = time.perf_counter()
    thread.start()

    # Read only the two counters, and not too often: collecting the whole registry every
    # few milliseconds would take the interpreter from the runtime being measured.
    watched = metrics.registry.restricted_registry(
        ["agora_handler_consumed_total", "agora_handler_outcomes_total"])

    def sample_sum(name: str, outcomes: tuple[str, ...] = ()) -> float:
        return sum(
            sample.value
            for metric in watched.collect() for sample in metric.samples
            if sample.name == name and sample.labels.get("action") == action.name
            and (not outcomes or sample.labels.get("outcome") in outcomes)
        )

    def consumed() -> float:
        return sample_sum("agora_handler_consumed_total")

    def done() -> float:
        return sample_sum("agora_handler_outcomes_total", ("ok", "ignored", "failed"))

    def ignored() -> float:
        return sample_sum("agora_handler_outcomes_total", ("ignored",))

    while consumed() == 0:
        time.sleep(0.001)
    first = time.perf_counter()
    cpu_first = time.process_time()
    read_s = None
    # Coarse polling until the end is near, then fine, so the end is timed closely.
    while (finished := done()) < count:
        if read_s is None and ignored_expected is not None and ignored() >= ignored_expected:
            read_s = time.perf_counter() - first
        near = finished >= 0.95 * count or (
            read_s is None and ignored_expected is not None
            and ignored() >= 0.95 * ignored_expected)
        time.sleep(0.002 if near else 0.1)
    elapsed = time.perf_counter() - first
    print(f"  (process CPU while the action ran: {(time.process_time() - cpu_first) / elapsed:.2f} "
          f"cores)")
    stop.set()
    thread.join(30)
    return count / elapsed, count / (read_s or elapsed), first - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    )
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--action", choices=("echo", "restart"), default="echo")
    parser.add_argument("--failure-every", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3,
                        help="fresh topics and both readers this many times; the median "
                             "ratio is printed (one run varies with the machine)")
    parser.add_argument("--profile", metavar="FILE", default=None,
                        help="write the runner thread's cProfile top lines to FILE")
    args = parser.parse_args()

    print(f"records            {args.records} on {args.partitions} partition(s)")
    ratios, read_ratios = [], []
    for round_no in range(1, args.rounds + 1):
        raw, rate, read_rate, startup, label = one_round(args)
        ratios.append(rate / raw)
        read_ratios.append(read_rate / raw)
        line = (f"round {round_no}: raw consumer {raw:8.0f} records/s, {label} {rate:8.0f} "
                f"records/s (start-up and group join {startup:.2f} s), ratio {rate / raw:.3f}")
        if args.action == "restart":
            line += f"; stream read at {read_rate:.0f} records/s, ratio {read_rate / raw:.3f}"
        print(line)
    print(f"ratio              {statistics.median(ratios):10.3f}  (median of {len(ratios)}; "
          f"range {min(ratios):.3f}-{max(ratios):.3f})")
    if args.action == "restart":
        print(f"stream read ratio  {statistics.median(read_ratios):10.3f}  (every callback "
              f"but the failures finished; their restarts still running)")


def one_round(args: argparse.Namespace) -> tuple[float, float, float, float, str]:
    """Fresh topics, filled; the raw consumer, then the action, on the same records."""
    tag = uuid.uuid4().hex[:8]
    names = TopicNames.model_validate({f: f"bench-{tag}.{f}" for f in TopicNames.model_fields})
    create_topics(KafkaSettings(bootstrap_servers=args.bootstrap), names, args.partitions, 1)
    if args.action == "restart":
        with restart_setup(args.bootstrap, names, args.records, args.failure_every) as (
                failures, action, tables):
            fill(args.bootstrap, names.events, args.records, failures)
            raw = raw_rate(args.bootstrap, names.events, args.records)
            rate, read_rate, startup = echo_rate(
                args.bootstrap, names, args.records, args.profile, action, tables,
                ignored_expected=args.records - len(failures))
            return raw, rate, read_rate, startup, f"restart ({len(failures)} failures)"
    fill(args.bootstrap, names.events, args.records)
    raw = raw_rate(args.bootstrap, names.events, args.records)
    rate, read_rate, startup = echo_rate(args.bootstrap, names, args.records, args.profile)
    return raw, rate, read_rate, startup, "echo action"


@contextmanager
def restart_setup(
    bootstrap: str, names: TopicNames, count: int, every: int
) -> Iterator[tuple[dict[int, bytes], Any, list[Any]]]:
    """Registered recordings at a zero-latency fake Agora, a failure body for one record
    in ``every``, and the restart action reading the registry."""
    from shared_setup import failed_recordings, restart_action

    from handlers.runtime.state import Table
    from handlers.testing.fake_agora import FakeAgora
    from webhook.shared.clock import SystemClock

    with FakeAgora(clock=SystemClock()) as fake:
        by_cname = failed_recordings(fake, bootstrap, names.sessions,
                                     (f"bench-{index}" for index in range(0, count, every)))
        failures = {int(cname.removeprefix("bench-")): body for cname, body in by_cname.items()}
        table = Table(names.sessions)
        client = fake.client()
        action = restart_action(client, table, bootstrap, names, fake.app_id)
        try:
            yield failures, action, [table]
        finally:
            client.close()
        starts = Counter(c.body["cname"] for c in fake.calls_to("start") if c.status == 200)
        restarted = sum(1 for n in starts.values() if n == 2)  # the setup's start + ours
        print(f"restarted          {restarted} of {len(failures)} failures at the fake Agora")


if __name__ == "__main__":
    main()
