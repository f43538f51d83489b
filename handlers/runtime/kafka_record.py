"""The runtime's byte-level record: what it produces, whatever produced it.

Actions speak in :class:`handlers.action_contract.Output` (text key and headers); dead letters and
replays must keep the original key and header bytes exactly, so the runtime publishes
:class:`KafkaRecord` and converts outputs at the edge.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from handlers.action_contract import Output

Headers = tuple[tuple[str, bytes], ...]


@dataclass(frozen=True, slots=True)
class KafkaRecord:
    """One record to publish; ``value=None`` is a tombstone on a compacted topic."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers = ()

    @classmethod
    def from_output(cls, output: Output) -> KafkaRecord:
        return cls(
            topic=output.topic,
            key=None if output.key is None else output.key.encode(),
            value=output.value,
            headers=tuple((name, value.encode()) for name, value in output.headers.items()),
        )

    def header(self, name: str) -> str | None:
        return header_value(self.headers, name)


def header_value(headers: Iterable[tuple[str, bytes]], name: str) -> str | None:
    """The last value of header ``name`` decoded as UTF-8 (undecodable bytes replaced)."""
    found: str | None = None
    for key, value in headers:
        if key == name:
            found = value.decode("utf-8", "replace") if value is not None else ""
    return found


def decode_headers(headers: Iterable[tuple[str, bytes]]) -> dict[str, str]:
    """Headers as text, for :class:`handlers.action_contract.Received` (later duplicates win)."""
    return {k: (v.decode("utf-8", "replace") if v is not None else "") for k, v in headers}
