#!/usr/bin/env python3
"""Run real Apache Kafka brokers (KRaft, combined broker+controller) locally, without Docker.

The broker jars come from Maven Central (``docker/kafka/pom.xml``) and run on the local JDK (17+).
Standard library only: this runs before the project's virtualenv exists.

Subcommands::

    fetch       copy the broker jars into --libs (default <repo>/.kafka/libs); idempotent
    up          format + start 1 or 3 nodes under --dir (default <repo>/.kafka/local), wait until
                every broker answers a Kafka Metadata request, print the bootstrap list
    down        SIGTERM every node, SIGKILL leftovers after --timeout, remove pid files
    stop-node   stop one node (SIGTERM, or SIGKILL with --kill), keeping its data
    start-node  restart one node from its existing data and wait until it answers
    status      show each node's process and whether it answers

Layout under --dir: ``cluster.json`` (cluster id, ports), ``node-N/server.properties``,
``node-N/data`` (log.dirs), ``node-N/broker.log`` (stdout+stderr of the JVM), ``node-N/pid``.
Ports: with ``--port P`` node i (1-based) listens on P+2(i-1) (clients) and P+2(i-1)+1 (controller);
``--port 0`` picks free ports below the kernel's ephemeral range. Exit status: 0 ok, 1 error,
2 usage error, 3 (status only) not every node answers.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import json
import os
import re
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
KAFKA_CONF_DIR = REPO / "docker" / "kafka"
POM = KAFKA_CONF_DIR / "pom.xml"
LOG4J2_CONFIG = KAFKA_CONF_DIR / "log4j2.properties"
DEFAULT_LIBS = REPO / ".kafka" / "libs"
DEFAULT_DIR = REPO / ".kafka" / "local"
LIBS_ENV = "KAFKA_LOCAL_LIBS"
MARKER_NAME = ".kafka-local-fetched.json"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies"
# Jar name prefixes without which the broker cannot start (or starts without any logging).
REQUIRED_JARS = (
    "kafka_2.13-",
    "kafka-server-",
    "kafka-clients-",
    "scala-library-",
    "log4j-api-",
    "log4j-core-",
    "log4j-slf4j-impl-",
)
HOST = "127.0.0.1"
VALID_NODE_COUNTS = (1, 3)
MIN_JAVA = 17
STATE_FILE = "cluster.json"
STATE_VERSION = 1
LOG_TAIL_LINES = 40
POLL_S = 0.25
JVM_FLAGS = (
    "-server",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:MaxInlineLevel=15",
    "-Djava.awt.headless=true",
)


class LocalKafkaError(Exception):
    """A failure reported to the user as one clear line (plus any log tail) and exit status 1."""


def say(message: str) -> None:
    """Progress for humans; stdout stays reserved for the bootstrap line or the JSON object."""
    print(f"kafka_local: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Pure decisions: layout, properties, commands, the Metadata wire format
# ---------------------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class MetadataView:
    """What one broker reports about the cluster: live (unfenced) brokers and the controller."""

    brokers: dict[int, tuple[str, int]]
    controller_id: int


METADATA_API_KEY = 3
METADATA_VERSION = 1  # v1: brokers + controller id; still supported by Kafka 4.x


def encode_metadata_request(correlation_id: int, client_id: str = "kafka-local") -> bytes:
    """A size-prefixed Metadata v1 request for no topics (brokers only)."""
    cid = client_id.encode("utf-8")
    header = struct.pack(">hhih", METADATA_API_KEY, METADATA_VERSION, correlation_id, len(cid))
    body = struct.pack(">i", 0)  # empty topic array: in v1+ "no topics", not "all topics"
    message = header + cid + body
    return struct.pack(">i", len(message)) + message


def decode_metadata_response(payload: bytes, correlation_id: int) -> MetadataView:
    """Parse a Metadata v1 response body (without the size prefix); ValueError if malformed."""
    pos = 0

    def take(fmt: str) -> tuple[Any, ...]:
        nonlocal pos
        size = struct.calcsize(fmt)
        if pos + size > len(payload):
            raise ValueError(f"metadata response truncated at byte {pos}")
        values = struct.unpack_from(fmt, payload, pos)
        pos += size
        return values

    def take_string(nullable: bool) -> str | None:
        nonlocal pos
        (length,) = take(">h")
        if length < 0:
            if nullable:
                return None
            raise ValueError(f"metadata response: null string at byte {pos}")
        if pos + length > len(payload):
            raise ValueError(f"metadata response truncated at byte {pos}")
        text = payload[pos : pos + length].decode("utf-8")
        pos += length
        return text

    (got_correlation,) = take(">i")
    if got_correlation != correlation_id:
        raise ValueError(f"correlation id: expected {correlation_id}, got {got_correlation}")
    (count,) = take(">i")
    brokers: dict[int, tuple[str, int]] = {}
    for _ in range(max(count, 0)):
        (node_id,) = take(">i")
        host = take_string(nullable=False) or ""
        (port,) = take(">i")
        take_string(nullable=True)  # rack
        brokers[node_id] = (host, port)
    (controller_id,) = take(">i")
    return MetadataView(brokers, controller_id)


def parse_java_major(version_output: str) -> int | None:
    """Major Java version from ``java -version`` output ('1.8.0_x' -> 8, '17.0.15' -> 17)."""
    match = re.search(r'version "(\d+)(?:\.(\d+))?', version_output)
    if not match:
        return None
    major = int(match.group(1))
    if major == 1 and match.group(2):
        return int(match.group(2))
    return major


def pom_kafka_version(pom_text: str) -> str:
    """The ``kafka.version`` property of docker/kafka/pom.xml."""
    match = re.search(r"<kafka\.version>\s*([^<\s]+)\s*</kafka\.version>", pom_text)
    if not match:
        raise LocalKafkaError(f"{POM}: no <kafka.version> property found")
    return match.group(1)


def missing_required_jars(jar_names: Sequence[str]) -> list[str]:
    """REQUIRED_JARS prefixes with no matching jar in ``jar_names``."""
    return [p for p in REQUIRED_JARS if not any(j.startswith(p) for j in jar_names)]


# ---------------------------------------------------------------------------------------------
# Tools: java, mvn, jar folder
# ---------------------------------------------------------------------------------------------


def find_java() -> str:
    """Path of a Java 17+ ``java`` ($JAVA_HOME first, then PATH); LocalKafkaError otherwise."""
    java_home = os.environ.get("JAVA_HOME")
    candidate = str(Path(java_home) / "bin" / "java") if java_home else None
    java = candidate if candidate and os.access(candidate, os.X_OK) else shutil.which("java")
    if not java:
        raise LocalKafkaError(
            f"java not found (JAVA_HOME or PATH): Kafka needs a JDK {MIN_JAVA}+, "
            "e.g. apt-get install openjdk-17-jdk-headless"
        )
    result = subprocess.run(
        [java, "-version"], capture_output=True, text=True, check=False, timeout=60
    )
    major = parse_java_major(result.stderr + result.stdout)
    if major is None or major < MIN_JAVA:
        raise LocalKafkaError(f"{java} is Java {major or 'unknown'}; Kafka {MIN_JAVA}+ is required")
    return java


def find_mvn() -> str:
    """Path of ``mvn``; LocalKafkaError naming how to get it otherwise."""
    mvn = shutil.which("mvn")
    if not mvn:
        raise LocalKafkaError(
            "mvn not found on PATH: it copies the broker jars from Maven Central "
            "(e.g. apt-get install maven), or point --libs/$KAFKA_LOCAL_LIBS at a jar folder"
        )
    return mvn


def read_marker(libs: Path) -> dict[str, Any] | None:
    """The fetch marker of a jar folder, or None if absent/unreadable."""
    try:
        doc = json.loads((libs / MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def libs_complete(libs: Path, kafka_version: str) -> bool:
    """True when ``fetch`` finished for this Kafka version and every recorded jar is still there."""
    marker = read_marker(libs)
    if not marker or marker.get("kafka_version") != kafka_version:
        return False
    jars = marker.get("jars")
    if not isinstance(jars, list) or not jars:
        return False
    return all((libs / str(j)).is_file() for j in jars)


def libs_usable(libs: Path) -> bool:
    """A folder the broker can run from: our fetched folder, or any folder with the key jars."""
    if not libs.is_dir():
        return False
    names = [p.name for p in libs.glob("*.jar")]
    return not missing_required_jars(names)


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock (released when the process exits, even by SIGKILL)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def fetch(libs: Path) -> Path:
    """Copy the broker's runtime jars into ``libs`` with Maven unless already complete.

    Copies into a staging folder first and writes the marker last, so an interrupted fetch
    never looks complete. Refuses to overwrite a non-empty folder it did not create.
    """
    libs = libs.resolve()
    version = pom_kafka_version(POM.read_text(encoding="utf-8"))
    if libs_complete(libs, version):
        say(f"Kafka {version} jars already in {libs}")
        return libs
    with file_lock(libs.parent / f".{libs.name}.lock"):
        if libs_complete(libs, version):  # another process fetched while we waited
            say(f"Kafka {version} jars already in {libs}")
            return libs
        if libs.is_dir() and any(libs.iterdir()) and read_marker(libs) is None:
            raise LocalKafkaError(
                f"{libs} is not empty and was not filled by this script; "
                "choose another --libs folder or empty it"
            )
        mvn = find_mvn()
        find_java()
        staging = libs.parent / f".{libs.name}.staging-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        say(f"fetching Kafka {version} jars from Maven Central into {libs} (once; ~1 min)")
        started = time.monotonic()
        result = subprocess.run(
            [
                mvn,
                "-B",
                "-q",
                "-f",
                str(POM),
                DEPENDENCY_PLUGIN,
                "-DincludeScope=runtime",
                f"-DoutputDirectory={staging}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-LOG_TAIL_LINES:])
            raise LocalKafkaError(f"mvn failed with exit status {result.returncode}:\n{tail}")
        jars = sorted(p.name for p in staging.glob("*.jar"))
        missing = missing_required_jars(jars)
        if missing:
            shutil.rmtree(staging, ignore_errors=True)
            raise LocalKafkaError(f"mvn copied no jar for: {', '.join(missing)} (check {POM})")
        shutil.rmtree(libs, ignore_errors=True)
        staging.rename(libs)
        marker = {"kafka_version": version, "jars": jars, "fetched_at": int(time.time())}
        (libs / MARKER_NAME).write_text(json.dumps(marker, indent=1) + "\n", encoding="utf-8")
        say(f"fetched {len(jars)} jars in {time.monotonic() - started:.1f} s")
    return libs


def resolve_libs(explicit: Path | None) -> Path:
    """--libs, else $KAFKA_LOCAL_LIBS, else <repo>/.kafka/libs."""
    if explicit is not None:
        return explicit.resolve()
    env = os.environ.get(LIBS_ENV)
    return Path(env).resolve() if env else DEFAULT_LIBS


def ensure_libs(libs: Path) -> Path:
    """A jar folder ready to run: used as is if it has the key jars, else fetched."""
    version = pom_kafka_version(POM.read_text(encoding="utf-8"))
    if libs_complete(libs, version) or (read_marker(libs) is None and libs_usable(libs)):
        return libs
    return fetch(libs)


# ---------------------------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodePaths:
    """Files of one node under the cluster directory."""

    root: Path

    @classmethod
    def of(cls, cluster_dir: Path, node_id: int) -> NodePaths:
        """Paths of node ``node_id`` in ``cluster_dir``."""
        return cls(cluster_dir / f"node-{node_id}")

    @property
    def data(self) -> Path:
        """log.dirs of the node."""
        return self.root / "data"

    @property
    def properties(self) -> Path:
        """server.properties of the node."""
        return self.root / "server.properties"

    @property
    def log(self) -> Path:
        """stdout+stderr of the broker JVM."""
        return self.root / "broker.log"

    @property
    def format_log(self) -> Path:
        """Output of the storage format tool."""
        return self.root / "format.log"

    @property
    def pid(self) -> Path:
        """pid file of the running JVM."""
        return self.root / "pid"


def read_pid(path: Path) -> int | None:
    """The pid in a pid file, or None."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def process_matches(pid: int, needle: str) -> bool:
    """True if ``pid`` is a live (non-zombie) process whose command line contains ``needle``.

    Checking the command line guards against pid reuse: we never signal a stranger.
    """
    proc = Path("/proc") / str(pid)
    if Path("/proc/self").exists():
        try:
            stat = (proc / "stat").read_text(encoding="ascii", errors="replace")
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return False
        state = stat.rsplit(")", 1)[-1].split()[0] if ")" in stat else "?"
        return state not in ("Z", "X") and needle in cmdline
    result = subprocess.run(  # no /proc (macOS): ask ps
        ["ps", "-o", "stat=,command=", "-p", str(pid)],
        capture_output=True,
        text=True,
        check=False,
    )
    line = result.stdout.strip()
    return bool(line) and not line.startswith("Z") and needle in line


def node_pid(paths: NodePaths) -> int | None:
    """pid of this node's running JVM, or None (stale pid files are ignored)."""
    pid = read_pid(paths.pid)
    if pid is not None and process_matches(pid, str(paths.properties)):
        return pid
    return None


def signal_group(pid: int, sig: signal.Signals) -> None:
    """Signal a process we started in its own session (its process group id is its pid)."""
    with contextlib.suppress(ProcessLookupError):
        try:
            os.killpg(pid, sig)
        except PermissionError:
            os.kill(pid, sig)


def wait_until(predicate: Any, timeout_s: float) -> bool:
    """Poll ``predicate()`` until it is true or ``timeout_s`` passes; returns the last result."""
    deadline = time.monotonic() + timeout_s
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_S)


def spawn_detached(cmd: list[str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    """Start ``cmd`` in its own session with stdout+stderr appended to ``log``.

    No inherited pipes: callers that capture our output (pytest) must not wait on the JVM.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        out.write(f"=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {cmd[-1]}\n".encode())
        out.flush()
        return subprocess.Popen(
            cmd,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of a text file ('' if missing)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def probe_metadata(port: int, timeout_s: float = 2.0) -> MetadataView | None:
    """Ask the broker on ``port`` for cluster metadata; None if it does not answer properly."""
    correlation_id = secrets.randbelow(2**31)
    try:
        with socket.create_connection((HOST, port), timeout=timeout_s) as sock:
            sock.sendall(encode_metadata_request(correlation_id))
            size = struct.unpack(">i", recv_exact(sock, 4))[0]
            if not 0 < size < 16 * 1024 * 1024:
                return None
            return decode_metadata_response(recv_exact(sock, size), correlation_id)
    except (OSError, ValueError, struct.error):
        return None


def recv_exact(sock: socket.socket, size: int) -> bytes:
    """Exactly ``size`` bytes from ``sock``; ConnectionError if it closes first."""
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        chunks += chunk
    return bytes(chunks)


def node_answers(node: NodeSpec, expected_ids: set[int]) -> bool:
    """The broker answers Metadata and lists itself and every id in ``expected_ids`` as live."""
    view = probe_metadata(node.port)
    return view is not None and (expected_ids | {node.node_id}) <= set(view.brokers)


def port_free(port: int, strict: bool) -> bool:
    """Whether 127.0.0.1:port can be bound (``strict``: also not in TIME_WAIT)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        if not strict:  # Kafka binds with SO_REUSEADDR, so TIME_WAIT leftovers do not matter
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def ephemeral_range() -> tuple[int, int]:
    """The kernel's ephemeral port range (Linux), else the IANA default."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 49152, 65535


def pick_free_ports(count: int) -> list[int]:
    """``count`` distinct free ports below the ephemeral range.

    Outgoing client connections take ephemeral ports, so picking below that range avoids a
    client socket grabbing a port between our check and the broker's bind.
    """
    low_ephemeral, _ = ephemeral_range()
    low, high = 20000, low_ephemeral
    if high - low < 1000:
        low, high = 10000, 20000
    chosen: list[int] = []
    for _ in range(2000):
        port = low + secrets.randbelow(high - low)
        if port not in chosen and port_free(port, strict=True):
            chosen.append(port)
            if len(chosen) == count:
                return chosen
    raise LocalKafkaError(f"could not find {count} free ports in {low}..{high - 1}")


# ---------------------------------------------------------------------------------------------
# Cluster operations
# ---------------------------------------------------------------------------------------------


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


def node_ids_on_disk(cluster_dir: Path) -> list[int]:
    """Node ids that have a node-N folder (works without cluster.json)."""
    ids = []
    for path in cluster_dir.glob("node-*"):
        suffix = path.name.removeprefix("node-")
        if path.is_dir() and suffix.isdigit():
            ids.append(int(suffix))
    return sorted(ids)


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
        str(Path(__file__).resolve()),
        "watch",
        "--dir",
        str(cluster_dir),
        "--owner-pid",
        str(owner_pid),
    ]
    proc = spawn_detached(cmd, cluster_dir, cluster_dir / "watch.log")
    (cluster_dir / "watch.pid").write_text(f"{proc.pid}\n", encoding="ascii")


def cluster_lock(cluster_dir: Path) -> contextlib.AbstractContextManager[None]:
    """Serialises up/down/stop-node/start-node on one directory."""
    return file_lock(cluster_dir / ".lock")


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
        if not down_ids:
            wait_ready(cluster_dir, spec, all_ids, set(all_ids), {}, args.timeout)
            say(f"already running in {cluster_dir}")
            if args.owner_pid:
                start_watcher(cluster_dir, args.owner_pid)
            emit(summary(cluster_dir, spec, True, 0.0), args.json)
            return 0
        check_ports_free(spec, down_ids)  # before anything is written for a new directory
        write_node_files(cluster_dir, spec)
        save_spec(cluster_dir, spec)
        procs: dict[int, subprocess.Popen[bytes]] = {}
        try:
            format_nodes(java, libs, cluster_dir, spec, down_ids)
            procs = start_nodes(java, libs, cluster_dir, spec, down_ids)
            say(f"started node(s) {down_ids} in {cluster_dir}; waiting for brokers")
            wait_ready(cluster_dir, spec, all_ids, set(all_ids), procs, args.timeout)
        except (LocalKafkaError, KeyboardInterrupt):
            stop_started(cluster_dir, procs)
            raise
        elapsed = time.monotonic() - started_at
        say(f"ready in {elapsed:.1f} s: {spec.bootstrap}")
        if args.owner_pid:
            start_watcher(cluster_dir, args.owner_pid)
        emit(summary(cluster_dir, spec, False, elapsed), args.json)
    return 0


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


def cmd_down(args: argparse.Namespace) -> int:
    """``down``."""
    return down(args.dir.resolve(), args.timeout, args.purge)


def require_spec(cluster_dir: Path) -> ClusterSpec:
    """The recorded layout; LocalKafkaError if ``up`` never ran in this directory."""
    spec = load_spec(cluster_dir)
    if spec is None:
        raise LocalKafkaError(f"--dir: no cluster in {cluster_dir} (run `up` first)")
    return spec


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
        paths = NodePaths.of(cluster_dir, args.node)
        already = node_pid(paths) is not None
        procs: dict[int, subprocess.Popen[bytes]] = {}
        if already:
            say(f"node {args.node} is already running")
        else:
            write_node_files(cluster_dir, spec)
            try:
                format_nodes(java, libs, cluster_dir, spec, [args.node])
                procs = start_nodes(java, libs, cluster_dir, spec, [args.node])
                wait_ready(cluster_dir, spec, [args.node], set(), procs, args.timeout)
            except (LocalKafkaError, KeyboardInterrupt):
                stop_started(cluster_dir, procs)
                raise
        elapsed = time.monotonic() - started_at
        if not already:
            say(f"node {args.node} ready in {elapsed:.1f} s")
        emit(summary(cluster_dir, spec, already, elapsed), args.json)
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


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


def port_arg(text: str) -> int:
    """argparse type for --port: 0 (pick free ports) or 1..65535."""
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(
            f"expected an integer 0-65535 (0 picks free ports), got {text!r}"
        )
    return int(text)


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return int(text)


def positive_float(text: str) -> float:
    """argparse type: a number of seconds > 0."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="kafka_local.py",
        description="Run local Apache Kafka brokers (KRaft) from Maven Central jars.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add_dir(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--dir",
            type=Path,
            default=DEFAULT_DIR,
            help=f"cluster directory (default {DEFAULT_DIR})",
        )

    def add_libs(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--libs",
            type=Path,
            default=None,
            help=f"jar folder (default ${LIBS_ENV} or {DEFAULT_LIBS})",
        )

    p_fetch = sub.add_parser("fetch", help="copy the broker jars with Maven (idempotent)")
    add_libs(p_fetch)
    p_fetch.set_defaults(func=cmd_fetch)

    p_up = sub.add_parser("up", help="start a 1- or 3-node cluster and wait until it answers")
    add_dir(p_up)
    add_libs(p_up)
    p_up.add_argument(
        "--port",
        type=port_arg,
        default=9092,
        help="client port of node 1; node i uses PORT+2(i-1), controller +1; "
        "0 picks free ports (default 9092)",
    )
    p_up.add_argument("--nodes", type=int, choices=VALID_NODE_COUNTS, default=1)
    p_up.add_argument(
        "--partitions",
        type=positive_int,
        default=1,
        help="num.partitions default for new topics (default 1)",
    )
    p_up.add_argument(
        "--timeout",
        type=positive_float,
        default=90.0,
        help="seconds to wait for the brokers, excluding fetch (default 90)",
    )
    p_up.add_argument("--json", action="store_true", help="print a JSON object, not the bootstrap")
    p_up.add_argument(
        "--owner-pid",
        type=positive_int,
        default=None,
        help="run `down` automatically once this process exits",
    )
    p_up.set_defaults(func=cmd_up)

    p_down = sub.add_parser("down", help="stop every node (SIGTERM, SIGKILL after --timeout)")
    add_dir(p_down)
    p_down.add_argument("--timeout", type=positive_float, default=30.0)
    p_down.add_argument(
        "--purge", action="store_true", help="also delete the data and cluster.json (logs are kept)"
    )
    p_down.set_defaults(func=cmd_down)

    p_stop = sub.add_parser("stop-node", help="stop one node, keeping its data")
    p_stop.add_argument("node", type=positive_int, help="node id (1-based)")
    add_dir(p_stop)
    p_stop.add_argument("--kill", action="store_true", help="SIGKILL instead of SIGTERM")
    p_stop.add_argument(
        "--timeout",
        type=positive_float,
        default=30.0,
        help="seconds before SIGTERM escalates to SIGKILL (default 30)",
    )
    p_stop.set_defaults(func=cmd_stop_node)

    p_start = sub.add_parser("start-node", help="restart one node from its data")
    p_start.add_argument("node", type=positive_int, help="node id (1-based)")
    add_dir(p_start)
    add_libs(p_start)
    p_start.add_argument("--timeout", type=positive_float, default=90.0)
    p_start.add_argument("--json", action="store_true")
    p_start.set_defaults(func=cmd_start_node)

    p_status = sub.add_parser("status", help="show nodes; exit 3 unless every node answers")
    add_dir(p_status)
    p_status.add_argument("--json", action="store_true")
    p_status.set_defaults(func=cmd_status)

    p_watch = sub.add_parser("watch", help="internal: `down` once --owner-pid exits")
    add_dir(p_watch)
    p_watch.add_argument("--owner-pid", type=positive_int, required=True)
    p_watch.set_defaults(func=cmd_watch)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        status: int = args.func(args)
    except LocalKafkaError as exc:
        print(f"kafka_local: error: {exc}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print("kafka_local: interrupted", file=sys.stderr, flush=True)
        return 130
    except BrokenPipeError:  # `status | head -1`: the reader left, nothing more to say
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return status


if __name__ == "__main__":
    sys.exit(main())
