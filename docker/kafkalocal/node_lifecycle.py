"""Starting and stopping the nodes of a cluster directory, and the watcher that stops them."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from kafkalocal.cluster_layout import ClusterSpec, NodePaths
from kafkalocal.cluster_state import STATE_FILE, cluster_lock, node_ids_on_disk, node_pid
from kafkalocal.console import LocalKafkaError, say, tail
from kafkalocal.free_ports import port_free
from kafkalocal.kraft_config import broker_command, format_command, heap_for
from kafkalocal.locations import ENTRY_SCRIPT
from kafkalocal.metadata_probe import node_answers
from kafkalocal.processes import (
    POLL_S,
    process_matches,
    read_pid,
    signal_group,
    spawn_detached,
    wait_until,
)


def format_nodes(
    java: str, libs: Path, cluster_dir: Path, spec: ClusterSpec, node_ids: Sequence[int]
) -> None:
    """Format the storage of the given nodes that are not formatted yet (in parallel)."""
    standalone = len(spec.nodes) == 1
    running: list[tuple[int, subprocess.Popen[bytes], NodePaths]] = []
    for node_id in node_ids:
        paths = NodePaths.of(cluster_dir, node_id)
        if (paths.data / "meta.properties").exists():
            continue
        cmd = format_command(java, libs, paths.properties, spec.cluster_id, standalone)
        with paths.format_log.open("wb") as out:
            proc = subprocess.Popen(
                cmd,
                cwd=paths.root,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        running.append((node_id, proc, paths))
    failures = []
    for node_id, proc, paths in running:
        if proc.wait(timeout=120) != 0:
            failures.append(f"node {node_id} (exit {proc.returncode}):\n{tail(paths.format_log)}")
    if failures:
        raise LocalKafkaError("formatting storage failed for " + "\n".join(failures))


def check_ports_free(spec: ClusterSpec, node_ids: Sequence[int]) -> None:
    """LocalKafkaError naming the first port of these nodes that something else listens on."""
    for node_id in node_ids:
        node = spec.node(node_id)
        for port in (node.port, node.controller_port):
            if not port_free(port, strict=False):
                raise LocalKafkaError(
                    f"port {port} (node {node_id}) is already in use; another broker? "
                    "pick another --port or --port 0"
                )


def start_nodes(
    java: str, libs: Path, cluster_dir: Path, spec: ClusterSpec, node_ids: Sequence[int]
) -> dict[int, subprocess.Popen[bytes]]:
    """Start the given nodes' JVMs detached and record their pid files."""
    check_ports_free(spec, node_ids)
    heap = heap_for(len(spec.nodes))
    started: dict[int, subprocess.Popen[bytes]] = {}
    for node_id in node_ids:
        paths = NodePaths.of(cluster_dir, node_id)
        proc = spawn_detached(
            broker_command(java, libs, paths.properties, heap, paths.root), paths.root, paths.log
        )
        paths.pid.write_text(f"{proc.pid}\n", encoding="ascii")
        started[node_id] = proc
    return started


def wait_ready(
    cluster_dir: Path,
    spec: ClusterSpec,
    node_ids: Sequence[int],
    expected: set[int],
    procs: dict[int, subprocess.Popen[bytes]],
    timeout_s: float,
) -> None:
    """Block until every node in ``node_ids`` answers Metadata listing ``expected`` brokers.

    Fails fast with the log tail if a JVM we started exits, or when ``timeout_s`` passes.
    """
    deadline = time.monotonic() + timeout_s
    pending = set(node_ids)
    while pending:
        for node_id in sorted(pending):
            proc = procs.get(node_id)
            paths = NodePaths.of(cluster_dir, node_id)
            if proc is not None and proc.poll() is not None:
                raise LocalKafkaError(
                    f"node {node_id} exited with status {proc.returncode} during start-up; "
                    f"{paths.log}:\n{tail(paths.log)}"
                )
            if node_answers(spec.node(node_id), expected):
                pending.discard(node_id)
        if not pending:
            return
        if time.monotonic() >= deadline:
            details = "\n".join(
                f"--- node {n}: {NodePaths.of(cluster_dir, n).log}\n"
                f"{tail(NodePaths.of(cluster_dir, n).log)}"
                for n in sorted(pending)
            )
            raise LocalKafkaError(
                f"node(s) {sorted(pending)} did not answer within {timeout_s:g} s\n{details}"
            )
        time.sleep(POLL_S)


def launch(
    java: str,
    libs: Path,
    cluster_dir: Path,
    spec: ClusterSpec,
    node_ids: Sequence[int],
    expected: set[int],
    timeout_s: float,
) -> None:
    """Format and start these nodes and wait until they answer (see :func:`wait_ready`).

    On failure or Ctrl-C only the JVMs started here are stopped again, then the error rises.
    """
    procs: dict[int, subprocess.Popen[bytes]] = {}
    try:
        format_nodes(java, libs, cluster_dir, spec, node_ids)
        procs = start_nodes(java, libs, cluster_dir, spec, node_ids)
        say(f"started node(s) {list(node_ids)} in {cluster_dir}; waiting for brokers")
        wait_ready(cluster_dir, spec, node_ids, expected, procs, timeout_s)
    except (LocalKafkaError, KeyboardInterrupt):
        stop_started(cluster_dir, procs)
        raise


def stop_started(cluster_dir: Path, procs: dict[int, subprocess.Popen[bytes]]) -> None:
    """Undo a failed start: stop only the JVMs this invocation started."""
    for proc in procs.values():
        if proc.poll() is None:
            signal_group(proc.pid, signal.SIGTERM)
    for node_id, proc in procs.items():
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            signal_group(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)
        NodePaths.of(cluster_dir, node_id).pid.unlink(missing_ok=True)


def down(cluster_dir: Path, timeout_s: float, purge: bool) -> int:
    """Stop every node of ``cluster_dir``; with ``purge`` also delete its data. Returns status."""
    if not cluster_dir.is_dir():
        say(f"nothing to stop: {cluster_dir} does not exist")
        return 0
    with cluster_lock(cluster_dir):
        stop_watcher(cluster_dir)
        ids = node_ids_on_disk(cluster_dir)
        pids = {i: p for i in ids if (p := node_pid(NodePaths.of(cluster_dir, i))) is not None}
        needles = {i: str(NodePaths.of(cluster_dir, i).properties) for i in pids}
        outcome = stop_pids(pids, needles, kill=False, timeout_s=timeout_s) if pids else {}
        for node_id in ids:
            if outcome.get(node_id) != "still running":
                NodePaths.of(cluster_dir, node_id).pid.unlink(missing_ok=True)
        for node_id, result in sorted(outcome.items()):
            say(f"node {node_id} (pid {pids[node_id]}): {result}")
        if not pids:
            say(f"nothing running in {cluster_dir}")
        if any(r == "still running" for r in outcome.values()):
            raise LocalKafkaError("some nodes could not be stopped (see above)")
        if purge:
            for node_id in ids:
                shutil.rmtree(NodePaths.of(cluster_dir, node_id).data, ignore_errors=True)
            (cluster_dir / STATE_FILE).unlink(missing_ok=True)
            say(f"purged data in {cluster_dir}")
    return 0


def stop_pids(
    pids: dict[int, int], needles: dict[int, str], kill: bool, timeout_s: float
) -> dict[int, str]:
    """Stop processes: SIGTERM (or SIGKILL) all at once, SIGKILL whatever outlives ``timeout_s``.

    Returns node id -> "stopped" | "killed" | "still running".
    """
    first = signal.SIGKILL if kill else signal.SIGTERM
    for pid in pids.values():
        signal_group(pid, first)

    def alive(node_id: int) -> bool:
        return process_matches(pids[node_id], needles[node_id])

    wait_until(lambda: not any(alive(n) for n in pids), timeout_s)
    outcome = dict.fromkeys(pids, "killed" if kill else "stopped")
    for node_id in [n for n in pids if alive(n)]:
        signal_group(pids[node_id], signal.SIGKILL)
        outcome[node_id] = "killed"
    wait_until(lambda: not any(alive(n) for n in pids), 10.0)
    for node_id in pids:
        if alive(node_id):
            outcome[node_id] = "still running"
    return outcome


def stop_watcher(cluster_dir: Path) -> None:
    """Stop the owner watcher of this directory (unless we are it)."""
    pid_file = cluster_dir / "watch.pid"
    pid = read_pid(pid_file)
    if pid is not None and pid != os.getpid() and process_matches(pid, str(cluster_dir)):
        signal_group(pid, signal.SIGTERM)
    pid_file.unlink(missing_ok=True)


def start_watcher(cluster_dir: Path, owner_pid: int) -> None:
    """Start a small detached process that runs ``down`` once ``owner_pid`` is gone.

    A test session that dies without tearing down (SIGKILL, crash) must not leak JVMs.
    """
    stop_watcher(cluster_dir)
    cmd = [
        sys.executable,
        str(ENTRY_SCRIPT),
        "watch",
        "--dir",
        str(cluster_dir),
        "--owner-pid",
        str(owner_pid),
    ]
    proc = spawn_detached(cmd, cluster_dir, cluster_dir / "watch.log")
    (cluster_dir / "watch.pid").write_text(f"{proc.pid}\n", encoding="ascii")
