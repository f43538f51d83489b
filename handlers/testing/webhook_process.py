"""The real webhook under real gunicorn, as a subprocess, for integration tests and benches."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from handlers.testing.ncs_callbacks import SECRET


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class WebhookProcess:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def ncs_url(self) -> str:
        return f"{self.url}/ncs"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


def console_script(name: str) -> str:
    return str(Path(sys.executable).parent / name)


@contextmanager
def run_webhook(
    bootstrap: str,
    tmp_path: Path,
    env: Mapping[str, str] | None = None,
    workers: int = 2,
    threads: int = 8,
    startup_timeout_s: float = 30.0,
) -> Iterator[WebhookProcess]:
    """Start ``agora-events webhook`` on a free loopback port; stop it with SIGTERM."""
    port = free_port()
    log_path = tmp_path / f"webhook-{port}.log"
    full_env = {
        **os.environ,
        "AGORA_NCS_SECRET": SECRET,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / f"metrics-{port}"),
        **(env or {}),
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                console_script("agora-events"),
                "webhook",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(workers),
                "--threads",
                str(threads),
            ],
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = WebhookProcess(f"http://127.0.0.1:{port}", process, log_path)
    try:
        deadline = time.monotonic() + startup_timeout_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"webhook exited with {process.returncode}:\n{server.log_text()}"
                )
            try:
                if httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"webhook did not start:\n{server.log_text()}")
            time.sleep(0.1)
        yield server
    finally:
        terminate_group(process, timeout_s=30)


def terminate_group(process: subprocess.Popen[bytes], timeout_s: float) -> bool:
    """SIGTERM the process group a ``start_new_session`` child leads, SIGKILL it after
    ``timeout_s``; True when it was gone by then (or already)."""
    if process.poll() is not None:
        return True
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return False
    return True
