"""Is a broker up? One Kafka Metadata v1 request over a plain socket, and its answer.

The wire format is encoded and decoded by hand so that this runs before any Kafka client
library is installed.
"""

from __future__ import annotations

import secrets
import socket
import struct
from dataclasses import dataclass
from typing import Any

from kafkalocal.cluster_layout import HOST, NodeSpec


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
