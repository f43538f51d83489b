"""A real Kafka broker that requires SASL/SCRAM over TLS and enforces ACLs (pytest plugin
``support.secure_kafka``, fixture ``secure_kafka``): the compose stack's broker, outside Docker.

It is set up exactly as docker/compose.yml sets up its own: docker/kafka/secure-init.sh (the
``kafka-init`` service) generates the passwords, the CA and the broker's certificate and
formats the storage with the SCRAM users; the broker runs docker/kafka/server.properties
(secrets read from files, the StandardAuthorizer, ``allow.everyone.if.no.acl.found=false``).
Only what a container gives for free is changed: the directories, the free ports, the
advertised address, and the file owners. One addition for the tests of the settings: a PLAIN
user ``plain-user`` on the internal listener (the compose broker accepts SCRAM only). The JVM,
the jars and the helper functions are docker/kafka_local.py's (its package
``kafkalocal``).
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kafkalocal as kafka_local
import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka import KafkaAdminClient

REPO = Path(__file__).resolve().parents[2]
COMPOSE_KAFKA = REPO / "docker" / "kafka"
MECHANISM = "SCRAM-SHA-512"
# The compose stack's principals (kafka-init's KAFKA_PRINCIPALS) and one without ACLs.
PRINCIPALS = ("webhook", "handlers", "reconciler", "operator", "intruder")
# Where the compose files expect the broker's secrets and data (container paths).
CONTAINER_SECRETS, CONTAINER_DATA = "/etc/kafka/secrets", "/var/lib/kafka/data"
START_TIMEOUT_S = 120.0


@dataclass
class SecureKafka:
    bootstrap: str
    cafile: Path
    passwords: dict[str, str]
    plain_password: str  # of the PLAIN user "plain-user" (listener JAAS, no ACLs)
    directory: Path
    process: subprocess.Popen[bytes] | None = None

    def env(self, user: str, mechanism: str = MECHANISM) -> dict[str, str]:
        """The documented ``KAFKA_*`` variables for *user*."""
        password = self.plain_password if mechanism == "PLAIN" else self.passwords[user]
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_MECHANISM": mechanism,
            "KAFKA_SASL_USERNAME": user,
            "KAFKA_SASL_PASSWORD": password,
            "KAFKA_SSL_CAFILE": str(self.cafile),
        }

    def compose_env(self, user: str) -> dict[str, str]:
        """*user*'s variables as docker/compose.yml sets them: the password and the CA read
        from the files kafka-init wrote for that principal."""
        clients = self.directory / "clients" / user
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_MECHANISM": MECHANISM,
            "KAFKA_SASL_USERNAME": user,
            "KAFKA_SASL_PASSWORD_FILE": str(clients / "password"),
            "KAFKA_SSL_CAFILE": str(clients / "ca.pem"),
        }

    def client_config(self, user: str) -> dict[str, Any]:
        from webhook.shared.kafka_settings import KafkaSettings

        env = self.env(user)
        return KafkaSettings(
            bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"],
            security_protocol="SASL_SSL",
            sasl_mechanism=MECHANISM,
            sasl_username=user,
            sasl_password=env["KAFKA_SASL_PASSWORD"],  # type: ignore[arg-type]
            ssl_cafile=str(self.cafile),
        ).client_config()

    def admin(self) -> KafkaAdminClient:
        return KafkaAdminClient(**self.client_config("admin"), client_id="tests-secure-admin")

    def log_text(self) -> str:
        path = self.directory / "broker.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def log_tail(self) -> str:
        return kafka_local.tail(self.directory / "broker.log")


def compose_server_properties(
    directory: Path, ports: tuple[int, int, int], plain_password: str
) -> str:
    """docker/kafka/server.properties with this directory and these ports (internal,
    external, controller) in place of the container's, plus the tests' PLAIN user."""
    internal, external, controller = ports
    text = (COMPOSE_KAFKA / "server.properties").read_text(encoding="utf-8")
    text = text.replace(CONTAINER_SECRETS, str(directory / "secrets"))
    text = text.replace(CONTAINER_DATA, str(directory / "data"))
    replacements = {"INTERNAL://:9092": f"INTERNAL://127.0.0.1:{internal}",
                    "EXTERNAL://:9094": f"EXTERNAL://127.0.0.1:{external}",
                    "127.0.0.1:9093": f"127.0.0.1:{controller}"}
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new)
    plain_jaas = "org.apache.kafka.common.security.plain.PlainLoginModule required"
    return text + (
        "listener.name.internal.sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN\n"
        f'listener.name.internal.plain.sasl.jaas.config={plain_jaas} '
        f'user_plain-user="{plain_password}";\n'
    )


def run_secure_init(directory: Path, properties: Path, java: str, libs: Path) -> None:
    """docker/kafka/secure-init.sh, as the ``kafka-init`` service runs it, on local paths."""
    for name in ("secrets", "data", *(f"clients/{u}" for u in ("admin", *PRINCIPALS))):
        (directory / name).mkdir(parents=True, exist_ok=True)
    # The image's kafka-storage.sh: the StorageTool on the same JVM and jars as the broker.
    tool = kafka_local.format_command(java, libs, properties, "-", False)
    storage = directory / "kafka-storage"
    storage.write_text("#!/bin/sh\nexec " + " ".join(
        f"'{arg}'" for arg in tool[: tool.index("format")]) + ' "$@"\n', encoding="utf-8")
    storage.chmod(0o700)
    owner = f"{os.getuid()}:{os.getgid()}"
    env = {
        "PATH": os.environ["PATH"], "SECRETS_DIR": str(directory / "secrets"),
        "CLIENTS_DIR": str(directory / "clients"), "DATA_DIR": str(directory / "data"),
        "SERVER_PROPERTIES": str(properties), "KAFKA_STORAGE": str(storage),
        "BROKER_OWNER": owner, "CLIENT_OWNER": owner, "CLUSTER_ID": kafka_local.new_cluster_id(),
        "KAFKA_PRINCIPALS": " ".join(PRINCIPALS),
        "KAFKA_TLS_KEY_SIZE": "2048",  # the tests' throwaway CA: quicker to make
    }
    result = subprocess.run(["sh", str(COMPOSE_KAFKA / "secure-init.sh")], env=env,
                            capture_output=True, text=True, check=False, timeout=300)
    if result.returncode != 0:
        raise RuntimeError(f"secure-init.sh failed:\n{result.stdout}\n{result.stderr}")


def start(directory: Path) -> SecureKafka:
    java = kafka_local.find_java()
    libs = kafka_local.ensure_libs(kafka_local.resolve_libs(None))
    plain_password = secrets.token_hex(12)
    port, external, controller = kafka_local.pick_free_ports(3)
    properties = directory / "server.properties"
    properties.write_text(
        compose_server_properties(directory, (port, external, controller), plain_password),
        encoding="utf-8")
    properties.chmod(0o600)
    run_secure_init(directory, properties, java, libs)
    passwords = {
        user: (directory / "clients" / user / "password").read_text(encoding="utf-8").strip()
        for user in ("admin", *PRINCIPALS)
    }
    advertised = f"INTERNAL://127.0.0.1:{port},EXTERNAL://localhost:{external}"
    process = kafka_local.spawn_detached(
        [*kafka_local.broker_command(java, libs, properties, "512m", directory),
         "--override", f"advertised.listeners={advertised}"],
        directory, directory / "broker.log",
    )
    broker = SecureKafka(f"127.0.0.1:{port}", directory / "clients" / "admin" / "ca.pem",
                         passwords, plain_password, directory, process)
    # Wait for the broker's own "started" line rather than probing with kafka-python, whose
    # clients leave their sockets open when a connection attempt fails.
    deadline = time.monotonic() + START_TIMEOUT_S
    while "Kafka Server started" not in broker.log_text():
        if process.poll() is not None:
            raise RuntimeError(f"secure broker exited:\n{broker.log_tail()}")
        if time.monotonic() > deadline:
            stop(broker)
            raise RuntimeError(f"secure broker did not start:\n{broker.log_tail()}")
        time.sleep(0.5)
    broker.admin().close()
    return broker


def stop(broker: SecureKafka) -> None:
    process = broker.process
    if process is None or process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.fixture(scope="module")
def secure_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureKafka]:
    """One SCRAM-over-TLS broker with ACLs enforced, for the tests of one module."""
    broker = start(tmp_path_factory.mktemp("secure-kafka"))
    try:
        yield broker
    finally:
        stop(broker)
