"""Free loopback ports for brokers started with ``--port 0``."""

from __future__ import annotations

import secrets
import socket
from pathlib import Path

from kafkalocal.cluster_layout import HOST
from kafkalocal.console import LocalKafkaError


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
