"""Ingest benchmark, all in one run on one machine: the bare floor (a Flask endpoint that
answers ``{}``), a minimal kafka-python app (bench/minimal_app.py: verify, parse,
``send().get()`` with acks=all) and the webhook, each under gunicorn with the worker models
that matter, driven by wrk (closed loop) and by a fixed-rate generator (bench/openloop.py)
for the latency at a given rate.

    python bench/ingest.py [--duration 15] [--connections 32] [--rate 1000 --rate-duration 10]
    python bench/ingest.py --spool       # also: spool on (broker up), and spool only (broker down)

Starts its own single-node broker unless KAFKA_BOOTSTRAP_SERVERS is set. Prints requests/s,
p50/p99 latency, non-2xx count and RSS per worker for each, the webhook's ratios to the best
minimal app and the best bare floor, the p99 at the fixed rate, and checks that every
acknowledged request is on the topic. On a shared machine only the same-run ratios mean
much; the absolute figures move with the neighbours' load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient
from openloop import run_open_loop

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SECRET = "bench-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def broker(tmp: Path) -> Iterator[str]:
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield os.environ["KAFKA_BOOTSTRAP_SERVERS"]
        return
    script = [sys.executable, str(ROOT / "docker" / "kafka_local.py")]
    out = subprocess.run(
        [*script, "up", "--port", "0", "--dir", str(tmp / "kafka"), "--json"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    info = json.loads(out.strip().splitlines()[-1])
    try:
        yield info["bootstrap"]
    finally:
        subprocess.run(
            [*script, "down", "--dir", str(tmp / "kafka")], check=False, capture_output=True
        )


@contextmanager
def gunicorn(
    argv: list[str], env: dict[str, str], port: int, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(log.read_text())
            time.sleep(0.2)
        yield proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def worker_rss_mb(master_pid: int) -> float:
    """The largest RSS among the gunicorn workers (children of the master)."""
    largest = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        if re.search(rf"^PPid:\s+{master_pid}$", text, re.M):
            match = re.search(r"^VmRSS:\s+(\d+) kB", text, re.M)
            largest = max(largest, int(match.group(1)) if match else 0)
    return largest / 1024


def bench_body() -> bytes:
    return json.dumps(
        {
            "noticeId": str(uuid.uuid4()),
            "productId": 3,
            "eventType": 45,
            "notifyMs": int(time.time() * 1000),
            "payload": {
                "cname": "bench-channel",
                "uid": "900001",
                "sid": "38f8e3cfdc474cd56fc1ceba380d7e1a",
                "sequence": 7,
                "sendts": int(time.time() * 1000),
                "serviceType": 1,
                "details": {
                    "msgName": "recorder_snapshot_file",
                    "fileName": "rec/38f8e3cfdc474cd56fc1ceba380d7e1a_bench-channel__uid_s_123__uid_e_video_20240101000000000.jpg",
                },
            },
        },
        separators=(",", ":"),
    ).encode()


def bench_headers(body: bytes) -> dict[str, str]:
    sys.path.insert(0, str(ROOT))
    from webhook.signature import signature_headers

    return {"Content-Type": "application/json", **signature_headers(body, SECRET)}


def wrk_script(tmp: Path) -> Path:
    body = bench_body().decode()
    headers = bench_headers(body.encode())
    lua = tmp / "post.lua"
    lua.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(body)}\n"
        + "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in headers.items())
        + "done = function(summary, latency, requests)\n"
        '  io.write(string.format("JSON {\\"requests\\":%d,\\"duration_us\\":%d,\\"non2xx\\":%d,'
        '\\"errors\\":%d,\\"p50_ms\\":%.3f,\\"p99_ms\\":%.3f,\\"p999_ms\\":%.3f}\\n",'
        " summary.requests, summary.duration, summary.errors.status,"
        " summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,"
        " latency:percentile(50)/1000, latency:percentile(99)/1000, latency:percentile(99.9)/1000))\n"
        "end\n"
    )
    return lua


def run_wrk(url: str, lua: Path, duration: int, connections: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "-s", str(lua), url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("JSON "))
    result = json.loads(line[5:])
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    return result


def topic_count(bootstrap: str, topic: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        return sum(consumer.end_offsets(parts).values())
    finally:
        consumer.close()


def new_topic(bootstrap: str) -> str:
    topic = f"bench.events.{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics(
        {topic: {"num_partitions": 3, "replication_factor": 1}}, wait_for_metadata=True
    )
    admin.close()
    return topic


@dataclass(frozen=True)
class Target:
    name: str
    app: str  # gunicorn app spec
    kind: str  # bare | minimal | webhook
    worker_class: str
    workers: int = 2
    threads: int = 16

    @property
    def layout(self) -> str:
        if self.worker_class == "gthread":
            return f"gthread {self.workers}x{self.threads}"
        return f"{self.worker_class} x{self.workers}"


TARGETS = [
    Target("bare", "bare_app:app", "bare", "sync"),
    Target("bare", "bare_app:app", "bare", "gevent"),
    Target("minimal", "minimal_app:app", "minimal", "gthread"),
    Target("minimal", "minimal_app:app", "minimal", "gevent"),
    Target("webhook", "webhook.app:create_app()", "webhook", "gthread"),
    Target("webhook", "webhook.app:create_app()", "webhook", "gevent"),  # shipped
]


def measure(
    target: Target,
    bootstrap: str,
    tmp: Path,
    lua: Path,
    args: argparse.Namespace,
    extra_env: dict[str, str] | None = None,
    label: str = "",
) -> dict[str, float]:
    topic = new_topic(bootstrap)
    metrics_dir = tmp / f"metrics-{uuid.uuid4().hex[:6]}"
    metrics_dir.mkdir()
    env = {
        **os.environ,
        "AGORA_NCS_SECRET": SECRET,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "AGORA_TOPIC_EVENTS": topic,
        "AGORA_LOG_LEVEL": args.log_level,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "AGORA_WEBHOOK_WORKER_CLASS": target.worker_class,
        **(extra_env or {}),
    }
    port = free_port()
    argv = [
        str(BIN / "gunicorn"),
        "-c",
        "python:webhook.gunicorn_conf",
        "--worker-class",
        target.worker_class,
        "--workers",
        str(target.workers),
        "--threads",
        str(target.threads),
        "--bind",
        f"127.0.0.1:{port}",
        "--chdir",
        str(ROOT / "bench"),
        target.app,
    ]
    log = tmp / f"{target.kind}-{target.worker_class}-{uuid.uuid4().hex[:4]}.log"
    url = f"http://127.0.0.1:{port}/ncs"
    body = bench_body()
    with gunicorn(argv, env, port, log) as proc:
        warm = run_wrk(url, lua, 3, args.connections)
        result = run_wrk(url, lua, args.duration, args.connections)
        rss_closed = worker_rss_mb(proc.pid)
        fixed = run_open_loop(
            "127.0.0.1", port, "/ncs", body, bench_headers(body), args.rate, args.rate_duration
        )
        result["rss_mb"] = max(rss_closed, worker_rss_mb(proc.pid))
    result.update(
        fixed_p50_ms=fixed.p50_ms,
        fixed_p99_ms=fixed.p99_ms,
        fixed_p999_ms=fixed.p999_ms,
        fixed_answered=fixed.answered,
        fixed_offered=fixed.offered,
        fixed_bad=fixed.non200 + fixed.errors,
    )
    if target.kind != "bare":
        acknowledged = (
            warm["requests"] - warm["non2xx"] + result["requests"] - result["non2xx"]
        ) + (fixed.answered - fixed.non200)
        result["acknowledged"] = acknowledged
        result["on_topic"] = topic_count(bootstrap, topic)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rate", type=float, default=1000.0, help="fixed-rate load, requests/s")
    parser.add_argument("--rate-duration", type=float, default=10.0)
    parser.add_argument("--log-level", default="WARNING", help="webhook log level during the run")
    parser.add_argument(
        "--spool", action="store_true", help="also measure the disk spool (broker up, and down)"
    )
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")
    print(
        f"machine: {platform.machine()} {os.cpu_count()} cpus, Python {platform.python_version()}, "
        f"wrk -t2 -c{args.connections} -d{args.duration}s; fixed rate {args.rate:.0f}/s for "
        f"{args.rate_duration:.0f}s; signed ~600-byte body"
    )
    print(
        f"{'target':>14} {'layout':>16} {'req/s':>7} {'p50':>6} {'p99':>7} {'non2xx':>6} "
        f"{'RSS/w':>6} | {'@rate p50':>9} {'p99':>7} {'p99.9':>7} {'bad':>4}  check"
    )
    results: list[tuple[Target, dict[str, float]]] = []
    with tempfile.TemporaryDirectory() as tmpdir, broker(Path(tmpdir)) as bootstrap:
        tmp = Path(tmpdir)
        lua = wrk_script(tmp)
        runs: list[tuple[Target, dict[str, str], str]] = [(t, {}, t.name) for t in TARGETS]
        if args.spool:
            shipped = TARGETS[-1]
            runs.append((shipped, {"AGORA_WEBHOOK_SPOOL_DIR": str(tmp / "spool-on")}, "spool-on"))
            runs.append(
                (
                    shipped,
                    {
                        "AGORA_WEBHOOK_SPOOL_DIR": str(tmp / "spooling"),
                        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
                        "AGORA_WEBHOOK_PUBLISH_TIMEOUT_S": "1",
                    },
                    "spooling",
                )
            )
        for target, extra, label in runs:
            r = measure(target, bootstrap, tmp, lua, args, extra, label)
            results.append((target, r))
            check = ""
            if "on_topic" in r and label != "spooling":
                ok = r["on_topic"] >= r["acknowledged"]
                check = f"acked={int(r['acknowledged'])} on_topic={int(r['on_topic'])} " + (
                    "OK" if ok else "LOST RECORDS"
                )
            print(
                f"{label:>14} {target.layout:>16} {r['rps']:7.0f} {r['p50_ms']:6.1f} "
                f"{r['p99_ms']:7.1f} {int(r['non2xx']):6d} {r['rss_mb']:6.0f} | "
                f"{r['fixed_p50_ms']:9.1f} {r['fixed_p99_ms']:7.1f} {r['fixed_p999_ms']:7.1f} "
                f"{int(r['fixed_bad']):4d}  {check}",
                flush=True,
            )
    best_bare = max(r["rps"] for t, r in results if t.kind == "bare")
    best_minimal = max(r["rps"] for t, r in results if t.kind == "minimal")
    shipped_result = next(r for t, r in results if t == TARGETS[-1])
    print(
        f"webhook (shipped: {TARGETS[-1].layout}) / best minimal kafka-python app: "
        f"{shipped_result['rps'] / best_minimal:.2f}   (target >= 0.9)"
    )
    print(
        f"webhook (shipped) / best bare floor: {shipped_result['rps'] / best_bare:.2f}   "
        f"(target >= 0.4)"
    )
    print(
        f"webhook (shipped) p99 at {args.rate:.0f}/s fixed rate: "
        f"{shipped_result['fixed_p99_ms']:.1f} ms   (target <= 20 ms); "
        f"RSS per worker {shipped_result['rss_mb']:.0f} MB (target <= 80 MB)"
    )


if __name__ == "__main__":
    main()
