"""Real Kafka brokers for tests (pytest plugin ``support.kafka_broker``).

Fixtures:
    ``kafka_bootstrap`` (session): ``$KAFKA_BOOTSTRAP_SERVERS`` if set, else one single-node broker
        started by ``docker/kafka_local.py`` in a temporary directory and stopped at session end.
        If it cannot start, the tests using it ERROR (they are never skipped).
    ``kafka_cluster`` (per test): a factory for separate 1- or 3-node clusters that tests may stop
        and restart node by node; every cluster it made is stopped at test end.

Helper: :func:`consume_all` (topics are made with :mod:`handlers.testing.fresh_topics`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():
    # kafka-python builds its protocol classes at import time through the deprecated
    # importlib.resources.read_text. The warning is attributed to importlib, not kafka, so
    # pyproject's "kafka.*" filter misses it and this plugin (loaded first) would fail to load.
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka import KafkaConsumer, TopicPartition
    from kafka.consumer.fetcher import ConsumerRecord

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "docker" / "kafka_local.py"
BOOTSTRAP_ENV = "KAFKA_BOOTSTRAP_SERVERS"
# Broker start-up budget passed to `up --timeout`; a first-time jar fetch comes on top of it.
START_TIMEOUT_S = 90.0
SCRIPT_GRACE_S = 300.0  # subprocess limit: fetch (cold Maven cache) + start-up + slack
STOP_TIMEOUT_S = 30.0


class KafkaClusterError(RuntimeError):
    """docker/kafka_local.py failed; the message carries its stderr (including broker log tails)."""


def run_script(args: Sequence[str], timeout_s: float = SCRIPT_GRACE_S) -> str:
    """Run ``docker/kafka_local.py ARGS`` and return its stdout; KafkaClusterError on failure."""
    cmd = [sys.executable, str(SCRIPT), *args]
    try:
        result = subprocess.run(
            cmd, capture_output=True, text=True, check=False, timeout=timeout_s, cwd=REPO
        )
    except subprocess.TimeoutExpired as exc:
        raise KafkaClusterError(f"{' '.join(args)}: no answer within {timeout_s:g} s") from exc
    if result.returncode != 0:
        raise KafkaClusterError(
            f"kafka_local.py {' '.join(args)} exited with {result.returncode}:\n{result.stderr}"
        )
    return result.stdout


class KafkaCluster:
    """A cluster run by ``docker/kafka_local.py`` in its own directory.

    ``bootstrap`` lists every node. ``stop_node``/``start_node`` keep the node's data, so records
    acknowledged before a stop are there after the restart. ``down`` is idempotent.
    """

    def __init__(self, directory: Path, info: dict[str, Any]) -> None:
        self.directory = directory
        self.bootstrap: str = info["bootstrap"]
        self.ports: dict[int, int] = {int(k): int(v) for k, v in info["ports"].items()}
        self.logs: dict[int, Path] = {int(k): Path(v) for k, v in info["logs"].items()}
        self._running = True

    @classmethod
    def start(
        cls,
        directory: Path,
        nodes: int = 1,
        partitions: int = 1,
        owner_pid: int | None = None,
    ) -> KafkaCluster:
        """Format and start a cluster on free ports in ``directory``; waits until it answers.

        ``owner_pid`` (default: this process) makes the cluster stop by itself if that process
        dies without calling :meth:`down`.
        """
        stdout = run_script(
            [
                "up",
                "--dir",
                str(directory),
                "--port",
                "0",
                "--nodes",
                str(nodes),
                "--partitions",
                str(partitions),
                "--timeout",
                str(START_TIMEOUT_S),
                "--owner-pid",
                str(owner_pid or os.getpid()),
                "--json",
            ]
        )
        return cls(directory, json.loads(stdout.strip().splitlines()[-1]))

    def stop_node(self, node: int, kill: bool = False) -> None:
        """Stop node ``node`` (1-based): clean SIGTERM shutdown, or SIGKILL with ``kill``."""
        args = ["stop-node", str(node), "--dir", str(self.directory)]
        run_script([*args, "--kill"] if kill else args)

    def start_node(self, node: int) -> None:
        """Restart node ``node`` from its data; returns once it answers Metadata requests."""
        run_script(
            [
                "start-node",
                str(node),
                "--dir",
                str(self.directory),
                "--timeout",
                str(START_TIMEOUT_S),
            ]
        )

    def down(self) -> None:
        """Stop every node (clean shutdown, SIGKILL after a timeout). Safe to call twice."""
        if self._running:
            run_script(
                ["down", "--dir", str(self.directory), "--timeout", str(STOP_TIMEOUT_S)],
                timeout_s=STOP_TIMEOUT_S + 60,
            )
            self._running = False

    def __enter__(self) -> KafkaCluster:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.down()


class KafkaClusterFactory:
    """Starts clusters in fresh temporary directories and stops all of them in :meth:`close`."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._tmp = tmp_path_factory
        self._clusters: list[KafkaCluster] = []

    def __call__(self, nodes: int = 1, partitions: int = 1) -> KafkaCluster:
        """A new ``nodes``-node cluster (1 or 3) with ``partitions`` as the topic default."""
        cluster = KafkaCluster.start(self._tmp.mktemp(f"kafka-{nodes}n"), nodes, partitions)
        self._clusters.append(cluster)
        return cluster

    def close(self) -> None:
        """Stop every cluster made here; raises the first failure after trying all."""
        errors: list[KafkaClusterError] = []
        for cluster in self._clusters:
            try:
                cluster.down()
            except KafkaClusterError as exc:
                errors.append(exc)
        if errors:
            raise errors[0]


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``host:port[,...]`` of a running broker for the whole session (see module docstring)."""
    external = os.environ.get(BOOTSTRAP_ENV, "").strip()
    if external:
        yield external
        return
    cluster = KafkaCluster.start(tmp_path_factory.mktemp("kafka-session"))
    try:
        yield cluster.bootstrap
    finally:
        cluster.down()


@pytest.fixture
def kafka_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaClusterFactory]:
    """A factory of private clusters for fault tests: ``cluster = kafka_cluster(nodes=3)``."""
    factory = KafkaClusterFactory(tmp_path_factory)
    try:
        yield factory
    finally:
        factory.close()


def consume_all(
    bootstrap: str, topic: str, expected: int, timeout_s: float = 30.0
) -> list[ConsumerRecord]:
    """Read ``topic`` from the beginning (committed records only, no consumer group).

    Stops as soon as at least ``expected`` records arrived or ``timeout_s`` passed, and returns
    what it got (callers assert on the count). Order is per partition, partitions interleaved.
    """
    deadline = time.monotonic() + timeout_s
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
        client_id="tests-consume-all",
    )
    try:
        partitions: set[int] = set()
        while not partitions and time.monotonic() < deadline:
            partitions = set(consumer.partitions_for_topic(topic))
            if not partitions:
                time.sleep(0.1)
        if not partitions:
            raise AssertionError(f"topic {topic!r} has no partitions after {timeout_s:g} s")
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        records: list[ConsumerRecord] = []
        while len(records) < expected:
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            if remaining_ms <= 0:
                break
            batch = consumer.poll(timeout_ms=min(remaining_ms, 500))
            for tp in sorted(batch, key=lambda t: t.partition):
                records.extend(batch[tp])
        return records
    finally:
        consumer.close()
