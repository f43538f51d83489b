"""Rules-file (TOML) snippets the tests share, so one profile is spelled out once.

:func:`classes_profile` is :data:`handlers.testing.agora_recordings.PROFILE` written as a
``[[recording.profiles]]`` table (tests/handlers/recording/test_registry.py checks that they agree);
:func:`webhook_sink`, :func:`slack_sink` and :func:`pagerduty_sink` are alert sinks;
:func:`write_rules` writes sections to a ``rules.toml``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from handlers.testing.agora_recordings import BACKUP_UID, UID


def classes_profile(cnames: Sequence[str] = ("class-*",), *,
                    secret_key: str = "${S3_SECRET}") -> str:
    """The ``classes`` profile (``secret_key``: the storage secret's value as written)."""
    return f"""
[[recording.profiles]]
name = "classes"
cnames = {json.dumps(list(cnames))}
mode = "individual"
uid = "{UID}"
backup_uid = "{BACKUP_UID}"
[recording.profiles.client_request]
recordingConfig = {{ channelType = 0, streamTypes = 2, subscribeUidGroup = 0, maxIdleTime = 300 }}
recordingFileConfig = {{ avFileType = ["hls"] }}
[recording.profiles.client_request.storageConfig]
vendor = 1
region = 0
bucket = "rec"
accessKey = "${{S3_KEY}}"
secretKey = {json.dumps(secret_key)}
fileNamePrefix = ["rec"]
"""


def webhook_sink(secret: str, *, name: str = "ops", url: str = "${OPS_URL}") -> str:
    """A Standard Webhooks alert sink."""
    return f"""
[[alerts.sinks]]
name = {json.dumps(name)}
kind = "webhook"
url = {json.dumps(url)}
secret = {json.dumps(secret)}
"""


def slack_sink(*, name: str = "chat", url: str = "${SLACK_URL}") -> str:
    """A Slack incoming-webhook alert sink."""
    return f"""
[[alerts.sinks]]
name = {json.dumps(name)}
kind = "slack"
url = {json.dumps(url)}
"""


def pagerduty_sink(*, name: str = "pd", url: str = "${PD_URL}",
                   routing_key: str = "${PD_KEY}") -> str:
    """A PagerDuty Events API v2 alert sink."""
    return f"""
[[alerts.sinks]]
name = {json.dumps(name)}
kind = "pagerduty"
url = {json.dumps(url)}
routing_key = {json.dumps(routing_key)}
"""


def write_rules(directory: Path, *sections: str) -> Path:
    """``directory/rules.toml`` holding ``sections`` one after the other."""
    path = directory / "rules.toml"
    path.write_text("".join(sections))
    return path
