"""A recording profile and tasks really started on a :class:`FakeAgora`, as the registry
records them: what restart tests and benches start from."""

from __future__ import annotations

import uuid
from typing import Any

from handlers.config import RecordingProfile
from handlers.recording.session_registry import SessionRecord, resolve_references, utc_from_ms
from handlers.testing.fake_agora import FakeAgora

UID = "900001"
BACKUP_UID = "900002"
# Storage credentials the profile's ${...} references resolve to: made-up values.
ENV = {"S3_KEY": "AKIAEXAMPLEKEY", "S3_SECRET": "storage-secret-value"}

CLIENT_REQUEST: dict[str, Any] = {
    "recordingConfig": {"channelType": 0, "streamTypes": 2, "subscribeUidGroup": 0,
                        "maxIdleTime": 300},
    "recordingFileConfig": {"avFileType": ["hls"]},
    "storageConfig": {"vendor": 1, "region": 0, "bucket": "rec", "accessKey": "${S3_KEY}",
                      "secretKey": "${S3_SECRET}", "fileNamePrefix": ["rec"]},
}
RESOLVED_REQUEST: dict[str, Any] = resolve_references(CLIENT_REQUEST, ENV)

PROFILE = RecordingProfile(name="classes", cnames=["class-*"], mode="individual", uid=UID,
                           backup_uid=BACKUP_UID, client_request=CLIENT_REQUEST)


def start_session(fake: FakeAgora, cname: str = "class-1", uid: str = UID,
                  backup_uid: str = BACKUP_UID, status: str = "running") -> SessionRecord:
    """A task really started on the fake, as its registry record."""
    with fake.client() as client:
        acquired = client.acquire(cname, uid, {})
        started = client.start("individual", acquired.resource_id, cname, uid,
                               RESOLVED_REQUEST)
    return registered(cname, uid=uid, backup_uid=backup_uid, resource_id=acquired.resource_id,
                      sid=started.sid, status=status, now_ms=fake.clock.now_ms())


def registered(cname: str = "class-1", *, uid: str = UID, backup_uid: str = BACKUP_UID,
               resource_id: str | None = None, sid: str | None = "sid-1",
               status: str = "running", now_ms: int = 1_700_000_000_000,
               **fields: Any) -> SessionRecord:
    """A registry record of a task in the ``classes`` profile (none is started)."""
    return SessionRecord.model_validate({
        "cname": cname, "mode": "individual", "profile": "classes", "uid": uid,
        "backup_uid": backup_uid, "resource_id": resource_id or f"rid-{uuid.uuid4().hex[:8]}",
        "sid": sid, "status": status, "client_request": CLIENT_REQUEST,
        "started_at": utc_from_ms(now_ms), "updated_at": utc_from_ms(now_ms), **fields,
    })
