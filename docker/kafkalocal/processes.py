"""Processes of our own: detached JVMs, pid files, signals, advisory locks.

A pid is signalled only after its command line is checked, so a reused pid never is.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

POLL_S = 0.25


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock (released when the process exits, even by SIGKILL)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def read_pid(path: Path) -> int | None:
    """The pid in a pid file, or None."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def process_matches(pid: int, needle: str) -> bool:
    """True if ``pid`` is a live (non-zombie) process whose command line contains ``needle``.

    Checking the command line guards against pid reuse: we never signal a stranger.
    """
    proc = Path("/proc") / str(pid)
    if Path("/proc/self").exists():
        try:
            stat = (proc / "stat").read_text(encoding="ascii", errors="replace")
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return False
        return not is_dead_state(stat) and needle in cmdline
    result = subprocess.run(  # no /proc (macOS): ask ps
        ["ps", "-o", "stat=,command=", "-p", str(pid)],
        capture_output=True,
        text=True,
        check=False,
    )
    line = result.stdout.strip()
    return bool(line) and not line.startswith("Z") and needle in line


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return True
    return not is_dead_state(stat)


def is_dead_state(stat: str) -> bool:
    """Whether a ``/proc/PID/stat`` line shows a zombie or dead process.

    The state follows the command name in parentheses, which may itself hold spaces or ')'.
    """
    if ")" not in stat:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] in ("Z", "X")


def signal_group(pid: int, sig: signal.Signals) -> None:
    """Signal a process we started in its own session (its process group id is its pid)."""
    with contextlib.suppress(ProcessLookupError):
        try:
            os.killpg(pid, sig)
        except PermissionError:
            os.kill(pid, sig)


def wait_until(predicate: Callable[[], bool], timeout_s: float) -> bool:
    """Poll ``predicate()`` until it is true or ``timeout_s`` passes; returns the last result."""
    deadline = time.monotonic() + timeout_s
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_S)


def spawn_detached(cmd: list[str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    """Start ``cmd`` in its own session with stdout+stderr appended to ``log``.

    No inherited pipes: callers that capture our output (pytest) must not wait on the JVM.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        out.write(f"=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {cmd[-1]}\n".encode())
        out.flush()
        return subprocess.Popen(
            cmd,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
