"""Scripted faults of the fake Agora Cloud Recording server (``FakeAgora.fail_next``).

Each helper builds the answer Agora gives in one documented failure (reference/agora-facts.md
2): service errors carry ``{"code", "reason"}``, gateway errors ``{"message"}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Fault:
    """One scripted answer. ``disconnect`` closes the connection without answering;
    ``hang_s`` waits (until the server stops at the latest) before answering; ``apply``
    carries the request out first and only replaces its answer."""

    status: int = 500
    body: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    disconnect: bool = False
    hang_s: float = 0.0
    apply: bool = False


def agora_error(status: int, code: int, reason: str, *, apply: bool = False) -> Fault:
    """A service error: ``{"code": ..., "reason": ...}``."""
    return Fault(status=status, body={"code": code, "reason": reason}, apply=apply)


def gateway_error(status: int, message: str, headers: Mapping[str, str] | None = None) -> Fault:
    """A gateway error: ``{"message": ...}``."""
    return Fault(status=status, body={"message": message}, headers=dict(headers or {}))


def response_timeout_65(*, apply: bool = False) -> Fault:
    """206 + 65: the request reached the backend, the answer timed out."""
    return agora_error(206, 65, "request timeout", apply=apply)


def upstream_timeout_62(endpoint: str = "start") -> Fault:
    """62: 500 on start, 504 on the others."""
    return agora_error(500 if endpoint == "start" else 504, 62, "upstream timeout")


def no_worker_502() -> Fault:
    """500 + 502 on start: no worker could be allocated."""
    return agora_error(500, 502, "Failed to allocate worker")


def bad_gateway() -> Fault:
    return gateway_error(502, "An invalid response was received from the upstream server")


def rate_limited(retry_after: str | None = None) -> Fault:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return gateway_error(429, "API rate limit exceeded", headers)


def no_recorded_data_435() -> Fault:
    """206 + 435 on stop: nobody published, nothing was recorded."""
    return agora_error(206, 435, "no recorded data", apply=True)


def disconnect() -> Fault:
    return Fault(disconnect=True)


def hang(seconds: float) -> Fault:
    return Fault(status=200, body={}, hang_s=seconds)
