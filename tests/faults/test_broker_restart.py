"""The only broker is SIGKILLed and restarted under steady NCS load: every 200 is on the topic.

While the broker is down the webhook answers 503 + Retry-After (or NCS's 10 s wait runs out);
the sender retries like NCS. A callback whose publish was acknowledged after its 503 and that
NCS then sent again is on the topic twice: allowed, and counted in the figure. Once every
callback was answered 200, a burst of fresh callbacks checks that every webhook worker (each
has its own producer) publishes again.
"""

from __future__ import annotations

import time
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

# The timeout leaves room for a loaded machine: retries then take long to settle.
pytestmark = [pytest.mark.faults, pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(600)]

RATE_PER_S = 50.0
LOAD_S = 20.0
KILL_AT_S = 5.0
DOWN_S = 5.0  # then the restart itself takes a JVM start-up (figure: broker_restart_s)
# Retries stop when all are answered 200; this only bounds a service that never recovers.
SETTLE_S = 120.0


def test_broker_kill_and_restart_under_load_loses_no_accepted_callback(
    tmp_path: Path, kafka_cluster: KafkaClusterFactory, figure: Figure
) -> None:
    cluster = kafka_cluster(nodes=1)
    events, quarantine = unique_topic("events"), unique_topic("quarantine")
    create_topics(cluster.bootstrap, [events, quarantine], partitions=3)
    env = {"AGORA_TOPIC_EVENTS": events, "AGORA_TOPIC_QUARANTINE": quarantine}

    with (
        run_webhook(cluster.bootstrap, tmp_path, env=env) as server,
        NcsLoad(server.ncs_url, rate_per_s=RATE_PER_S) as load,
    ):
        started = time.monotonic()
        time.sleep(KILL_AT_S)
        killed_at = time.monotonic()
        cluster.stop_node(1, kill=True)
        time.sleep(DOWN_S)
        cluster.start_node(1)
        back_at = time.monotonic()
        # Keep sending for the planned duration, and for a few seconds after the restart.
        time.sleep(max(started + LOAD_S, back_at + 3) - time.monotonic())
        load.stop_sending()
        load_s = time.monotonic() - started
        report = load.wait(settle_timeout_s=SETTLE_S)
        probe = recovery_probe(server.ncs_url)

    on_topic = notice_ids_on_topic(cluster.bootstrap, events)
    figure(
        "broker restart under load",
        **delivery_figures(report, on_topic, probe),
        broker_restart_s=round(back_at - killed_at, 1),
        load_s=round(load_s, 1),
        elapsed_s=round(report.finished_at - report.started_at, 1),
    )
    check_delivery(report, on_topic, probe)
    # The fault really happened, and the service recovered from it.
    assert report.refused > 0, "no callback was refused while the broker was down"
    assert report.accepted_after(back_at) > 0
