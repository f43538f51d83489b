"""Checks of where and how a Cloud Recording task writes what it records
(reference/agora-facts.md 2.4-2.7 and the screenshot guide): ``storageConfig`` and its
file name prefix, ``recordingFileConfig``, ``snapshotConfig`` and, in web mode, the
extension services (the web page recorder and the RTMP output).

Choices where Agora's documents disagree or are vague are listed in :mod:`.validation`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from handlers.recording.body_checker import KNOWN_FIELDS, BodyChecker
from handlers.recording.stream_checks import MAX_PIXELS

MAX_PREFIX_CHARS = 128
CAPTURE_INTERVAL_RANGE = (5, 3600)
MAX_RECORDING_HOUR_RANGE = (1, 720)
VIDEO_FPS_RANGE = (5, 60)
MAX_VIDEO_DURATION_RANGE = (30, 240)
READY_TIMEOUT_RANGE = (0, 60)

STORAGE_VENDORS = frozenset({0, 1, 2, 3, 4, 5, 6, 7, 8, 11})
STS_VENDORS = frozenset({1, 2, 3})

_PREFIX_ELEMENT = re.compile(r"[A-Za-z0-9]+")


def check_storage(c: BodyChecker, sc: Mapping[str, Any], base: str, *,
                  partial: bool = False) -> None:
    c.known_keys(sc, base, KNOWN_FIELDS["storage"])
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


def _check_prefix(c: BodyChecker, sc: Mapping[str, Any], base: str) -> None:
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


def check_snapshot(c: BodyChecker, sc: Mapping[str, Any], base: str) -> None:
    c.known_keys(sc, base, KNOWN_FIELDS["snapshot"])
    c.integer(sc, "captureInterval", base, bounds=CAPTURE_INTERVAL_RANGE)
    path = f"{base}.fileType"
    if "fileType" not in sc:
        c.add(path, "required", 'is required and must be ["jpg"]')
    elif sc["fileType"] != ["jpg"]:
        c.add(path, "file_type", 'must be ["jpg"] (the only screenshot format)')


def check_file_config(c: BodyChecker, cr: Mapping[str, Any], base: str, mode: str, *,
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
    c.known_keys(rfc, path, KNOWN_FIELDS["file"])
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


def check_extension_services(c: BodyChecker, cr: Mapping[str, Any], base: str) -> None:
    esc = c.obj(cr, "extensionServiceConfig", base, required=True)
    if esc is None:
        return
    epath = f"{base}.extensionServiceConfig"
    c.known_keys(esc, epath, KNOWN_FIELDS["extension"])
    c.string(esc, "errorHandlePolicy", epath, allowed=("error_abort",))
    services = esc.get("extensionServices")
    spath = f"{epath}.extensionServices"
    if not isinstance(services, list) or not services:
        c.add(spath, "required", "must be a non-empty array of extension services")
        return
    names: list[str] = []
    for path, service in c.objects(services, spath):
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
            check_rtmp_outputs(c, params, f"{path}.serviceParam")
    if "web_recorder_service" not in names:
        c.add(spath, "required", "must include a web_recorder_service")


def _check_web_params(c: BodyChecker, params: Mapping[str, Any], base: str) -> None:
    c.known_keys(params, base, KNOWN_FIELDS["web_params"])
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


def check_rtmp_outputs(c: BodyChecker, obj: Mapping[str, Any], base: str) -> None:
    if "outputs" not in obj:
        return
    outputs = obj["outputs"]
    path = f"{base}.outputs"
    if not isinstance(outputs, list):
        c.add(path, "type", "must be an array")
        return
    if len(outputs) > 1:
        c.add(path, "max_entries", f"must have at most 1 entry; got {len(outputs)}")
    for opath, output in c.objects(outputs, path):
        url = c.string(output, "rtmpUrl", opath, required=True)
        if url and not url.startswith(("rtmp://", "rtmps://")):
            c.add(f"{opath}.rtmpUrl", "format", "must be an rtmp:// or rtmps:// URL")
