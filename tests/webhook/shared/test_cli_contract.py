"""The CLI contract (docs/cli.md), as an operator meets it: the installed ``agora-events``
run as a subprocess. Exit 0 ok, 1 runtime failure, 2 usage or configuration error; a
message naming the variable, option or rules-file path, never a traceback; the broker's
absence said within 5 s, naming the address."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.rules_files import classes_profile

from webhook.shared.cli_contract import BROKER_PROBE_S

CLI = Path(sys.executable).with_name("agora-events")


@pytest.fixture
def dead_address() -> str:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"127.0.0.1:{port}"


def run(*args: str, env: dict[str, str] | None = None,
        timeout: float = 60) -> tuple[subprocess.CompletedProcess[str], float]:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("KAFKA_", "AGORA_", "WHITEBOARD_"))}
    started = time.monotonic()
    result = subprocess.run([str(CLI), *args], env={**clean, **(env or {})},
                            capture_output=True, text=True, timeout=timeout, check=False)
    return result, time.monotonic() - started


def no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr + result.stdout


@pytest.fixture(scope="module")
def startup_s() -> float:
    """Same-run baseline: the slowest of three answers to a usage error of a command that
    imports what the broker commands import (the machine may be busy)."""
    return max(run("dlq", "list", "--limit", "0")[1] for _ in range(3))


BROKER_COMMANDS = [
    ("dlq", "list"),
    ("dlq", "replay", "--dry-run"),
    ("dlq", "discard", "--dry-run"),
    ("timeline", "--cname", "c1"),
    ("replay", "--handler", "notify", "--since", "1h"),
    ("topics", "create"),
    ("recording", "list"),
]


@pytest.mark.parametrize("args", BROKER_COMMANDS)
def test_an_unreachable_broker_is_named_at_once(
    args: tuple[str, ...], dead_address: str, startup_s: float,
) -> None:
    result, seconds = run(*args, env={"KAFKA_BOOTSTRAP_SERVERS": dead_address})
    assert result.returncode == 1
    assert f"cannot reach the Kafka broker at {dead_address} (KAFKA_BOOTSTRAP_SERVERS)" in (
        result.stderr)
    # A refused connection is known at once: the answer takes the start-up time, not the
    # client's 30 s of retries. (Timed against the same-run baseline: the machine may be
    # busy; the absolute figure is in docs/cli.md.)
    assert seconds < startup_s + 2, (seconds, startup_s)
    no_traceback(result)


def test_a_blackholed_broker_is_given_up_on_within_the_probe_budget(startup_s: float) -> None:
    # 192.0.2.0/24 is TEST-NET-1: never routed, so a connection may neither open nor fail.
    result, seconds = run("dlq", "list", env={"KAFKA_BOOTSTRAP_SERVERS": "192.0.2.1:9092"})
    assert result.returncode == 1
    assert "cannot reach the Kafka broker at 192.0.2.1:9092" in result.stderr
    assert seconds < startup_s + BROKER_PROBE_S + 1, (seconds, startup_s)
    no_traceback(result)


@pytest.mark.parametrize(("env", "variable"), [
    ({"KAFKA_SECURITY_PROTOCOL": "bogus"}, "KAFKA_SECURITY_PROTOCOL"),
    ({"KAFKA_BOOTSTRAP_SERVERS": "no-port-here"}, "KAFKA_BOOTSTRAP_SERVERS"),
    ({"AGORA_HANDLERS_MAX_ATTEMPTS": "zero"}, "AGORA_HANDLERS_MAX_ATTEMPTS"),
    ({"WHITEBOARD_API_BASE": "not a url"}, "WHITEBOARD_API_BASE"),
    ({"AGORA_API_BASE": "ftp://x"}, "AGORA_API_BASE"),
])
def test_a_bad_environment_variable_is_a_configuration_error_naming_it(
    env: dict[str, str], variable: str,
) -> None:
    for args in (("config", "check"), ("dlq", "list")):
        result, _ = run(*args, env=env)
        assert result.returncode == 2, (args, result.stderr, result.stdout)
        assert variable in result.stderr + result.stdout
        no_traceback(result)


def test_a_bad_environment_never_echoes_the_value() -> None:
    result, _ = run("config", "check", env={"AGORA_API_BASE": "sk-super-secret-base"})
    assert result.returncode == 2
    assert "AGORA_API_BASE: expected an absolute http:// or https:// URL" in result.stdout
    assert "sk-super-secret-base" not in result.stdout + result.stderr


BAD_RULES = """
[[recording.profiles]]
name = "main"
mode = "mix"
cnames = ["class-*"]
uid = "999"
backup_uid = "abc"
[recording.profiles.client_request.recordingConfig]
channelType = 7
maxIdleTime = 1
[recording.profiles.client_request.storageConfig]
vendor = 1
region = 0
bucket = "b"
accessKey = "${S3_KEY}"
secretKey = "${S3_SECRET}"
[recording.profiles.client_request.recordingFileConfig]
avFileType = ["hls"]

[[alerts.sinks]]
name = "ops"
kind = "webhook"
url = "https://hooks.example.com/${HOOK_TOKEN}"

[[alerts.rules]]
name = "r"
events = [999]
sinks = ["ops"]
"""


def test_config_check_lists_every_problem_by_path(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(BAD_RULES)
    result, _ = run("config", "check", "--rules", str(rules),
                    env={"S3_KEY": "AKIA-KEY", "S3_SECRET": "s3-secret-value"})
    assert result.returncode == 2
    lines = result.stdout.splitlines()
    assert "alerts.sinks[0].url: environment variable HOOK_TOKEN is not set" in lines
    assert ("recording.profiles[0].client_request.recordingConfig.channelType: must be one "
            "of 0, 1; got 7") in lines
    assert any(line.startswith(
        "recording.profiles[0].client_request.recordingConfig.maxIdleTime: must be in [5, ")
        for line in lines)
    assert any(line.startswith("recording.profiles[0].backup_uid: must be an integer")
               for line in lines)
    assert any(line.startswith("alerts.rules[0].events[0]: unknown event type 999")
               for line in lines)
    assert lines[-1] == "5 problem(s)"
    assert "s3-secret-value" not in result.stdout
    no_traceback(result)


@pytest.mark.parametrize("url", ["not a url", "ftp://x", "https://", "http://host:port/x"])
def test_config_check_refuses_sink_urls_that_can_never_work(tmp_path: Path, url: str) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(f'[[alerts.sinks]]\nname = "ops"\nkind = "slack"\nurl = "{url}"\n')
    result, _ = run("config", "check", "--rules", str(rules), "--json")
    assert result.returncode == 2
    assert '"path": "alerts.sinks[0].url"' in result.stdout
    assert "expected an absolute http:// or https:// URL with a host" in result.stdout


def test_config_check_passes_a_good_file_and_names_disabled_actions(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text('[[alerts.sinks]]\nname = "ops"\nkind = "webhook"\n'
                     'url = "https://hooks.example.com/x"\n'
                     '[[alerts.rules]]\nname = "errors"\nevents = [1]\nsinks = ["ops"]\n')
    result, _ = run("config", "check", "--rules", str(rules))
    assert result.returncode == 0, result.stdout
    assert result.stdout.splitlines()[-1] == "configuration OK"
    assert "note: restart: disabled (restart: Cloud Recording REST credentials missing" in (
        result.stdout)


def test_config_check_refuses_an_action_named_but_not_configured(tmp_path: Path) -> None:
    result, _ = run("config", "check", "whiteboard")
    assert result.returncode == 2
    assert "handlers.whiteboard: cannot run: whiteboard: no whiteboard credentials" in (
        result.stdout)


def test_config_check_of_a_file_that_is_not_toml(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text("[recording\n")
    result, _ = run("config", "check", "--rules", str(rules))
    assert result.returncode == 2
    assert "(file): not valid TOML" in result.stdout
    no_traceback(result)


@pytest.mark.parametrize(("args", "needle"), [
    (("webhook", "--workers", "0"), "Invalid value for '--workers': 0 is not in the range x>=1"),
    (("webhook", "--threads", "0"), "Invalid value for '--threads'"),
    (("timeline", "--cname", "c", "--since", "yesterday"), "expected an ISO 8601 time"),
    (("timeline", "--cname", "c", "--since", "1h", "--until", "2h"),
     "must be later than --since"),
    (("replay", "--handler", "notify"), "Missing option '--since'"),
    (("dlq", "list", "--limit", "0"), "Invalid value for '--limit'"),
    (("dlq", "replay", "--id", "nonsense"), "expected agora.dlq/PARTITION/OFFSET"),
    (("nope",), "No such command 'nope'"),
])
def test_invalid_values_are_refused_with_exit_2(
    args: tuple[str, ...], needle: str, dead_address: str,
) -> None:
    result, _ = run(*args, env={"KAFKA_BOOTSTRAP_SERVERS": dead_address,
                                "AGORA_NCS_SECRET": "a-long-enough-secret"})
    assert result.returncode == 2, result.stderr
    assert needle in result.stderr
    no_traceback(result)


@pytest.mark.parametrize(("command", "variables"), [
    (("dlq", "list"), ["KAFKA_BOOTSTRAP_SERVERS", "AGORA_HANDLERS_GROUP_PREFIX"]),
    (("timeline",), ["KAFKA_BOOTSTRAP_SERVERS", "AGORA_TOPIC_*"]),
    (("config", "check"), ["AGORA_EVENTS_CONFIG", "WHITEBOARD_API_BASE"]),
    (("webhook",), ["AGORA_NCS_SECRET", "AGORA_WEBHOOK_*"]),
    (("send",), ["AGORA_NCS_SECRET"]),
    (("recording", "start"), ["AGORA_CUSTOMER_SECRET", "AGORA_EVENTS_CONFIG"]),
    (("replay",), ["KAFKA_BOOTSTRAP_SERVERS"]),
])
def test_help_names_the_environment_a_command_reads(
    command: tuple[str, ...], variables: list[str],
) -> None:
    result, _ = run(*command, "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "Environment:" in text
    for variable in variables:
        assert variable in text


def test_send_help_names_the_webhook_port() -> None:
    result, _ = run("send", "--help")
    assert "http://127.0.0.1:8080/ncs" in result.stdout


def test_tables_have_a_json_form() -> None:
    result, _ = run("topics", "list", "--json")
    assert result.returncode == 0
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert {"name": "agora.recording.sessions", "cleanup": "compact", "retention_ms": None,
            "purpose": "recording session registry, latest per cname"} in rows
    assert len(rows) == 8


def test_config_check_builds_the_restart_action_without_a_broker(tmp_path: Path) -> None:
    """The restart action prepares its registry writer when it is built; ``config check``
    builds it too, with no broker, and must neither wait for one nor report it."""
    rules = tmp_path / "rules.toml"
    rules.write_text(classes_profile())
    result, _ = run("config", "check", "restart", "--rules", str(rules), env={
        "AGORA_APP_ID": "abc123", "AGORA_CUSTOMER_ID": "c", "AGORA_CUSTOMER_SECRET": "s",
        "S3_KEY": "k", "S3_SECRET": "s", "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"})
    assert result.returncode == 0, result.stdout
    assert result.stdout.splitlines()[-1] == "configuration OK"
