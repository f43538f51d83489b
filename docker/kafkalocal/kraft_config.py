"""KRaft configuration (pure): each node's server.properties and the JVM command lines."""

from __future__ import annotations

from pathlib import Path

from kafkalocal.cluster_layout import HOST, ClusterSpec
from kafkalocal.locations import LOG4J2_CONFIG

JVM_FLAGS = (
    "-server",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:MaxInlineLevel=15",
    "-Djava.awt.headless=true",
)


def server_settings(spec: ClusterSpec, node_id: int, data_dir: Path) -> dict[str, str]:
    """The ``server.properties`` of one node, as ordered key/value pairs.

    One node uses a dynamic quorum (``controller.quorum.bootstrap.servers``, formatted with
    ``--standalone``) and replication factor 1 everywhere. Three nodes use a static quorum
    (``controller.quorum.voters``, formatted without ``--standalone``), replication factor 3,
    ``min.insync.replicas=2``. Both fence a dead broker after 6 s (fault tests kill nodes).
    """
    node = spec.node(node_id)
    multi = len(spec.nodes) > 1
    rf = "3" if multi else "1"
    min_isr = "2" if multi else "1"
    settings: dict[str, str] = {
        "process.roles": "broker,controller",
        "node.id": str(node.node_id),
        "listeners": f"PLAINTEXT://{HOST}:{node.port},CONTROLLER://{HOST}:{node.controller_port}",
        "advertised.listeners": (
            f"PLAINTEXT://{HOST}:{node.port},CONTROLLER://{HOST}:{node.controller_port}"
        ),
        "inter.broker.listener.name": "PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(data_dir.resolve()),
        "num.partitions": str(spec.partitions),
        "auto.create.topics.enable": "false",
        "default.replication.factor": rf,
        "min.insync.replicas": min_isr,
        "offsets.topic.replication.factor": rf,
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.replication.factor": rf,
        "transaction.state.log.min.isr": min_isr,
        "transaction.state.log.num.partitions": "1",
        "share.coordinator.state.topic.replication.factor": rf,
        "share.coordinator.state.topic.min.isr": min_isr,
        "group.initial.rebalance.delay.ms": "0",
        # The default 128 MiB dedupe buffer is a quarter of a small test heap.
        "log.cleaner.dedupe.buffer.size": str(32 * 1024 * 1024),
        # A killed broker's registration lives until its session expires (default 9 s): only
        # then is it fenced (acks=all producers resume) and may the restarted node re-register.
        "broker.heartbeat.interval.ms": "1000",
        "broker.session.timeout.ms": "6000",
    }
    if multi:
        settings["controller.quorum.voters"] = ",".join(
            f"{n.node_id}@{HOST}:{n.controller_port}" for n in spec.nodes
        )
    else:
        settings["controller.quorum.bootstrap.servers"] = f"{HOST}:{node.controller_port}"
    return settings


def render_properties(spec: ClusterSpec, node_id: int, data_dir: Path) -> str:
    """``server.properties`` text for one node (no inline comments: .properties has none)."""
    header = f"# Written by docker/kafka_local.py for node {node_id}; rewritten on every start.\n"
    body = "".join(f"{k}={v}\n" for k, v in server_settings(spec, node_id, data_dir).items())
    return header + body


def heap_for(node_count: int) -> str:
    """JVM heap per node: 512m alone, 384m each when three share the machine."""
    return "512m" if node_count == 1 else "384m"


def classpath(libs: Path) -> str:
    """A JVM classpath wildcard (expanded by the JVM, not a shell)."""
    return f"{libs.resolve()}/*"


def format_command(
    java: str, libs: Path, properties: Path, cluster_id: str, standalone: bool
) -> list[str]:
    """argv of the KRaft storage format tool; ``--standalone`` only for the dynamic quorum."""
    cmd = [
        java,
        "-Xmx256m",
        "-XX:+UseSerialGC",
        "-XX:TieredStopAtLevel=1",  # short-lived tool: favour JVM start-up over peak speed
        f"-Dlog4j2.configurationFile={LOG4J2_CONFIG}",
        "-cp",
        classpath(libs),
        "kafka.tools.StorageTool",
        "format",
        "--ignore-formatted",
        "-t",
        cluster_id,
        "-c",
        str(properties),
    ]
    if standalone:
        cmd.append("--standalone")
    return cmd


def broker_command(java: str, libs: Path, properties: Path, heap: str, log_dir: Path) -> list[str]:
    """argv of one broker JVM (what bin/kafka-server-start.sh would run)."""
    return [
        java,
        f"-Xms{heap}",
        f"-Xmx{heap}",
        *JVM_FLAGS,
        f"-Dlog4j2.configurationFile={LOG4J2_CONFIG}",
        f"-Dkafka.logs.dir={log_dir}",
        "-cp",
        classpath(libs),
        "kafka.Kafka",
        str(properties),
    ]
