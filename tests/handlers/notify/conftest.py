"""Fixtures for the notify tests: NCS notices with chosen times and action records. Tests
reach the builders through fixtures (test modules do not import conftest)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from handlers.action_contract import Received
from webhook.shared.events import parse_notification
from webhook.shared.kafka_settings import TopicNames

TOPICS = TopicNames()
CNAME = "class-101"
SID = "38f8e3cfdc474cd56fc1ceba380d7e1a"
T0 = 1_700_000_000_000


def notice_body(
    event_type: int,
    details: Mapping[str, Any],
    *,
    cname: str = CNAME,
    sid: str = SID,
    sendts: int = T0,
    notice_id: str | None = None,
    uid: str = "900001",
) -> bytes:
    body = {
        "noticeId": notice_id or str(uuid.uuid4()),
        "productId": 3,
        "eventType": event_type,
        "notifyMs": sendts + 50,
        "payload": {
            "cname": cname,
            "uid": uid,
            "sid": sid,
            "sequence": 0,
            "sendts": sendts,
            "serviceType": 1,
            "details": dict(details),
        },
    }
    return json.dumps(body, separators=(",", ":")).encode()


_offsets = iter(range(1_000_000))


def received(body: bytes, topic: str = TOPICS.events) -> Received:
    notification = parse_notification(body)
    return Received(
        notification=notification,
        raw=body,
        topic=topic,
        partition=0,
        offset=next(_offsets),
        headers={},
        key=notification.payload.cname,
    )


def notice(event_type: int, details: Mapping[str, Any], **kwargs: Any) -> Received:
    return received(notice_body(event_type, details, **kwargs))


@dataclass(frozen=True)
class ActionsRecord:
    """A record of ``agora.actions`` as the runtime hands it over (no notification)."""

    raw: bytes
    topic: str
    partition: int
    offset: int
    headers: Mapping[str, str]
    key: str | None


def action_record(value: Mapping[str, Any], *, key: str | None = CNAME) -> ActionsRecord:
    return ActionsRecord(
        raw=json.dumps(value).encode(),
        topic=TOPICS.actions,
        partition=0,
        offset=next(_offsets),
        headers={},
        key=key,
    )


@pytest.fixture
def make_notice() -> Callable[..., Received]:
    """``make_notice(event_type, details, cname=, sid=, sendts=, notice_id=)``."""
    return notice


@pytest.fixture
def make_body() -> Callable[..., bytes]:
    """The callback body alone, to deliver the very same bytes twice."""
    return notice_body


@pytest.fixture
def make_received() -> Callable[..., Received]:
    """``make_received(body)``: a fresh consumed record (new offset) for the body."""
    return received


@pytest.fixture
def make_action_record() -> Callable[..., ActionsRecord]:
    """``make_action_record(value, key=cname)``: an ``agora.actions`` record."""
    return action_record
