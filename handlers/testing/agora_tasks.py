"""What the fake Agora keeps about resources, recording tasks and channels, and the
documented bodies it answers with (query, stop, the channel user list, the update and
layout rules). Pure functions of that state: the server in :mod:`fake_agora` routes,
checks credentials and keeps the records."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from handlers.testing.agora_faults import Fault

MAX_UID = 2**32 - 1


@dataclass
class Resource:
    resource_id: str
    cname: str
    uid: str
    acquired_at: float
    scene: int
    expired_hours: int
    sid: str | None = None


@dataclass
class Session:
    sid: str
    resource_id: str
    cname: str
    uid: str
    mode: str
    client_request: Mapping[str, Any]
    started_at: float
    started_ms: int
    expires_at: float
    status: int
    ended: bool = False
    failover_until: float | None = None
    onhold: bool = False
    layout: Mapping[str, Any] | None = None
    updates: list[Mapping[str, Any]] = field(default_factory=list)

    @property
    def screenshot_only(self) -> bool:
        return (self.mode == "individual" and "snapshotConfig" in self.client_request
                and "recordingFileConfig" not in self.client_request)

    @property
    def with_mp4(self) -> bool:
        config = self.client_request.get("recordingFileConfig") or {}
        return "mp4" in (config.get("avFileType") or [])


@dataclass
class Channel:
    """An RTC channel's people as the channel user list reports them (mode 1
    COMMUNICATION keeps everyone in ``broadcasters`` and lists them as ``users``)."""

    mode: int = 1
    broadcasters: set[str] = field(default_factory=set)
    audience: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Answer:
    """What the server sends back (or, with ``disconnect``, does not)."""

    status: int
    body: Mapping[str, Any] | None
    headers: Mapping[str, str] = field(default_factory=dict)
    disconnect: bool = False
    hang_s: float = 0.0


def ok(body: Mapping[str, Any]) -> Answer:
    return Answer(200, body)


def err(status: int, code: int, reason: str, **extra: Any) -> Answer:
    return Answer(status, {"code": code, "reason": reason, **extra})


NOT_FOUND = Answer(404, {"code": 404, "reason": "failed to find worker"})


def from_fault(fault: Fault) -> Answer:
    return Answer(fault.status, fault.body, fault.headers, fault.disconnect, fault.hang_s)


def valid_uid(uid: Any) -> bool:
    return isinstance(uid, str) and uid.isdigit() and not uid.startswith("0") \
        and 1 <= int(uid) <= MAX_UID


def update_problem(request: Mapping[str, Any]) -> str | None:
    """Code 2 (invalid parameter) for the update rules of facts 2.7: lists of at most 32
    uids, subscribe and unsubscribe of one media exclusive, at most one RTMP output."""
    subscribe = request.get("streamSubscribe") or {}
    for media, prefix in (("audioUidList", "Audio"), ("videoUidList", "Video")):
        lists = subscribe.get(media) or {}
        sub, unsub = lists.get(f"subscribe{prefix}Uids"), lists.get(f"unsubscribe{prefix}Uids")
        if sub is not None and unsub is not None:
            return f"{media}: subscribe and unsubscribe are exclusive"
        for listed in (sub, unsub):
            if listed is not None and (not isinstance(listed, list) or len(listed) > 32):
                return f"{media}: at most 32 uids"
    outputs = (request.get("rtmpPublishConfig") or {}).get("outputs")
    if outputs is not None and (not isinstance(outputs, list) or len(outputs) > 1):
        return "rtmpPublishConfig.outputs: at most 1 entry"
    return None


def layout_problem(request: Mapping[str, Any]) -> bool:
    """Code 1028: a layout Agora cannot read (unknown mixedVideoLayout, vertical without
    maxResolutionUid, custom without regions, more than 17 regions)."""
    layout = request.get("mixedVideoLayout", 0)
    regions = request.get("layoutConfig")
    if layout not in (0, 1, 2, 3):
        return True
    if layout == 2 and not request.get("maxResolutionUid"):
        return True
    if layout == 3 and (not isinstance(regions, list) or not regions):
        return True
    return isinstance(regions, list) and len(regions) > 17



# ----------------------------------------------------------------------- responses


def channel_users(channel: Channel, recorders: Iterable[str]) -> Answer:
    """The documented answer: ``channel_exist`` false (no other field) when nobody is
    in it; our running recorders are in it like any user."""
    people = channel.broadcasters | set(recorders)
    if not people and not channel.audience:
        return ok({"success": True, "data": {"channel_exist": False}})
    total = len(people) + len(channel.audience)
    if channel.mode == 1:
        data: dict[str, Any] = {"channel_exist": True, "mode": 1, "total": total,
                                "users": sorted(int(u) for u in people)}
    else:
        data = {"channel_exist": True, "mode": 2, "total": total,
                "broadcasters": sorted(int(u) for u in people),
                "audience": sorted(int(u) for u in channel.audience),
                "audience_total": len(channel.audience)}
    return ok({"success": True, "data": data})


def _files(session: Session, publishers: Iterable[str]) -> tuple[str, Any]:
    ms = session.started_ms
    if session.mode == "individual":
        return "json", [
            {"fileName": f"{session.sid}_{session.cname}__uid_s_{u}__uid_e_{t}.m3u8",
             "trackType": t, "uid": u, "mixedAllUser": False, "isPlayable": True,
             "sliceStartTime": ms}
            for u in publishers for t in ("audio", "video")
        ]
    playlist = f"{session.sid}_{session.cname}.m3u8"
    if not session.with_mp4:
        return "string", playlist
    return "json", [
        {"fileName": name, "trackType": "audio_and_video", "uid": "0",
         "mixedAllUser": True, "isPlayable": True, "sliceStartTime": ms}
        for name in (playlist, f"{session.sid}_{session.cname}_0.mp4")
    ]


def _web_recorder(session: Session, state: str) -> dict[str, Any]:
    return {"serviceName": "web_recorder_service", "payload": {
        "state": state, "onhold": session.onhold,
        "fileList": [{"filename": f"{session.sid}_{session.cname}_0.mp4",
                      "sliceStartTime": session.started_ms}],
    }}


def query_view(session: Session, publishers: Iterable[str]) -> dict[str, Any]:
    """``serverResponse`` of query, by mode (``publishers``: the uids an individual
    recording has files of)."""
    if session.mode == "web":
        return {"status": session.status,
                "extensionServiceState": [_web_recorder(session, "inProgress")]}
    if session.screenshot_only:
        return {"status": session.status, "sliceStartTime": session.started_ms}
    mode, files = _files(session, publishers)
    return {"status": session.status, "fileListMode": mode, "fileList": files,
            "sliceStartTime": session.started_ms}


def stop_view(session: Session, publishers: Iterable[str]) -> dict[str, Any]:
    """``serverResponse`` of stop, by mode."""
    if session.mode == "web":
        return {"extensionServiceState": [
            {"serviceName": "upload_service", "payload": {"uploadingStatus": "uploaded"}},
            _web_recorder(session, "exit"),
        ]}
    if session.screenshot_only:
        return {"uploadingStatus": "uploaded"}
    mode, files = _files(session, publishers)
    return {"uploadingStatus": "uploaded", "fileListMode": mode, "fileList": files}
