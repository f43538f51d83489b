"""A local, fsynced, append-only spool for callbacks the broker could not acknowledge.

Layout of the spool directory (one per webhook instance, on a local disk):

- ``spool.log``: frames appended in arrival order. A frame is a 12-byte header (magic,
  payload length, CRC-32 of the payload), the payload (the record as JSON), and an 8-byte
  trailer (payload length, magic) so a writer can check the end of the file in O(1).
- ``spool.offset``: the byte position up to which the broker has acknowledged the frames,
  replaced atomically by the drainer.
- ``append.lock`` / ``drain.lock``: ``flock`` targets. Appends hold the append lock across
  write and fsync, so frames from several gunicorn workers never interleave; exactly one
  process at a time holds the drain lock and publishes.

- ``spool.rejected``: frames that can never be published (unreadable, naming a topic the
  webhook does not write, refused by the broker for good), moved aside by the drainer so they
  do not block the frames behind them; an operator inspects them.

A frame is appended and fsynced before the HTTP 200, so an acknowledged callback survives a
crash of the webhook or the machine. A writer that died mid-append leaves a torn frame that
was never acknowledged; the next writer or the drainer cuts it off.

The directory is trusted only when it is the service's own: owned by this user, mode 0700,
not a symlink (:func:`check_directory`). Every file in it is opened with ``O_NOFOLLOW``, so a
symlink planted in its place makes the open fail instead of writing through to its target.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import logging
import os
import stat
import struct
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from webhook.shared.event_records import Record
from webhook.shared.refusals import RetryLater

log = logging.getLogger(__name__)

_MAGIC = b"AES1"
_END = b"AES."
_HEADER = struct.Struct("<4sII")  # magic, payload length, crc32
_TRAILER = struct.Struct("<I4s")  # payload length, end magic
FRAME_OVERHEAD = _HEADER.size + _TRAILER.size
_OFFSET = struct.Struct("<Q")


_NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC
REJECTED_NAME = "spool.rejected"


class SpoolFull(RetryLater):
    """Appending would take the pending bytes past the configured bound."""

    error, outcome, log_message = "spool_full", "spool_full", "spool full, asking NCS to retry"
    public_detail = "the broker is unavailable and the spool is full"


class UnsafeSpoolDirectory(Exception):
    """The spool directory is not the service's own (owner, mode, or a symlink)."""


def directory_problem(mode: int, owner: int, service_uid: int, is_link: bool) -> str | None:
    """Why a directory with this ``lstat`` is not a safe spool, or None. Pure, for tests."""
    if is_link:
        return "is a symlink; point AGORA_WEBHOOK_SPOOL_DIR at the real directory"
    if not stat.S_ISDIR(mode):
        return "is not a directory"
    if owner != service_uid:
        return f"is owned by uid {owner}, expected the service's uid {service_uid}"
    if mode & 0o077:
        return f"has mode {stat.S_IMODE(mode):04o}, expected 0700 (no access for group or others)"
    return None


def check_directory(directory: Path) -> None:
    """Create the spool directory (0700) if missing; raise UnsafeSpoolDirectory unless it is
    a real directory owned by this process's user with no group or other access.

    Anyone else who can write there could forge frames (published with our credentials) or
    swap files for symlinks; anyone who can read could see callbacks.
    """
    directory.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        directory.mkdir(mode=0o700)
    info = os.lstat(directory)
    problem = directory_problem(
        info.st_mode, info.st_uid, os.geteuid(), stat.S_ISLNK(info.st_mode)
    )
    if problem is not None:
        raise UnsafeSpoolDirectory(
            f"AGORA_WEBHOOK_SPOOL_DIR {directory} {problem}; "
            f"fix with: chown {os.geteuid()} {directory} && chmod 700 {directory}"
        )


def _open(path: Path, flags: int, mode: int = 0o600) -> int:
    return os.open(path, flags | _NOFOLLOW, mode)


@dataclass(frozen=True, slots=True)
class SpooledRecord:
    """One pending frame. ``record`` is None when the payload cannot be decoded (``problem``
    says why): such a frame can never be published and is moved aside."""

    record: Record | None
    spooled_at_ms: int
    end: int  # byte position just after this frame: commit it once acknowledged
    payload: bytes = b""
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class SpoolStatus:
    pending_bytes: int
    max_bytes: int
    oldest_spooled_at_ms: int | None

    @property
    def full(self) -> bool:
        """Too close to the bound to promise room for another callback (readiness)."""
        reserve = min(64 * 1024, self.max_bytes // 4)
        return self.pending_bytes + reserve > self.max_bytes


def encode_record(record: Record, spooled_at_ms: int) -> bytes:
    return json.dumps(
        {
            "topic": record.topic,
            "key": base64.b64encode(record.key).decode() if record.key is not None else None,
            "value": base64.b64encode(record.value).decode(),
            "headers": [[name, base64.b64encode(value).decode()] for name, value in record.headers],
            "spooledAtMs": spooled_at_ms,
        },
        separators=(",", ":"),
    ).encode()


def decode_record(payload: bytes) -> tuple[Record, int]:
    """Inverse of :func:`encode_record`; ValueError naming the problem on a bad payload."""
    try:
        data = json.loads(payload)
        key = data["key"]
        record = Record(
            topic=str(data["topic"]),
            key=base64.b64decode(key, validate=True) if key is not None else None,
            value=base64.b64decode(data["value"], validate=True),
            headers=tuple(
                (str(name), base64.b64decode(value, validate=True))
                for name, value in data["headers"]
            ),
        )
        return record, int(data["spooledAtMs"])
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise ValueError(f"unreadable spool frame: {type(exc).__name__}") from None


def frame(payload: bytes) -> bytes:
    return (
        _HEADER.pack(_MAGIC, len(payload), zlib.crc32(payload))
        + payload
        + _TRAILER.pack(len(payload), _END)
    )


def _read_frame(data: bytes, position: int) -> tuple[bytes, int] | None:
    """The payload of the complete, intact frame at *position* and the position after it."""
    if len(data) - position < FRAME_OVERHEAD:
        return None
    magic, length, crc = _HEADER.unpack_from(data, position)
    end = position + _HEADER.size + length + _TRAILER.size
    if magic != _MAGIC or end > len(data):
        return None
    payload = data[position + _HEADER.size : end - _TRAILER.size]
    trailer_length, end_magic = _TRAILER.unpack_from(data, end - _TRAILER.size)
    if trailer_length != length or end_magic != _END or zlib.crc32(payload) != crc:
        return None
    return payload, end


class Spool:
    """The on-disk spool. Thread-safe and safe across processes sharing the directory."""

    def __init__(self, directory: Path, max_bytes: int, fsync: bool = True) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self._fsync = fsync
        check_directory(directory)
        self._log_path = directory / "spool.log"
        self._offset_path = directory / "spool.offset"
        # O_APPEND: every write lands at the current end, even after a truncation elsewhere.
        self._log_fd = _open(self._log_path, os.O_RDWR | os.O_CREAT | os.O_APPEND)
        self._append_lock_file: BinaryIO = os.fdopen(
            _open(directory / "append.lock", os.O_WRONLY | os.O_CREAT | os.O_APPEND), "ab"
        )
        self._drain_lock_file: BinaryIO | None = None
        # flock is per open file: threads of one process share it, so they need a mutex too.
        self._thread_lock = threading.Lock()
        self._sync_directory()

    # -- writers ---------------------------------------------------------------------------

    def append(self, record: Record, spooled_at_ms: int) -> None:
        """Append *record* and make it durable; raise SpoolFull when over the bound."""
        data = frame(encode_record(record, spooled_at_ms))
        with self._append_locked():
            self._cut_torn_tail()
            committed = self._committed()
            size = os.fstat(self._log_fd).st_size
            if size - committed + len(data) > self.max_bytes:
                raise SpoolFull(
                    f"spool holds {size - committed} bytes; the bound is {self.max_bytes}"
                )
            os.write(self._log_fd, data)
            if self._fsync:
                os.fsync(self._log_fd)

    def has_pending(self) -> bool:
        """Whether any frame waits for the broker (cheap: one stat in the common case)."""
        size = os.fstat(self._log_fd).st_size
        return size > 0 and size > self._committed()

    def status(self) -> SpoolStatus:
        committed = self._committed()
        size = os.fstat(self._log_fd).st_size
        oldest = None
        if size > committed:
            found = _read_frame(os.pread(self._log_fd, 64 * 1024, committed), 0)
            if found is not None:
                with contextlib.suppress(ValueError):  # an unreadable frame has no age
                    oldest = decode_record(found[0])[1]
        return SpoolStatus(max(size - committed, 0), self.max_bytes, oldest)

    # -- the drainer -----------------------------------------------------------------------

    def try_acquire_drain(self) -> bool:
        """Become the one drainer across processes; keep it until :meth:`release_drain`."""
        if self._drain_lock_file is not None:
            return True
        lock_file = os.fdopen(
            _open(self.directory / "drain.lock", os.O_WRONLY | os.O_CREAT | os.O_APPEND), "ab"
        )
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock_file.close()
            return False
        self._drain_lock_file = lock_file
        return True

    def release_drain(self) -> None:
        if self._drain_lock_file is not None:
            self._drain_lock_file.close()  # closing releases the flock
            self._drain_lock_file = None

    def read_pending(
        self, max_records: int, max_bytes: int = 4 * 1024 * 1024
    ) -> list[SpooledRecord]:
        """The oldest pending frames, in order. Only the drainer calls this."""
        committed = self._committed()
        data = self._read_from(committed, max_bytes)
        found = self._frames(data, committed, max_records)
        if not found and data and not self._append_in_progress():
            # Not a frame, and no writer holds the lock: a writer died mid-append.
            with self._append_locked():
                self._cut_torn_tail()
            data = self._read_from(committed, max_bytes)
            found = self._frames(data, committed, max_records)
        return found

    def commit(self, end: int) -> None:
        """Record that every frame before *end* is acknowledged; empty the log when all are."""
        self._write_offset(end)
        if os.fstat(self._log_fd).st_size != end:
            return
        with self._append_locked():
            if os.fstat(self._log_fd).st_size == end:
                # Truncate first: a crash before the offset reset leaves offset > size, which
                # reads as 0. The other order could publish everything again.
                os.ftruncate(self._log_fd, 0)
                if self._fsync:
                    os.fsync(self._log_fd)
                self._write_offset(0)

    def reject(self, spooled: SpooledRecord, reason: str) -> None:
        """Move a frame that can never be published to ``spool.rejected`` (fsynced), then
        commit past it, so the frames behind it flow again. Only the drainer calls this."""
        entry = json.dumps(
            {
                "reason": reason,
                "spooledAtMs": spooled.spooled_at_ms,
                "payload": base64.b64encode(spooled.payload).decode(),
            },
            separators=(",", ":"),
        ).encode()
        fd = _open(self.directory / REJECTED_NAME, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            os.write(fd, entry + b"\n")
            if self._fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        self.commit(spooled.end)

    def close(self) -> None:
        self.release_drain()
        if not self._append_lock_file.closed:
            self._append_lock_file.close()
            os.close(self._log_fd)

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- internals -------------------------------------------------------------------------

    @contextmanager
    def _append_locked(self) -> Iterator[None]:
        with self._thread_lock:
            fcntl.flock(self._append_lock_file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._append_lock_file, fcntl.LOCK_UN)

    def _frames(self, data: bytes, base: int, max_records: int) -> list[SpooledRecord]:
        found: list[SpooledRecord] = []
        position = 0
        while len(found) < max_records:
            parsed = _read_frame(data, position)
            if parsed is None:
                break
            payload, position = parsed
            try:
                record, spooled_at = decode_record(payload)
            except ValueError as exc:
                found.append(SpooledRecord(None, 0, base + position, payload, str(exc)))
                continue
            found.append(SpooledRecord(record, spooled_at, base + position, payload))
        return found

    def _read_from(self, position: int, max_bytes: int) -> bytes:
        data = os.pread(self._log_fd, max_bytes, position)
        if len(data) >= _HEADER.size:
            magic, length, _ = _HEADER.unpack_from(data)
            if magic == _MAGIC and length + FRAME_OVERHEAD > len(data) == max_bytes:
                # One frame larger than the read window: read it whole.
                data = os.pread(self._log_fd, length + FRAME_OVERHEAD, position)
        return data

    def _append_in_progress(self) -> bool:
        # A writer is mid-append exactly when the append lock is taken.
        if not self._thread_lock.acquire(blocking=False):
            return True
        try:
            try:
                fcntl.flock(self._append_lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(self._append_lock_file, fcntl.LOCK_UN)
            return False
        finally:
            self._thread_lock.release()

    def _cut_torn_tail(self) -> None:
        """Under the append lock: drop a partial frame a crashed writer left at the end."""
        size = os.fstat(self._log_fd).st_size
        if size == 0 or self._tail_is_intact(size):
            return
        committed = self._committed()
        data = os.pread(self._log_fd, size - committed, committed)
        position = 0
        while (parsed := _read_frame(data, position)) is not None:
            position = parsed[1]
        cut = committed + position
        log.warning(
            "dropping a torn spool frame (a writer died before answering NCS)",
            extra={"bytes": size - cut},
        )
        os.ftruncate(self._log_fd, cut)
        if self._fsync:
            os.fsync(self._log_fd)

    def _tail_is_intact(self, size: int) -> bool:
        if size < FRAME_OVERHEAD:
            return False
        length, end_magic = _TRAILER.unpack(
            os.pread(self._log_fd, _TRAILER.size, size - _TRAILER.size)
        )
        start = size - FRAME_OVERHEAD - length
        if end_magic != _END or start < 0:
            return False
        magic, header_length, _ = _HEADER.unpack(os.pread(self._log_fd, _HEADER.size, start))
        return bool(magic == _MAGIC and header_length == length)

    def _committed(self) -> int:
        try:
            fd = _open(self._offset_path, os.O_RDONLY)
        except FileNotFoundError:
            return 0
        try:
            raw = os.pread(fd, _OFFSET.size + 1, 0)
        finally:
            os.close(fd)
        if len(raw) != _OFFSET.size:
            return 0
        committed: int = _OFFSET.unpack(raw)[0]
        # After a truncation the offset may briefly (or after a crash) exceed the size.
        return committed if committed <= os.fstat(self._log_fd).st_size else 0

    def _write_offset(self, position: int) -> None:
        temporary = self._offset_path.with_suffix(f".tmp{os.getpid()}")
        fd = _open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        try:
            os.write(fd, _OFFSET.pack(position))
            if self._fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, self._offset_path)
        self._sync_directory()

    def _sync_directory(self) -> None:
        if not self._fsync:
            return
        fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | _NOFOLLOW)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
