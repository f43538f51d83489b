"""10,000 hostile requests against the real webhook (gunicorn + a real broker).

Random bytes, huge headers, truncated JSON, wrong, partial and downgraded signatures,
signatures by other secrets, wrong methods and paths, oversized, chunked and malformed
chunked bodies, empty bodies, non-UTF-8 bytes and broken HTTP. A few valid signed callbacks
are mixed in at seeded positions. The webhook must answer no 5xx, never answer 200 to a
request that is not signed by its secret, publish exactly the valid callbacks (events) and
signed-but-unparseable bodies (quarantine), and never write its secrets to its log.

Every request is generated from ``SEED`` and its index, so a failure names a reproducible
request kind. Two answers are allowed on purpose: gunicorn's 501 for an unknown transfer
coding, which RFC 9112 section 6.1 asks servers to send (the app never sees the request), and
Flask's automatic answer to ``OPTIONS /ncs`` (an empty 200 listing the allowed methods, which
publishes nothing).
"""

from __future__ import annotations

import json
import random
import re
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import httpx
import pytest
from support.figures import Figure
from support.ncs_load import notice_ids_on_topic, records_on_topic

from handlers.testing.fresh_topics import create_topics, unique_topic
from handlers.testing.ncs_callbacks import callback_body
from handlers.testing.webhook_process import WebhookProcess, run_webhook
from webhook.shared.signature import V1_HEADER, V2_HEADER, sign_v1, sign_v2

pytestmark = [pytest.mark.faults, pytest.mark.kafka, pytest.mark.slow]

SEED = 20_240_611
HOSTILE = 10_000
THREADS = 16
# Distinctive, so a grep of the log cannot miss them; never sent in any request.
SECRET = "hx-7Rq2-secret-Wm9c4e1ab7d8"
OLD_SECRET = "hx-old-rotated-secret-5Kp3"
MAX_BODY = 1024 * 1024  # the webhook's default AGORA_WEBHOOK_MAX_BODY_BYTES
OTHER_SECRETS = (
    "",
    "test-ncs-secret",
    SECRET + "x",
    SECRET[:-1],
    SECRET.upper(),
    SECRET[::-1],
    "another-tenant-secret",
)

Expect = Literal["reject", "event", "quarantine", "options", "unknown_coding", "may_drop"]


@dataclass(frozen=True)
class Probe:
    """One request. ``raw`` is written to a socket as-is; otherwise httpx sends the rest."""

    kind: str
    expect: Expect = "reject"
    method: str = "POST"
    path: str = "/ncs"
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    chunks: tuple[bytes, ...] | None = None
    raw: bytes | None = None
    notice_id: str | None = None


@dataclass(frozen=True)
class Answer:
    probe: Probe
    status: int | None  # None: the connection closed without an answer
    body: bytes


# --- building blocks ------------------------------------------------------------------------


def notice_id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def good_body(
    rng: random.Random,
    event_type: int | None = None,
    cname: str | None = None,
    details: dict[str, object] | None = None,
) -> bytes:
    """A well-formed callback (what a forger would copy), with a seeded noticeId."""
    body: bytes = callback_body(
        event_type=event_type or rng.choice([1, 11, 31, 40, 41, 60, 90]),
        cname=cname or f"room-{rng.randrange(50)}",
        notice_id=notice_id(rng),
        details=details,
    )
    return body


def both(body: bytes, secret: str = SECRET) -> tuple[tuple[str, str], ...]:
    return ((V1_HEADER, sign_v1(body, secret)), (V2_HEADER, sign_v2(body, secret)))


def rand_hex(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def random_signature_headers(rng: random.Random) -> tuple[tuple[str, str], ...]:
    return rng.choice(
        [
            (),
            ((V2_HEADER, rand_hex(rng, 64)),),
            ((V1_HEADER, rand_hex(rng, 40)),),
            ((V1_HEADER, rand_hex(rng, 40)), (V2_HEADER, rand_hex(rng, 64))),
            (("Content-Type", "application/json"),),
        ]
    )


def split_chunks(rng: random.Random, body: bytes) -> tuple[bytes, ...]:
    chunks: list[bytes] = []
    rest = body
    while rest:
        size = rng.randint(1, max(1, min(len(rest), 70_000)))
        chunks.append(rest[:size])
        rest = rest[size:]
    return tuple(chunks)


def raw_request(
    head: str, headers: list[tuple[bytes, bytes]] | None = None, body: bytes = b""
) -> bytes:
    lines = [head.encode("latin-1"), b"Host: 127.0.0.1"]
    lines += [name + b": " + value for name, value in headers or []]
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


# --- hostile kinds --------------------------------------------------------------------------


def random_bytes(rng: random.Random) -> Probe:
    body = rng.randbytes(rng.randint(0, 4096))
    return Probe("random_bytes", headers=random_signature_headers(rng), body=body)


def huge_headers(rng: random.Random) -> Probe:
    body = good_body(rng)
    unsigned = random_signature_headers(rng)
    variant = rng.randrange(5)
    if variant == 0:
        headers = (*unsigned, ("X-Pad", "a" * rng.randint(8_200, 32_000)))
    elif variant == 1:
        headers = (*unsigned, *((f"X-H{i}", "v") for i in range(rng.randint(101, 300))))
    elif variant == 2:
        headers = ((V2_HEADER, rand_hex(rng, rng.randint(8_200, 20_000))),)
    elif variant == 3:
        headers = (*unsigned, ("X-" + "N" * rng.randint(8_200, 12_000), "v"))
    else:  # many fields just under the per-field limit: a large header block
        headers = (*unsigned, *((f"X-B{i}", "b" * 8_000) for i in range(90)))
    return Probe(f"huge_headers/{variant}", headers=headers, body=body)


def truncated_json(rng: random.Random) -> Probe:
    full = good_body(rng)
    body = full[: rng.randrange(len(full))]
    headers = rng.choice(
        [
            (),
            both(full),
            both(body, rng.choice(OTHER_SECRETS)),
            ((V2_HEADER, sign_v2(full, SECRET)),),
        ]
    )
    return Probe("truncated_json", headers=headers, body=body)


def wrong_signature(rng: random.Random) -> Probe:
    body = good_body(rng)
    v1, v2 = sign_v1(body, SECRET), sign_v2(body, SECRET)
    variants: list[tuple[str, tuple[tuple[str, str], ...], bytes]] = [
        ("random_v2", ((V2_HEADER, rand_hex(rng, 64)),), body),
        ("random_v1", ((V1_HEADER, rand_hex(rng, 40)),), body),
        (
            "non_hex",
            ((V2_HEADER, "".join(rng.choice("ghijklmnopqrstuvwxyz") for _ in range(64))),),
            body,
        ),
        ("wrong_length", ((V2_HEADER, rand_hex(rng, rng.choice([1, 32, 63, 65, 128]))),), body),
        ("other_body", both(good_body(rng)), body),
        ("downgrade", ((V2_HEADER, rand_hex(rng, 64)), (V1_HEADER, v1)), body),
        ("downgrade_empty_v2", ((V2_HEADER, ""), (V1_HEADER, v1)), body),
        ("body_changed", both(body), flip_byte(rng, body)),
        ("sha1_in_v2", ((V2_HEADER, v1),), body),
        ("sha256_in_v1", ((V1_HEADER, v2),), body),
        ("header_name", ((rng.choice(["Agora-Signature-V3", "X-Agora-Signature-V2"]), v2),), body),
        ("duplicate_wrong_first", ((V2_HEADER, rand_hex(rng, 64)), (V2_HEADER, v2)), body),
        ("duplicate_right_first", ((V2_HEADER, v2), (V2_HEADER, rand_hex(rng, 64))), body),
        ("suffix", ((V2_HEADER, v2 + rand_hex(rng, 2)),), body),
        ("prefix", ((V2_HEADER, "sha256=" + v2),), body),
    ]
    name, headers, sent = rng.choice(variants)
    return Probe(f"wrong_signature/{name}", headers=headers, body=sent)


def flip_byte(rng: random.Random, body: bytes) -> bytes:
    at = rng.randrange(len(body))
    return body[:at] + bytes([body[at] ^ (1 << rng.randrange(8))]) + body[at + 1 :]


def change_digit(rng: random.Random, signature: str) -> str:
    at = rng.randrange(len(signature))
    other = rng.choice([c for c in "0123456789abcdef" if c != signature[at]])
    return signature[:at] + other + signature[at + 1 :]


def partial_signature(rng: random.Random) -> Probe:
    body = good_body(rng)
    v1, v2 = sign_v1(body, SECRET), sign_v2(body, SECRET)
    variant = rng.randrange(4)
    headers: tuple[tuple[str, str], ...]
    if variant == 0:
        headers = ((V2_HEADER, v2[: rng.randrange(64)]),)
    elif variant == 1:
        headers = ((V1_HEADER, v1[: rng.randrange(40)]),)
    elif variant == 2:
        headers = ((V2_HEADER, change_digit(rng, v2)), (V1_HEADER, v1))
    else:
        headers = ((V1_HEADER, change_digit(rng, v1)),)
    return Probe(f"partial_signature/{variant}", headers=headers, body=body)


def other_secret(rng: random.Random) -> Probe:
    body = rng.choice([good_body(rng), rng.randbytes(rng.randint(1, 512))])
    secret = rng.choice(OTHER_SECRETS)
    headers = rng.choice(
        [
            both(body, secret),
            ((V2_HEADER, sign_v2(body, secret)),),
            ((V1_HEADER, sign_v1(body, secret)),),
        ]
    )
    return Probe("other_secret", headers=headers, body=body)


def wrong_method(rng: random.Random) -> Probe:
    body = good_body(rng)
    method = rng.choice(["GET", "PUT", "DELETE", "PATCH", "HEAD", "TRACE", "OPTIONS", "PROPFIND"])
    expect: Expect = "options" if method == "OPTIONS" else "reject"
    return Probe(f"wrong_method/{method}", expect, method=method, headers=both(body), body=body)


WRONG_PATHS = (
    "/",
    "/NCS",
    "/Ncs",
    "/ncs/",
    "/ncs/x",
    "/ncs.json",
    "/ncs%2F",
    "/ncs%00",
    "/ncs;x",
    "/%2e%2e/ncs",
    "/healthz",
    "/readyz",
    "/metrics",
    "/admin",
    "/.env",
)


def wrong_path(rng: random.Random) -> Probe:
    body = good_body(rng)
    path = rng.choice(
        [*WRONG_PATHS, "/" + "".join(rng.choice("abcdefgh-_") for _ in range(rng.randint(1, 40)))]
    )
    return Probe("wrong_path", path=path, headers=both(body), body=body)


def oversized(rng: random.Random) -> Probe:
    # Correctly signed: only the size is wrong, and it alone must stop the publish.
    body = b'{"pad":"' + b"a" * (MAX_BODY + rng.randint(1, 4096)) + b'"}'
    return Probe("oversized", headers=(*both(body), ("Connection", "close")), body=body)


def chunked(rng: random.Random) -> Probe:
    variant = rng.randrange(5)
    headers: tuple[tuple[str, str], ...]
    if variant == 0:
        body, headers = good_body(rng), ()
    elif variant == 1:
        body = good_body(rng)
        headers = both(body, rng.choice(OTHER_SECRETS))
    elif variant == 2:  # signed, but over the limit
        body = b'{"pad":"' + b"b" * (MAX_BODY + rng.randint(1, 70_000)) + b'"}'
        headers = (*both(body), ("Connection", "close"))
    elif variant == 3:
        body, headers = rng.randbytes(rng.randint(1, 3000)), random_signature_headers(rng)
    else:
        body, headers = b"", random_signature_headers(rng)
    return Probe(f"chunked/{variant}", headers=headers, chunks=split_chunks(rng, body))


def malformed_chunked(rng: random.Random) -> Probe:
    data = good_body(rng)[:40]
    sig = [(V2_HEADER.encode(), rand_hex(rng, 64).encode())]
    te = [(b"Transfer-Encoding", b"chunked"), *sig]
    size = b"%x" % len(data)
    bodies = {
        "bad_size": b"zz\r\n" + data + b"\r\n0\r\n\r\n",
        "missing_terminator": size + b"\r\n" + data + b"XX0\r\n\r\n",
        "negative_size": b"-" + size + b"\r\n" + data + b"\r\n0\r\n\r\n",
        "bad_trailer": size + b"\r\n" + data + b"\r\n0\r\n\xff\xfe\r\n\r\n",
        "eof_mid_chunk": b"ff\r\n" + data,
        "no_last_chunk": size + b"\r\n" + data + b"\r\n",
        "huge_size": b"f" * 24 + b"\r\n" + data + b"\r\n0\r\n\r\n",
        "size_with_space": b" " + size + b" \r\n" + data + b"\r\n0\r\n\r\n",
    }
    name = rng.choice(sorted(bodies))
    return Probe(
        f"malformed_chunked/{name}", raw=raw_request("POST /ncs HTTP/1.1", te, bodies[name])
    )


def empty_body(rng: random.Random) -> Probe:
    headers = rng.choice(
        [
            (),
            (("Content-Length", "0"),),
            ((V2_HEADER, rand_hex(rng, 64)),),
            both(b"", rng.choice(OTHER_SECRETS)),
            ((V1_HEADER, sign_v1(b"", rng.choice(OTHER_SECRETS))),),
        ]
    )
    return Probe("empty_body", headers=headers, body=b"")


def non_utf8(rng: random.Random) -> Probe:
    variant = rng.randrange(7)
    if variant == 0:
        body = bytes(rng.randint(0x80, 0xFF) for _ in range(rng.randint(1, 600)))
        return Probe("non_utf8/body", headers=random_signature_headers(rng), body=body)
    if variant == 1:
        full = good_body(rng)
        body = full[:30] + b"\xff\xfe\xc3(" + full[30:]
        return Probe("non_utf8/in_json", headers=both(body, rng.choice(OTHER_SECRETS)), body=body)
    if variant == 2:
        body = good_body(rng).decode().encode("utf-16")
        return Probe("non_utf8/utf16", headers=random_signature_headers(rng), body=body)
    body = good_body(rng)
    length = [(b"Content-Length", str(len(body)).encode())]
    junk = bytes(rng.randint(0x80, 0xFF) for _ in range(rng.randint(1, 64)))
    heads = {
        3: ("POST /ncs HTTP/1.1", [(V2_HEADER.encode(), junk), *length]),
        4: ("POST /ncs HTTP/1.1", [(V1_HEADER.encode(), junk), *length]),
        5: ("POST /ncs HTTP/1.1", [(b"X-" + junk, b"v"), *length]),
        6: ("POST /n" + junk.decode("latin-1") + " HTTP/1.1", length),
    }
    head, headers = heads[variant]
    return Probe(f"non_utf8/raw{variant}", raw=raw_request(head, headers, body))


def malformed_http(rng: random.Random) -> Probe:
    body = good_body(rng)
    n = str(len(body)).encode()
    cl = [(b"Content-Length", n)]
    cases: dict[str, tuple[bytes, Expect]] = {
        "garbage": (rng.randbytes(rng.randint(1, 300)), "may_drop"),
        "no_bytes": (b"", "may_drop"),
        "tls_hello": (bytes.fromhex("16030100a5010000a10303") + rng.randbytes(32), "may_drop"),
        "lowercase_method": (raw_request("post /ncs HTTP/1.1", cl, body), "reject"),
        "http2_version": (raw_request("POST /ncs HTTP/2.0", cl, body), "reject"),
        "no_version": (raw_request("POST /ncs", cl, body), "reject"),
        "http09": (b"GET /ncs\r\n\r\n", "reject"),
        "bare_lf": (raw_request("POST /ncs HTTP/1.1", cl, body).replace(b"\r\n", b"\n"), "reject"),
        "obs_fold": (
            raw_request("POST /ncs HTTP/1.1", [(b"X-A", b"a\r\n b"), *cl], body),
            "reject",
        ),
        "no_colon": (
            raw_request("POST /ncs HTTP/1.1", cl, body).replace(b"Host:", b"Host"),
            "reject",
        ),
        "space_before_colon": (
            raw_request("POST /ncs HTTP/1.1", [(b"X-A ", b"1"), *cl], body),
            "reject",
        ),
        "nul_in_header": (
            raw_request("POST /ncs HTTP/1.1", [(b"X-A", b"a\x00b"), *cl], body),
            "reject",
        ),
        "two_lengths": (
            raw_request("POST /ncs HTTP/1.1", [*cl, (b"Content-Length", b"1")], body),
            "reject",
        ),
        "negative_length": (
            raw_request("POST /ncs HTTP/1.1", [(b"Content-Length", b"-1")], body),
            "reject",
        ),
        "hex_length": (
            raw_request("POST /ncs HTTP/1.1", [(b"Content-Length", b"0x10")], body),
            "reject",
        ),
        "short_body": (
            raw_request("POST /ncs HTTP/1.1", [(b"Content-Length", b"5000")], body),
            "reject",
        ),
        "te_and_cl": (
            raw_request("POST /ncs HTTP/1.1", [(b"Transfer-Encoding", b"chunked"), *cl], body),
            "reject",
        ),
        "long_line": (
            raw_request("POST /" + "a" * rng.randint(8_200, 20_000) + " HTTP/1.1", cl, body),
            "reject",
        ),
        "absolute_uri": (raw_request("POST http://evil.example/ncs HTTP/1.1", cl, body), "reject"),
        "unknown_coding": (
            raw_request("POST /ncs HTTP/1.1", [(b"Transfer-Encoding", b"foo")], body),
            "unknown_coding",
        ),
    }
    name = rng.choice(sorted(cases))
    raw, expect = cases[name]
    return Probe(f"malformed_http/{name}", expect, raw=raw)


KINDS: tuple[tuple[int, Callable[[random.Random], Probe]], ...] = (
    (12, random_bytes),
    (6, huge_headers),
    (10, truncated_json),
    (14, wrong_signature),
    (8, partial_signature),
    (10, other_secret),
    (6, wrong_method),
    (6, wrong_path),
    (1, oversized),
    (6, chunked),
    (4, malformed_chunked),
    (5, empty_body),
    (8, non_utf8),
    (4, malformed_http),
)


def hostile(index: int) -> Probe:
    rng = random.Random(SEED * 1_000_003 + index)
    make = rng.choices([k for _, k in KINDS], weights=[w for w, _ in KINDS])[0]
    return make(rng)


# --- the valid callbacks mixed in -----------------------------------------------------------


def valid_probes(rng: random.Random) -> list[Probe]:
    """Signed by an active secret: each must be answered 200 and published exactly once."""
    events: list[Probe] = []

    def event(kind: str, body: bytes, headers: tuple[tuple[str, str], ...]) -> None:
        nid = json.loads(body)["noticeId"]
        events.append(Probe(f"valid/{kind}", "event", headers=headers, body=body, notice_id=nid))

    for event_type in (1, 31, 40, 41):
        body = good_body(rng, event_type=event_type)
        event(f"ncs_{event_type}", body, both(body))
    body = good_body(rng)
    event("v2_only", body, ((V2_HEADER, sign_v2(body, SECRET)),))
    body = good_body(rng)
    event("v1_only", body, ((V1_HEADER, sign_v1(body, SECRET)),))
    body = good_body(rng)
    event("old_secret", body, both(body, OLD_SECRET))
    body = good_body(rng, cname="课堂-101")
    event("unicode_cname", body, both(body))
    body = good_body(rng, event_type=999, details={"whatever": [1, 2, 3]})
    event("unknown_event_type", body, both(body))
    body = good_body(rng)
    nid = json.loads(body)["noticeId"]
    chunks = split_chunks(rng, body)
    events.append(Probe("valid/chunked", "event", headers=both(body), chunks=chunks, notice_id=nid))
    body = json.dumps({**json.loads(good_body(rng)), "extra": {"x": 1}}).encode()
    event("extra_keys", body, both(body))

    quarantined = [
        b"",
        good_body(rng)[:57],
        b"\xff\xfe\x00garbage\x80",
        b"[1,2,3]",
        b"[" * 3000 + b"]" * 3000,
        json.dumps(
            {k: v for k, v in json.loads(good_body(rng)).items() if k != "noticeId"}
        ).encode(),
    ]
    return events + [
        Probe("valid/quarantine", "quarantine", headers=both(b), body=b) for b in quarantined
    ]


def request_plan() -> list[Probe | int]:
    """Hostile indexes (built lazily: oversized bodies are large) with valid probes inside."""
    rng = random.Random(SEED)
    valid = valid_probes(rng)
    plan: list[Probe | int] = list(range(HOSTILE))
    for probe in valid:
        plan.insert(rng.randrange(len(plan) + 1), probe)
    return plan


# --- sending --------------------------------------------------------------------------------


class Sender:
    """Sends probes from many threads: keep-alive httpx clients, or raw sockets."""

    def __init__(self, server: WebhookProcess) -> None:
        self._server = server
        self._port = int(server.url.rsplit(":", 1)[1])
        self._local = threading.local()
        self._clients: list[httpx.Client] = []
        self._lock = threading.Lock()

    def send(self, item: Probe | int) -> Answer:
        probe = hostile(item) if isinstance(item, int) else item
        if probe.raw is not None:
            return self._send_raw(probe)
        try:
            return self._send_http(probe, self._client())
        except httpx.TransportError:
            # The previous request may have left this keep-alive connection closed.
            with httpx.Client(timeout=10) as fresh:
                try:
                    return self._send_http(probe, fresh)
                except httpx.TransportError:
                    return Answer(probe, None, b"")

    def _client(self) -> httpx.Client:
        client: httpx.Client | None = getattr(self._local, "client", None)
        if client is None:
            client = httpx.Client(timeout=10)
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def _send_http(self, probe: Probe, client: httpx.Client) -> Answer:
        content: bytes | Iterator[bytes] = (
            iter(probe.chunks) if probe.chunks is not None else probe.body
        )
        response = client.request(
            probe.method,
            self._server.url + probe.path,
            content=content,
            headers=list(probe.headers),
        )
        return Answer(probe, response.status_code, response.content)

    def _send_raw(self, probe: Probe) -> Answer:
        assert probe.raw is not None
        received = b""
        with socket.create_connection(("127.0.0.1", self._port), timeout=10) as sock:
            try:
                sock.sendall(probe.raw)
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass  # the server may stop reading early; its answer can still be read
            try:
                while chunk := sock.recv(65536):
                    received += chunk
            except OSError:
                pass
        return Answer(probe, *final_status(received))

    def close(self) -> None:
        for client in self._clients:
            client.close()


_STATUS_LINE = re.compile(rb"HTTP/\d\.\d (\d{3})[^\r\n]*\r\n")


def final_status(received: bytes) -> tuple[int | None, bytes]:
    """The status and the rest of the last non-1xx response in ``received``."""
    rest = received
    while match := _STATUS_LINE.match(rest):
        status = int(match.group(1))
        if status >= 200:
            return status, rest
        rest = rest[rest.index(b"\r\n\r\n") + 4 :]
    return None, received


# --- the scenario ---------------------------------------------------------------------------


def violations(answers: list[Answer]) -> list[str]:
    """Every answer that breaks the rules, as readable lines."""
    bad: list[str] = []
    for a in answers:
        kind, status, expect = a.probe.kind, a.status, a.probe.expect
        if SECRET.encode() in a.body or OLD_SECRET.encode() in a.body:
            bad.append(f"{kind}: a secret in the answer")
        if expect in ("event", "quarantine"):
            ok = status == 200
        elif expect == "unknown_coding":
            ok = status == 501
        elif expect == "options":
            ok = status in (200, 204, 405) and not (status == 200 and a.body)
        elif expect == "may_drop":
            ok = status is None or 400 <= status < 500
        else:
            ok = status is not None and status < 500 and not 200 <= status < 300
        if not ok:
            bad.append(f"{kind}: answered {status} ({expect}) {a.body[:120]!r}")
    return bad


def test_hostile_requests_publish_nothing_and_never_fail(
    kafka_bootstrap: str, tmp_path: Path, figure: Figure
) -> None:
    events, quarantine = unique_topic("events"), unique_topic("quarantine")
    create_topics(kafka_bootstrap, [events, quarantine], partitions=3)
    env = {
        "AGORA_NCS_SECRET": f"{SECRET},{OLD_SECRET}",
        "AGORA_TOPIC_EVENTS": events,
        "AGORA_TOPIC_QUARANTINE": quarantine,
    }
    plan = request_plan()
    valid = [p for p in plan if isinstance(p, Probe)]

    with run_webhook(kafka_bootstrap, tmp_path, env=env) as server:
        sender = Sender(server)
        started = time.monotonic()
        try:
            with ThreadPoolExecutor(THREADS) as pool:
                answers = list(pool.map(sender.send, plan))
        finally:
            sender.close()
        elapsed = time.monotonic() - started
    log = server.log_text()

    on_events = notice_ids_on_topic(kafka_bootstrap, events)
    on_quarantine = Counter(r.value for r in records_on_topic(kafka_bootstrap, quarantine))
    expected_events = Counter(p.notice_id for p in valid if p.expect == "event")
    expected_quarantine = Counter(p.body for p in valid if p.expect == "quarantine")
    by_status = Counter(str(a.status) for a in answers)
    by_kind = Counter(a.probe.kind.split("/")[0] for a in answers)
    figure(
        "hostile requests",
        requests=len(answers),
        hostile=HOSTILE,
        valid_mixed_in=len(valid),
        by_status=dict(sorted(by_status.items())),
        published_events=sum(on_events.values()),
        published_quarantine=sum(on_quarantine.values()),
        seconds=round(elapsed, 1),
        per_s=round(len(answers) / elapsed),
        seed=SEED,
        by_kind=dict(sorted(by_kind.items())),
    )
    bad = violations(answers)
    summary = Counter(line.split(" (")[0] for line in bad)
    assert bad == [], f"{len(bad)} bad answers {dict(summary)}; first ones:\n" + "\n".join(bad[:10])
    assert on_events == expected_events, "exactly the valid callbacks are on the events topic"
    assert on_quarantine == expected_quarantine, "exactly the signed unparseable bodies"
    assert SECRET not in log
    assert OLD_SECRET not in log
    assert "Traceback" not in log
    assert log.count("Booting worker") == 2, "no worker died or was replaced"
