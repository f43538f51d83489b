"""``agora-events handlers NAMES...`` as a real subprocess that a test may SIGKILL and start
again, with the same instance id (so its transactional ids fence the killed incarnation)
and one log file across incarnations."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from handlers.testing.fresh_topics import topics_env
from support.paths import ROOT, TESTS
from webhook.shared.kafka_settings import TopicNames

CLI = Path(sys.executable).with_name("agora-events")


def handlers_env(
    bootstrap: str, topics: TopicNames, group_prefix: str, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of a handlers process on ``topics`` with its own consumer groups
    (metrics server off)."""
    return {
        **os.environ,
        **topics_env(topics),
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "AGORA_HANDLERS_GROUP_PREFIX": group_prefix,
        "AGORA_HANDLERS_METRICS_PORT": "0",
        # The root first, so tests/handlers and tests/webhook do not shadow the packages.
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(ROOT), str(TESTS), os.environ.get("PYTHONPATH")])),
        **(extra or {}),
    }


class HandlersProcess:
    """Start with ``with HandlersProcess(...) as handlers:``; ``kill`` then ``start`` to
    crash and restart it. Whatever still runs at the end of the block is killed."""

    def __init__(
        self,
        names: tuple[str, ...],
        env: Mapping[str, str],
        log_path: Path,
        *,
        instance_id: str = "one",
        session_timeout_ms: int = 6000,
    ) -> None:
        self.names = names
        self.env = dict(env)
        self.log_path = log_path
        self.instance_id = instance_id
        # A killed member keeps its partitions this long before the restart gets them.
        self.session_timeout_ms = session_timeout_ms
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.kills = 0

    def start(self) -> None:
        if self.running:
            raise RuntimeError("the handlers process is already running")
        argv = [
            str(CLI), "handlers", "--instance-id", self.instance_id,
            "--session-timeout-ms", str(self.session_timeout_ms), *self.names,
        ]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                argv, env=self.env, stdout=subprocess.DEVNULL, stderr=log
            )
        self.starts += 1

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError("not started")
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, nothing uncommitted is published."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.kills += 1
        self.process.wait(timeout=10)

    def terminate(self, timeout_s: float = 30.0) -> int:
        """SIGTERM and wait; returns the exit code."""
        if self.process is None:
            raise RuntimeError("not started")
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout_s)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_lines(self) -> list[dict[str, Any]]:
        """The JSON log lines of every incarnation so far (other lines skipped)."""
        lines = []
        for raw in self.log_text().splitlines():
            try:
                value = json.loads(raw)
            except ValueError:
                continue
            if isinstance(value, dict):
                lines.append(value)
        return lines

    def __enter__(self) -> HandlersProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
