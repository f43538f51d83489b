"""Attack 5 in the compose stack: its bundled broker is secure by default, checked without a
Docker engine. The same files run a real broker in tests/security/test_kafka_acls.py
(support.secure_kafka runs docker/kafka/secure-init.sh and docker/kafka/server.properties,
and the fixture runs docker/kafka/kafka-setup.sh); here: that compose wires them as
described. No listener a service can reach takes PLAINTEXT or a client without SCRAM
credentials; the broker denies what no ACL allows; every service has its own principal, its
own credentials (read from files only it mounts) and its own component's ACLs; no secret is in
the repository; every published port is on the host's loopback."""

from __future__ import annotations

import base64
import os
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from webhook.acls import COMPONENTS
from webhook.cli import main

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
KAFKA_DIR = DOCKER / "kafka"
SERVER_PROPERTIES = KAFKA_DIR / "server.properties"
INIT_SCRIPT = KAFKA_DIR / "secure-init.sh"
SETUP_SCRIPT = KAFKA_DIR / "kafka-setup.sh"
CLIENT_SECRETS = "/run/secrets/kafka"  # where our services mount their principal's volume
SECURE_CLIENT = {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
                 "KAFKA_SASL_PASSWORD_FILE": f"{CLIENT_SECRETS}/password",
                 "KAFKA_SSL_CAFILE": f"{CLIENT_SECRETS}/ca.pem"}
FILE_REFERENCE = re.compile(r"\$\{file:(?P<path>[^:}]+):(?P<key>[^}]+)\}")
# HOST:PORT, either part possibly a compose ``${NAME:-default}`` (which holds a colon itself).
PART = r"(?:\$\{[A-Z_]+:-[^}]*\}|[^:$]*)"
ADDRESS = re.compile(rf"(?P<host>{PART}):(?P<port>{PART})")
PORT_ENTRY = re.compile(rf"(?P<host>{PART}):(?P<published>{PART}):(?P<container>\d+)")


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    compose = yaml.safe_load((DOCKER / "compose.yml").read_text(encoding="utf-8"))
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def ours(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The services that run the agora-events image, hence Kafka clients of the project."""
    return {name: s for name, s in services.items() if "build" in s}


def mounts(service: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Container path -> (source, options) of each ``volumes`` entry."""
    found = {}
    for entry in service.get("volumes", []):
        source, target, *options = entry.split(":")
        found[target] = (source, options[0] if options else "rw")
    return found


def read_properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines()
             if line.strip() and not line.lstrip().startswith("#"))
    found: dict[str, str] = {}
    for key, value in pairs:
        assert key not in found, f"{key} is set twice"
        found[key] = value
    return found


@pytest.fixture(scope="module")
def broker(services: dict[str, dict[str, Any]]) -> dict[str, str]:
    """The broker's configuration as the `kafka` service runs it: the mounted properties
    file with the command's ``--override`` settings on top."""
    kafka = services["kafka"]
    command = kafka["command"]
    assert command[0] == "/opt/kafka/bin/kafka-server-start.sh"
    source, options = mounts(kafka)[command[1]]
    assert (DOCKER / source).resolve() == SERVER_PROPERTIES
    assert options == "ro"
    settings = read_properties(SERVER_PROPERTIES.read_text(encoding="utf-8"))
    rest = command[2:]
    while rest:
        flag, setting, *rest = rest
        assert flag == "--override", command
        key, value = setting.split("=", 1)
        settings[key] = value
    return settings


def listeners(value: str) -> dict[str, tuple[str, str]]:
    """Listener name -> (host, port text) of a listeners setting."""
    found = {}
    for entry in value.split(","):
        name, _, address = entry.partition("://")
        match = ADDRESS.fullmatch(address)
        assert match, entry
        found[name] = (match["host"], match["port"])
    return found


def principal_of(service: dict[str, Any]) -> str:
    username: str = service["environment"]["KAFKA_SASL_USERNAME"]
    return username


# --- the broker -------------------------------------------------------------------------------


def test_the_broker_is_one_kraft_node_that_creates_no_topic_on_use(
    services: dict[str, dict[str, Any]], broker: dict[str, str],
) -> None:
    kafka, init = services["kafka"], services["kafka-init"]
    # The Kafka release whose jars the tests run (docker/kafka/pom.xml), pinned by digest.
    version = re.search(r"<kafka.version>([^<]+)<", (KAFKA_DIR / "pom.xml").read_text())[1]  # type: ignore[index]
    assert kafka["image"] == init["image"]
    assert re.fullmatch(rf"apache/kafka:{re.escape(version)}@sha256:[0-9a-f]{{64}}",
                        kafka["image"])
    assert set(broker["process.roles"].split(",")) == {"broker", "controller"}
    controller = broker["controller.listener.names"]
    host, port = listeners(broker["listeners"])[controller]
    assert broker["controller.quorum.voters"] == f"{broker['node.id']}@{host}:{port}"
    # Topics come from `topics create` only; one node cannot replicate internal topics.
    assert broker["auto.create.topics.enable"] == "false"
    for name in ("offsets.topic.replication.factor", "transaction.state.log.replication.factor",
                 "transaction.state.log.min.isr"):
        assert broker[name] == "1", name  # the handlers use transactions
    # The storage kafka-init formats is the one the broker runs on.
    assert len(base64.urlsafe_b64decode(init["environment"]["CLUSTER_ID"] + "==")) == 16
    data = broker["log.dirs"]
    assert mounts(kafka)[data][0] == mounts(init)[data][0] == "kafka-data"


def test_no_listener_a_service_can_reach_takes_plaintext_or_anonymous_clients(
    broker: dict[str, str],
) -> None:
    bound = listeners(broker["listeners"])
    protocols = dict(p.split(":") for p in broker["listener.security.protocol.map"].split(","))
    assert set(bound) == set(protocols)
    controller = broker["controller.listener.names"]
    for name, (host, _) in bound.items():
        if name == controller:
            # The node's own quorum: on the container's loopback, still authenticated.
            assert host == "127.0.0.1"
            assert protocols[name] == "SASL_PLAINTEXT"
        else:
            assert protocols[name] == "SASL_SSL", name
    assert "PLAINTEXT" not in protocols.values()
    # SCRAM only: no PLAIN (a password on every connection), no anonymous mechanism.
    assert broker["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert broker["sasl.mechanism.inter.broker.protocol"] == "SCRAM-SHA-512"
    assert not [k for k in broker if k.endswith(".sasl.enabled.mechanisms")
                and not k.startswith(f"listener.name.{controller.lower()}.")]
    assert broker.get("ssl.client.auth", "none") == "none"  # clients prove who they are by SCRAM


def test_inside_and_outside_listeners_match_clients_and_ports(
    services: dict[str, dict[str, Any]], broker: dict[str, str],
) -> None:
    kafka = services["kafka"]
    bound = listeners(broker["listeners"])
    advertised = listeners(broker["advertised.listeners"])
    inter = broker["inter.broker.listener.name"]
    assert set(advertised) == set(bound) - {broker["controller.listener.names"]}
    inside = advertised[inter]
    assert inside == (kafka["hostname"], bound[inter][1])
    for name, service in ours(services).items():
        assert service["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == f"{inside[0]}:{inside[1]}", name
    # The outside listener is published on the host's loopback, on the port it advertises.
    [outside] = [n for n in advertised if n != inter]
    outside_host, outside_port = advertised[outside]
    assert outside_host == "localhost"
    [entry] = kafka["ports"]
    port = PORT_ENTRY.fullmatch(entry)
    assert port, entry
    assert port["container"] == bound[outside][1]
    assert port["host"] == "127.0.0.1"
    assert port["published"] == outside_port
    # The certificate kafka-init issues names both addresses.
    san = re.search(r"KAFKA_TLS_SAN:-([^}]*)\}", INIT_SCRIPT.read_text()).group(1)  # type: ignore[union-attr]
    assert {f"DNS:{inside[0]}", f"DNS:{outside_host}", "IP:127.0.0.1"} <= set(san.split(","))


def test_the_broker_denies_whatever_no_acl_allows(broker: dict[str, str]) -> None:
    assert broker["authorizer.class.name"] == (
        "org.apache.kafka.metadata.authorizer.StandardAuthorizer")
    assert broker["allow.everyone.if.no.acl.found"] == "false"
    # Only the broker's own principals bypass ACLs; no service runs as either.
    assert set(broker["super.users"].split(";")) == {"User:admin", "User:controller"}


def test_the_broker_configuration_holds_no_secret(
    services: dict[str, dict[str, Any]], broker: dict[str, str],
) -> None:
    secrets_dir, options = next(
        (target, opts) for target, (source, opts) in mounts(services["kafka"]).items()
        if source == "kafka-secrets")
    assert options == "ro"
    assert broker["config.providers.file.class"] == (
        "org.apache.kafka.common.config.provider.FileConfigProvider")
    sensitive = {k: v for k, v in broker.items() if "password" in k or k.endswith("jaas.config")}
    assert len(sensitive) >= 6
    for key, value in sensitive.items():
        without_references = FILE_REFERENCE.sub("", value)
        assert not re.search(r"password=(?!\")|password=\"[^\"]", without_references), key
        for reference in FILE_REFERENCE.finditer(value):
            assert reference["path"].startswith(f"{secrets_dir}/"), (key, reference["path"])


def test_the_broker_health_check_authenticates_on_the_inside_listener(
    services: dict[str, dict[str, Any]],
) -> None:
    kafka = services["kafka"]
    test = kafka["healthcheck"]["test"]
    assert test[0] == "CMD-SHELL"
    assert "--bootstrap-server kafka:9092" in test[1]
    config = re.search(r"--command-config (\S+)", test[1]).group(1)  # type: ignore[union-attr]
    assert mounts(kafka)[str(Path(config).parent)][0] == "kafka-secrets"
    assert "admin.properties" in INIT_SCRIPT.read_text()


# --- the services' principals and credentials ---------------------------------------------------


def test_every_service_has_its_own_principal_with_credentials_from_files(
    services: dict[str, dict[str, Any]],
) -> None:
    principals: dict[str, str] = {}
    for name, service in ours(services).items():
        environment = service["environment"]
        for variable, value in SECURE_CLIENT.items():
            assert environment.get(variable) == value, (name, variable)
        # Never the password itself, in the file or passed through.
        assert "KAFKA_SASL_PASSWORD" not in environment, name
        assert "env_file" not in service or all(
            "kafka" not in entry["path"] for entry in service["env_file"]), name
        principal = principal_of(service)
        assert principal not in principals.values(), f"{name} shares {principal}"
        principals[name] = principal
        # The password file and the CA come from this principal's volume only, read-only.
        assert mounts(service)[CLIENT_SECRETS] == (f"kafka-client-{principal}", "ro"), name
    assert principals == {"kafka-setup": "admin", "webhook": "webhook", "handlers": "handlers",
                          "reconciler": "reconciler", "operator": "operator"}


def test_kafka_init_makes_exactly_the_principals_the_services_use(
    services: dict[str, dict[str, Any]],
) -> None:
    init = services["kafka-init"]
    assert init["network_mode"] == "none"  # generates, never talks
    assert init["restart"] == "no"
    assert init["cap_drop"] == ["ALL"]
    assert set(init["cap_add"]) <= {"CHOWN", "DAC_OVERRIDE", "FOWNER"}
    made = set(init["environment"]["KAFKA_PRINCIPALS"].split())
    used = {principal_of(s) for s in ours(services).values()}
    assert made | {"admin"} == used  # admin is the script's own (the set-up's)
    init_mounts = mounts(init)
    for principal in used:
        assert init_mounts[f"/clients/{principal}"] == (f"kafka-client-{principal}", "rw")
    assert mounts(services["kafka"])["/etc/kafka/secrets"][0] == (
        init_mounts["/etc/kafka/secrets"][0])
    entry, script = init["entrypoint"]
    assert entry == "/bin/sh"
    assert (DOCKER / init_mounts[script][0]).resolve() == INIT_SCRIPT
    assert (DOCKER / init_mounts["/etc/kafka/agora-events/server.properties"][0]).resolve() == (
        SERVER_PROPERTIES)


def _setup_commands(services: dict[str, dict[str, Any]]) -> list[list[str]]:
    setup = services["kafka-setup"]
    entry, script = setup["entrypoint"]
    assert entry == "/bin/sh"
    source, options = mounts(setup)[script]
    assert (DOCKER / source).resolve() == SETUP_SCRIPT
    assert options == "ro"
    lines = [shlex.split(line) for line in SETUP_SCRIPT.read_text().splitlines()
             if line.startswith("agora-events ")]
    return [line[1:] for line in lines]


def test_kafka_setup_gives_each_principal_its_own_component_acls(
    services: dict[str, dict[str, Any]],
) -> None:
    commands = _setup_commands(services)
    assert commands[0][:2] == ["topics", "create"]
    granted = {}
    for args in commands[1:]:
        assert args[:2] == ["topics", "acls"], args
        assert args[-1] == "--apply", args
        component, flag, principal = args[2:5]
        assert flag == "--principal"
        assert principal.startswith("User:")
        granted[principal.removeprefix("User:")] = component
    used = {principal_of(s) for s in ours(services).values()} - {"admin"}
    # One component per principal, and it is the one of the service that uses it.
    assert granted == {p: p for p in used}
    assert set(granted.values()) == set(COMPONENTS)
    # Each line is a real command: without --apply it prints the ACLs it would create.
    for args in commands[1:]:
        result = CliRunner().invoke(main, args[:-1], prog_name="agora-events")
        assert result.exit_code == 0, result.output
        assert "--add --allow-principal" in result.output
    create = main.get_command(None, "topics").get_command(None, "create")  # type: ignore[union-attr]
    create.make_context("create", commands[0][2:])


# --- the repository and the host --------------------------------------------------------------


def test_no_secret_is_kept_in_the_repository() -> None:
    tracked = subprocess.run(["git", "ls-files", "docker"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.split()
    assert "docker/kafka/server.properties" in tracked
    keys = [p for p in tracked if re.search(r"\.(p12|jks|pem|key|crt|keystore)$", p)]
    assert not keys
    for path in tracked:
        text = (ROOT / path).read_text(encoding="utf-8", errors="replace")
        # No literal password assignment and no long random-looking token.
        assert not re.search(r"(?i)password\s*[=:]\s*[\"']?[A-Za-z0-9+/]{12,}", text), path
        assert not re.search(r"\b[0-9a-f]{40,}\b", re.sub(r"sha256:[0-9a-f]{64}", "", text)), path


def test_every_published_port_is_on_the_host_loopback(
    services: dict[str, dict[str, Any]],
) -> None:
    published = 0
    for name, service in services.items():
        for entry in service.get("ports", []):
            match = PORT_ENTRY.fullmatch(entry)
            assert match, f"{name}: {entry}"
            assert match["host"] in ("127.0.0.1", "${WEBHOOK_HOST:-127.0.0.1}"), f"{name}: {entry}"
            published += 1
    assert published >= 5


# --- the init script's refusals (no keytool, no broker: it stops before) --------------------


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({"KAFKA_PRINCIPALS": "webhook"}, "CLUSTER_ID"),
        ({"CLUSTER_ID": "x"}, "KAFKA_PRINCIPALS"),
        ({"CLUSTER_ID": "x", "KAFKA_PRINCIPALS": "webhook admin"}, "the broker's own"),
        ({"CLUSTER_ID": "x", "KAFKA_PRINCIPALS": "web;hook"}, "is not [a-z0-9-]+"),
    ],
)
def test_kafka_init_refuses_a_configuration_it_cannot_keep_safe(
    tmp_path: Path, environment: dict[str, str], message: str
) -> None:
    env = {"PATH": os.environ["PATH"], "SECRETS_DIR": str(tmp_path), **environment}
    result = subprocess.run(["sh", str(INIT_SCRIPT)], env=env, capture_output=True, text=True,
                            timeout=30, check=False)
    assert result.returncode != 0
    assert message in result.stderr
    assert list(tmp_path.iterdir()) == []  # refused before anything was written


def test_kafka_init_makes_no_password_a_formatted_broker_will_not_know(tmp_path: Path) -> None:
    """A data volume formatted earlier (a stack from before its broker was secured, or a new
    principal) has no SCRAM user for a new password: stop, say so, and write no password."""
    secrets_dir, data = tmp_path / "secrets", tmp_path / "data"
    secrets_dir.mkdir()
    data.mkdir()
    (data / "meta.properties").write_text("node.id=1\n")
    env = {"PATH": os.environ["PATH"], "SECRETS_DIR": str(secrets_dir), "DATA_DIR": str(data),
           "CLUSTER_ID": "x", "KAFKA_PRINCIPALS": "webhook"}
    result = subprocess.run(["sh", str(INIT_SCRIPT)], env=env, capture_output=True, text=True,
                            timeout=30, check=False)
    assert result.returncode != 0
    assert ("formatted before these SCRAM users existed: store.password controller admin "
            "webhook") in result.stderr
    assert (secrets_dir / "secrets.properties").read_text() == ""
