"""Slow and stalled clients against the real webhook (gunicorn, shipped settings, a real broker).

500 connections trickle their request one byte at a time: half never finish their headers,
half send headers and then trickle the body. Meanwhile signed callbacks on other connections
(a kept-alive one and fresh ones) must still be answered within 1 s, and every trickling
connection must be closed by the server after the documented deadlines: the request head
within the keep-alive timeout (15 s), the body within AGORA_WEBHOOK_READ_TIMEOUT_S (10 s).
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from support.figures import Figure
from support.kafka_broker import consume_all

from handlers.testing.fresh_topics import create_topics, unique_topic
from handlers.testing.ncs_callbacks import callback_body, signed
from handlers.testing.webhook_process import run_webhook
from webhook.settings import ServeSettings

pytestmark = [pytest.mark.faults, pytest.mark.kafka, pytest.mark.slow]

SLOW_CONNECTIONS = 500
HEAD_DEADLINE_S = ServeSettings().keepalive_s
BODY_DEADLINE_S = ServeSettings().read_timeout_s
SLACK_S = 5.0  # scheduling on a shared 2-core machine; the deadlines are what is checked


@dataclass
class Trickler:
    sock: socket.socket
    kind: str  # "head" or "body"
    remaining: bytes
    head_done_at: float
    opened_at: float
    closed_at: float | None = None
    answer: bytes = b""


def open_trickler(port: int, kind: str, body: bytes) -> Trickler:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    now = time.monotonic()
    if kind == "head":
        sock.sendall(b"POST /ncs HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        remaining = b"X-Padding: " + b"a" * 4000
        head_done_at = now
    else:
        sock.sendall(
            b"POST /ncs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
        )
        remaining = body[:-1]  # never complete
        head_done_at = now
    sock.setblocking(False)
    return Trickler(sock, kind, remaining, head_done_at, now)


def step(t: Trickler) -> None:
    """Send one byte; notice when the server has closed the connection."""
    if t.closed_at is not None:
        return
    try:
        chunk = t.sock.recv(4096)
        if chunk:
            t.answer += chunk
        else:
            t.closed_at = time.monotonic()
            return
    except BlockingIOError:
        pass
    except OSError:
        t.closed_at = time.monotonic()
        return
    if t.remaining:
        try:
            t.sock.send(t.remaining[:1])
            t.remaining = t.remaining[1:]
        except BlockingIOError:
            pass
        except OSError:
            t.closed_at = time.monotonic()


def test_slow_clients_do_not_delay_callbacks_and_are_cut_off(
    kafka_bootstrap: str, tmp_path: Path, figure: Figure
) -> None:
    events, quarantine = unique_topic("events"), unique_topic("quarantine")
    create_topics(kafka_bootstrap, [events, quarantine], partitions=3)
    env = {"AGORA_TOPIC_EVENTS": events, "AGORA_TOPIC_QUARANTINE": quarantine}
    latencies: list[float] = []
    sent: list[bytes] = []
    with run_webhook(kafka_bootstrap, tmp_path, env=env) as server:
        port = int(server.url.rsplit(":", 1)[1])
        # Warm the producer so the first measured callback is not the one that connects.
        body = callback_body(cname="warm-up")
        assert httpx.post(server.ncs_url, content=body, headers=signed(body)).status_code == 200
        sent.append(body)

        pad = callback_body(details={"msgName": "recorder_started", "pad": "p" * 500})
        tricklers = [
            open_trickler(port, "head" if i % 2 == 0 else "body", pad)
            for i in range(SLOW_CONNECTIONS)
        ]
        all_open_at = time.monotonic()
        with httpx.Client(timeout=15) as kept_alive:
            n = 0
            next_callback = time.monotonic()
            # Callbacks while every trickler is still open (the body deadline ends that).
            while time.monotonic() < all_open_at + BODY_DEADLINE_S - 2:
                for t in tricklers:
                    step(t)
                if time.monotonic() >= next_callback:
                    body = callback_body(cname=f"class-{n % 5}", sequence=n)
                    started = time.monotonic()
                    if n % 2 == 0:
                        status = kept_alive.post(
                            server.ncs_url, content=body, headers=signed(body)
                        ).status_code
                    else:  # a fresh connection: accepting is not starved either
                        status = httpx.post(
                            server.ncs_url, content=body, headers=signed(body), timeout=15
                        ).status_code
                    latencies.append(time.monotonic() - started)
                    assert status == 200
                    sent.append(body)
                    n += 1
                    next_callback = time.monotonic() + 0.25
                time.sleep(0.02)
            still_open = sum(1 for t in tricklers if t.closed_at is None)
            # Then wait for the server to close every trickling connection.
            give_up = all_open_at + HEAD_DEADLINE_S + 3 * SLACK_S
            while time.monotonic() < give_up and any(t.closed_at is None for t in tricklers):
                for t in tricklers:
                    step(t)
                time.sleep(0.1)
        for t in tricklers:
            t.sock.close()

    heads = [t for t in tricklers if t.kind == "head"]
    bodies = [t for t in tricklers if t.kind == "body"]
    head_waits = [t.closed_at - t.opened_at for t in heads if t.closed_at is not None]
    body_waits = [t.closed_at - t.head_done_at for t in bodies if t.closed_at is not None]
    figure(
        "500 slow clients",
        callbacks=len(latencies),
        slowest_callback_s=round(max(latencies), 3),
        head_closed_after_s=f"{min(head_waits, default=0):.1f}..{max(head_waits, default=0):.1f}",
        body_closed_after_s=f"{min(body_waits, default=0):.1f}..{max(body_waits, default=0):.1f}",
    )
    assert still_open == SLOW_CONNECTIONS, "no trickler was cut off before its deadline"
    assert len(latencies) >= 15
    assert max(latencies) <= 1.0, f"slowest callback {max(latencies):.3f} s"
    assert all(t.closed_at is not None for t in tricklers), "a stalled connection stayed open"
    assert max(head_waits) <= HEAD_DEADLINE_S + SLACK_S
    assert min(head_waits) >= HEAD_DEADLINE_S - 1
    assert max(body_waits) <= BODY_DEADLINE_S + SLACK_S
    assert min(body_waits) >= BODY_DEADLINE_S - 1
    # A stalled body is answered 408 before the connection closes.
    assert all(t.answer.startswith(b"HTTP/1.1 408") for t in bodies)
    # Every callback answered 200 is on the topic.
    records = consume_all(kafka_bootstrap, events, expected=len(sent), timeout_s=30)
    assert {r.value for r in records} == set(sent)
