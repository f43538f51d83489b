"""Ingest benchmark: the webhook (verify + parse + Kafka acks=all) against a bare Flask
endpoint under the same gunicorn settings, in the same run, driven by wrk.

    python bench/ingest.py [--duration 15] [--connections 32] [--workers 2 --threads 16]
    python bench/ingest.py --matrix      # try several worker/thread layouts
    python bench/ingest.py --spool       # also: spool on (broker up), and spool only (broker down)

Starts its own single-node broker unless KAFKA_BOOTSTRAP_SERVERS is set. Prints requests/s,
p50/p99 latency, non-2xx count and worker RSS for both, the ratio, and checks that every
acknowledged request is on the topic.
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
from pathlib import Path

import httpx
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SECRET = "bench-ncs-secret-0123"


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
    """Sum of RSS of the gunicorn workers (children of the master)."""
    total = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        if re.search(rf"^PPid:\s+{master_pid}$", text, re.M):
            match = re.search(r"^VmRSS:\s+(\d+) kB", text, re.M)
            total += int(match.group(1)) if match else 0
    return total / 1024


def wrk_script(tmp: Path) -> Path:
    body = json.dumps(
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
    )
    sys.path.insert(0, str(ROOT))
    from webhook.signature import signature_headers

    headers = signature_headers(body.encode(), SECRET)
    lua = tmp / "post.lua"
    lua.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(body)}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
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


def measure(
    bootstrap: str, tmp: Path, lua: Path, workers: int, threads: int, args: argparse.Namespace
) -> dict[str, dict[str, float]]:
    topic = f"bench.events.{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics(
        {topic: {"num_partitions": 3, "replication_factor": 1}}, wait_for_metadata=True
    )
    admin.close()
    metrics_dir = tmp / f"metrics-{uuid.uuid4().hex[:6]}"
    metrics_dir.mkdir()
    env = {
        **os.environ,
        "AGORA_NCS_SECRET": SECRET,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "AGORA_TOPIC_EVENTS": topic,
        "AGORA_LOG_LEVEL": args.log_level,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "AGORA_WEBHOOK_WORKERS": str(workers),
        "AGORA_WEBHOOK_THREADS": str(threads),
    }
    common = [
        str(BIN / "gunicorn"),
        "-c",
        "python:webhook.gunicorn_conf",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
    ]
    results: dict[str, dict[str, float]] = {}
    port = free_port()
    with gunicorn(
        [*common, "--bind", f"127.0.0.1:{port}", "--chdir", str(ROOT / "bench"), "bare_app:app"],
        env,
        port,
        tmp / "bare.log",
    ) as proc:
        run_wrk(f"http://127.0.0.1:{port}/ncs", lua, 3, args.connections)  # warm-up
        results["bare"] = run_wrk(
            f"http://127.0.0.1:{port}/ncs", lua, args.duration, args.connections
        )
        results["bare"]["rss_mb"] = worker_rss_mb(proc.pid)
    results["webhook"], warm = run_webhook(common, env, tmp / "webhook.log", lua, args)
    acknowledged = (
        warm["requests"]
        - warm["non2xx"]
        + results["webhook"]["requests"]
        - results["webhook"]["non2xx"]
    )
    results["webhook"]["on_topic"] = topic_count(bootstrap, topic)
    results["webhook"]["acknowledged"] = acknowledged
    if args.spool:
        # Spool on, broker healthy: the cost of checking the spool on every request.
        spool_env = {**env, "AGORA_WEBHOOK_SPOOL_DIR": str(tmp / f"spool-{uuid.uuid4().hex[:6]}")}
        results["spool-on"], _ = run_webhook(common, spool_env, tmp / "spool-on.log", lua, args)
        # Broker unreachable: every callback is fsynced to the spool (a closed port).
        down_env = {
            **env,
            "AGORA_WEBHOOK_SPOOL_DIR": str(tmp / f"spool-{uuid.uuid4().hex[:6]}"),
            "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
            "AGORA_WEBHOOK_PUBLISH_TIMEOUT_S": "1",
        }
        results["spooling"], _ = run_webhook(common, down_env, tmp / "spooling.log", lua, args)
    return results


def run_webhook(
    common: list[str], env: dict[str, str], log: Path, lua: Path, args: argparse.Namespace
) -> tuple[dict[str, float], dict[str, float]]:
    """(measured run, warm-up run) of the real webhook."""
    port = free_port()
    with gunicorn(
        [*common, "--bind", f"127.0.0.1:{port}", "webhook.app:create_app()"], env, port, log
    ) as proc:
        warm = run_wrk(f"http://127.0.0.1:{port}/ncs", lua, 3, args.connections)
        result = run_wrk(f"http://127.0.0.1:{port}/ncs", lua, args.duration, args.connections)
        result["rss_mb"] = worker_rss_mb(proc.pid)
    return result, warm


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--log-level", default="WARNING", help="webhook log level during the run")
    parser.add_argument("--matrix", action="store_true", help="try several worker/thread layouts")
    parser.add_argument(
        "--spool", action="store_true", help="also measure the disk spool (broker up, and down)"
    )
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")
    layouts = (
        [(1, 16), (2, 8), (2, 16), (2, 32), (4, 8)]
        if args.matrix
        else [(args.workers, args.threads)]
    )
    print(
        f"machine: {platform.machine()} {os.cpu_count()} cpus, Python {platform.python_version()}, "
        f"wrk -t2 -c{args.connections} -d{args.duration}s, 1 KB-class signed body"
    )
    with tempfile.TemporaryDirectory() as tmpdir, broker(Path(tmpdir)) as bootstrap:
        tmp = Path(tmpdir)
        lua = wrk_script(tmp)
        print(
            f"{'layout':>12} {'target':>9} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'p99.9':>8} "
            f"{'non2xx':>7} {'RSS MB':>7}  ratio"
        )
        for workers, threads in layouts:
            res = measure(bootstrap, tmp, lua, workers, threads, args)
            for name in res:
                r = res[name]
                ratio = f"{r['rps'] / res['bare']['rps']:.2f}" if name != "bare" else ""
                print(
                    f"{f'{workers}x{threads} gthread':>12} {name:>9} {r['rps']:9.0f} {r['p50_ms']:8.2f} "
                    f"{r['p99_ms']:8.2f} {r['p999_ms']:8.2f} {int(r['non2xx']):7d} {r['rss_mb']:7.0f}  {ratio}"
                )
            w = res["webhook"]
            print(
                f"{'':>12} acknowledged={int(w['acknowledged'])} on_topic={int(w['on_topic'])} "
                f"{'OK' if w['on_topic'] >= w['acknowledged'] else 'LOST RECORDS'}"
            )


if __name__ == "__main__":
    main()
