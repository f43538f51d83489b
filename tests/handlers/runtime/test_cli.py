from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from handlers.cli import handlers_command
from handlers.dlq_cli import dlq_group

CLI = Path(sys.executable).with_name("agora-events")


def test_a_malformed_plugin_is_a_usage_error() -> None:
    result = CliRunner().invoke(handlers_command, ["--plugin", "nonsense", "echo"])
    assert result.exit_code == 2
    assert "expected NAME=MODULE:FACTORY" in result.output


def test_replay_limits_must_be_positive() -> None:
    result = CliRunner().invoke(dlq_group, ["replay", "--limit", "0"])
    assert result.exit_code == 2
    assert "--limit" in result.output


def test_an_unknown_action_names_the_known_ones() -> None:
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
           "AGORA_HANDLERS_METRICS_PORT": "0"}
    result = subprocess.run(
        [str(CLI), "handlers", "nope"], env=env, capture_output=True, text=True, timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "unknown action 'nope'; expected one of: echo, notify, restart, whiteboard" in (
        result.stderr
    )
