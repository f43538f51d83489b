"""A real Kafka broker that requires SASL/SCRAM over TLS and enforces ACLs (pytest plugin
``support.secure_kafka``, fixture ``secure_kafka``).

Certificates come from the JDK's ``keytool`` (a throwaway CA and a broker certificate for
127.0.0.1); SCRAM users are written at format time; the StandardAuthorizer denies everything
no ACL allows (``allow.everyone.if.no.acl.found=false``). The JVM, the jars and the helper
functions are docker/kafka_local.py's (its package ``kafkalocal``).
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

MECHANISM = "SCRAM-SHA-512"
# Users the broker knows; each test decides which ACLs they get.
USERS = ("admin", "webhook", "handlers", "operator", "intruder")
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

    def client_config(self, user: str) -> dict[str, Any]:
        from webhook.settings import KafkaSettings

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


def _keytool(directory: Path, *args: str) -> None:
    result = subprocess.run(
        ["keytool", *args], cwd=directory, capture_output=True, text=True, check=False, timeout=60
    )
    if result.returncode != 0:
        raise RuntimeError(f"keytool {' '.join(args[:1])} failed: {result.stderr}")


def make_certificates(directory: Path, store_password: str) -> None:
    """ca.pem (for clients), broker.p12 (key + chain) and trust.p12 (the CA) for the broker."""
    pw = ["-storepass", store_password, "-keypass", store_password]
    san = "SAN=IP:127.0.0.1,DNS:localhost"
    _keytool(directory, "-genkeypair", "-alias", "ca", "-keyalg", "RSA", "-keysize", "2048",
             "-dname", "CN=agora-events test CA", "-ext", "bc:c", "-validity", "2",
             "-storetype", "PKCS12", "-keystore", "ca.p12", *pw)
    _keytool(directory, "-exportcert", "-rfc", "-alias", "ca", "-keystore", "ca.p12",
             "-storepass", store_password, "-file", "ca.pem")
    _keytool(directory, "-genkeypair", "-alias", "broker", "-keyalg", "RSA", "-keysize", "2048",
             "-dname", "CN=localhost", "-ext", san, "-validity", "2",
             "-storetype", "PKCS12", "-keystore", "broker.p12", *pw)
    _keytool(directory, "-certreq", "-alias", "broker", "-keystore", "broker.p12",
             "-storepass", store_password, "-file", "broker.csr")
    _keytool(directory, "-gencert", "-alias", "ca", "-keystore", "ca.p12",
             "-storepass", store_password, "-infile", "broker.csr", "-outfile", "broker.crt",
             "-rfc", "-ext", san, "-validity", "2")
    _keytool(directory, "-importcert", "-noprompt", "-alias", "ca", "-file", "ca.pem",
             "-keystore", "broker.p12", "-storepass", store_password)
    _keytool(directory, "-importcert", "-alias", "broker", "-file", "broker.crt",
             "-keystore", "broker.p12", "-storepass", store_password)
    _keytool(directory, "-importcert", "-noprompt", "-alias", "ca", "-file", "ca.pem",
             "-storetype", "PKCS12", "-keystore", "trust.p12", "-storepass", store_password)


def server_properties(
    directory: Path, port: int, controller_port: int, store_password: str,
    admin_password: str, controller_password: str, plain_password: str,
) -> dict[str, str]:
    """The local single-node broker's settings, with its listeners secured and ACLs enforced."""
    node = kafka_local.NodeSpec(1, port, controller_port)
    # server.properties holds no cluster id: the storage format writes it.
    local = kafka_local.ClusterSpec("", (node,), partitions=1)
    scram_jaas = "org.apache.kafka.common.security.scram.ScramLoginModule required"
    plain_jaas = "org.apache.kafka.common.security.plain.PlainLoginModule required"
    return {
        **kafka_local.server_settings(local, 1, directory / "data"),
        "listeners": f"SASL_SSL://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"SASL_SSL://127.0.0.1:{port}",
        "inter.broker.listener.name": "SASL_SSL",
        "listener.security.protocol.map": "CONTROLLER:SASL_PLAINTEXT,SASL_SSL:SASL_SSL",
        "sasl.mechanism.inter.broker.protocol": MECHANISM,
        "sasl.mechanism.controller.protocol": "PLAIN",
        "listener.name.sasl_ssl.sasl.enabled.mechanisms": "SCRAM-SHA-512,SCRAM-SHA-256,PLAIN",
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config":
            f'{scram_jaas} username="admin" password="{admin_password}";',
        "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config": f"{scram_jaas};",
        "listener.name.sasl_ssl.plain.sasl.jaas.config":
            f'{plain_jaas} user_plain-user="{plain_password}";',
        "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
        "listener.name.controller.plain.sasl.jaas.config": (
            f'{plain_jaas} username="controller" password="{controller_password}" '
            f'user_controller="{controller_password}";'
        ),
        "ssl.keystore.location": str(directory / "broker.p12"),
        "ssl.keystore.type": "PKCS12",
        "ssl.keystore.password": store_password,
        "ssl.key.password": store_password,
        "ssl.truststore.location": str(directory / "trust.p12"),
        "ssl.truststore.type": "PKCS12",
        "ssl.truststore.password": store_password,
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": "User:admin;User:controller",
        "allow.everyone.if.no.acl.found": "false",
    }


def start(directory: Path) -> SecureKafka:
    java = kafka_local.find_java()
    libs = kafka_local.ensure_libs(kafka_local.resolve_libs(None))
    store_password = secrets.token_hex(12)
    passwords = {user: secrets.token_hex(12) for user in USERS}
    controller_password, plain_password = secrets.token_hex(12), secrets.token_hex(12)
    make_certificates(directory, store_password)
    port, controller_port = kafka_local.pick_free_ports(2)
    props = server_properties(directory, port, controller_port, store_password,
                              passwords["admin"], controller_password, plain_password)
    properties = directory / "server.properties"
    properties.write_text("".join(f"{k}={v}\n" for k, v in props.items()), encoding="utf-8")
    properties.chmod(0o600)
    cmd = kafka_local.format_command(java, libs, properties, kafka_local.new_cluster_id(), True)
    for user, password in passwords.items():
        cmd += ["--add-scram", f"{MECHANISM}=[name={user},password={password}]"]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"format failed: {result.stdout}\n{result.stderr}")
    process = kafka_local.spawn_detached(
        kafka_local.broker_command(java, libs, properties, "512m", directory),
        directory, directory / "broker.log",
    )
    broker = SecureKafka(f"127.0.0.1:{port}", directory / "ca.pem", passwords, plain_password,
                         directory, process)
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
