"""A fixed-rate (open-loop) HTTP load generator: requests are started on a schedule, not
when the previous answer arrives, and each latency is measured from the moment the request
was due, so a stalled server shows up in the percentiles instead of slowing the load
(no coordinated omission). Used by bench/ingest.py for p99 at a given rate.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass


@dataclass
class OpenLoopResult:
    rate: float
    offered: int
    answered: int
    non200: int
    errors: int
    p50_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(int(q * len(sorted_values)), len(sorted_values) - 1)
    return sorted_values[index]


async def _run(
    host: str, port: int, request: bytes, rate: float, duration_s: float, connections: int
) -> OpenLoopResult:
    idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(connections):
        idle.put_nowait(await asyncio.open_connection(host, port))
    latencies: list[float] = []
    counts = {"non200": 0, "errors": 0}

    async def one(due: float) -> None:
        reader, writer = await idle.get()
        try:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - due)
            if not head.startswith(b"HTTP/1.1 200"):
                counts["non200"] += 1
            if b"connection: close" in head.lower():  # sync workers close after each answer
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
        except (OSError, asyncio.IncompleteReadError):
            counts["errors"] += 1
            reader, writer = await asyncio.open_connection(host, port)
        idle.put_nowait((reader, writer))

    total = int(rate * duration_s)
    start = time.perf_counter() + 0.05
    tasks = []
    for i in range(total):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(due)))
    await asyncio.gather(*tasks)
    while not idle.empty():
        idle.get_nowait()[1].close()
    ordered = sorted(latencies)
    ms = [x * 1000 for x in ordered]
    return OpenLoopResult(
        rate=rate,
        offered=total,
        answered=len(latencies),
        non200=counts["non200"],
        errors=counts["errors"],
        p50_ms=_percentile(ms, 0.50),
        p99_ms=_percentile(ms, 0.99),
        p999_ms=_percentile(ms, 0.999),
        max_ms=ms[-1] if ms else float("nan"),
    )


def run_open_loop(
    host: str,
    port: int,
    path: str,
    body: bytes,
    headers: dict[str, str],
    rate: float,
    duration_s: float,
    connections: int = 64,
) -> OpenLoopResult:
    head = f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: {len(body)}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = head.encode() + b"\r\n" + body
    return asyncio.run(_run(host, port, request, rate, duration_s, connections))
