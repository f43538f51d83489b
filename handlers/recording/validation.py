"""Checks of Cloud Recording request bodies against Agora's documented constraints
(reference/agora-facts.md 2.4-2.7, the acquire/start reference and the screenshot guide),
run before anything is sent: the acquire, start and update requests here, the rules for
their parts in :mod:`.stream_checks` and :mod:`.output_checks`, the shared reader in
:mod:`.body_checker`.

Every problem names the JSON path of the offending field (``clientRequest.storageConfig.
fileNamePrefix[1]``), a stable rule id (for code and tests) and a message for people.
Messages never repeat the value of a credential field.

Choices where Agora's documents disagree or are vague:

* ``snapshotConfig.captureInterval``: the REST reference says [5, 3600], the screenshot
  guide [1, 3600]; we accept the narrower [5, 3600], which both documents allow.
* ``fileNamePrefix`` length: ``["a", "b"]`` becomes the key prefix ``a/b/``; we count that
  whole prefix (elements plus one slash each) against the 128-character limit.
* ``recordingFileConfig`` is required except for screenshot-only tasks, as the reference
  says (a request without it records nothing but screenshots, or nothing at all). A
  screenshot task is "screenshot-only" exactly when it omits ``recordingFileConfig``; an
  empty or null ``recordingFileConfig`` next to ``snapshotConfig`` is reported, because it
  reads as "screenshots only" but is not.
* Storage ``vendor``: the current list (1, 2, 3, 5, 6, 7, 8, 11) plus the legacy 0 and 4.
* Fields sent in a mode where Agora documents them as not applicable (``recordingConfig``
  in web mode, ``transcodingConfig`` outside mix...) are reported rather than ignored.
* Unknown field names are allowed (Agora adds fields), except ones that differ from a
  documented name only by case: names are case-sensitive and such a field is ignored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from handlers.recording.api_requests import MODES
from handlers.recording.body_checker import KNOWN_FIELDS, BodyChecker, Problem
from handlers.recording.output_checks import (
    check_extension_services,
    check_file_config,
    check_rtmp_outputs,
    check_snapshot,
    check_storage,
)
from handlers.recording.stream_checks import (
    check_cname,
    check_layout,
    check_recording_config,
    check_uid_lists,
)

RESOURCE_EXPIRED_HOUR_RANGE = (1, 720)
ACQUIRE_REGIONS = ("CN", "AP", "EU", "NA")


class RequestInvalid(ValueError):
    """A request breaks documented constraints; nothing was sent. ``problems`` lists
    every broken rule found, not just the first."""

    what = "request"

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        listed = "; ".join(str(p) for p in self.problems)
        super().__init__(f"invalid {self.what}: {listed}")

    def has(self, path: str, rule: str) -> bool:
        return any(p.path == path and p.rule == rule for p in self.problems)


class StartRequestInvalid(RequestInvalid):
    what = "start request"


class AcquireRequestInvalid(RequestInvalid):
    what = "acquire request"


class UpdateRequestInvalid(RequestInvalid):
    what = "update request"


def _known_mode(c: BodyChecker, mode: str) -> bool:
    if mode in MODES:
        return True
    c.add("mode", "enum", f"must be one of {', '.join(MODES)}; got {mode!r}")
    return False


def _start_client_request(c: BodyChecker, cr: Mapping[str, Any], base: str, mode: str) -> None:
    c.known_keys(cr, base, KNOWN_FIELDS["start"])
    c.string(cr, "token", base, secret=True)
    storage = c.obj(cr, "storageConfig", base, required=True)
    if storage is not None:
        check_storage(c, storage, f"{base}.storageConfig")
    snapshot = "snapshotConfig" in cr
    if mode == "web":
        for key in ("recordingConfig", "snapshotConfig"):
            if key in cr:
                c.add(f"{base}.{key}", "mode", "does not apply in web mode")
        check_extension_services(c, cr, base)
        check_file_config(c, cr, base, mode, snapshot=False)
        return
    if "extensionServiceConfig" in cr:
        c.add(f"{base}.extensionServiceConfig", "mode", "applies only in web mode")
    if snapshot and mode != "individual":
        c.add(f"{base}.snapshotConfig", "mode", "screenshots are taken only in individual mode")
    elif snapshot:
        sc = c.obj(cr, "snapshotConfig", base)
        if sc is not None:
            check_snapshot(c, sc, f"{base}.snapshotConfig")
    rc = c.obj(cr, "recordingConfig", base, required=True)
    if rc is not None:
        check_recording_config(c, rc, f"{base}.recordingConfig", mode,
                               snapshot=snapshot and mode == "individual")
    check_file_config(c, cr, base, mode, snapshot=snapshot and mode == "individual")


def start_problems(mode: str, client_request: Any, *, cname: Any = None,
                   uid: Any = None) -> list[Problem]:
    """Every documented constraint ``client_request`` (the start ``clientRequest``) breaks
    in ``mode``; ``cname`` and ``uid`` are checked too when given."""
    c = BodyChecker()
    if not _known_mode(c, mode):
        return c.problems
    if cname is not None:
        check_cname(c, cname, "cname", web=mode == "web")
    if uid is not None:
        c.uid(uid, "uid")
    if not isinstance(client_request, Mapping):
        c.add("clientRequest", "type", "must be an object")
        return c.problems
    _start_client_request(c, client_request, "clientRequest", mode)
    return c.problems


def validate_start(mode: str, client_request: Any, *, cname: Any = None,
                   uid: Any = None) -> None:
    """Raise :class:`StartRequestInvalid` listing every problem of a start request."""
    problems = start_problems(mode, client_request, cname=cname, uid=uid)
    if problems:
        raise StartRequestInvalid(problems)


def acquire_problems(cname: Any, uid: Any, client_request: Any = None, *,
                     mode: str | None = None) -> list[Problem]:
    """Every documented constraint an acquire request breaks. With ``mode``, ``scene`` must
    agree with it and a ``startParameter`` is checked as the start request it announces."""
    c = BodyChecker()
    if mode is not None and not _known_mode(c, mode):
        mode = None
    cr = {} if client_request is None else client_request
    if not isinstance(cr, Mapping):
        c.add("clientRequest", "type", "must be an object")
        cr = {}
    base = "clientRequest"
    c.known_keys(cr, base, KNOWN_FIELDS["acquire"])
    scene = c.integer(cr, "scene", base, allowed=(0, 1, 2))
    web = mode == "web" or (mode is None and scene == 1)
    check_cname(c, cname, "cname", web=web)
    c.uid(uid, "uid")
    if mode is not None and scene is not None and (scene == 1) != (mode == "web"):
        c.add(f"{base}.scene", "scene",
              f"must be 1 for web mode and 0 otherwise; got {scene} with mode {mode}")
    elif mode == "web" and scene is None:
        c.add(f"{base}.scene", "scene", "must be 1 (web page recording) for web mode")
    c.integer(cr, "resourceExpiredHour", base, bounds=RESOURCE_EXPIRED_HOUR_RANGE)
    excluded = cr.get("excludeResourceIds")
    if excluded is not None and (
        not isinstance(excluded, list) or not all(isinstance(r, str) and r for r in excluded)
    ):
        c.add(f"{base}.excludeResourceIds", "type", "must be an array of resourceId strings")
    c.string(cr, "region", base, allowed=ACQUIRE_REGIONS)
    start = c.obj(cr, "startParameter", base)
    if start is not None and mode is not None:
        _start_client_request(c, start, f"{base}.startParameter", mode)
    return c.problems


def validate_acquire(cname: Any, uid: Any, client_request: Any = None, *,
                     mode: str | None = None) -> None:
    """Raise :class:`AcquireRequestInvalid` listing every problem of an acquire request."""
    problems = acquire_problems(cname, uid, client_request, mode=mode)
    if problems:
        raise AcquireRequestInvalid(problems)


def update_problems(mode: str, client_request: Any, *, layout: bool = False) -> list[Problem]:
    """Problems of an update (``layout=False``) or updateLayout ``clientRequest``."""
    c = BodyChecker()
    base = "clientRequest"
    if not _known_mode(c, mode):
        return c.problems
    if not isinstance(client_request, Mapping):
        c.add(base, "type", "must be an object")
        return c.problems
    if layout:
        if mode != "mix":
            c.add("mode", "mode", "updateLayout applies only in mix (composite) mode")
        check_layout(c, client_request, base)
        return c.problems
    subscribe = c.obj(client_request, "streamSubscribe", base)
    if subscribe is not None:
        spath = f"{base}.streamSubscribe"
        for media, list_key in (("audio", "audioUidList"), ("video", "videoUidList")):
            lists = c.obj(subscribe, list_key, spath)
            if lists is None:
                continue
            check_uid_lists(c, lists, f"{spath}.{list_key}", media)
    for key in ("webRecordingConfig", "rtmpPublishConfig"):
        if key in client_request and mode != "web":
            c.add(f"{base}.{key}", "mode", "applies only in web mode")
    web_config = c.obj(client_request, "webRecordingConfig", base)
    if web_config is not None:
        c.boolean(web_config, "onhold", f"{base}.webRecordingConfig")
    rtmp = c.obj(client_request, "rtmpPublishConfig", base)
    if rtmp is not None:
        check_rtmp_outputs(c, rtmp, f"{base}.rtmpPublishConfig")
    storage = c.obj(client_request, "storageConfig", base)
    if storage is not None:
        check_storage(c, storage, f"{base}.storageConfig", partial=True)
    return c.problems


def validate_update(mode: str, client_request: Any, *, layout: bool = False) -> None:
    """Raise :class:`UpdateRequestInvalid` listing every problem of an update or
    updateLayout request."""
    problems = update_problems(mode, client_request, layout=layout)
    if problems:
        raise UpdateRequestInvalid(problems)
