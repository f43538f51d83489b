"""Checks of what a Cloud Recording task records (reference/agora-facts.md 2.4-2.7): the
channel name, the uid lists it subscribes to, ``recordingConfig`` and the composite layout
(``transcodingConfig``, also sent on its own by updateLayout).

Choices where Agora's documents disagree or are vague are listed in :mod:`.validation`.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any

from handlers.recording.body_checker import KNOWN_FIELDS, BodyChecker

MAX_SUBSCRIBE_ENTRIES = 32
MAX_PIXELS = 1920 * 1080
MAX_LAYOUT_REGIONS = 17
MAX_CNAME_BYTES = 63  # "< 64 bytes"
MAX_WEB_CNAME_BYTES = 1024
ALL_STREAMS = "#allstream#"
MAX_IDLE_TIME_RANGE = (5, 2_592_000)

_CNAME = re.compile(r"[A-Za-z0-9 !#$%&()+\-:;<=.>?@\[\]^_{}|~,]+")
_COLOR = re.compile(r"#[0-9A-Fa-f]{6}")

SUBSCRIPTION_KEYS = {
    "audio": ("subscribeAudioUids", "unsubscribeAudioUids"),
    "video": ("subscribeVideoUids", "unsubscribeVideoUids"),
}


def check_cname(c: BodyChecker, cname: Any, path: str, *, web: bool) -> None:
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


def _check_uid_list(c: BodyChecker, parent: Mapping[str, Any], key: str, base: str, *,
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


def check_uid_lists(c: BodyChecker, lists: Mapping[str, Any], base: str,
                    media: str) -> list[str] | None:
    """The subscribe and unsubscribe lists of ``media`` (audio or video), which exclude
    each other; returns the subscribe list."""
    sub_key, unsub_key = SUBSCRIPTION_KEYS[media]
    sub = _check_uid_list(c, lists, sub_key, base, subscribe=True)
    _check_uid_list(c, lists, unsub_key, base, subscribe=False)
    if sub_key in lists and unsub_key in lists:
        c.add(f"{base}.{unsub_key}", "exclusive",
              f"cannot be set together with {sub_key} (they are mutually exclusive)")
    return sub


def _check_subscriptions(c: BodyChecker, rc: Mapping[str, Any], base: str,
                         stream_types: int) -> None:
    for media, (sub_key, _) in SUBSCRIPTION_KEYS.items():
        sub = check_uid_lists(c, rc, base, media)
        wanted = {0, 2} if media == "audio" else {1, 2}
        if sub is not None and stream_types not in wanted:
            c.add(f"{base}.{sub_key}", "stream_types",
                  f"applies only when streamTypes is {' or '.join(map(str, sorted(wanted)))}; "
                  f"streamTypes is {stream_types}")


def check_layout(c: BodyChecker, obj: Mapping[str, Any], base: str) -> None:
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
    _check_regions(c, obj, base, layout)
    backgrounds = obj.get("backgroundConfig")
    bpath = f"{base}.backgroundConfig"
    if backgrounds is None:
        return
    if not isinstance(backgrounds, list):
        c.add(bpath, "type", "must be an array")
        return
    for epath, entry in c.objects(backgrounds, bpath):
        if "uid" not in entry:
            c.add(f"{epath}.uid", "required", "is required")
        else:
            c.uid(entry["uid"], f"{epath}.uid")
        c.string(entry, "image_url", epath, required=True)
        c.integer(entry, "render_mode", epath, allowed=(0, 1))


def _check_regions(c: BodyChecker, obj: Mapping[str, Any], base: str,
                   layout: int | None) -> None:
    regions = obj.get("layoutConfig")
    path = f"{base}.layoutConfig"
    if regions is None:
        if layout == 3:
            c.add(path, "required", "is required with mixedVideoLayout 3 (custom)")
        return
    if not isinstance(regions, list):
        c.add(path, "type", "must be an array of regions")
        return
    if layout != 3:
        c.add(path, "layout", "applies only with mixedVideoLayout 3 (custom)")
    if len(regions) > MAX_LAYOUT_REGIONS:
        c.add(path, "max_entries",
              f"must have at most {MAX_LAYOUT_REGIONS} regions; got {len(regions)}")
    for rpath, region in c.objects(regions, path):
        if "uid" in region:
            c.uid(region["uid"], f"{rpath}.uid")
        for key in ("x_axis", "y_axis"):
            c.number(region, key, rpath, bounds=(0.0, 1.0), required=True)
        for key in ("width", "height", "alpha"):
            c.number(region, key, rpath, bounds=(0.0, 1.0))
        c.integer(region, "render_mode", rpath, allowed=(0, 1))


def _check_transcoding(c: BodyChecker, tc: Mapping[str, Any], base: str) -> None:
    c.known_keys(tc, base, KNOWN_FIELDS["transcoding"])
    width = c.integer(tc, "width", base, positive=True)
    height = c.integer(tc, "height", base, positive=True)
    w = width if width is not None else 360
    h = height if height is not None else 640
    if w * h > MAX_PIXELS:
        c.add(base, "resolution", f"width x height must not exceed 1920 x 1080; got {w} x {h}")
    c.integer(tc, "fps", base, positive=True)
    c.integer(tc, "bitrate", base, positive=True)
    check_layout(c, tc, base)


def check_recording_config(c: BodyChecker, rc: Mapping[str, Any], base: str, mode: str, *,
                           snapshot: bool) -> None:
    c.known_keys(rc, base, KNOWN_FIELDS["recording"])
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


def _check_salt(c: BodyChecker, rc: Mapping[str, Any], base: str) -> None:
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
