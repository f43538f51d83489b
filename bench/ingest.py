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
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient
from openloop import run_open_loop
from shared_setup import ROOT, kafka_broker

from handlers.testing.webhook_process import free_port
from webhook.shared.signature import signature_headers

BIN = Path(sys.executable).parent
SECRET = "bench-ncs-secret-0123"


@contextmanager
def gunicorn(
    argv: list[str], env: dict[str, str], port: int, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        # Same session as the load generator: with the kernel's autogroup scheduling a new
        # session would be its own CPU group, and a server's share of a busy machine would
        # then depend on how many other sessions are running, not on the server.
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
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
        proc.send_signal(signal.SIGTERM)  # the master stops its workers
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
    return {"Content-Type": "application/json", **signature_headers(body, SECRET)}


def workers_cpu_s(master_pid: int) -> float:
    """CPU seconds (user + system, every thread) used so far by the master's workers."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master_pid:  # ppid
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


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


@dataclass
class Running:
    target: Target
    proc: subprocess.Popen[bytes]
    port: int
    topic: str
    label: str
    acknowledged: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/ncs"


def start(
    target: Target,
    bootstrap: str,
    tmp: Path,
    args: argparse.Namespace,
    stack: ExitStack,
    extra_env: dict[str, str] | None = None,
    label: str = "",
) -> Running:
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
        # wrk posts one signed body over and over: with the replay memory on, every repeat
        # would be answered from it without publishing, which is not the path measured here.
        "AGORA_WEBHOOK_DEDUP_CAPACITY": "0",
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
    proc = stack.enter_context(gunicorn(argv, env, port, log))
    return Running(target, proc, port, topic, label or target.name)


def count(running: Running, result: dict[str, float]) -> None:
    running.acknowledged += int(result["requests"] - result["non2xx"])


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over every target")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rate", type=float, default=1000.0, help="fixed-rate load, requests/s")
    parser.add_argument("--rate-duration", type=float, default=10.0)
    parser.add_argument("--log-level", default="WARNING", help="webhook log level during the run")
    parser.add_argument(
        "--spool", action="store_true", help="also measure the disk spool (broker up, and down)"
    )
    parser.add_argument(
        "--also-workers",
        type=int,
        default=0,
        help="also run the shipped webhook with this many gevent workers (on a shared machine "
        "more processes get a larger share of the cores)",
    )
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")
    print(
        f"machine: {platform.machine()} {os.cpu_count()} cpus, Python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.1f}; wrk -t2 -c{args.connections} "
        f"-d{args.duration}s x {args.rounds} rounds, targets interleaved; fixed rate "
        f"{args.rate:.0f}/s for {args.rate_duration:.0f}s; signed ~600-byte body"
    )
    body = bench_body()
    with (
        tempfile.TemporaryDirectory() as tmpdir,
        kafka_broker(Path(tmpdir)) as bootstrap,
        ExitStack() as stack,
    ):
        tmp = Path(tmpdir)
        lua = wrk_script(tmp)
        servers = [start(t, bootstrap, tmp, args, stack) for t in TARGETS]
        if args.spool:
            shipped = TARGETS[-1]
            spool_on = {"AGORA_WEBHOOK_SPOOL_DIR": str(tmp / "spool-on")}
            spooling = {
                "AGORA_WEBHOOK_SPOOL_DIR": str(tmp / "spooling"),
                "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
                "AGORA_WEBHOOK_PUBLISH_TIMEOUT_S": "1",
            }
            servers.append(start(shipped, bootstrap, tmp, args, stack, spool_on, "spool-on"))
            servers.append(start(shipped, bootstrap, tmp, args, stack, spooling, "spooling"))
        if args.also_workers:
            more = Target("webhook", TARGETS[-1].app, "webhook", "gevent", args.also_workers)
            servers.append(
                start(more, bootstrap, tmp, args, stack, label=f"webhook-x{args.also_workers}")
            )
        for s in servers:  # warm-up: connections, producers, first metadata
            count(s, run_wrk(s.url, lua, 2, args.connections))
        runs: dict[int, list[dict[str, float]]] = {i: [] for i in range(len(servers))}
        for round_no in range(args.rounds):
            # Rotate the order, so no target always runs right after the same neighbour.
            order = list(range(len(servers)))
            order = order[round_no % len(order) :] + order[: round_no % len(order)]
            for i in order:
                cpu_before = workers_cpu_s(servers[i].proc.pid)
                result = run_wrk(servers[i].url, lua, args.duration, args.connections)
                cpu = workers_cpu_s(servers[i].proc.pid) - cpu_before
                result["per_cpu_s"] = result["requests"] / cpu if cpu > 0 else float("nan")
                count(servers[i], result)
                runs[i].append(result)
        rss = {i: worker_rss_mb(s.proc.pid) for i, s in enumerate(servers)}
        fixed = {}
        for i, s in enumerate(servers):
            fixed[i] = run_open_loop(
                "127.0.0.1",
                s.port,
                "/ncs",
                body,
                bench_headers(body),
                args.rate,
                args.rate_duration,
            )
            s.acknowledged += fixed[i].answered - fixed[i].non200
        on_topic = {
            i: topic_count(bootstrap, s.topic)
            for i, s in enumerate(servers)
            if s.target.kind != "bare" and s.label != "spooling"
        }

    print(
        f"{'target':>10} {'layout':>13} {'req/s':>6} {'(min-max)':>11} {'p50':>6} {'p99':>6} "
        f"{'req/cpu-s':>9} {'RSS/w':>5} | {'@rate p50':>9} {'p99':>7} {'p99.9':>7} {'bad':>4}  check"
    )
    for i, s in enumerate(servers):
        rps = [r["rps"] for r in runs[i]]
        f = fixed[i]
        check = ""
        if i in on_topic:
            ok = on_topic[i] >= s.acknowledged
            check = f"acked={s.acknowledged} on_topic={on_topic[i]} " + (
                "OK" if ok else "LOST RECORDS"
            )
        print(
            f"{s.label:>10} {s.target.layout:>13} {median(rps):6.0f} "
            f"{f'{min(rps):.0f}-{max(rps):.0f}':>11} "
            f"{median([r['p50_ms'] for r in runs[i]]):6.1f} "
            f"{median([r['p99_ms'] for r in runs[i]]):6.1f} "
            f"{median([r['per_cpu_s'] for r in runs[i]]):9.0f} {rss[i]:5.0f} | "
            f"{f.p50_ms:9.1f} {f.p99_ms:7.1f} {f.p999_ms:7.1f} {f.non200 + f.errors:4d}  {check}"
        )
    shipped_i = len(TARGETS) - 1
    to_minimal, to_bare, cpu_to_minimal, cpu_to_bare = [], [], [], []
    for n in range(args.rounds):
        cpu_minimal = max(
            runs[i][n]["per_cpu_s"] for i, t in enumerate(TARGETS) if t.kind == "minimal"
        )
        cpu_bare = max(runs[i][n]["per_cpu_s"] for i, t in enumerate(TARGETS) if t.kind == "bare")
        cpu_to_minimal.append(runs[shipped_i][n]["per_cpu_s"] / cpu_minimal)
        cpu_to_bare.append(runs[shipped_i][n]["per_cpu_s"] / cpu_bare)
        best_minimal = max(runs[i][n]["rps"] for i, t in enumerate(TARGETS) if t.kind == "minimal")
        best_bare = max(runs[i][n]["rps"] for i, t in enumerate(TARGETS) if t.kind == "bare")
        to_minimal.append(runs[shipped_i][n]["rps"] / best_minimal)
        to_bare.append(runs[shipped_i][n]["rps"] / best_bare)
    print(
        f"webhook (shipped: {TARGETS[shipped_i].layout}) / best minimal kafka-python app, same "
        f"round: median {median(to_minimal):.2f} (rounds {', '.join(f'{x:.2f}' for x in to_minimal)})"
        "   target >= 0.9"
    )
    print(
        f"webhook (shipped) / best bare floor, same round: median {median(to_bare):.2f} "
        f"(rounds {', '.join(f'{x:.2f}' for x in to_bare)})   target >= 0.4"
    )
    print(
        "requests per CPU-second of the workers (does not depend on how much of the shared "
        f"cores the scheduler gave each target): webhook / best minimal median "
        f"{median(cpu_to_minimal):.2f}, webhook / best bare median {median(cpu_to_bare):.2f}"
    )
    f = fixed[shipped_i]
    print(
        f"webhook (shipped) at {args.rate:.0f}/s fixed rate: p99 {f.p99_ms:.1f} ms "
        f"(target <= 20 ms); RSS per worker {rss[shipped_i]:.0f} MB (target <= 80 MB)"
    )


if __name__ == "__main__":
    main()
