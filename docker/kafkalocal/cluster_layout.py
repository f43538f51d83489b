"""The cluster's layout (pure): nodes and their ports, the cluster id, each node's files."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kafkalocal.console import LocalKafkaError

HOST = "127.0.0.1"
VALID_NODE_COUNTS = (1, 3)
STATE_VERSION = 1


@dataclass(frozen=True)
class NodeSpec:
    """One combined broker+controller node: its id and its two listener ports."""

    node_id: int
    port: int
    controller_port: int


@dataclass(frozen=True)
class ClusterSpec:
    """Everything that must stay stable across restarts of a data directory."""

    cluster_id: str
    nodes: tuple[NodeSpec, ...]
    partitions: int

    @property
    def bootstrap(self) -> str:
        """The client bootstrap list, ``127.0.0.1:PORT[,...]`` in node order."""
        return ",".join(f"{HOST}:{n.port}" for n in self.nodes)

    def node(self, node_id: int) -> NodeSpec:
        """The node with this id; LocalKafkaError naming the valid ids otherwise."""
        for n in self.nodes:
            if n.node_id == node_id:
                return n
        valid = ", ".join(str(n.node_id) for n in self.nodes)
        raise LocalKafkaError(f"node must be one of {valid} for this cluster, got {node_id}")

    def to_json(self) -> dict[str, Any]:
        """The ``cluster.json`` document."""
        return {
            "version": STATE_VERSION,
            "cluster_id": self.cluster_id,
            "partitions": self.partitions,
            "nodes": [
                {"node_id": n.node_id, "port": n.port, "controller_port": n.controller_port}
                for n in self.nodes
            ],
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> ClusterSpec:
        """Inverse of :meth:`to_json`; ValueError naming the field on a malformed document."""
        if doc.get("version") != STATE_VERSION:
            raise ValueError(f"version: expected {STATE_VERSION}, got {doc.get('version')!r}")
        try:
            nodes = tuple(
                NodeSpec(int(n["node_id"]), int(n["port"]), int(n["controller_port"]))
                for n in doc["nodes"]
            )
            return cls(str(doc["cluster_id"]), nodes, int(doc["partitions"]))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"missing or malformed field {exc}") from exc


def plan_ports(base_port: int, count: int) -> tuple[NodeSpec, ...]:
    """Fixed layout from a base port: node i gets base+2(i-1) and base+2(i-1)+1."""
    if count not in VALID_NODE_COUNTS:
        raise ValueError(f"nodes: expected one of {VALID_NODE_COUNTS}, got {count}")
    last = base_port + 2 * count - 1
    if base_port < 1 or last > 65535:
        raise ValueError(
            f"port: {count} node(s) need ports {base_port}..{last}, which must lie in 1..65535"
        )
    return tuple(
        NodeSpec(i, base_port + 2 * (i - 1), base_port + 2 * (i - 1) + 1)
        for i in range(1, count + 1)
    )


def nodes_from_ports(ports: Sequence[int]) -> tuple[NodeSpec, ...]:
    """Layout from an explicit list of 2 ports per node (client, controller, client, ...)."""
    if len(ports) % 2 or len(ports) // 2 not in VALID_NODE_COUNTS:
        raise ValueError(f"ports: expected 2 or 6 ports, got {len(ports)}")
    return tuple(NodeSpec(i // 2 + 1, ports[i], ports[i + 1]) for i in range(0, len(ports), 2))


def new_cluster_id() -> str:
    """A Kafka-style cluster id: URL-safe base64 of 16 random bytes, never starting with '-'."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")
        if not cid.startswith("-"):  # Kafka's Uuid.randomUuid avoids these (CLI-unfriendly)
            return cid


@dataclass(frozen=True)
class NodePaths:
    """Files of one node under the cluster directory (build with :meth:`of`)."""

    root: Path
    data: Path  # log.dirs
    properties: Path  # server.properties
    log: Path  # stdout+stderr of the broker JVM
    format_log: Path  # output of the storage format tool
    pid: Path  # pid file of the running JVM

    @classmethod
    def of(cls, cluster_dir: Path, node_id: int) -> NodePaths:
        """Paths of node ``node_id`` in ``cluster_dir``."""
        root = cluster_dir / f"node-{node_id}"
        return cls(
            root=root,
            data=root / "data",
            properties=root / "server.properties",
            log=root / "broker.log",
            format_log=root / "format.log",
            pid=root / "pid",
        )
