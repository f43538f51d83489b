"""Attack 5: Kafka is an open door. Against the compose stack's broker (SCRAM over TLS, ACLs
enforced; support.secure_kafka), set up by the compose stack's own docker/kafka/kafka-setup.sh:
each component works with only the ACLs docs/security.md lists for it (``agora-events topics
acls``), and clients without them, or without credentials, are refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from kafka import KafkaConsumer, TopicPartition
from support.handlers_process import HandlersProcess, handlers_env
from support.secure_kafka import SecureKafka

from handlers.testing.fresh_topics import topics_env
from handlers.testing.ncs_callbacks import callback_body, signed
from handlers.testing.webhook_process import console_script, run_webhook
from webhook.shared.kafka_settings import TopicNames

pytestmark = pytest.mark.kafka

SETUP_SCRIPT = Path(__file__).resolve().parents[2] / "docker" / "kafka" / "kafka-setup.sh"


@pytest.fixture(scope="module")
def deployment(secure_kafka: SecureKafka) -> tuple[TopicNames, str]:
    """Topics and each principal's ACLs, made by the script the compose stack's
    ``kafka-setup`` service runs, as the broker's admin (the broker is this module's own, so
    the catalog's topic names and group prefix are free)."""
    env = {**os.environ, **secure_kafka.compose_env("admin"),
           "PATH": f"{Path(console_script('agora-events')).parent}{os.pathsep}{os.environ['PATH']}"}
    for name in [n for n in env if n.startswith(("AGORA_TOPIC_", "AGORA_HANDLERS_GROUP"))]:
        del env[name]
    result = subprocess.run(["sh", str(SETUP_SCRIPT)], env=env, capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return TopicNames(), "agora-events"


def _read(broker: SecureKafka, topic: str, expected: int, timeout_s: float = 30) -> list[Any]:
    consumer = KafkaConsumer(**broker.client_config("admin"), group_id=None,
                             enable_auto_commit=False, isolation_level="read_committed")
    try:
        # Every partition: kafka-setup creates the topics with six.
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        records: list[Any] = []
        deadline = time.monotonic() + timeout_s
        while len(records) < expected and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


def _cli(
    broker: SecureKafka, user: str, topics: TopicNames, *args: str,
    extra: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **topics_env(topics), **broker.env(user), **(extra or {})}
    return subprocess.run([console_script("agora-events"), *args], env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def test_webhook_and_handlers_work_end_to_end_with_only_their_acls(
    secure_kafka: SecureKafka, deployment: tuple[TopicNames, str], tmp_path: Path
) -> None:
    topics, prefix = deployment
    body = callback_body(cname="secure-1")
    env = handlers_env(secure_kafka.bootstrap, topics, prefix,
                       secure_kafka.compose_env("handlers"))
    with (
        HandlersProcess(("echo",), env, tmp_path / "handlers.log") as handlers,
        run_webhook(secure_kafka.bootstrap, tmp_path,
                    env={**topics_env(topics), **secure_kafka.compose_env("webhook")}) as webhook,
    ):
        answer = httpx.post(webhook.ncs_url, content=body, headers=signed(body), timeout=15)
        assert answer.status_code == 200, webhook.log_text()[-2000:]
        [event] = _read(secure_kafka, topics.events, 1)
        assert event.value == body
        outcomes = _read(secure_kafka, topics.actions, 1, timeout_s=60)
        assert outcomes, handlers.log_text()[-3000:]
        assert json.loads(outcomes[0].value)["noticeId"] == json.loads(body)["noticeId"]
        assert handlers.terminate() == 0, handlers.log_text()[-3000:]


def test_operator_commands_work_with_the_operator_acls(
    secure_kafka: SecureKafka, deployment: tuple[TopicNames, str]
) -> None:
    topics, _ = deployment
    for args in (("recording", "list"), ("dlq", "list")):
        result = _cli(secure_kafka, "operator", topics, *args)
        assert result.returncode == 0, (args, result.stderr[-2000:])


def test_the_reconciler_works_with_only_its_acls(
    secure_kafka: SecureKafka, deployment: tuple[TopicNames, str]
) -> None:
    topics, _ = deployment
    # An empty registry: one round reads it (no consumer group) and asks Agora nothing.
    agora = {"AGORA_APP_ID": "a" * 32, "AGORA_CUSTOMER_ID": "customer",
             "AGORA_CUSTOMER_SECRET": "customer-secret", "AGORA_API_BASE": "http://127.0.0.1:9"}
    result = _cli(secure_kafka, "reconciler", topics, "recording", "reconcile", "--once",
                  extra=agora)
    assert result.returncode == 0, result.stderr[-2000:]
    # (A principal without these ACLs cannot read the registry: `recording list` below.)


def test_a_webhook_with_credentials_but_no_acls_publishes_nothing(
    secure_kafka: SecureKafka, deployment: tuple[TopicNames, str], tmp_path: Path
) -> None:
    topics, _ = deployment
    before = len(_read(secure_kafka, topics.events, 10**6, timeout_s=3))
    body = callback_body(cname="intruder")
    with run_webhook(secure_kafka.bootstrap, tmp_path,
                     env={**topics_env(topics), **secure_kafka.env("intruder")}) as webhook:
        answer = httpx.post(webhook.ncs_url, content=body, headers=signed(body), timeout=15)
    assert answer.status_code == 503
    assert len(_read(secure_kafka, topics.events, 10**6, timeout_s=3)) == before


# A producer configured only by the documented KAFKA_* variables, in its own process (as any
# client on the Kafka network would be): prints the error class it ends with, or "sent".
PRODUCE = """
import sys
from kafka import KafkaProducer
from webhook.shared.kafka_settings import KafkaSettings
try:
    producer = KafkaProducer(**KafkaSettings().client_config(), acks="all", retries=0,
                             max_block_ms=10_000, request_timeout_ms=10_000)
    producer.send(sys.argv[1], b"forged").get(timeout=15)
    print("sent")
except Exception as exc:
    print(type(exc).__name__)
"""


def _produce(env: dict[str, str], topic: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", PRODUCE, topic],
        env={**{k: v for k, v in os.environ.items() if not k.startswith("KAFKA_")}, **env},
        capture_output=True, text=True, timeout=120, check=False,
    )
    return result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr


def test_clients_without_the_right_acls_are_refused(
    secure_kafka: SecureKafka, deployment: tuple[TopicNames, str]
) -> None:
    topics, _ = deployment
    refused = "TopicAuthorizationFailedError"
    # Valid credentials, no ACLs: cannot write the events topic (bypassing the signature).
    assert _produce(secure_kafka.env("intruder"), topics.events) == refused
    # The webhook's own credentials cannot touch the registry or the dead letters.
    for topic in (topics.sessions, topics.dlq):
        assert _produce(secure_kafka.env("webhook"), topic) == refused
    # The handlers' cannot write the quarantine topic.
    assert _produce(secure_kafka.env("handlers"), topics.quarantine) == refused
    # The reconciler's may write events (the failures it finds), nothing the handlers own.
    for topic in (topics.actions, topics.dlq):
        assert _produce(secure_kafka.env("reconciler"), topic) == refused
    assert _produce(secure_kafka.env("reconciler"), topics.events) == "sent"
    # PLAIN authenticates through the same settings, and is then held to ACLs too.
    assert _produce(secure_kafka.env("plain-user", "PLAIN"), topics.events) == refused
    # The operator's commands are refused for a principal without the operator ACLs.
    result = _cli(secure_kafka, "intruder", topics, "recording", "list")
    assert result.returncode != 0
    # Control: the webhook's credentials do write the events topic.
    assert _produce(secure_kafka.env("webhook"), topics.events) == "sent"


def test_clients_without_valid_credentials_cannot_connect(
    secure_kafka: SecureKafka, deployment: tuple[TopicNames, str]
) -> None:
    topics, _ = deployment
    good = secure_kafka.env("webhook")
    wrong_password = {**good, "KAFKA_SASL_PASSWORD": "not-the-password"}
    plaintext = {"KAFKA_BOOTSTRAP_SERVERS": secure_kafka.bootstrap}
    # The test CA is not in the system store: TLS is verified, not just encrypted.
    untrusted = {k: v for k, v in good.items() if k != "KAFKA_SSL_CAFILE"}
    for env in (wrong_password, plaintext, untrusted):
        assert _produce(env, topics.events) != "sent"
