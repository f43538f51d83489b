"""An NCS-like sender for fault scenarios, and the account of what reached the topic.

:class:`NcsLoad` posts unique signed callbacks at a steady rate from a thread pool and acts
the way NCS does: any answer other than 200 (a 503, a timeout, a refused connection) is sent
again, with the same ``noticeId`` and a fresh ``notifyMs`` and signature, after the server's
``Retry-After`` (or a short back-off). It records which noticeIds were answered 200, so a
scenario can check that every one of them is on the topic (:func:`notice_ids_on_topic`).
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
import uuid
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx

from handlers.testing.ncs_callbacks import SECRET, callback_body, signed

with warnings.catch_warnings():
    # See support.kafka_broker: kafka-python's import warns through importlib.
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka import KafkaConsumer, TopicPartition
    from kafka.consumer.fetcher import ConsumerRecord

# NCS waits 10 s for an answer (agora-facts 1.5).
NCS_TIMEOUT_S = 10.0
# Back-off when the answer carries no Retry-After (connection errors, timeouts): NCS resends
# "with gradually increasing intervals" (agora-facts 1.5; the exact ones are not published).
BACKOFF_S = (1.0, 2.0, 4.0, 8.0)


@dataclass
class _Delivery:
    notice_id: str
    cname: str
    sequence: int
    attempts: int = 0


@dataclass
class LoadReport:
    """What the sender saw. Times are ``time.monotonic()`` values."""

    sent: list[str]
    accepted_at: dict[str, float]
    outcomes: Counter[str]
    gave_up: set[str]
    unsettled: set[str]
    started_at: float
    finished_at: float
    max_attempts_seen: int = 0
    stalled: bool = False

    @property
    def accepted(self) -> set[str]:
        return set(self.accepted_at)

    @property
    def attempts(self) -> int:
        return sum(self.outcomes.values())

    @property
    def refused(self) -> int:
        """Attempts that did not get 200 (503s, timeouts, connection errors, anything else)."""
        return self.attempts - self.outcomes["200"]

    def accepted_after(self, moment: float) -> int:
        return self.accepted_between(moment, float("inf"))

    def accepted_between(self, start: float, end: float) -> int:
        """Callbacks whose first 200 came strictly between ``start`` and ``end``."""
        return sum(1 for t in self.accepted_at.values() if start < t < end)


class NcsLoad:
    """Steady NCS-like traffic against ``url`` until :meth:`stop_sending`, then retries settle.

    ``max_attempts`` None retries until :meth:`wait`'s deadline (every callback should end up
    answered 200 once the service recovers); NCS itself gives up after 4 attempts. ``limit``
    stops sending after that many callbacks (:meth:`wait` then waits for all of them).
    """

    def __init__(
        self,
        url: str,
        rate_per_s: float = 50.0,
        secret: str = SECRET,
        threads: int = 128,
        channels: int = 8,
        max_attempts: int | None = None,
        timeout_s: float = NCS_TIMEOUT_S,
        limit: int | None = None,
    ) -> None:
        self._url = url
        self._interval = 1.0 / rate_per_s
        self._secret = secret
        self._channels = channels
        self._max_attempts = max_attempts
        self._limit = limit
        self._all_sent = threading.Event()
        self._timeout = timeout_s
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="ncs")
        self._local = threading.local()
        self._clients: list[httpx.Client] = []
        self._lock = threading.Lock()
        self._retries: list[tuple[float, int, _Delivery]] = []
        self._tie = itertools.count()
        self._inflight = 0
        self._sending = threading.Event()
        self._deadline = float("inf")
        self._stall_s = float("inf")
        self._progress_at = 0.0  # the last 200, or when sending stopped
        self._stalled = False
        self._sent: list[str] = []
        self._accepted_at: dict[str, float] = {}
        self._outcomes: Counter[str] = Counter()
        self._gave_up: set[str] = set()
        self._max_seen = 0
        self._started_at = 0.0
        self._scheduler = threading.Thread(target=self._schedule, name="ncs-scheduler")

    def start(self) -> None:
        self._started_at = time.monotonic()
        self._sending.set()
        self._scheduler.start()

    def __enter__(self) -> NcsLoad:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        # After wait() this is a no-op; on an error it stops at once instead of settling.
        if self._scheduler.is_alive():
            self.wait(settle_timeout_s=0)

    def stop_sending(self) -> None:
        """No new callbacks from now on; pending retries go on."""
        with self._lock:
            if self._sending.is_set():
                self._sending.clear()
                self._progress_at = max(self._progress_at, time.monotonic())

    def wait(self, settle_timeout_s: float = 120.0, stall_timeout_s: float = 30.0) -> LoadReport:
        """Stop sending new callbacks and let retries settle, then report.

        Retries end when every callback was answered 200, after ``settle_timeout_s``, or once
        no callback was answered 200 for ``stall_timeout_s`` (a service that stopped
        recovering; a recovering one answers retries within seconds).
        """
        if self._limit is not None:
            self._all_sent.wait(timeout=settle_timeout_s)
        self.stop_sending()
        self._stall_s = stall_timeout_s
        self._deadline = time.monotonic() + settle_timeout_s
        self._scheduler.join()
        self._pool.shutdown(wait=True)
        for client in self._clients:
            client.close()
        with self._lock:
            unsettled = set(self._sent) - set(self._accepted_at) - self._gave_up
            return LoadReport(
                sent=list(self._sent),
                accepted_at=dict(self._accepted_at),
                outcomes=Counter(self._outcomes),
                gave_up=set(self._gave_up),
                unsettled=unsettled,
                started_at=self._started_at,
                finished_at=time.monotonic(),
                max_attempts_seen=self._max_seen,
                stalled=self._stalled,
            )

    def _schedule(self) -> None:
        count = 0
        while True:
            now = time.monotonic()
            due: list[_Delivery] = []
            with self._lock:
                if self._sending.is_set():
                    while self._started_at + count * self._interval <= now and (
                        self._limit is None or count < self._limit
                    ):
                        delivery = _Delivery(
                            str(uuid.uuid4()), f"load-{count % self._channels}", count
                        )
                        self._sent.append(delivery.notice_id)
                        due.append(delivery)
                        count += 1
                    if count == self._limit:
                        self._all_sent.set()
                while self._retries and self._retries[0][0] <= now:
                    due.append(heapq.heappop(self._retries)[2])
                self._inflight += len(due)
                sending = self._sending.is_set()
                idle = not sending and not self._inflight and not self._retries
                self._stalled = not sending and now - self._progress_at > self._stall_s
            if idle or self._stalled or now > self._deadline:
                return
            for delivery in due:
                self._pool.submit(self._attempt, delivery)
            time.sleep(0.005)

    def _client(self) -> httpx.Client:
        client: httpx.Client | None = getattr(self._local, "client", None)
        if client is None:
            client = httpx.Client(timeout=self._timeout)
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def _attempt(self, delivery: _Delivery) -> None:
        # NCS stamps every attempt with a new notifyMs, so the body and signature change too.
        body = callback_body(
            notice_id=delivery.notice_id, cname=delivery.cname, sequence=delivery.sequence
        )
        retry_after: float | None = None
        try:
            response = self._client().post(
                self._url, content=body, headers=signed(body, self._secret)
            )
            outcome = str(response.status_code)
            retry_after = _retry_after(response.headers.get("Retry-After"))
        except httpx.TimeoutException:
            outcome = "timeout"
        except httpx.TransportError:
            outcome = "connection_error"
        now = time.monotonic()
        delivery.attempts += 1
        with self._lock:
            self._outcomes[outcome] += 1
            self._max_seen = max(self._max_seen, delivery.attempts)
            self._inflight -= 1
            if outcome == "200":
                self._accepted_at.setdefault(delivery.notice_id, now)
                self._progress_at = now
            elif self._max_attempts is not None and delivery.attempts >= self._max_attempts:
                self._gave_up.add(delivery.notice_id)
            else:
                backoff = BACKOFF_S[min(delivery.attempts - 1, len(BACKOFF_S) - 1)]
                due = now + (retry_after if retry_after is not None else backoff)
                heapq.heappush(self._retries, (due, next(self._tie), delivery))


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None


def records_on_topic(bootstrap: str, topic: str, timeout_s: float = 60.0) -> list[ConsumerRecord]:
    """Every committed record of ``topic``, read up to the end offsets taken at the start."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
        client_id="tests-read-to-end",
    )
    deadline = time.monotonic() + timeout_s
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        while not partitions and time.monotonic() < deadline:
            time.sleep(0.2)
            partitions = consumer.partitions_for_topic(topic) or set()
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        ends: dict[TopicPartition, int] = consumer.end_offsets(assigned)
        records: list[ConsumerRecord] = []
        while any(consumer.position(tp) < ends[tp] for tp in assigned):
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            if remaining_ms <= 0:
                raise AssertionError(f"{topic}: could not read to the end in {timeout_s:g} s")
            for batch in consumer.poll(timeout_ms=min(remaining_ms, 500)).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


def notice_ids_on_topic(bootstrap: str, topic: str, timeout_s: float = 60.0) -> Counter[str]:
    """How many records of each ``noticeId`` header ``topic`` holds (``<none>``: no header)."""
    counts: Counter[str] = Counter()
    for record in records_on_topic(bootstrap, topic, timeout_s):
        counts[dict(record.headers).get("noticeId", b"<none>").decode()] += 1
    return counts


def recovery_probe(url: str, callbacks: int = 40, secret: str = SECRET) -> LoadReport:
    """``callbacks`` fresh callbacks at once, each on its own connection, one attempt each.

    Sent once a fault has passed, every one must be answered 200: concurrent connections reach
    every gunicorn worker, so one whose producer stayed broken is caught even when retries,
    landing on the other worker, all ended in 200.
    """
    with NcsLoad(
        url,
        rate_per_s=callbacks * 10,
        secret=secret,
        threads=callbacks,
        max_attempts=1,
        limit=callbacks,
    ) as probe:
        return probe.wait()


def _without(on_topic: Counter[str], probe: LoadReport | None) -> Counter[str]:
    skip = set(probe.sent) if probe is not None else set()
    return Counter({notice: n for notice, n in on_topic.items() if notice not in skip})


def delivery_figures(
    report: LoadReport, on_topic: Counter[str], probe: LoadReport | None = None
) -> dict[str, object]:
    """What every load scenario prints: 200s against the topic, duplicates, retries."""
    accepted, mine = report.accepted, _without(on_topic, probe)
    figures: dict[str, object] = {
        "sent": len(report.sent),
        "answered_200": len(accepted),
        "distinct_on_topic": len(mine),
        "lost": len(accepted - set(mine)),
        "duplicates_on_topic": sum(n - 1 for n in mine.values()),
        "on_topic_never_200": len(set(mine) - accepted),
        "unsettled": len(report.unsettled),
        "retries_stalled": report.stalled,
        "attempts": report.attempts,
        "refused_attempts": report.refused,
        "outcomes": dict(sorted(report.outcomes.items())),
        "max_attempts": report.max_attempts_seen,
    }
    if probe is not None:
        figures["recovery_probe_200"] = f"{len(probe.accepted)}/{len(probe.sent)}"
    return figures


def check_delivery(
    report: LoadReport, on_topic: Counter[str], probe: LoadReport | None = None
) -> None:
    """Every callback answered 200 (the load's and the probe's) is on the topic, nothing else
    is; and, the service having recovered, every callback of the load was answered 200 in the
    end (so the counts are equal) and every probe callback at its first attempt."""
    mine = _without(on_topic, probe)
    lost = report.accepted - set(mine)
    assert lost == set(), f"{len(lost)} answered 200 but not on the topic: {sorted(lost)[:10]}"
    if probe is not None:
        lost = probe.accepted - set(on_topic)
        assert lost == set(), f"{len(lost)} probe callbacks answered 200 but not on the topic"
    assert set(mine) <= set(report.sent), "only the sender's callbacks are on the topic"
    assert set(report.outcomes) <= {"200", "503", "timeout", "connection_error"}
    stalled = "; retries stalled: the webhook answered no 200 at all" if report.stalled else ""
    assert report.unsettled == set(), f"{len(report.unsettled)} never answered 200{stalled}"
    assert len(mine) == len(report.accepted) == len(report.sent)
    if probe is not None:
        assert probe.gave_up == set(), (
            f"{len(probe.gave_up)} of {len(probe.sent)} fresh callbacks refused after the fault "
            f"({dict(probe.outcomes)}): a webhook worker no longer publishes"
        )
