"""What each subcommand does: ``fetch``, ``up``, ``down``, ``stop-node``, ``start-node``,
``status`` and the internal ``watch``. Each takes the parsed arguments and returns the exit status.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from kafkalocal.cluster_layout import ClusterSpec, NodePaths
from kafkalocal.cluster_state import (
    cluster_lock,
    load_spec,
    node_pid,
    require_spec,
    resolve_spec,
    save_spec,
    write_node_files,
)
from kafkalocal.console import LocalKafkaError, say
from kafkalocal.java_runtime import find_java
from kafkalocal.maven_jars import ensure_libs, fetch, resolve_libs
from kafkalocal.metadata_probe import probe_metadata
from kafkalocal.node_lifecycle import (
    check_ports_free,
    down,
    launch,
    start_watcher,
    stop_pids,
    wait_ready,
)
from kafkalocal.processes import pid_alive


def summary(
    cluster_dir: Path, spec: ClusterSpec, already_running: bool, elapsed_s: float
) -> dict[str, Any]:
    """The JSON object printed by ``up --json`` / ``start-node --json``."""
    ids = [n.node_id for n in spec.nodes]
    return {
        "bootstrap": spec.bootstrap,
        "cluster_id": spec.cluster_id,
        "dir": str(cluster_dir),
        "nodes": len(ids),
        "pids": {str(i): node_pid(NodePaths.of(cluster_dir, i)) for i in ids},
        "dirs": {str(i): str(NodePaths.of(cluster_dir, i).root) for i in ids},
        "logs": {str(i): str(NodePaths.of(cluster_dir, i).log) for i in ids},
        "ports": {str(n.node_id): n.port for n in spec.nodes},
        "controller_ports": {str(n.node_id): n.controller_port for n in spec.nodes},
        "already_running": already_running,
        "elapsed_s": round(elapsed_s, 2),
    }


def emit(result: dict[str, Any], as_json: bool) -> None:
    """Last stdout line: the JSON object or the bootstrap list."""
    print(json.dumps(result) if as_json else result["bootstrap"], flush=True)


def cmd_up(args: argparse.Namespace) -> int:
    """Format and start the cluster (or the nodes of it that are down) and wait until ready."""
    cluster_dir: Path = args.dir.resolve()
    cluster_dir.mkdir(parents=True, exist_ok=True)
    java = find_java()
    libs = ensure_libs(resolve_libs(args.libs))
    started_at = time.monotonic()
    with cluster_lock(cluster_dir):
        spec = resolve_spec(cluster_dir, args.port, args.nodes, args.partitions)
        all_ids = [n.node_id for n in spec.nodes]
        down_ids = [i for i in all_ids if node_pid(NodePaths.of(cluster_dir, i)) is None]
        if down_ids:
            check_ports_free(spec, down_ids)  # before anything is written for a new directory
            write_node_files(cluster_dir, spec)
            save_spec(cluster_dir, spec)
            launch(java, libs, cluster_dir, spec, down_ids, set(all_ids), args.timeout)
            elapsed = time.monotonic() - started_at
            say(f"ready in {elapsed:.1f} s: {spec.bootstrap}")
        else:
            wait_ready(cluster_dir, spec, all_ids, set(all_ids), {}, args.timeout)
            say(f"already running in {cluster_dir}")
            elapsed = 0.0
        if args.owner_pid:
            start_watcher(cluster_dir, args.owner_pid)
        emit(summary(cluster_dir, spec, not down_ids, elapsed), args.json)
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    """``down``."""
    return down(args.dir.resolve(), args.timeout, args.purge)


def cmd_stop_node(args: argparse.Namespace) -> int:
    """Stop one node, keeping its data (for fault tests)."""
    cluster_dir: Path = args.dir.resolve()
    spec = require_spec(cluster_dir)
    spec.node(args.node)
    with cluster_lock(cluster_dir):
        paths = NodePaths.of(cluster_dir, args.node)
        pid = node_pid(paths)
        if pid is None:
            say(f"node {args.node} is not running")
            paths.pid.unlink(missing_ok=True)
            return 0
        outcome = stop_pids(
            {args.node: pid},
            {args.node: str(paths.properties)},
            kill=args.kill,
            timeout_s=args.timeout,
        )[args.node]
        if outcome == "still running":
            raise LocalKafkaError(f"node {args.node} (pid {pid}) could not be stopped")
        paths.pid.unlink(missing_ok=True)
        say(f"node {args.node} (pid {pid}): {outcome}")
    return 0


def cmd_start_node(args: argparse.Namespace) -> int:
    """Restart one node from its existing data and wait until it answers."""
    cluster_dir: Path = args.dir.resolve()
    spec = require_spec(cluster_dir)
    spec.node(args.node)
    java = find_java()
    libs = ensure_libs(resolve_libs(args.libs))
    started_at = time.monotonic()
    with cluster_lock(cluster_dir):
        already = node_pid(NodePaths.of(cluster_dir, args.node)) is not None
        if already:
            say(f"node {args.node} is already running")
        else:
            write_node_files(cluster_dir, spec)
            launch(java, libs, cluster_dir, spec, [args.node], set(), args.timeout)
            say(f"node {args.node} ready in {time.monotonic() - started_at:.1f} s")
        emit(summary(cluster_dir, spec, already, time.monotonic() - started_at), args.json)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """Report each node's process and whether it answers; exit 3 unless all answer."""
    cluster_dir: Path = args.dir.resolve()
    spec = load_spec(cluster_dir)
    if spec is None:
        if args.json:
            print(json.dumps({"dir": str(cluster_dir), "nodes": {}}))
        else:
            print(f"no cluster in {cluster_dir}")
        return 3
    ids = {n.node_id for n in spec.nodes}
    report: dict[str, Any] = {"dir": str(cluster_dir), "bootstrap": spec.bootstrap, "nodes": {}}
    all_ok = True
    for node in spec.nodes:
        pid = node_pid(NodePaths.of(cluster_dir, node.node_id))
        # Generous timeout: a busy 2-core machine can take seconds to answer.
        view = probe_metadata(node.port, timeout_s=5.0) if pid is not None else None
        answers = view is not None and node.node_id in view.brokers
        all_ok = all_ok and answers
        report["nodes"][str(node.node_id)] = {
            "pid": pid,
            "port": node.port,
            "answers": answers,
            "live_brokers": sorted(view.brokers) if view else [],
            "controller_id": view.controller_id if view else None,
        }
        if not args.json:
            state = f"running (pid {pid})" if pid else "stopped"
            extra = ""
            if view is not None:
                missing = sorted(ids - set(view.brokers))
                extra = f", answers; live brokers {sorted(view.brokers)}"
                extra += f" (not live: {missing})" if missing else ""
            elif pid:
                extra = ", not answering"
            print(f"node {node.node_id}: {state}, port {node.port}{extra}")
    if args.json:
        print(json.dumps(report))
    else:
        print(spec.bootstrap)
    return 0 if all_ok else 3


def cmd_fetch(args: argparse.Namespace) -> int:
    """``fetch``."""
    libs = fetch(resolve_libs(args.libs))
    print(libs)
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    """Internal: run ``down`` when the owner process disappears."""
    cluster_dir: Path = args.dir.resolve()
    while pid_alive(args.owner_pid):
        time.sleep(1.0)
    say(f"owner pid {args.owner_pid} is gone; stopping the cluster in {cluster_dir}")
    return down(cluster_dir, 30.0, purge=False)
