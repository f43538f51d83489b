"""A cluster directory's state: its recorded layout (cluster.json), node files, lock, pids."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from kafkalocal.cluster_layout import (
    ClusterSpec,
    NodePaths,
    new_cluster_id,
    nodes_from_ports,
    plan_ports,
)
from kafkalocal.console import LocalKafkaError
from kafkalocal.free_ports import pick_free_ports
from kafkalocal.kraft_config import render_properties
from kafkalocal.processes import file_lock, process_matches, read_pid

STATE_FILE = "cluster.json"


def load_spec(cluster_dir: Path) -> ClusterSpec | None:
    """The recorded layout of ``cluster_dir``, or None if it was never started."""
    path = cluster_dir / STATE_FILE
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise LocalKafkaError(f"{path}: unreadable ({exc}); remove the directory") from exc
    try:
        return ClusterSpec.from_json(doc)
    except ValueError as exc:
        raise LocalKafkaError(f"{path}: {exc}; remove the directory") from exc


def save_spec(cluster_dir: Path, spec: ClusterSpec) -> None:
    """Write ``cluster.json`` atomically."""
    path = cluster_dir / STATE_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(spec.to_json(), indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)


def resolve_spec(cluster_dir: Path, port: int, nodes: int, partitions: int) -> ClusterSpec:
    """The layout to run: the recorded one if the directory was used before, else a new one.

    Ports are part of the formatted quorum, so an existing directory keeps its ports; asking
    for different ports or a different node count is an error rather than a silent change.
    """
    existing = load_spec(cluster_dir)
    if existing is not None:
        if len(existing.nodes) != nodes:
            raise LocalKafkaError(
                f"--nodes: {cluster_dir} holds a {len(existing.nodes)}-node cluster, got {nodes}; "
                "use another --dir or run `down --purge` first"
            )
        if port not in (0, existing.nodes[0].port):
            raise LocalKafkaError(
                f"--port: {cluster_dir} was formatted for port {existing.nodes[0].port}, "
                f"got {port}; use --port 0 or {existing.nodes[0].port}, or `down --purge` first"
            )
        return ClusterSpec(existing.cluster_id, existing.nodes, partitions)
    if port == 0:
        layout = nodes_from_ports(pick_free_ports(2 * nodes))
    else:
        try:
            layout = plan_ports(port, nodes)
        except ValueError as exc:
            raise LocalKafkaError(f"--{exc}") from exc
    return ClusterSpec(new_cluster_id(), layout, partitions)


def write_node_files(cluster_dir: Path, spec: ClusterSpec) -> None:
    """(Re)write every node's server.properties."""
    for node in spec.nodes:
        paths = NodePaths.of(cluster_dir, node.node_id)
        paths.data.mkdir(parents=True, exist_ok=True)
        paths.properties.write_text(
            render_properties(spec, node.node_id, paths.data), encoding="utf-8"
        )


def require_spec(cluster_dir: Path) -> ClusterSpec:
    """The recorded layout; LocalKafkaError if ``up`` never ran in this directory."""
    spec = load_spec(cluster_dir)
    if spec is None:
        raise LocalKafkaError(f"--dir: no cluster in {cluster_dir} (run `up` first)")
    return spec


def node_ids_on_disk(cluster_dir: Path) -> list[int]:
    """Node ids that have a node-N folder (works without cluster.json)."""
    ids = []
    for path in cluster_dir.glob("node-*"):
        suffix = path.name.removeprefix("node-")
        if path.is_dir() and suffix.isdigit():
            ids.append(int(suffix))
    return sorted(ids)


def node_pid(paths: NodePaths) -> int | None:
    """pid of this node's running JVM, or None (stale pid files are ignored)."""
    pid = read_pid(paths.pid)
    if pid is not None and process_matches(pid, str(paths.properties)):
        return pid
    return None


def cluster_lock(cluster_dir: Path) -> contextlib.AbstractContextManager[None]:
    """Serialises up/down/stop-node/start-node on one directory."""
    return file_lock(cluster_dir / ".lock")
