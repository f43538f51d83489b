"""The reader every request-body check shares: it walks a JSON object, collects each
broken rule as a :class:`Problem` (path, rule id, message) and returns the values that
are usable, so one pass reports every problem rather than the first.

The rules themselves are in :mod:`.stream_checks` (what is recorded), :mod:`.output_checks`
(where and how it is written) and :mod:`.validation` (the acquire, start and update
requests). Messages never repeat the value of a credential field.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MAX_UID = 2**32 - 1

_UID = re.compile(r"[1-9][0-9]{0,9}")
_MISSING: Any = object()

# Documented field names per object, for the case-mismatch check.
KNOWN_FIELDS: dict[str, frozenset[str]] = {
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


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_object(value: Any) -> bool:
    return isinstance(value, Mapping)


def _is_string(value: Any) -> bool:
    return isinstance(value, str)


class BodyChecker:
    """Collects problems; the small typed readers return the value when it is usable."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, path: str, rule: str, message: str) -> None:
        self.problems.append(Problem(path, rule, message))

    def _read(self, parent: Mapping[str, Any], key: str, base: str, required: bool,
              accepts: Callable[[Any], bool], expected: str) -> Any:
        """``parent[key]`` when it is there and of the right type; ``_MISSING`` otherwise
        (a missing required field or a wrong type is reported)."""
        path = f"{base}.{key}"
        if key not in parent:
            if required:
                self.add(path, "required", "is required")
            return _MISSING
        value = parent[key]
        if not accepts(value):
            self.add(path, "type", f"must be {expected}")
            return _MISSING
        return value

    def _within(self, path: str, value: float, bounds: tuple[float, float]) -> bool:
        if bounds[0] <= value <= bounds[1]:
            return True
        self.add(path, "range", f"must be in [{bounds[0]}, {bounds[1]}]; got {value}")
        return False

    def obj(self, parent: Mapping[str, Any], key: str, base: str, *,
            required: bool = False) -> Mapping[str, Any] | None:
        value = self._read(parent, key, base, required, _is_object, "an object")
        return None if value is _MISSING else value

    def integer(self, parent: Mapping[str, Any], key: str, base: str, *,
                bounds: tuple[int, int] | None = None, allowed: Iterable[int] | None = None,
                required: bool = False, positive: bool = False) -> int | None:
        path = f"{base}.{key}"
        value = self._read(parent, key, base, required, _is_int, "an integer")
        if value is _MISSING:
            return None
        if bounds is not None and not self._within(path, value, bounds):
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
        return int(value)

    def number(self, parent: Mapping[str, Any], key: str, base: str, *,
               bounds: tuple[float, float], required: bool = False) -> float | None:
        value = self._read(parent, key, base, required, _is_number, "a number")
        if value is _MISSING or not self._within(f"{base}.{key}", value, bounds):
            return None
        return float(value)

    def string(self, parent: Mapping[str, Any], key: str, base: str, *,
               required: bool = False, allowed: Sequence[str] | None = None,
               secret: bool = False) -> str | None:
        path = f"{base}.{key}"
        value = self._read(parent, key, base, required, _is_string, "a string")
        if value is _MISSING:
            return None
        if required and not value:
            self.add(path, "required", "must not be empty")
            return None
        if allowed is not None and value not in allowed:
            listed = ", ".join(repr(a) for a in allowed)
            shown = "" if secret else f"; got {value!r}"
            self.add(path, "enum", f"must be one of {listed}{shown}")
            return None
        return str(value)

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

    def objects(self, items: list[Any], path: str) -> Iterable[tuple[str, Mapping[str, Any]]]:
        """``(path[i], item)`` for each item of an array that is an object; the others
        are reported."""
        for i, item in enumerate(items):
            ipath = f"{path}[{i}]"
            if isinstance(item, Mapping):
                yield ipath, item
            else:
                self.add(ipath, "type", "must be an object")
