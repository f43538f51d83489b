"""One broker of three is SIGKILLed under steady NCS load: every 200 is on the topic.

The events topic has replication factor 3 and ``min.insync.replicas=2``, so with acks=all a
200 means two brokers hold the record: losing one of them loses nothing. The killed node is
the leader of partition 0, so the webhook's producer has to follow a leader election. Once
the node is back, a burst of fresh callbacks checks that every webhook worker publishes again.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.figures import Figure
from support.kafka_broker import KafkaClusterFactory
from support.ncs_load import (
    NcsLoad,
    check_delivery,
    delivery_figures,
    notice_ids_on_topic,
    recovery_probe,
)

from handlers.testing.fresh_topics import create_topics, unique_topic
from handlers.testing.webhook_process import run_webhook

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource, ConfigResourceType
    from kafka.errors import KafkaError

# The timeout leaves room for a loaded machine: retries then take long to settle.
pytestmark = [pytest.mark.faults, pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(600)]

RATE_PER_S = 50.0
LOAD_S = 20.0
KILL_AT_S = 5.0
# Retries stop when all are answered 200; this only bounds a service that never recovers.
SETTLE_S = 120.0
PARTITIONS = 3


@dataclass(frozen=True)
class PartitionState:
    leader: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


def partition_states(admin: KafkaAdminClient, topic: str) -> dict[int, PartitionState]:
    [described] = admin.describe_topics([topic])
    return {
        p["partition_index"]: PartitionState(
            p["leader_id"], tuple(p["replica_nodes"]), tuple(p["isr_nodes"])
        )
        for p in described["partitions"]
    }


def topic_min_isr(admin: KafkaAdminClient, topic: str) -> str:
    configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    entry = configs["topic"][topic]["min.insync.replicas"]
    return str(entry["value"] if isinstance(entry, dict) else entry)


def wait_for_failover(
    admin: KafkaAdminClient, topic: str, dead: int, timeout_s: float = 60.0
) -> dict[int, PartitionState]:
    """Until every partition is led by a live node with the dead one out of its ISR."""
    deadline = time.monotonic() + timeout_s
    states: dict[int, PartitionState] = {}
    while True:
        try:
            states = partition_states(admin, topic)
        except KafkaError:
            pass  # the admin client was talking to the node just killed; it reconnects
        else:
            if all(s.leader not in (dead, -1) and dead not in s.isr for s in states.values()):
                return states
        if time.monotonic() > deadline:
            raise AssertionError(f"no failover from node {dead} in {timeout_s:g} s: {states}")
        time.sleep(0.2)


def test_losing_one_of_three_brokers_under_load_loses_no_accepted_callback(
    tmp_path: Path, kafka_cluster: KafkaClusterFactory, figure: Figure
) -> None:
    cluster = kafka_cluster(nodes=3, partitions=PARTITIONS)
    events, quarantine = unique_topic("events"), unique_topic("quarantine")
    create_topics(
        cluster.bootstrap,
        [events, quarantine],
        partitions=PARTITIONS,
        configs={"min.insync.replicas": "2"},
    )
    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap, client_id="tests-node-loss")
    try:
        before = partition_states(admin, events)
        assert {len(s.replicas) for s in before.values()} == {3}
        assert topic_min_isr(admin, events) == "2"
        victim = before[0].leader
        env = {"AGORA_TOPIC_EVENTS": events, "AGORA_TOPIC_QUARANTINE": quarantine}

        with (
            run_webhook(cluster.bootstrap, tmp_path, env=env) as server,
            NcsLoad(server.ncs_url, rate_per_s=RATE_PER_S) as load,
        ):
            started = time.monotonic()
            time.sleep(KILL_AT_S)
            killed_at = time.monotonic()
            cluster.stop_node(victim, kill=True)
            after_kill = wait_for_failover(admin, events, victim)
            failed_over_at = time.monotonic()
            # Keep sending for the planned duration, and for a few seconds after the failover.
            time.sleep(max(started + LOAD_S, failed_over_at + 3) - time.monotonic())
            load.stop_sending()
            restarting_at = time.monotonic()
            load_s = restarting_at - started
            cluster.start_node(victim)
            report = load.wait(settle_timeout_s=SETTLE_S)
            probe = recovery_probe(server.ncs_url)
    finally:
        admin.close()

    on_topic = notice_ids_on_topic(cluster.bootstrap, events)
    figure(
        "one of three brokers killed under load",
        **delivery_figures(report, on_topic, probe),
        killed_node=victim,
        failover_s=round(failed_over_at - killed_at, 1),
        accepted_while_down=report.accepted_between(killed_at, restarting_at),
        load_s=round(load_s, 1),
        elapsed_s=round(report.finished_at - report.started_at, 1),
    )
    check_delivery(report, on_topic, probe)
    assert all(len(s.isr) >= 2 for s in after_kill.values()), "two replicas kept every write"
    # Two brokers are enough: callbacks kept being accepted with the victim down.
    assert report.accepted_between(failed_over_at, restarting_at) > 0
