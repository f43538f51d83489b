"""Realistic NCS callback bodies for every documented Cloud Recording event type.

The bodies live in ``webhook/shared/samples/<eventType>_<msgName>.json`` (productId 3, channel
``class-101``, one 32-hex sid, recorder uid ``900001``) and are used by the docs, the tests and
``agora-events send``. Functions here return fresh ``dict`` copies; :func:`encode` turns one
into the compact bytes NCS would post.
"""

from __future__ import annotations

import json
import time
import uuid
from functools import cache
from pathlib import Path
from typing import Any

from webhook.shared.events import EVENT_TYPES, EVENT_TYPES_BY_NAME, EventType

SAMPLE_CNAME = "class-101"
SAMPLE_SID = "38f8e3cfdc474cd56fc1ceba380d7e1a"
SAMPLE_UID = "900001"
# Package data beside this module. Read by path: importlib.resources fails when ``webhook``
# resolves as a namespace package (as it does under pytest, next to tests/webhook/).
SAMPLES_DIR = Path(__file__).with_name("samples")

_ENVELOPE_KEYS = frozenset({"noticeId", "productId", "eventType", "notifyMs", "eventMs"})
_PAYLOAD_KEYS = frozenset(
    {"cname", "uid", "sid", "sequence", "sendts", "serviceType", "serviceScene"}
)
_SNAKE_KEYS = {
    "notice_id": "noticeId",
    "product_id": "productId",
    "event_type": "eventType",
    "notify_ms": "notifyMs",
    "send_ts": "sendts",
    "service_type": "serviceType",
    "service_scene": "serviceScene",
}


def all_event_types() -> list[int]:
    """Every documented event type, ascending."""
    return sorted(EVENT_TYPES)


def event_type_of(name_or_code: int | str) -> EventType:
    """Resolve ``41``, ``"41"`` or ``"recorder_leave"``; ``ValueError`` names the known ones."""
    text = str(name_or_code).strip()
    info = EVENT_TYPES.get(int(text)) if text.isdigit() else EVENT_TYPES_BY_NAME.get(text)
    if info is None:
        known = ", ".join(f"{t.code} {t.msg_name}" for t in EVENT_TYPES.values())
        raise ValueError(f"event type {name_or_code!r} is not documented (known: {known})")
    return info


@cache
def _sample_text(info: EventType) -> str:
    return (SAMPLES_DIR / f"{info.code}_{info.msg_name}.json").read_text(encoding="utf-8")


def sample(event_type: int | str, **overrides: Any) -> dict[str, Any]:
    """A fresh body for *event_type* with a new ``noticeId`` (uuid4) and ``notifyMs`` now.

    Overrides by key: envelope keys (``noticeId``, ``productId``, ``eventType``, ``notifyMs``,
    ``eventMs``) set the envelope; payload keys (``cname``, ``uid``, ``sid``, ``sequence``,
    ``sendts``, ``serviceType``, ``serviceScene``) set the payload; ``details={...}`` is merged
    into the details, and any other key sets that details field (``exitStatus=1``). Snake-case
    spellings (``notice_id``, ``send_ts``...) are accepted. A value of ``None`` removes the key.
    A new ``cname``/``sid`` also replaces the sample's own inside file names and URLs.
    """
    text = _sample_text(event_type_of(event_type))
    # File names and URLs inside the details embed the channel and session: keep them in step.
    for key, default in (("cname", SAMPLE_CNAME), ("sid", SAMPLE_SID)):
        value = overrides.get(key)
        if isinstance(value, str) and value != default:
            text = text.replace(default, json.dumps(value)[1:-1])
    body: dict[str, Any] = json.loads(text)
    body["noticeId"] = str(uuid.uuid4())
    body["notifyMs"] = time.time_ns() // 1_000_000
    payload: dict[str, Any] = body["payload"]
    details: dict[str, Any] = payload["details"]
    for raw_key, value in overrides.items():
        key = _SNAKE_KEYS.get(raw_key, raw_key)
        if key == "details":
            details.update(value)
            continue
        target = body if key in _ENVELOPE_KEYS else payload if key in _PAYLOAD_KEYS else details
        if value is None:
            target.pop(key, None)
        else:
            target[key] = value
    return body


def encode(body: dict[str, Any]) -> bytes:
    """Compact JSON bytes, the way NCS serialises callbacks."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def lifecycle(
    cname: str,
    sid: str,
    uid: str,
    *,
    slices: int = 3,
    failed: bool = False,
    start_ms: int | None = None,
) -> list[dict[str, Any]]:
    """One composite recording's callbacks in the order NCS sends them.

    40 recorder_started, 30 uploader_started, 42 recorder_slice_start, 4 file_infos, one
    33 uploading_progress per recorded minute (*slices* of them), 41 recorder_leave (our stop),
    31 uploaded with the playlist and MP4, 11 session_exit with exitStatus 0, or 1 when
    *failed*. ``sequence`` counts from 0 and ``sendts`` increases from *start_ms* (default:
    so that the last event happened now); every body has its own ``noticeId`` and
    ``notifyMs`` now, so a freshness check accepts them.
    """
    if slices < 0:
        raise ValueError("slices must be >= 0")
    minute = 60_000
    span = (slices + 1) * minute  # the last progress report comes a minute before the end
    start = start_ms if start_ms is not None else time.time_ns() // 1_000_000 - span
    playlist = f"{sid}_{cname}.m3u8"
    uploaded = [
        {"fileName": name, "trackType": "audio_and_video", "uid": "0", "mixedAllUser": True,
         "isPlayable": True, "sliceStartTime": start + 1_200}
        for name in (playlist, f"{sid}_{cname}_0.mp4")
    ]
    steps: list[tuple[int, int, dict[str, Any]]] = [
        (40, 0, {"status": 0}),
        (30, 600, {"status": 0}),
        (42, 1_200, {"startUtcMs": start + 1_200, "discontinueUtcMs": start + 1_200,
                     "mixedAllUser": True, "streamUid": "0", "trackType": "audio_and_video"}),
        (4, 20_000, {"fileList": playlist}),
    ]
    steps += [
        (33, i * minute, {"progress": 10_000 * i // (slices + 1)}) for i in range(1, slices + 1)
    ]
    steps += [
        (41, span - 4_000, {"leaveCode": 2}),
        (31, span - 1_000, {"status": 0, "fileList": uploaded}),
        (11, span, {"exitStatus": 1 if failed else 0}),
    ]
    return [
        sample(code, cname=cname, sid=sid, uid=uid, sequence=seq, sendts=start + offset,
               details=details)
        for seq, (code, offset, details) in enumerate(steps)
    ]
