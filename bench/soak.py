"""Soak: the real webhook and handlers under a steady callback rate, and their memory.

    python bench/soak.py [--minutes 10] [--rate 50] [--sample-s 5] [--state-ttl-s 60]
                         [--no-fakes]

Starts everything on 127.0.0.1 (free ports) and stops it at the end:

- a single-node broker (docker/kafka_local.py) unless KAFKA_BOOTSTRAP_SERVERS is set;
- fresh topics named ``soak-<tag>.*`` (``agora-events topics create``);
- the fake Cloud Recording, whiteboard and alert-sink servers of handlers/testing, in this
  process (``--no-fakes``: none, and only ``notify`` runs, without alert rules);
- ``agora-events webhook`` (gunicorn) and ``agora-events handlers`` (``notify``, plus
  ``restart`` and ``whiteboard`` against the fakes) as subprocesses, the handlers with
  ``AGORA_HANDLERS_STATE_TTL_S`` set to ``--state-ttl-s`` (60 s by default instead of the
  week of production, so that the state, and with it the memory, levels off within
  minutes); with the fakes also ``agora-events recording reconcile`` every 10 s, pruning
  finished registry records older than ``--retain-finished-s`` (60 s; a week in
  production).

Then posts signed callbacks at ``--rate`` per second for ``--minutes``: whole recordings
(``webhook.shared.samples.lifecycle``: started, slices, uploads, exit), interleaved so that each
recording's callbacks are about a second apart, one recording in ten ending with
``session_exit`` status 1 (a restart, an alert; every exit also triggers a whiteboard
capture). A restarted recording ends normally ``--end-after-s`` after its restart: the
fake Agora forgets the task and a signed ``session_exit`` with ``exitStatus`` 0 is posted
for it, as NCS would (the restart action marks the record ``ended``, the reconciler
prunes it). Every ``--sample-s`` it reads VmRSS from /proc of the gunicorn master, its workers
and the handlers process.

Prints the answers by status, the records on each topic, the handlers' outcomes, the calls
the fakes got, RSS at start, after 1 minute, at the end and the maximum, the RSS slope over
the second half (least squares, MiB per minute) and one verdict line per process: "memory
flat" when the second-half growth (slope x duration) is below ``--flat-mib``; the
state keys written and still live at the end, and the registry records.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient
from prometheus_client.parser import text_string_to_metric_families
from shared_setup import BROKER_GIVEN, kafka_broker

from handlers.testing.fake_agora import FakeAgora
from handlers.testing.fake_sinks import FakeSinks
from handlers.testing.fake_whiteboard import FAKE_TOKEN, FakeWhiteboard
from handlers.testing.webhook_process import terminate_group
from webhook.shared.clock import SystemClock
from webhook.shared.kafka_settings import TopicNames
from webhook.shared.samples import encode, lifecycle, sample
from webhook.shared.signature import signature_headers

CLI = Path(sys.executable).with_name("agora-events")
SECRET = "soak-ncs-secret-0123"
RECORDER_UID = "900001"
BACKUP_UID = "900002"  # the uid a restarted recording runs with
FAIL_EVERY = 10  # one recording in ten dies (session_exit 1)
RECONCILE_EVERY_S = 10
MIB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- processes -----------------------------------------------------------------------------------


@contextmanager
def service(argv: list[str], env: dict[str, str], log: Path, health_url: str | None
            ) -> Iterator[subprocess.Popen[bytes]]:
    """A subprocess in its own session, ready once ``health_url`` answers 200 (``None``:
    once it has run for a second); SIGTERM to its whole process group at the end."""
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if health_url is None:
                    time.sleep(1.0)
                    if proc.poll() is None:
                        break
                elif httpx.get(health_url, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{argv[1]} did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield proc
    finally:
        terminate_group(proc, timeout_s=40)


def rss_kib(pid: int) -> int:
    """VmRSS of ``pid`` in KiB (0 once it is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def children(pid: int) -> list[int]:
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        if f"\nPPid:\t{pid}\n" in text:
            found.append(int(status.parent.name))
    return sorted(found)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def webhook_cpu(master: int) -> float:
    """CPU time of the gunicorn master and its workers so far."""
    return cpu_seconds(master) + sum(cpu_seconds(w) for w in children(master))


# --- the fakes -----------------------------------------------------------------------------------


@dataclass
class Fakes:
    agora: Any
    whiteboard: Any
    sinks: Any
    env: dict[str, str]


RULES = """\
[[recording.profiles]]
name = "soak"
cnames = ["soak-*"]
mode = "individual"
uid = "{recorder_uid}"
backup_uid = "{backup_uid}"
[recording.profiles.client_request]
recordingConfig = {{ channelType = 0, streamTypes = 2, subscribeUidGroup = 0, maxIdleTime = 300 }}
recordingFileConfig = {{ avFileType = ["hls"] }}
storageConfig = {{ vendor = 1, region = 0, bucket = "rec", accessKey = "${{S3_KEY}}", secretKey = "${{S3_SECRET}}", fileNamePrefix = ["rec"] }}

[reconciler]
interval_s = {reconcile_s}
retain_finished_s = {retain_s}

[[whiteboard.links]]
cnames = ["soak-*"]
room_uuid = "{room}"
region = "us-sv"
on_events = [11]

[[alerts.sinks]]
name = "ops"
kind = "webhook"
url = "{sink_url}"
secret = "${{SOAK_SINK_SECRET}}"

[[alerts.rules]]
name = "recording-died"
events = [11]
where = {{ exitStatus = 1 }}
sinks = ["ops"]

[[alerts.rules]]
name = "restart-gave-up"
outcomes = ["restart gave up"]
sinks = ["ops"]
"""


@contextmanager
def fakes(tmp: Path, retain_s: int) -> Iterator[Fakes]:
    room = uuid.uuid4().hex
    sink_secret = "soak-sink-secret"
    with ExitStack() as stack:
        agora = stack.enter_context(FakeAgora(clock=SystemClock()))
        whiteboard = stack.enter_context(FakeWhiteboard())
        whiteboard.add_room(room, region="us-sv")
        sinks = stack.enter_context(FakeSinks())
        rules = tmp / "rules.toml"
        rules.write_text(RULES.format(
            room=room, sink_url=sinks.webhook_url("ops", sink_secret),
            recorder_uid=RECORDER_UID, backup_uid=BACKUP_UID,
            reconcile_s=RECONCILE_EVERY_S, retain_s=retain_s))
        env = {
            "AGORA_EVENTS_CONFIG": str(rules),
            **agora.env(),
            "WHITEBOARD_TOKEN": FAKE_TOKEN,
            "WHITEBOARD_API_BASE": whiteboard.url,
            "S3_KEY": "AKIASOAKEXAMPLE",
            "S3_SECRET": "soak-storage-secret",
            "SOAK_SINK_SECRET": sink_secret,
        }
        yield Fakes(agora, whiteboard, sinks, env)


# --- load ----------------------------------------------------------------------------------------


def callbacks(tag: str, batch: int) -> Iterator[bytes]:
    """Endless callback bodies: ``batch`` recordings at a time, interleaved (event k of
    each recording of the batch, then event k + 1...), each on its own channel."""
    recording = 0
    while True:
        batch_events = []
        for _ in range(batch):
            sid = uuid.uuid4().hex
            failed = recording % FAIL_EVERY == FAIL_EVERY - 1
            batch_events.append(lifecycle(f"soak-{tag}-{recording}", sid, RECORDER_UID,
                                          failed=failed))
            recording += 1
        for step in range(max(len(events) for events in batch_events)):
            for events in batch_events:
                if step < len(events):
                    body = events[step]
                    # notifyMs is when NCS sends it: now, not when the batch was built.
                    body["notifyMs"] = time.time_ns() // 1_000_000
                    yield encode(body)


@dataclass
class LoadResult:
    sent: int = 0
    answers: Counter[str] = field(default_factory=Counter)
    max_lag_s: float = 0.0  # how far the sender fell behind its schedule
    late: int = 0  # callbacks sent more than a second after their time
    lock: threading.Lock = field(default_factory=threading.Lock)


def post_signed(client: httpx.Client, url: str, body: bytes) -> str:
    """POST ``body`` signed as NCS would; the status code, or the error's name."""
    headers = {"Content-Type": "application/json", **signature_headers(body, SECRET)}
    try:
        return str(client.post(url, content=body, headers=headers).status_code)
    except httpx.HTTPError as exc:
        return type(exc).__name__


class RestartedEnder(threading.Thread):
    """Ends every restarted recording normally ``after_s`` after its start, as a real one
    ends once its channel is empty: the fake Agora forgets the task and NCS's
    ``session_exit`` (``exitStatus`` 0) is posted for it."""

    def __init__(self, agora: Any, url: str, after_s: float) -> None:
        super().__init__(daemon=True)
        self.agora, self.url, self.after_ms = agora, url, int(after_s * 1000)
        self.stop = threading.Event()
        self.answers: Counter[str] = Counter()

    def run(self) -> None:
        with httpx.Client(timeout=10.0) as client:
            while not self.stop.wait(1.0):
                self.end_due(client)

    def end_due(self, client: httpx.Client) -> None:
        now_ms = time.time_ns() // 1_000_000
        for task in self.agora.running():
            if task.uid != BACKUP_UID or now_ms - task.started_ms < self.after_ms:
                continue
            self.agora.end_session(task.sid)
            body = encode(sample(11, cname=task.cname, sid=task.sid, uid=BACKUP_UID,
                                 exitStatus=0))
            self.answers[post_signed(client, self.url, body)] += 1


def post_load(url: str, rate: float, seconds: float, tag: str) -> LoadResult:
    """Open-loop load: a callback every 1/rate s whatever the answers, like NCS."""
    result = LoadResult()
    local = threading.local()
    clients: list[httpx.Client] = []

    def post(body: bytes) -> None:
        client = getattr(local, "client", None)
        if client is None:  # one keep-alive connection per sender thread
            client = local.client = httpx.Client(timeout=10.0)
            with result.lock:
                clients.append(client)
        answer = post_signed(client, url, body)
        with result.lock:
            result.answers[answer] += 1

    interval = 1.0 / rate
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=32) as pool:
        for index, body in enumerate(callbacks(tag, batch=max(1, int(rate)))):
            due = start + index * interval
            if due - start >= seconds:
                break
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                result.max_lag_s = max(result.max_lag_s, -delay)
                result.late += delay < -1.0
            pool.submit(post, body)
            result.sent += 1
    for client in clients:
        client.close()
    return result


# --- sampling ------------------------------------------------------------------------------------


@dataclass
class Sample:
    t_s: float
    master_kib: int
    workers_kib: int
    workers: int
    handlers_kib: int


class Sampler(threading.Thread):
    def __init__(self, master: int, handlers: int, every_s: float) -> None:
        super().__init__(daemon=True)
        self.master, self.handlers, self.every_s = master, handlers, every_s
        self.samples: list[Sample] = []
        self.stop = threading.Event()
        self.t0 = time.monotonic()
        self.t0_wall = time.time()

    def take(self) -> None:
        workers = children(self.master)
        self.samples.append(Sample(
            time.monotonic() - self.t0, rss_kib(self.master),
            sum(rss_kib(w) for w in workers), len(workers), rss_kib(self.handlers),
        ))

    def run(self) -> None:
        while True:
            self.take()
            if self.stop.wait(self.every_s):
                return


def slope_mib_per_min(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, KiB) points, in MiB per minute."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if var == 0:
        return 0.0
    cov = sum((t - mean_t) * (v - mean_v) for t, v in points)
    return cov / var * 60 / 1024


# --- Kafka and metrics ---------------------------------------------------------------------------


@dataclass
class Keys:
    """The distinct keys of a topic with the time (ms) each was first written, and those
    whose last record is a value (not a tombstone)."""

    first_ms: dict[bytes, int] = field(default_factory=dict)
    live: set[bytes] = field(default_factory=set)


def committed_counts(bootstrap: str, topics: list[str], keys_of: Sequence[str]
                     ) -> tuple[dict[str, int], dict[str, Keys]]:
    """Records per topic as a read_committed consumer sees them (transaction markers and
    aborted records left out), read to the end offsets of the moment; and the
    :class:`Keys` of each topic of ``keys_of``."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed",
                             enable_auto_commit=False, group_id=None)
    try:
        parts = [TopicPartition(t, p) for t in topics
                 for p in sorted(consumer.partitions_for_topic(t) or [])]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        ends = consumer.end_offsets(parts)
        counts = dict.fromkeys(topics, 0)
        keys = {topic: Keys() for topic in keys_of}
        deadline = time.monotonic() + 120
        while any(consumer.position(p) < ends[p] for p in parts):
            if time.monotonic() > deadline:
                raise RuntimeError("could not read the topics to their end in 120 s")
            for tp, records in consumer.poll(timeout_ms=500, max_records=5000).items():
                counts[tp.topic] += len(records)
                seen = keys.get(tp.topic)
                if seen is None:
                    continue
                for r in records:
                    if r.key is not None:
                        seen.first_ms[r.key] = min(r.timestamp,
                                                   seen.first_ms.get(r.key, r.timestamp))
                        if r.value is None:
                            seen.live.discard(r.key)
                        else:
                            seen.live.add(r.key)
        return counts, keys
    finally:
        consumer.close()


def handler_outcomes(url: str) -> Counter[str]:
    """Outcomes by action from the handlers' /metrics."""
    text = httpx.get(url, timeout=5).text
    outcomes: Counter[str] = Counter()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "agora_handler_outcomes_total":
                outcomes[f"{s.labels['action']} {s.labels['outcome']}"] += int(s.value)
    return outcomes


def wait_caught_up(bootstrap: str, groups: list[str], topic: str, timeout_s: float
                   ) -> tuple[bool, float]:
    """Wait until every group committed the end of ``topic`` (an action commits an offset
    once its record is handled); (caught up, seconds waited)."""
    start = time.monotonic()
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        ends = consumer.end_offsets(parts)
        while time.monotonic() - start < timeout_s:
            committed = admin.list_group_offsets(dict.fromkeys(groups, parts))
            if all(p in committed.get(g, {}) and committed[g][p].offset >= ends[p]
                   for g in groups for p in parts):
                return True, time.monotonic() - start
            time.sleep(0.5)
        return False, time.monotonic() - start
    finally:
        consumer.close()
        admin.close()


def wait_quiet(bootstrap: str, topics: list[str], quiet_s: float, timeout_s: float) -> None:
    """Wait until the end offsets of ``topics`` stay still for ``quiet_s``: the handlers
    write every transaction there, so nothing moving means they are idle (notify also
    reacts to the other actions' outcomes after the events are done)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    try:
        parts = [TopicPartition(t, p) for t in topics
                 for p in consumer.partitions_for_topic(t) or []]
        last = consumer.end_offsets(parts)
        still_since = time.monotonic()
        deadline = still_since + timeout_s
        while time.monotonic() < deadline and time.monotonic() - still_since < quiet_s:
            time.sleep(0.5)
            now = consumer.end_offsets(parts)
            if now != last:
                last, still_since = now, time.monotonic()
    finally:
        consumer.close()


# --- report --------------------------------------------------------------------------------------


def at(samples: list[Sample], t_s: float) -> Sample:
    """The first sample at or after ``t_s`` (the last one if none)."""
    return next((s for s in samples if s.t_s >= t_s), samples[-1])


def memory_report(samples: list[Sample], seconds: float, flat_mib: float) -> list[str]:
    series = {
        "webhook master": [(s.t_s, s.master_kib) for s in samples],
        f"webhook workers ({samples[-1].workers}, sum)": [(s.t_s, s.workers_kib)
                                                         for s in samples],
        "handlers": [(s.t_s, s.handlers_kib) for s in samples],
    }
    one_minute = at(samples, 60.0)
    lines = [f"{'RSS MiB':<26}{'start':>8}{'1 min':>8}{'end':>8}{'max':>8}"
             f"{'slope 2nd half MiB/min':>24}"]
    verdicts = []
    half = seconds / 2
    for name, points in series.items():
        values = [v for _, v in points]
        minute_value = next(v for t, v in points if t == one_minute.t_s)
        second_half = [(t, v) for t, v in points if t >= half]
        slope = slope_mib_per_min(second_half)
        growth = slope * (seconds - half) / 60
        lines.append(f"{name:<26}{values[0] / 1024:8.1f}{minute_value / 1024:8.1f}"
                     f"{values[-1] / 1024:8.1f}{max(values) / 1024:8.1f}{slope:24.2f}")
        verdict = "memory flat" if growth < flat_mib else "memory grows"
        verdicts.append(f"verdict {name}: {verdict} ({growth:+.1f} MiB over the second half "
                        f"by the slope, threshold {flat_mib:.1f} MiB)")
    return lines + verdicts


@dataclass
class Run:
    """What one soak run measured."""

    names: TopicNames
    load: LoadResult
    counts: dict[str, int]
    state_keys: dict[bytes, int]
    live_keys: set[bytes]
    state_ttl_s: float
    handled: Counter[str]
    caught_up: bool
    waited: float
    cpu: dict[str, float]
    sampler: Sampler
    fake: Fakes | None


def key_kinds(keys: Iterable[bytes]) -> str:
    """State keys counted by ``<action>/<kind>``, most frequent first."""
    counted = Counter("/".join(k.decode(errors="replace").split("/")[:2]).split("[")[0]
                      for k in keys)
    return ", ".join(f"{k} {v}" for k, v in counted.most_common())


def print_report(run: Run, flat_mib: float) -> None:
    answers = ", ".join(f"{k}={v}" for k, v in sorted(run.load.answers.items()))
    print(f"requests: sent {run.load.sent}, answered {answers}; sender at most "
          f"{run.load.max_lag_s:.2f} s behind schedule, {run.load.late} sent over 1 s late")
    print("records: " + ", ".join(f"{field_name} {run.counts[topic]}"
                                  for field_name, topic in run.names.model_dump().items()))
    accepted = run.load.answers.get("200", 0)
    print(f"events on the topic vs answered 200: {run.counts[run.names.events]} vs {accepted} "
          f"({'OK' if run.counts[run.names.events] >= accepted else 'LOST RECORDS'})")
    print(f"handlers {'caught up' if run.caught_up else 'NOT caught up'} "
          f"{run.waited:.1f} s after the last request; outcomes: "
          + ", ".join(f"{k}={v}" for k, v in sorted(run.handled.items())))
    if run.fake is not None:
        print(f"fakes: Agora acquire {len(run.fake.agora.calls_to('acquire'))}, start "
              f"{len(run.fake.agora.calls_to('start'))}; whiteboard screenshot-list "
              f"{len(run.fake.whiteboard.calls_to('screenshot-list'))}; alert deliveries "
              + ", ".join(f"{k} {v}" for k, v in sorted(Counter(
                  str(d.json.get("type")) for d in run.fake.sinks.deliveries("ops")).items())))
    print(f"CPU seconds during the load: webhook (master + workers) {run.cpu['webhook']:.0f}, "
          f"handlers {run.cpu['handlers']:.0f}")
    for line in memory_report(run.sampler.samples, run.sampler.samples[-1].t_s, flat_mib):
        print(line)
    if run.state_keys:
        # The runtime keeps the live state keys in memory (handlers/runtime/state.py) and
        # tombstones those older than the state TTL: memory follows the live keys.
        minute = at(run.sampler.samples, 60.0)
        since_ms = (run.sampler.t0_wall + minute.t_s) * 1000
        new_keys = sum(1 for first in run.state_keys.values() if first >= since_ms)
        grown = run.sampler.samples[-1].handlers_kib - minute.handlers_kib
        print(f"handlers state: {len(run.state_keys)} distinct keys written ("
              f"{key_kinds(run.state_keys)})")
        print(f"handlers state: {len(run.live_keys)} live at the end ({key_kinds(run.live_keys)}), "
              f"the others expired (state TTL {run.state_ttl_s:g} s)")
        if new_keys and run.state_ttl_s >= run.sampler.samples[-1].t_s:  # nothing expired
            print(f"handlers RSS from {minute.t_s:.0f} s to the end {grown / 1024:+.1f} MiB "
                  f"while {new_keys} new state keys were written: "
                  f"{grown * 1024 / new_keys:.0f} bytes per new key")


# --- main ----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=50.0, help="callbacks per second")
    parser.add_argument("--sample-s", type=float, default=5.0, help="RSS sampling period")
    parser.add_argument("--flat-mib", type=float, default=2.0,
                        help="second-half growth below which memory counts as flat")
    parser.add_argument("--state-ttl-s", type=float, default=60.0,
                        help="AGORA_HANDLERS_STATE_TTL_S of the handlers (production: a week)")
    parser.add_argument("--retain-finished-s", type=int, default=60,
                        help="[reconciler] retain_finished_s (production: a week)")
    parser.add_argument("--end-after-s", type=float, default=20.0,
                        help="a restarted recording ends normally this long after its start")
    parser.add_argument("--no-fakes", action="store_true",
                        help="notify only, without the fake servers of handlers/testing")
    parser.add_argument("--log-level", default="INFO", help="webhook and handlers log level")
    parser.add_argument("--keep-logs", type=Path, help="copy the process logs to this directory")
    args = parser.parse_args()
    seconds = args.minutes * 60
    tag = uuid.uuid4().hex[:8]
    names = TopicNames.model_validate({f: f"soak-{tag}.{f}" for f in TopicNames.model_fields})
    topics_env = {f"AGORA_TOPIC_{k.upper()}": v for k, v in names.model_dump().items()}

    with tempfile.TemporaryDirectory(prefix="agora-soak-") as tmpdir, ExitStack() as stack:
        tmp = Path(tmpdir)
        bootstrap = stack.enter_context(kafka_broker(tmp))
        origin = "given" if BROKER_GIVEN else "started by this script"
        base_env = {**os.environ, **topics_env, "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
                    "AGORA_LOG_LEVEL": args.log_level}
        subprocess.run([str(CLI), "topics", "create", "--partitions", "3"], env=base_env,
                       check=True, capture_output=True)
        fake = None if args.no_fakes else stack.enter_context(fakes(tmp, args.retain_finished_s))
        actions = ["notify"] if fake is None else ["notify", "restart", "whiteboard"]

        web_port, metrics_port = free_port(), free_port()
        web_env = {**base_env, "AGORA_NCS_SECRET": SECRET,
                   "PROMETHEUS_MULTIPROC_DIR": str(tmp / "webhook-metrics")}
        webhook = stack.enter_context(service(
            [str(CLI), "webhook", "--bind", f"127.0.0.1:{web_port}"], web_env,
            tmp / "webhook.log", f"http://127.0.0.1:{web_port}/healthz"))
        handlers_env = {**base_env, **(fake.env if fake else {}),
                        "AGORA_HANDLERS_GROUP_PREFIX": f"soak-{tag}",
                        "AGORA_HANDLERS_METRICS_PORT": str(metrics_port),
                        "AGORA_HANDLERS_STATE_TTL_S": f"{args.state_ttl_s:g}"}
        handlers = stack.enter_context(service(
            [str(CLI), "handlers", "--instance-id", f"soak-{tag}", "--metrics-host",
             "127.0.0.1", *actions], handlers_env, tmp / "handlers.log",
            f"http://127.0.0.1:{metrics_port}/healthz"))
        metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        ncs_url = f"http://127.0.0.1:{web_port}/ncs"
        ender = None
        if fake is not None:
            stack.enter_context(service([str(CLI), "recording", "reconcile"], handlers_env,
                                        tmp / "reconciler.log", None))
            ender = RestartedEnder(fake.agora, ncs_url, args.end_after_s)
            ender.start()

        print(f"soak: {args.minutes:g} min at {args.rate:g} callbacks/s; {platform.machine()} "
              f"{os.cpu_count()} cpus, Python {platform.python_version()}; broker {bootstrap} "
              f"({origin}); handlers: {', '.join(actions)}"
              f"{' against fake Agora, whiteboard and alert sink' if fake else ''}, "
              f"state TTL {args.state_ttl_s:g} s"
              + (f"; reconciler every {RECONCILE_EVERY_S} s, finished sessions kept "
                 f"{args.retain_finished_s} s" if fake else ""), flush=True)
        cpu_before = {"webhook": webhook_cpu(webhook.pid), "handlers": cpu_seconds(handlers.pid)}
        sampler = Sampler(webhook.pid, handlers.pid, args.sample_s)
        sampler.start()
        load = post_load(ncs_url, args.rate, seconds, tag)
        if ender is not None:
            ender.stop.set()
            ender.join()
        sampler.stop.set()
        sampler.join()
        sampler.take()  # the end: every request answered
        cpu = {"webhook": webhook_cpu(webhook.pid) - cpu_before["webhook"],
               "handlers": cpu_seconds(handlers.pid) - cpu_before["handlers"]}
        caught_up, waited = wait_caught_up(
            bootstrap, [f"soak-{tag}.{a}" for a in actions], names.events, 180)
        wait_quiet(bootstrap, [names.actions, names.state], quiet_s=3, timeout_s=60)
        handled = handler_outcomes(metrics_url)
        counts, keys = committed_counts(bootstrap, list(names.model_dump().values()),
                                        keys_of=[names.state, names.sessions])
        state, channels = keys[names.state], keys[names.sessions]

        print_report(Run(names, load, counts, state.first_ms, state.live, args.state_ttl_s,
                         handled, caught_up, waited, cpu, sampler, fake), args.flat_mib)
        if ender is not None:
            print(f"restarted recordings ended normally: {sum(ender.answers.values())} "
                  f"session_exit 0 posted (answers "
                  + ", ".join(f"{k}={v}" for k, v in sorted(ender.answers.items())) + ")")
            print(f"registry: {len(channels.first_ms)} channels written, {len(channels.live)} still "
                  f"held at the end, the others ended and pruned (kept "
                  f"{args.retain_finished_s} s)")
        if args.keep_logs:
            args.keep_logs.mkdir(parents=True, exist_ok=True)
            for name in ("webhook.log", "handlers.log", "reconciler.log"):
                if (tmp / name).exists():
                    (args.keep_logs / name).write_bytes((tmp / name).read_bytes())


if __name__ == "__main__":
    main()
