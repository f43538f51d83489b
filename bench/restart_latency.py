"""Failure-to-restart latency: from the POST of a signed ``session_exit`` (exitStatus 1) to
the webhook, to the ``start`` request arriving at a fake Agora server, through the real
path (gunicorn webhook -> Kafka acks=all -> handler runtime -> restart action ->
acquire + start). Also the acquire-to-start gap (Agora wants start within ~2 s).

    python bench/restart_latency.py [--channels 50] [--burst]

Sequential by default: one failure at a time, each measured alone. ``--burst`` posts
every failure at once (a region-wide incident). The runtime uses its production
defaults. One failure is restarted before measuring (connections and the registry
writer exist in a running process). Also prints the split: POST -> webhook answer, and
webhook answer -> ``start`` (Kafka, the handler runtime and the restart action). Starts its own single-node broker unless
KAFKA_BOOTSTRAP_SERVERS is set. Prints p50/p90/p99/max of both figures in milliseconds
and checks that every channel got exactly one acquire and one start.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from support.callbacks import callback_body, signed  # noqa: E402
from support.fake_agora import FakeAgora  # noqa: E402
from support.restart_env import ENV, PROFILE, start_session  # noqa: E402
from support.runtime_helpers import topics_env, unique_topics  # noqa: E402
from support.webhook_server import run_webhook  # noqa: E402

from handlers.config import RecordingRules, RestartRules  # noqa: E402
from handlers.recording.registry import SessionWriter, TableSessions  # noqa: E402
from handlers.recording.restart import RestartAction  # noqa: E402
from handlers.runtime.metrics import RuntimeMetrics  # noqa: E402
from handlers.runtime.retry import RetryPolicy  # noqa: E402
from handlers.runtime.runner import ActionRunner, RunnerConfig  # noqa: E402
from handlers.runtime.state import Table  # noqa: E402
from webhook.clock import SystemClock  # noqa: E402


@contextmanager
def broker(tmp: Path) -> Iterator[str]:
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield os.environ["KAFKA_BOOTSTRAP_SERVERS"]
        return
    script = [sys.executable, str(ROOT / "docker" / "kafka_local.py")]
    out = subprocess.run(
        [*script, "up", "--port", "0", "--dir", str(tmp / "kafka"), "--json"],
        check=True, capture_output=True, text=True,
    ).stdout
    try:
        yield json.loads(out.strip().splitlines()[-1])["bootstrap"]
    finally:
        subprocess.run([*script, "down", "--dir", str(tmp / "kafka")], check=False,
                       capture_output=True)


def percentiles(values: list[float]) -> str:
    ordered = sorted(values)
    if len(ordered) < 2:
        return f"n={len(ordered)} values={ordered}"
    cuts = statistics.quantiles(ordered, n=100, method="inclusive")
    return (f"n={len(ordered)} p50={cuts[49]:.1f} p90={cuts[89]:.1f} p99={cuts[98]:.1f} "
            f"max={ordered[-1]:.1f}")


def wait_for_start(fake: FakeAgora, cname: str, deadline_s: float = 60.0) -> None:
    end = time.monotonic() + deadline_s
    while not any(c.endpoint == "start" and c.body.get("cname") == cname and c.status == 200
                  for c in fake.calls):
        if time.monotonic() > end:
            raise RuntimeError(f"no start for {cname} within {deadline_s} s")
        time.sleep(0.002)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--channels", type=int, default=50)
    parser.add_argument("--burst", action="store_true", help="post every failure at once")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp_name, broker(Path(tmp_name)) as bootstrap, \
            FakeAgora(clock=SystemClock()) as fake:
        tmp = Path(tmp_name)
        topics = unique_topics(bootstrap)
        tag = uuid.uuid4().hex[:6]
        writer = SessionWriter({"bootstrap_servers": bootstrap}, topics.sessions)
        failures: dict[str, bytes] = {}
        for i in range(args.channels + 1):  # the first one warms up
            record = start_session(fake, f"class-{tag}-{i}")
            writer.publish(record)
            fake.end_session(str(record.sid))
            failures[record.cname] = callback_body(
                event_type=11, cname=record.cname, sid=str(record.sid),
                details={"msgName": "session_exit", "exitStatus": 1})
        writer.close()
        setup_calls = len(fake.calls)

        table = Table(topics.sessions)
        client = fake.client()
        action = RestartAction(
            client, sessions=TableSessions(table, lambda: SessionWriter(
                {"bootstrap_servers": bootstrap}, topics.sessions)),
            profiles=RecordingRules(profiles=[PROFILE]), rules=RestartRules(), topics=topics,
            app_id=fake.app_id, clock=SystemClock(), env=ENV,
        )
        group = f"bench-restart-{tag}"
        config = RunnerConfig(
            group_id=group, transactional_id=f"{group}.0", topics=topics,
            retry=RetryPolicy(max_attempts=6, budget_s=120),
            client_config={"bootstrap_servers": bootstrap.split(",")},
        )
        stop = threading.Event()
        runner = ActionRunner(action, config, metrics=RuntimeMetrics(), stop=stop,
                              tables=[table])
        thread = threading.Thread(target=runner.run, daemon=True)
        thread.start()
        posted: dict[str, float] = {}
        acked: dict[str, float] = {}
        try:
            with run_webhook(bootstrap, tmp, env=topics_env(topics)) as webhook, \
                    httpx.Client(timeout=10) as http:
                # Warm-up: the runner joins its group and reads its tables first.
                warm = callback_body(event_type=40, cname=f"warm-{tag}")
                http.post(webhook.ncs_url, content=warm, headers=signed(warm))
                time.sleep(5)  # a benchmark, not a test: let the consumer settle
                warm_cname, warm_failure = failures.popitem()
                http.post(webhook.ncs_url, content=warm_failure, headers=signed(warm_failure))
                wait_for_start(fake, warm_cname)
                setup_calls = len(fake.calls)
                for cname, body in failures.items():
                    posted[cname] = time.monotonic()
                    response = http.post(webhook.ncs_url, content=body, headers=signed(body))
                    response.raise_for_status()
                    acked[cname] = time.monotonic()
                    if not args.burst:
                        wait_for_start(fake, cname)
                for cname in failures:
                    wait_for_start(fake, cname)
        finally:
            stop.set()
            thread.join(60)
            client.close()

        calls = fake.calls[setup_calls:]
        latency, gap, ack, after_ack = [], [], [], []
        for cname, t_post in posted.items():
            acquires = [c for c in calls if c.endpoint == "acquire" and c.body["cname"] == cname]
            starts = [c for c in calls if c.endpoint == "start" and c.body["cname"] == cname]
            assert len(acquires) == 1, (cname, len(acquires))
            assert len(starts) == 1, (cname, len(starts))
            latency.append((starts[0].at - t_post) * 1000)
            ack.append((acked[cname] - t_post) * 1000)
            after_ack.append((starts[0].at - acked[cname]) * 1000)
            gap.append((starts[0].at - acquires[0].at) * 1000)
        mode = "burst" if args.burst else "sequential"
        print(f"restart latency ({mode}, {args.channels} channels), POST -> start at Agora, "
              f"ms: {percentiles(latency)}")
        print(f"webhook answer (Kafka acks=all), ms: {percentiles(ack)}")
        print(f"webhook answer -> start at Agora, ms: {percentiles(after_ack)}")
        print(f"acquire -> start gap, ms: {percentiles(gap)}")
        print("every channel: exactly one acquire and one start")


if __name__ == "__main__":
    main()
