"""Checks of Cloud Recording request bodies against Agora's documented constraints
(reference/agora-facts.md 2.4-2.7, the acquire/start reference and the screenshot guide),
run before anything is sent.

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

import base64
import binascii
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from handlers.recording.models import MODES

MAX_UID = 2**32 - 1
MAX_SUBSCRIBE_ENTRIES = 32
MAX_PREFIX_CHARS = 128
MAX_PIXELS = 1920 * 1080
MAX_LAYOUT_REGIONS = 17
MAX_CNAME_BYTES = 63  # "< 64 bytes"
MAX_WEB_CNAME_BYTES = 1024
ALL_STREAMS = "#allstream#"

CAPTURE_INTERVAL_RANGE = (5, 3600)
MAX_IDLE_TIME_RANGE = (5, 2_592_000)
RESOURCE_EXPIRED_HOUR_RANGE = (1, 720)
MAX_RECORDING_HOUR_RANGE = (1, 720)
VIDEO_FPS_RANGE = (5, 60)
MAX_VIDEO_DURATION_RANGE = (30, 240)
READY_TIMEOUT_RANGE = (0, 60)

STORAGE_VENDORS = frozenset({0, 1, 2, 3, 4, 5, 6, 7, 8, 11})
STS_VENDORS = frozenset({1, 2, 3})
ACQUIRE_REGIONS = ("CN", "AP", "EU", "NA")

_UID = re.compile(r"[1-9][0-9]{0,9}")
_PREFIX_ELEMENT = re.compile(r"[A-Za-z0-9]+")
_CNAME = re.compile(r"[A-Za-z0-9 !#$%&()+\-:;<=.>?@\[\]^_{}|~,]+")
_COLOR = re.compile(r"#[0-9A-Fa-f]{6}")

_SUBSCRIPTION_KEYS = {
    "audio": ("subscribeAudioUids", "unsubscribeAudioUids"),
    "video": ("subscribeVideoUids", "unsubscribeVideoUids"),
}

# Documented field names per object, for the case-mismatch check.
_KNOWN: dict[str, frozenset[str]] = {
    "acquire": frozenset(
        {"scene", "resourceExpiredHour", "excludeResourceIds", "region", "startParameter"}
    ),
    "start": frozenset(
        {"token", "storageConfig", "recordingConfig", "recordingFileConfig", "snapshotConfig",
         "extensionServiceConfig", "appsCollection", "transcodeOptions"}
    ),
    "storage": frozenset(
        {"vendor", "region", "bucket", "accessKey", "secretKey", "stsToken", "stsExpiration",
         "fileNamePrefix", "extensionParams"}
    ),
    "recording": frozenset(
        {"channelType", "decryptionMode", "secret", "salt", "maxIdleTime", "streamTypes",
         "videoStreamType", "subscribeAudioUids", "unsubscribeAudioUids", "subscribeVideoUids",
         "unsubscribeVideoUids", "subscribeUidGroup", "streamMode", "audioProfile",
         "transcodingConfig", "privateParams"}
    ),
    "transcoding": frozenset(
        {"width", "height", "fps", "bitrate", "maxResolutionUid", "mixedVideoLayout",
         "backgroundColor", "backgroundImage", "defaultUserBackgroundImage", "layoutConfig",
         "backgroundConfig"}
    ),
    "snapshot": frozenset({"captureInterval", "fileType"}),
    "file": frozenset({"avFileType"}),
    "extension": frozenset({"errorHandlePolicy", "extensionServices"}),
    "web_params": frozenset(
        {"url", "audioProfile", "videoWidth", "videoHeight", "maxRecordingHour", "videoBitrate",
         "videoFps", "mobile", "maxVideoDuration", "onhold", "readyTimeout"}
    ),
}


@dataclass(frozen=True, slots=True)
class Problem:
    """One broken rule: where (``path``), which (``rule``, a stable id) and what is
    expected (``message``)."""

    path: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


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


class _Checker:
    """Collects problems; the small typed readers return the value when it is usable."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, path: str, rule: str, message: str) -> None:
        self.problems.append(Problem(path, rule, message))

    def obj(self, parent: Mapping[str, Any], key: str, base: str, *,
            required: bool = False) -> Mapping[str, Any] | None:
        path = f"{base}.{key}"
        if key not in parent:
            if required:
                self.add(path, "required", "is required")
            return None
        value = parent[key]
        if not isinstance(value, Mapping):
            self.add(path, "type", "must be an object")
            return None
        return value

    def integer(self, parent: Mapping[str, Any], key: str, base: str, *,
                bounds: tuple[int, int] | None = None, allowed: Iterable[int] | None = None,
                required: bool = False, positive: bool = False) -> int | None:
        path = f"{base}.{key}"
        if key not in parent:
            if required:
                self.add(path, "required", "is required")
            return None
        value = parent[key]
        if isinstance(value, bool) or not isinstance(value, int):
            self.add(path, "type", "must be an integer")
            return None
        if bounds is not None and not bounds[0] <= value <= bounds[1]:
            self.add(path, "range", f"must be in [{bounds[0]}, {bounds[1]}]; got {value}")
            return None
        if allowed is not None:
            options = sorted(allowed)
            if value not in options:
                listed = ", ".join(str(o) for o in options)
                self.add(path, "enum", f"must be one of {listed}; got {value}")
                return None
        if positive and value <= 0:
            self.add(path, "range", f"must be a positive integer; got {value}")
            return None
        return value

    def number(self, parent: Mapping[str, Any], key: str, base: str, *,
               bounds: tuple[float, float], required: bool = False) -> float | None:
        path = f"{base}.{key}"
        if key not in parent:
            if required:
                self.add(path, "required", "is required")
            return None
        value = parent[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.add(path, "type", "must be a number")
            return None
        if not bounds[0] <= value <= bounds[1]:
            self.add(path, "range", f"must be in [{bounds[0]}, {bounds[1]}]; got {value}")
            return None
        return float(value)

    def string(self, parent: Mapping[str, Any], key: str, base: str, *,
               required: bool = False, allowed: Sequence[str] | None = None,
               secret: bool = False) -> str | None:
        path = f"{base}.{key}"
        if key not in parent:
            if required:
                self.add(path, "required", "is required")
            return None
        value = parent[key]
        if not isinstance(value, str):
            self.add(path, "type", "must be a string")
            return None
        if required and not value:
            self.add(path, "required", "must not be empty")
            return None
        if allowed is not None and value not in allowed:
            listed = ", ".join(repr(a) for a in allowed)
            shown = "" if secret else f"; got {value!r}"
            self.add(path, "enum", f"must be one of {listed}{shown}")
            return None
        return value

    def boolean(self, parent: Mapping[str, Any], key: str, base: str) -> None:
        if key in parent and not isinstance(parent[key], bool):
            self.add(f"{base}.{key}", "type", "must be true or false")

    def known_keys(self, obj: Mapping[str, Any], base: str, known: frozenset[str]) -> None:
        lowered = {k.lower(): k for k in known}
        for key in obj:
            if isinstance(key, str) and key not in known and key.lower() in lowered:
                self.add(
                    f"{base}.{key}", "case",
                    f"unknown field; did you mean {lowered[key.lower()]!r}? "
                    "(field names are case-sensitive)",
                )

    def uid(self, value: Any, path: str) -> bool:
        if isinstance(value, bool) or not isinstance(value, str):
            self.add(path, "uid", 'must be a uid as a decimal string, e.g. "527841"')
            return False
        if not _UID.fullmatch(value) or int(value) > MAX_UID:
            self.add(path, "uid", f"must be an integer in [1, {MAX_UID}] written as a string; "
                     f"got {value!r}")
            return False
        return True


def _check_cname(c: _Checker, cname: Any, path: str, *, web: bool) -> None:
    if not isinstance(cname, str) or not cname:
        c.add(path, "cname", "must be a non-empty string")
        return
    size = len(cname.encode())
    if web:
        if size > MAX_WEB_CNAME_BYTES:
            c.add(path, "cname", f"must be at most {MAX_WEB_CNAME_BYTES} bytes; got {size}")
        return
    if size > MAX_CNAME_BYTES:
        c.add(path, "cname", f"must be shorter than 64 bytes; got {size}")
    if not _CNAME.fullmatch(cname):
        c.add(path, "cname", "may contain only a-z A-Z 0-9, space and "
              "! # $ % & ( ) + - : ; < = . > ? @ [ ] ^ _ { } | ~ ,")


def _check_uid_list(c: _Checker, parent: Mapping[str, Any], key: str, base: str, *,
                    subscribe: bool) -> list[str] | None:
    path = f"{base}.{key}"
    if key not in parent:
        return None
    value = parent[key]
    if not isinstance(value, list):
        c.add(path, "type", "must be an array of uid strings")
        return None
    if len(value) > MAX_SUBSCRIBE_ENTRIES:
        c.add(path, "max_entries",
              f"must have at most {MAX_SUBSCRIBE_ENTRIES} entries; got {len(value)}")
    for i, entry in enumerate(value):
        if entry == ALL_STREAMS:
            if not subscribe:
                c.add(f"{path}[{i}]", "uid", f"{ALL_STREAMS!r} is only for subscribe lists")
            elif len(value) != 1:
                c.add(f"{path}[{i}]", "allstream", f"{ALL_STREAMS!r} must be the only entry")
            continue
        c.uid(entry, f"{path}[{i}]")
    return value


def _check_subscriptions(c: _Checker, rc: Mapping[str, Any], base: str,
                         stream_types: int) -> None:
    for media, (sub_key, unsub_key) in _SUBSCRIPTION_KEYS.items():
        sub = _check_uid_list(c, rc, sub_key, base, subscribe=True)
        _check_uid_list(c, rc, unsub_key, base, subscribe=False)
        if sub_key in rc and unsub_key in rc:
            c.add(f"{base}.{unsub_key}", "exclusive",
                  f"cannot be set together with {sub_key} (they are mutually exclusive)")
        wanted = {0, 2} if media == "audio" else {1, 2}
        if sub is not None and stream_types not in wanted:
            c.add(f"{base}.{sub_key}", "stream_types",
                  f"applies only when streamTypes is {' or '.join(map(str, sorted(wanted)))}; "
                  f"streamTypes is {stream_types}")


def _check_storage(c: _Checker, sc: Mapping[str, Any], base: str, *,
                   partial: bool = False) -> None:
    c.known_keys(sc, base, _KNOWN["storage"])
    required = not partial
    vendor = c.integer(sc, "vendor", base, allowed=STORAGE_VENDORS, required=required)
    region = c.integer(sc, "region", base, required=required)
    if region is not None and region < 0:
        c.add(f"{base}.region", "range", f"must be a non-negative integer; got {region}")
    c.string(sc, "bucket", base, required=required)
    c.string(sc, "accessKey", base, required=required, secret=True)
    c.string(sc, "secretKey", base, required=required, secret=True)
    if c.string(sc, "stsToken", base, secret=True) is not None and vendor is not None \
            and vendor not in STS_VENDORS:
        c.add(f"{base}.stsToken", "vendor",
              "is supported only for vendors 1 (Amazon S3), 2 (Alibaba) and 3 (Tencent)")
    c.integer(sc, "stsExpiration", base, positive=True)
    _check_prefix(c, sc, base)
    params = c.obj(sc, "extensionParams", base)
    if params is not None:
        ppath = f"{base}.extensionParams"
        if c.string(params, "sse", ppath, allowed=("kms", "aes256")) is not None \
                and vendor is not None and vendor != 1:
            c.add(f"{ppath}.sse", "vendor", "is supported only for vendor 1 (Amazon S3)")
        if c.string(params, "tag", ppath) is not None and vendor is not None \
                and vendor not in (1, 2):
            c.add(f"{ppath}.tag", "vendor", "is supported only for vendors 1 and 2")
        c.string(params, "endpoint", ppath)
    if vendor == 11 and not partial and not (params and params.get("endpoint")):
        c.add(f"{base}.extensionParams.endpoint", "required",
              "is required for vendor 11 (S3-compatible storage)")


def _check_prefix(c: _Checker, sc: Mapping[str, Any], base: str) -> None:
    path = f"{base}.fileNamePrefix"
    if "fileNamePrefix" not in sc:
        return
    prefix = sc["fileNamePrefix"]
    if not isinstance(prefix, list):
        c.add(path, "type", "must be an array of strings")
        return
    total = 0
    for i, element in enumerate(prefix):
        if not isinstance(element, str):
            c.add(f"{path}[{i}]", "type", "must be a string")
            continue
        total += len(element) + 1  # each element becomes "<element>/"
        if not _PREFIX_ELEMENT.fullmatch(element):
            c.add(f"{path}[{i}]", "charset",
                  f"may contain only a-z, A-Z and 0-9 (no '-', '_', '.', '/'); got {element!r}")
    if total > MAX_PREFIX_CHARS:
        c.add(path, "length",
              f"the prefix with its slashes must be at most {MAX_PREFIX_CHARS} characters; "
              f"got {total}")


def _check_layout(c: _Checker, obj: Mapping[str, Any], base: str) -> None:
    """The layout fields shared by ``transcodingConfig`` and updateLayout."""
    layout = c.integer(obj, "mixedVideoLayout", base, allowed=(0, 1, 2, 3))
    if "maxResolutionUid" in obj:
        c.uid(obj["maxResolutionUid"], f"{base}.maxResolutionUid")
    elif layout == 2:
        c.add(f"{base}.maxResolutionUid", "required",
              "is required with mixedVideoLayout 2 (vertical)")
    color = c.string(obj, "backgroundColor", base)
    if color is not None and not _COLOR.fullmatch(color):
        c.add(f"{base}.backgroundColor", "format", f'must be "#RRGGBB"; got {color!r}')
    c.string(obj, "backgroundImage", base)
    c.string(obj, "defaultUserBackgroundImage", base)
    regions = obj.get("layoutConfig")
    path = f"{base}.layoutConfig"
    if regions is None:
        if layout == 3:
            c.add(path, "required", "is required with mixedVideoLayout 3 (custom)")
    elif not isinstance(regions, list):
        c.add(path, "type", "must be an array of regions")
    else:
        if layout != 3:
            c.add(path, "layout", "applies only with mixedVideoLayout 3 (custom)")
        if len(regions) > MAX_LAYOUT_REGIONS:
            c.add(path, "max_entries",
                  f"must have at most {MAX_LAYOUT_REGIONS} regions; got {len(regions)}")
        for i, region in enumerate(regions):
            rpath = f"{path}[{i}]"
            if not isinstance(region, Mapping):
                c.add(rpath, "type", "must be an object")
                continue
            if "uid" in region:
                c.uid(region["uid"], f"{rpath}.uid")
            for key in ("x_axis", "y_axis"):
                c.number(region, key, rpath, bounds=(0.0, 1.0), required=True)
            for key in ("width", "height", "alpha"):
                c.number(region, key, rpath, bounds=(0.0, 1.0))
            c.integer(region, "render_mode", rpath, allowed=(0, 1))
    backgrounds = obj.get("backgroundConfig")
    bpath = f"{base}.backgroundConfig"
    if backgrounds is not None:
        if not isinstance(backgrounds, list):
            c.add(bpath, "type", "must be an array")
            return
        for i, entry in enumerate(backgrounds):
            epath = f"{bpath}[{i}]"
            if not isinstance(entry, Mapping):
                c.add(epath, "type", "must be an object")
                continue
            if "uid" not in entry:
                c.add(f"{epath}.uid", "required", "is required")
            else:
                c.uid(entry["uid"], f"{epath}.uid")
            c.string(entry, "image_url", epath, required=True)
            c.integer(entry, "render_mode", epath, allowed=(0, 1))


def _check_transcoding(c: _Checker, tc: Mapping[str, Any], base: str) -> None:
    c.known_keys(tc, base, _KNOWN["transcoding"])
    width = c.integer(tc, "width", base, positive=True)
    height = c.integer(tc, "height", base, positive=True)
    w = width if width is not None else 360
    h = height if height is not None else 640
    if w * h > MAX_PIXELS:
        c.add(base, "resolution", f"width x height must not exceed 1920 x 1080; got {w} x {h}")
    c.integer(tc, "fps", base, positive=True)
    c.integer(tc, "bitrate", base, positive=True)
    _check_layout(c, tc, base)


def _check_recording_config(c: _Checker, rc: Mapping[str, Any], base: str, mode: str, *,
                            snapshot: bool) -> None:
    c.known_keys(rc, base, _KNOWN["recording"])
    c.integer(rc, "channelType", base, allowed=(0, 1), required=True)
    decryption = c.integer(rc, "decryptionMode", base, bounds=(0, 8))
    if decryption:
        if "secret" not in rc:
            c.add(f"{base}.secret", "required", "is required when decryptionMode is not 0")
        else:
            c.string(rc, "secret", base, required=True, secret=True)
        if decryption in (7, 8):
            _check_salt(c, rc, base)
    c.integer(rc, "maxIdleTime", base, bounds=MAX_IDLE_TIME_RANGE)
    stream_types = c.integer(rc, "streamTypes", base, allowed=(0, 1, 2))
    effective_types = stream_types if stream_types is not None else 2
    c.integer(rc, "videoStreamType", base, allowed=(0, 1))
    _check_subscriptions(c, rc, base, effective_types)
    c.integer(rc, "subscribeUidGroup", base, allowed=range(6), required=mode == "individual")
    if "streamMode" in rc:
        if mode != "individual":
            c.add(f"{base}.streamMode", "mode", "applies only in individual mode")
        elif c.string(rc, "streamMode", base, allowed=("default", "standard", "original")) \
                == "original" and effective_types != 0:
            c.add(f"{base}.streamMode", "stream_mode",
                  '"original" requires streamTypes 0 (audio only)')
    if "audioProfile" in rc:
        if mode != "mix":
            c.add(f"{base}.audioProfile", "mode", "applies only in mix (composite) mode")
        else:
            c.integer(rc, "audioProfile", base, allowed=(0, 1, 2))
    if "transcodingConfig" in rc:
        if mode != "mix":
            c.add(f"{base}.transcodingConfig", "mode", "applies only in mix (composite) mode")
        else:
            tc = c.obj(rc, "transcodingConfig", base)
            if tc is not None:
                _check_transcoding(c, tc, f"{base}.transcodingConfig")
    c.string(rc, "privateParams", base)
    if snapshot:
        if effective_types not in (1, 2):
            c.add(f"{base}.streamTypes", "snapshot",
                  "must be 1 or 2 when taking screenshots (they need video)")
        if "subscribeAudioUids" in rc and "subscribeVideoUids" not in rc:
            c.add(f"{base}.subscribeVideoUids", "snapshot",
                  "is required with subscribeAudioUids when taking screenshots")


def _check_salt(c: _Checker, rc: Mapping[str, Any], base: str) -> None:
    path = f"{base}.salt"
    salt = rc.get("salt")
    if salt is None:
        c.add(path, "required", "is required when decryptionMode is 7 or 8")
        return
    if not isinstance(salt, str):
        c.add(path, "type", "must be a string")
        return
    try:
        raw = base64.b64decode(salt, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        c.add(path, "format", "must be 32 bytes, Base64-encoded")


def _check_snapshot(c: _Checker, sc: Mapping[str, Any], base: str) -> None:
    c.known_keys(sc, base, _KNOWN["snapshot"])
    c.integer(sc, "captureInterval", base, bounds=CAPTURE_INTERVAL_RANGE)
    path = f"{base}.fileType"
    if "fileType" not in sc:
        c.add(path, "required", 'is required and must be ["jpg"]')
    elif sc["fileType"] != ["jpg"]:
        c.add(path, "file_type", 'must be ["jpg"] (the only screenshot format)')


def _check_file_config(c: _Checker, cr: Mapping[str, Any], base: str, mode: str, *,
                       snapshot: bool) -> None:
    path = f"{base}.recordingFileConfig"
    if "recordingFileConfig" not in cr:
        if not snapshot:
            c.add(path, "required",
                  "is required (only screenshot-only tasks omit it); "
                  'e.g. {"avFileType": ["hls"]}')
        return
    rfc = cr["recordingFileConfig"]
    if snapshot and (rfc is None or rfc == {} or
                     (isinstance(rfc, Mapping) and rfc.get("avFileType") in (None, []))):
        c.add(path, "screenshot_only",
              'must be omitted for screenshot-only tasks; set avFileType ["hls"] to record too')
        return
    if not isinstance(rfc, Mapping):
        c.add(path, "type", "must be an object")
        return
    c.known_keys(rfc, path, _KNOWN["file"])
    if "avFileType" not in rfc:
        return  # Agora's default, ["hls"], is valid in every mode
    types = rfc["avFileType"]
    tpath = f"{path}.avFileType"
    if not isinstance(types, list) or not types:
        c.add(tpath, "type", 'must be a non-empty array: ["hls"] or ["hls", "mp4"]')
        return
    for i, entry in enumerate(types):
        if entry not in ("hls", "mp4"):
            c.add(f"{tpath}[{i}]", "enum", f'must be "hls" or "mp4"; got {entry!r}')
    if len(set(map(str, types))) != len(types):
        c.add(tpath, "duplicate", "must not repeat a type")
    kinds = set(map(str, types))
    if kinds == {"mp4"}:
        c.add(tpath, "av_file_type", '["mp4"] alone is an error; use ["hls", "mp4"]')
    elif mode == "individual" and kinds != {"hls"}:
        c.add(tpath, "av_file_type", 'individual mode records HLS only: keep ["hls"]')


def _check_extension_services(c: _Checker, cr: Mapping[str, Any], base: str) -> None:
    esc = c.obj(cr, "extensionServiceConfig", base, required=True)
    if esc is None:
        return
    epath = f"{base}.extensionServiceConfig"
    c.known_keys(esc, epath, _KNOWN["extension"])
    c.string(esc, "errorHandlePolicy", epath, allowed=("error_abort",))
    services = esc.get("extensionServices")
    spath = f"{epath}.extensionServices"
    if not isinstance(services, list) or not services:
        c.add(spath, "required", "must be a non-empty array of extension services")
        return
    names: list[str] = []
    for i, service in enumerate(services):
        path = f"{spath}[{i}]"
        if not isinstance(service, Mapping):
            c.add(path, "type", "must be an object")
            continue
        name = c.string(service, "serviceName", path, required=True,
                        allowed=("web_recorder_service", "rtmp_publish_service"))
        c.string(service, "errorHandlePolicy", path, allowed=("error_abort", "error_ignore"))
        params = c.obj(service, "serviceParam", path, required=True)
        if name is None:
            continue
        if name in names:
            c.add(f"{path}.serviceName", "duplicate", f"{name!r} is listed twice")
        names.append(name)
        if params is not None and name == "web_recorder_service":
            _check_web_params(c, params, f"{path}.serviceParam")
        elif params is not None:
            _check_rtmp_outputs(c, params, f"{path}.serviceParam")
    if "web_recorder_service" not in names:
        c.add(spath, "required", "must include a web_recorder_service")


def _check_web_params(c: _Checker, params: Mapping[str, Any], base: str) -> None:
    c.known_keys(params, base, _KNOWN["web_params"])
    url = c.string(params, "url", base, required=True)
    if url and not url.startswith(("http://", "https://")):
        c.add(f"{base}.url", "format", "must be an http:// or https:// URL")
    c.integer(params, "audioProfile", base, allowed=(0, 1, 2), required=True)
    width = c.integer(params, "videoWidth", base, required=True, positive=True)
    height = c.integer(params, "videoHeight", base, required=True, positive=True)
    if width is not None and height is not None and width * height > MAX_PIXELS:
        c.add(base, "resolution",
              f"videoWidth x videoHeight must not exceed 1920 x 1080; got {width} x {height}")
    c.integer(params, "maxRecordingHour", base, bounds=MAX_RECORDING_HOUR_RANGE, required=True)
    c.integer(params, "videoBitrate", base, positive=True)
    c.integer(params, "videoFps", base, bounds=VIDEO_FPS_RANGE)
    c.boolean(params, "mobile", base)
    c.integer(params, "maxVideoDuration", base, bounds=MAX_VIDEO_DURATION_RANGE)
    c.boolean(params, "onhold", base)
    c.integer(params, "readyTimeout", base, bounds=READY_TIMEOUT_RANGE)


def _check_rtmp_outputs(c: _Checker, obj: Mapping[str, Any], base: str) -> None:
    if "outputs" not in obj:
        return
    outputs = obj["outputs"]
    path = f"{base}.outputs"
    if not isinstance(outputs, list):
        c.add(path, "type", "must be an array")
        return
    if len(outputs) > 1:
        c.add(path, "max_entries", f"must have at most 1 entry; got {len(outputs)}")
    for i, output in enumerate(outputs):
        opath = f"{path}[{i}]"
        if not isinstance(output, Mapping):
            c.add(opath, "type", "must be an object")
            continue
        url = c.string(output, "rtmpUrl", opath, required=True)
        if url and not url.startswith(("rtmp://", "rtmps://")):
            c.add(f"{opath}.rtmpUrl", "format", "must be an rtmp:// or rtmps:// URL")


def _start_client_request(c: _Checker, cr: Mapping[str, Any], base: str, mode: str) -> None:
    c.known_keys(cr, base, _KNOWN["start"])
    c.string(cr, "token", base, secret=True)
    storage = c.obj(cr, "storageConfig", base, required=True)
    if storage is not None:
        _check_storage(c, storage, f"{base}.storageConfig")
    snapshot = "snapshotConfig" in cr
    if mode == "web":
        for key in ("recordingConfig", "snapshotConfig"):
            if key in cr:
                c.add(f"{base}.{key}", "mode", "does not apply in web mode")
        _check_extension_services(c, cr, base)
        _check_file_config(c, cr, base, mode, snapshot=False)
        return
    if "extensionServiceConfig" in cr:
        c.add(f"{base}.extensionServiceConfig", "mode", "applies only in web mode")
    if snapshot and mode != "individual":
        c.add(f"{base}.snapshotConfig", "mode", "screenshots are taken only in individual mode")
    elif snapshot:
        sc = c.obj(cr, "snapshotConfig", base)
        if sc is not None:
            _check_snapshot(c, sc, f"{base}.snapshotConfig")
    rc = c.obj(cr, "recordingConfig", base, required=True)
    if rc is not None:
        _check_recording_config(c, rc, f"{base}.recordingConfig", mode,
                                snapshot=snapshot and mode == "individual")
    _check_file_config(c, cr, base, mode, snapshot=snapshot and mode == "individual")


def start_problems(mode: str, client_request: Any, *, cname: Any = None,
                   uid: Any = None) -> list[Problem]:
    """Every documented constraint ``client_request`` (the start ``clientRequest``) breaks
    in ``mode``; ``cname`` and ``uid`` are checked too when given."""
    c = _Checker()
    if mode not in MODES:
        c.add("mode", "enum", f"must be one of {', '.join(MODES)}; got {mode!r}")
        return c.problems
    if cname is not None:
        _check_cname(c, cname, "cname", web=mode == "web")
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
    c = _Checker()
    if mode is not None and mode not in MODES:
        c.add("mode", "enum", f"must be one of {', '.join(MODES)}; got {mode!r}")
        mode = None
    cr = {} if client_request is None else client_request
    if not isinstance(cr, Mapping):
        c.add("clientRequest", "type", "must be an object")
        cr = {}
    base = "clientRequest"
    c.known_keys(cr, base, _KNOWN["acquire"])
    scene = c.integer(cr, "scene", base, allowed=(0, 1, 2))
    web = mode == "web" or (mode is None and scene == 1)
    _check_cname(c, cname, "cname", web=web)
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
    c = _Checker()
    base = "clientRequest"
    if mode not in MODES:
        c.add("mode", "enum", f"must be one of {', '.join(MODES)}; got {mode!r}")
        return c.problems
    if not isinstance(client_request, Mapping):
        c.add(base, "type", "must be an object")
        return c.problems
    if layout:
        if mode != "mix":
            c.add("mode", "mode", "updateLayout applies only in mix (composite) mode")
        _check_layout(c, client_request, base)
        return c.problems
    subscribe = c.obj(client_request, "streamSubscribe", base)
    if subscribe is not None:
        spath = f"{base}.streamSubscribe"
        for media, list_key in (("audio", "audioUidList"), ("video", "videoUidList")):
            lists = c.obj(subscribe, list_key, spath)
            if lists is None:
                continue
            lpath = f"{spath}.{list_key}"
            sub_key, unsub_key = _SUBSCRIPTION_KEYS[media]
            _check_uid_list(c, lists, sub_key, lpath, subscribe=True)
            _check_uid_list(c, lists, unsub_key, lpath, subscribe=False)
            if sub_key in lists and unsub_key in lists:
                c.add(f"{lpath}.{unsub_key}", "exclusive",
                      f"cannot be set together with {sub_key} (they are mutually exclusive)")
    for key in ("webRecordingConfig", "rtmpPublishConfig"):
        if key in client_request and mode != "web":
            c.add(f"{base}.{key}", "mode", "applies only in web mode")
    web_config = c.obj(client_request, "webRecordingConfig", base)
    if web_config is not None:
        c.boolean(web_config, "onhold", f"{base}.webRecordingConfig")
    rtmp = c.obj(client_request, "rtmpPublishConfig", base)
    if rtmp is not None:
        _check_rtmp_outputs(c, rtmp, f"{base}.rtmpPublishConfig")
    storage = c.obj(client_request, "storageConfig", base)
    if storage is not None:
        _check_storage(c, storage, f"{base}.storageConfig", partial=True)
    return c.problems


def validate_update(mode: str, client_request: Any, *, layout: bool = False) -> None:
    """Raise :class:`UpdateRequestInvalid` listing every problem of an update or
    updateLayout request."""
    problems = update_problems(mode, client_request, layout=layout)
    if problems:
        raise UpdateRequestInvalid(problems)
