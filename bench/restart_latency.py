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
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from shared_setup import (
    failed_recordings,
    kafka_broker,
    percentiles,
    restart_action,
    running_action,
    warm_up,
)

from handlers.runtime.retry import RetryPolicy
from handlers.runtime.state import Table
from handlers.testing.fake_agora import FakeAgora
from handlers.testing.fresh_topics import topics_env, unique_topics
from handlers.testing.ncs_callbacks import signed
from handlers.testing.webhook_process import run_webhook
from webhook.shared.clock import SystemClock


def wait_for_start(fake: FakeAgora, cname: str, after: int, deadline_s: float = 60.0) -> None:
    """Until the fake answered a ``start`` for ``cname`` among its calls from index
    ``after`` on (the setup's own start of the same channel comes before)."""
    end = time.monotonic() + deadline_s
    while not any(c.endpoint == "start" and c.body.get("cname") == cname and c.status == 200
                  for c in fake.calls[after:]):
        if time.monotonic() > end:
            raise RuntimeError(f"no start for {cname} within {deadline_s} s")
        time.sleep(0.002)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--channels", type=int, default=50)
    parser.add_argument("--burst", action="store_true", help="post every failure at once")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp_name, kafka_broker(Path(tmp_name)) as bootstrap, \
            FakeAgora(clock=SystemClock()) as fake:
        tmp = Path(tmp_name)
        topics = unique_topics(bootstrap)
        tag = uuid.uuid4().hex[:6]
        # The first one warms up.
        failures = failed_recordings(fake, bootstrap, topics.sessions,
                                     (f"class-{tag}-{i}" for i in range(args.channels + 1)))
        setup_calls = len(fake.calls)

        table = Table(topics.sessions)
        client = fake.client()
        action = restart_action(client, table, bootstrap, topics, fake.app_id)
        posted: dict[str, float] = {}
        acked: dict[str, float] = {}
        try:
            with running_action(action, table, bootstrap, topics, f"bench-restart-{tag}",
                                RetryPolicy(max_attempts=6, budget_s=120)), \
                    run_webhook(bootstrap, tmp, env=topics_env(topics)) as webhook, \
                    httpx.Client(timeout=10) as http:
                warm_up(http, webhook.ncs_url, tag)
                warm_cname, warm_failure = failures.popitem()
                http.post(webhook.ncs_url, content=warm_failure, headers=signed(warm_failure))
                wait_for_start(fake, warm_cname, setup_calls)
                setup_calls = len(fake.calls)
                for cname, body in failures.items():
                    posted[cname] = time.monotonic()
                    response = http.post(webhook.ncs_url, content=body, headers=signed(body))
                    response.raise_for_status()
                    acked[cname] = time.monotonic()
                    if not args.burst:
                        wait_for_start(fake, cname, setup_calls)
                for cname in failures:
                    wait_for_start(fake, cname, setup_calls)
        finally:
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
