"""Signed NCS callbacks, as Agora's Notification Center sends them, for tests and benches."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from webhook.shared.signature import signature_headers

# The NCS secret the test webhooks run with (16+ characters, as the webhook requires).
SECRET = "test-ncs-secret-0123"  # noqa: S105


def callback_body(
    event_type: int = 40,
    cname: str = "class-101",
    sid: str = "38f8e3cfdc474cd56fc1ceba380d7e1a",
    details: dict[str, Any] | None = None,
    notice_id: str | None = None,
    notify_ms: int | None = None,
    sequence: int = 0,
) -> bytes:
    """A Cloud Recording callback body, serialised the way NCS does (compact JSON)."""
    now = int(time.time() * 1000)
    body = {
        "noticeId": notice_id or str(uuid.uuid4()),
        "productId": 3,
        "eventType": event_type,
        "notifyMs": notify_ms if notify_ms is not None else now,
        "payload": {
            "cname": cname,
            "uid": "900001",
            "sid": sid,
            "sequence": sequence,
            "sendts": now,
            "serviceType": 1,
            "details": details
            if details is not None
            else {"msgName": "recorder_started", "status": 0},
        },
    }
    return json.dumps(body, separators=(",", ":")).encode()


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {"Content-Type": "application/json", **signature_headers(body, secret)}
