"""Mass failure: N recordings fail at once and are restarted at Agora's QPS limit.

A fake Cloud Recording API answers with real-world latency per endpoint (default acquire
200 ms, start 800 ms) and enforces Agora's 10 requests/s per App ID (429 above it). N
channels' ``session_exit`` (exitStatus 1) callbacks are posted at once to the real webhook
(gunicorn), go through Kafka to the handler runtime running the restart action, whose
Cloud Recording client shares one pacer. Prints, in one run:

- time from the first POST to the last successful ``start``, against the floor 2N/QPS
  (every restart needs an acquire and a start);
- 429 answers (and their share of all calls);
- the acquire-to-start gap (from the acquire's answer to the start's arrival) p50/p99;
- successful starts per channel (exactly one each).

With ``--hang`` one channel's first ``start`` answers only after that many seconds: the
others' figures are printed apart from it, to show that it delays nobody else.
``--concurrency 1 --no-pacer`` gives the one-action-at-a-time behaviour for comparison.

    python bench/mass_restart.py --channels 200 [--hang 10]

Starts its own single-node broker unless KAFKA_BOOTSTRAP_SERVERS is set.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
from shared_setup import (
    failed_recordings,
    kafka_broker,
    percentiles,
    restart_action,
    running_action,
    warm_up,
)

from handlers.recording.pacer import Pacer
from handlers.runtime.retry import RetryPolicy
from handlers.runtime.runner_config import DEFAULT_CONCURRENCY
from handlers.runtime.state import Table
from handlers.testing.fake_agora import FakeAgora
from handlers.testing.fresh_topics import topics_env, unique_topics
from handlers.testing.ncs_callbacks import signed
from handlers.testing.webhook_process import run_webhook
from webhook.shared.clock import SystemClock

QPS = 10


class HangingAgora(FakeAgora):
    """The fake, where the first ``start`` of ``hang_cname`` answers ``hang_s`` late."""

    hang_cname: str | None = None
    hang_s = 0.0

    def handle(self, method: str, raw_path: str, headers: Any, raw_body: bytes) -> Any:
        answer = super().handle(method, raw_path, headers, raw_body)
        if (self.hang_cname and raw_path.endswith("/start") and raw_body
                and json.loads(raw_body).get("cname") == self.hang_cname):
            self.hang_cname = None  # only the first one
            answer = replace(answer, hang_s=answer.hang_s + self.hang_s)
        return answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--channels", type=int, default=200)
    parser.add_argument("--acquire-ms", type=float, default=200)
    parser.add_argument("--start-ms", type=float, default=800)
    parser.add_argument("--hang", type=float, default=0.0, metavar="SECONDS",
                        help="one channel's first start answers this late")
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY)
    parser.add_argument("--no-pacer", action="store_true")
    parser.add_argument("--partitions", type=int, default=3)
    args = parser.parse_args()
    n = args.channels

    with tempfile.TemporaryDirectory() as tmp_name, kafka_broker(Path(tmp_name)) as bootstrap, \
            HangingAgora(clock=SystemClock()) as fake:
        tmp = Path(tmp_name)
        topics = unique_topics(bootstrap, partitions=args.partitions)
        tag = uuid.uuid4().hex[:6]
        failures = failed_recordings(fake, bootstrap, topics.sessions,
                                     (f"mass-{tag}-{i}" for i in range(n)))
        hung = next(iter(failures)) if args.hang else None

        table = Table(topics.sessions)
        pacer = None if args.no_pacer else Pacer(QPS)
        client = fake.client(pacer=pacer, timeout_s=args.hang + 5.0)
        action = restart_action(client, table, bootstrap, topics, fake.app_id)
        try:
            with running_action(action, table, bootstrap, topics, f"bench-mass-{tag}",
                                RetryPolicy(max_attempts=8, budget_s=600),
                                concurrency=args.concurrency), \
                    run_webhook(bootstrap, tmp, env=topics_env(topics)) as webhook, \
                    httpx.Client(timeout=10) as http:
                warm_up(http, webhook.ncs_url, tag)
                # From here on Agora is slow and counts requests per second.
                setup_calls = len(fake.calls)
                fake.latency_s = {"acquire": args.acquire_ms / 1000,
                                  "start": args.start_ms / 1000}
                fake.qps_limit = QPS
                fake.hang_cname, fake.hang_s = hung, args.hang
                t0 = time.monotonic()

                def post(body: bytes) -> None:
                    http.post(webhook.ncs_url, content=body,
                              headers=signed(body)).raise_for_status()

                with ThreadPoolExecutor(16) as posting:
                    list(posting.map(post, failures.values()))
                posted_s = time.monotonic() - t0
                deadline = time.monotonic() + max(120.0, 10 * 2 * n / QPS)
                while True:
                    ok = {c.body["cname"] for c in fake.calls[setup_calls:]
                          if c.endpoint == "start" and c.status == 200}
                    if len(ok) >= n or time.monotonic() > deadline:
                        break
                    time.sleep(0.05)
                time.sleep(args.hang + 1.0)  # let stragglers show up (second starts...)
        finally:
            client.close()

        calls = fake.calls[setup_calls:]
        report(calls, failures, t0, posted_s, hung, args, pacer)


def report(calls: list[Any], failures: dict[str, bytes], t0: float, posted_s: float,
           hung: str | None, args: argparse.Namespace, pacer: Pacer | None) -> None:
    n = len(failures)
    acquire_s = args.acquire_ms / 1000
    starts_ok = [c for c in calls if c.endpoint == "start" and c.status == 200]
    per_channel = Counter(c.body["cname"] for c in starts_ok)
    first_start: dict[str, float] = {}
    gaps = []
    for call in starts_ok:
        cname = call.body["cname"]
        first_start.setdefault(cname, call.at)
        acquired = [c.at + acquire_s for c in calls if c.endpoint == "acquire"
                    and c.status == 200 and c.body["cname"] == cname and c.at < call.at]
        if acquired:
            gaps.append((call.at - acquired[-1]) * 1000)
    throttled = sum(c.status == 429 for c in calls)
    floor = 2 * n / QPS
    others = [t - t0 for c, t in first_start.items() if c != hung]
    last = max(others) if others else float("nan")
    mode = (f"concurrency {args.concurrency}, "
            f"{'no pacer' if pacer is None else f'pacer at {QPS} QPS'}, "
            f"latency acquire {args.acquire_ms:.0f} ms / start {args.start_ms:.0f} ms")
    print(f"mass restart: {n} channels ({mode}); all failures posted in {posted_s:.2f} s")
    print(f"last start        {last:8.2f} s   floor 2N/QPS {floor:.2f} s   "
          f"ratio {last / floor:.3f}{'  (hung channel excluded)' if hung else ''}")
    print(f"429 answers       {throttled:8d}     of {len(calls)} calls "
          f"({100 * throttled / max(1, len(calls)):.2f} %)")
    print(f"acquire->start gap ms: {percentiles(gaps)}")
    counts = Counter(per_channel.get(c, 0) for c in failures)
    print(f"starts per channel: {dict(sorted(counts.items()))} "
          f"(exactly one each: {counts == Counter({1: n})})")
    if hung is not None:
        hung_at = first_start.get(hung)
        print(f"hung channel: start answered {args.hang:.0f} s late; its restart counted at "
              f"{(hung_at - t0) if hung_at else float('nan'):.2f} s (the request's arrival)")
    if pacer is not None:
        stats = pacer.stats()
        print(f"pacer: {stats.calls} calls, {stats.throttled} 429s seen, rate now "
              f"{stats.rate:.2f}/s")


if __name__ == "__main__":
    main()
