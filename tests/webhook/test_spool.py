"""The disk spool on its own: order, durability bookkeeping, bounds, torn frames, processes."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webhook.drainer import SpoolDrainer
from webhook.publisher import InMemoryPublisher
from webhook.shared.event_records import Record
from webhook.spool import FRAME_OVERHEAD, Spool, SpoolFull, decode_record, encode_record


def record(n: int, key: bytes | None = b"class-1") -> Record:
    return Record(
        topic="agora.ncs.events",
        key=key,
        value=f'{{"noticeId":"n-{n}"}}'.encode(),
        headers=(("noticeId", f"n-{n}".encode()), ("eventType", b"40")),
    )


def values(records: list[Record]) -> list[bytes]:
    return [r.value for r in records]


class FlakyPublisher(InMemoryPublisher):
    """Acknowledges only the first *accept* records of each batch."""

    def __init__(self, accept: int) -> None:
        super().__init__()
        self.accept = accept

    def publish_many(self, records: object, timeout_s: float) -> int:
        taken = list(records)[: self.accept]  # type: ignore[call-overload]
        self.records.extend(taken)
        return len(taken)


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    with Spool(tmp_path / "spool", max_bytes=1024 * 1024) as opened:
        yield opened


@given(
    key=st.one_of(st.none(), st.binary(max_size=40)),
    value=st.binary(max_size=300),
    headers=st.lists(st.tuples(st.text(max_size=20), st.binary(max_size=30)), max_size=5),
    at=st.integers(min_value=0, max_value=2**53),
)
@settings(max_examples=100)
def test_records_survive_encoding_byte_for_byte(
    key: bytes | None, value: bytes, headers: list[tuple[str, bytes]], at: int
) -> None:
    original = Record("t", key, value, tuple(headers))
    assert decode_record(encode_record(original, at)) == (original, at)


def test_pending_records_come_back_in_order_until_committed(spool: Spool) -> None:
    assert not spool.has_pending()
    for n in range(5):
        spool.append(record(n), spooled_at_ms=1000 + n)
    assert spool.has_pending()
    first = spool.read_pending(max_records=3)
    assert [r.record for r in first] == [record(0), record(1), record(2)]
    assert [r.spooled_at_ms for r in first] == [1000, 1001, 1002]
    # Nothing is released before the commit: reading again gives the same records.
    assert spool.read_pending(max_records=3) == first
    spool.commit(first[-1].end)
    rest = spool.read_pending(max_records=10)
    assert [r.record for r in rest] == [record(3), record(4)]
    spool.commit(rest[-1].end)
    assert not spool.has_pending()
    assert (spool.directory / "spool.log").stat().st_size == 0  # emptied once drained


def test_a_reopened_spool_resumes_after_the_committed_position(tmp_path: Path) -> None:
    with Spool(tmp_path, max_bytes=1 << 20) as first:
        for n in range(4):
            first.append(record(n), 0)
        first.commit(first.read_pending(2)[-1].end)
    with Spool(tmp_path, max_bytes=1 << 20) as reopened:
        assert [r.record for r in reopened.read_pending(10)] == [record(2), record(3)]


def test_the_bound_counts_pending_bytes_and_refuses_clearly(tmp_path: Path) -> None:
    one_frame = len(encode_record(record(0), 0)) + FRAME_OVERHEAD
    with Spool(tmp_path, max_bytes=one_frame * 2) as spool:
        spool.append(record(0), 0)
        spool.append(record(1), 0)
        with pytest.raises(SpoolFull, match="bound"):
            spool.append(record(2), 0)
        assert spool.status().full
        # Releasing one frame makes room again.
        spool.commit(spool.read_pending(1)[0].end)
        spool.append(record(2), 0)
        assert [r.record for r in spool.read_pending(10)] == [record(1), record(2)]


def test_a_torn_tail_from_a_crashed_writer_is_cut_before_the_next_append(spool: Spool) -> None:
    spool.append(record(0), 0)
    with open(spool.directory / "spool.log", "ab") as log:
        log.write(b"AES1\x40\x00\x00\x00partial")  # a writer died mid-frame
    spool.append(record(1), 0)
    assert [r.record for r in spool.read_pending(10)] == [record(0), record(1)]


def test_the_drainer_cuts_a_torn_tail_when_no_writer_comes(spool: Spool) -> None:
    spool.append(record(0), 0)
    spool.commit(spool.read_pending(1)[0].end)
    spool.append(record(1), 0)
    with open(spool.directory / "spool.log", "ab") as log:
        log.write(b"AES1\x10")
    found = spool.read_pending(10)
    spool.commit(found[-1].end)
    assert spool.read_pending(10) == []
    assert not spool.has_pending()


def test_status_reports_pending_bytes_and_the_oldest_record(spool: Spool) -> None:
    assert spool.status().pending_bytes == 0
    assert spool.status().oldest_spooled_at_ms is None
    spool.append(record(0), 111)
    spool.append(record(1), 222)
    status = spool.status()
    assert status.pending_bytes == (spool.directory / "spool.log").stat().st_size
    assert status.oldest_spooled_at_ms == 111


def test_only_one_drainer_at_a_time(tmp_path: Path) -> None:
    with Spool(tmp_path, max_bytes=1 << 20) as a, Spool(tmp_path, max_bytes=1 << 20) as b:
        assert a.try_acquire_drain()
        assert not b.try_acquire_drain()
        a.release_drain()
        assert b.try_acquire_drain()


_WRITER = """
import sys
from pathlib import Path
from webhook.shared.event_records import Record
from webhook.spool import Spool
directory, writer, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
with Spool(Path(directory), max_bytes=64 << 20) as spool:
    for n in range(count):
        spool.append(Record("agora.ncs.events", f"writer-{writer}".encode(),
                            f"{writer}:{n}".encode(), ()), n)
"""


def test_concurrent_writer_processes_never_interleave_frames(tmp_path: Path) -> None:
    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path), str(w), "150"])
        for w in range(4)
    ]
    assert [process.wait(60) for process in writers] == [0, 0, 0, 0]
    with Spool(tmp_path, max_bytes=64 << 20) as spool:
        found = spool.read_pending(10_000)
    assert len(found) == 600
    for w in range(4):
        mine = [r.record.value for r in found if r.record.key == f"writer-{w}".encode()]
        assert mine == [f"{w}:{n}".encode() for n in range(150)]


def test_the_drainer_releases_only_what_the_broker_acknowledged(spool: Spool) -> None:
    for n in range(5):
        spool.append(record(n), 0)
    publisher = FlakyPublisher(accept=2)
    drainer = SpoolDrainer(spool, publisher, 1, ("agora.ncs.events", "agora.ncs.quarantine"))
    assert drainer.drain_once() == (5, 2)
    assert values(publisher.records) == values([record(0), record(1)])
    publisher.accept = 0  # the broker refuses everything
    assert drainer.drain_once() == (3, 0)
    publisher.accept = 100
    assert drainer.drain_once() == (3, 3)
    assert values(publisher.records) == values([record(n) for n in range(5)])
    assert not spool.has_pending()


def test_the_drainer_thread_empties_the_spool_once_the_broker_is_back(spool: Spool) -> None:
    for n in range(20):
        spool.append(record(n), 0)
    publisher = InMemoryPublisher()
    publisher.available = False
    drainer = SpoolDrainer(spool, publisher, 1, ("agora.ncs.events", "agora.ncs.quarantine"))
    drainer.start()
    try:
        time.sleep(0.3)  # the drainer tries and is refused
        assert spool.has_pending()
        assert publisher.records == []
        publisher.available = True
        deadline = time.monotonic() + 10
        while spool.has_pending() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        drainer.stop()
    assert values(publisher.records) == values([record(n) for n in range(20)])
    assert not spool.has_pending()
