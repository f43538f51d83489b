"""Agora Cloud Recording file names, parsed into their parts.

Forms (``agora-facts`` 2.11), each optionally behind a directory path (the storage
``fileNamePrefix``; event 45 reports ``prefix/dirs/<jpg>``) and the HA prefix ``bak<n>_``:

- individual: ``<sid>_<cname>__uid_s_<uid>__uid_e_<audio|video>.m3u8`` and
  ``..._<audio|video>_<utc>.ts|.webm``; screenshots ``..._uid_e_video_<utc>.jpg``;
- composite and web: ``<sid>_<cname>.m3u8``, ``<sid>_<cname>_<utc>.ts``,
  ``<sid>_<cname>_<index>.mp4``;
- M3U8 files re-delivered from Agora Cloud Backup: ``_<tick>_<index>`` before ``.m3u8``.

Beyond the documented forms, the combined track ``av`` that current individual recordings
write (``__uid_e_av.m3u8``, ``__uid_e_av_<utc>.ts|.mp4``, ``__uid_e_av.mpd``) is accepted.

``<utc>`` is ``YYYYMMDDhhmmssSSS`` (UTC). The sid is the first ``_``-separated token (Agora
issues 32 hex characters; the docs also show ``sid713476478245``, so any alphanumeric token is
accepted). Channel names may contain underscores, which makes composite names ambiguous when a
cname ends in ``_<digits>``: without a hint the trailing numbers are read as the suffix fields
(utc, index, tick). Pass ``cname=`` (known from the callback) to split exactly; web recording
replaces special characters of the cname with ``-`` in file names, and the hint accounts for
that. Pure functions, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

Track = Literal["audio", "video", "av"]
Layout = Literal["individual", "composite"]
Kind = Literal["playlist", "slice", "mp4", "screenshot"]

_TRACKS: dict[str, Track] = {"audio": "audio", "video": "video", "av": "av"}
_KIND_BY_EXTENSION: dict[str, Kind] = {
    "m3u8": "playlist",
    "mpd": "playlist",
    "ts": "slice",
    "webm": "slice",
    "mp4": "mp4",
    "jpg": "screenshot",
}
_UTC_FORMAT = "%Y%m%d%H%M%S"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
# Characters web recording replaces with "-" in file names (agora-facts 2.11).
_WEB_SPECIAL = re.compile(r"[!@#$%^&*()+_.=\[\]{}~|,;:?<>]")

_BAK = re.compile(r"bak(?P<failover>\d+)_")
_SID = re.compile(r"(?P<sid>[0-9A-Za-z-]+)_")
_INDIVIDUAL_MARK = "__uid_s_"
_INDIVIDUAL_HEAD = r"__uid_s_(?P<uid>.+?)__uid_e_(?P<track>audio|video|av)"
_BACKUP_TAIL = r"(?:_(?P<tick>\d+)_(?P<backup>\d+))?"
_UTC_TAIL = r"_(?P<utc>\d{17})"

# Suffix after the cname, per (layout, extension).
_SUFFIXES: dict[tuple[Layout, str], re.Pattern[str]] = {
    ("individual", "m3u8"): re.compile(_INDIVIDUAL_HEAD + _BACKUP_TAIL),
    ("individual", "ts"): re.compile(_INDIVIDUAL_HEAD + _UTC_TAIL),
    ("individual", "webm"): re.compile(_INDIVIDUAL_HEAD + _UTC_TAIL),
    ("individual", "jpg"): re.compile(_INDIVIDUAL_HEAD + _UTC_TAIL),
    ("individual", "mp4"): re.compile(_INDIVIDUAL_HEAD + _UTC_TAIL),
    ("individual", "mpd"): re.compile(_INDIVIDUAL_HEAD),
    ("composite", "m3u8"): re.compile(_BACKUP_TAIL),
    ("composite", "ts"): re.compile(_UTC_TAIL),
    ("composite", "webm"): re.compile(_UTC_TAIL),
    ("composite", "mp4"): re.compile(r"_(?P<index>\d+)"),
}
# Whole rest (cname + suffix) when the cname is not known; the lazy cname lets a trailing
# ``_<digits>`` group be read as the suffix (documented ambiguity, see module docstring).
# The individual suffixes without the uid: what follows the last "__uid_e_".
_INDIVIDUAL_TAILS: dict[tuple[Layout, str], re.Pattern[str]] = {
    key: re.compile(pattern.pattern.replace(r"__uid_s_(?P<uid>.+?)", "", 1))
    for key, pattern in _SUFFIXES.items()
    if key[0] == "individual"
}
# Agora's parts are short (sid 32, cname <= 64 bytes, user-account uid <= 255 bytes, a
# prefix of a few directories): anything longer is not a recording file name, and the cap
# bounds the parser's work on hostile input.
MAX_FILE_NAME_LENGTH = 2048
_EXPECTED: dict[tuple[Layout, str], str] = {
    ("individual", "m3u8"): "__uid_s_<uid>__uid_e_<audio|video|av>[_<tick>_<index>].m3u8",
    ("individual", "ts"): "__uid_s_<uid>__uid_e_<audio|video|av>_<YYYYMMDDhhmmssSSS>.ts",
    ("individual", "webm"): "__uid_s_<uid>__uid_e_<audio|video|av>_<YYYYMMDDhhmmssSSS>.webm",
    ("individual", "jpg"): "__uid_s_<uid>__uid_e_video_<YYYYMMDDhhmmssSSS>.jpg",
    ("individual", "mp4"): "__uid_s_<uid>__uid_e_<audio|video|av>_<YYYYMMDDhhmmssSSS>.mp4",
    ("individual", "mpd"): "__uid_s_<uid>__uid_e_<audio|video|av>.mpd",
    ("composite", "m3u8"): "<cname>[_<tick>_<index>].m3u8",
    ("composite", "ts"): "<cname>_<YYYYMMDDhhmmssSSS>.ts",
    ("composite", "webm"): "<cname>_<YYYYMMDDhhmmssSSS>.webm",
    ("composite", "mp4"): "<cname>_<index>.mp4",
}


class FileNameError(ValueError):
    """The name is not an Agora recording file name; the message says which part is wrong."""


@dataclass(frozen=True, slots=True)
class RecordingFile:
    """One recorded file's parts. ``render()`` gives the file name back (with directory)."""

    sid: str
    cname: str
    layout: Layout
    extension: str
    directory: str | None = None
    uid: str | None = None
    track: Track | None = None
    utc: datetime | None = None
    index: int | None = None
    failover_index: int | None = None
    backup_tick: int | None = None
    backup_index: int | None = None

    def __post_init__(self) -> None:
        # Only consistent parts can be rendered back into a name.
        if self.extension not in _KIND_BY_EXTENSION:
            raise ValueError(f"extension {self.extension!r} is not a recording extension")
        if self.layout == "individual" and (self.uid is None or self.track is None):
            raise ValueError("an individual recording file needs uid and track")
        if (self.backup_tick is None) != (self.backup_index is None):
            raise ValueError("backup_tick and backup_index go together")

    @property
    def kind(self) -> Kind:
        return _KIND_BY_EXTENSION[self.extension]

    @property
    def file_name(self) -> str:
        """The base name, without the directory."""
        parts = [f"bak{self.failover_index}_" if self.failover_index is not None else ""]
        parts.append(f"{self.sid}_{self.cname}")
        if self.layout == "individual":
            parts.append(f"__uid_s_{self.uid}__uid_e_{self.track}")
        if self.utc is not None:
            parts.append("_" + format_utc(self.utc))
        if self.index is not None:
            parts.append(f"_{self.index}")
        if self.backup_tick is not None:
            parts.append(f"_{self.backup_tick}_{self.backup_index}")
        return "".join(parts) + "." + self.extension

    def render(self) -> str:
        """The full name as Agora writes it, directory included."""
        return f"{self.directory}/{self.file_name}" if self.directory else self.file_name

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready parts; ``utc`` as ISO 8601 with milliseconds, plus ``utc_ms``."""
        return {
            "name": self.render(),
            "directory": self.directory,
            "sid": self.sid,
            "cname": self.cname,
            "uid": self.uid,
            "track": self.track,
            "layout": self.layout,
            "extension": self.extension,
            "kind": self.kind,
            "utc": self.utc.isoformat(timespec="milliseconds") if self.utc else None,
            "utc_ms": (self.utc - _EPOCH) // _ONE_MS if self.utc else None,
            "index": self.index,
            "failover_index": self.failover_index,
            "backup_tick": self.backup_tick,
            "backup_index": self.backup_index,
        }


def format_utc(moment: datetime) -> str:
    """``YYYYMMDDhhmmssSSS`` in UTC, as in Agora slice and screenshot names."""
    moment = moment.astimezone(UTC)
    return moment.strftime(_UTC_FORMAT) + f"{moment.microsecond // 1000:03d}"


def parse_utc(text: str) -> datetime:
    """Inverse of :func:`format_utc`; raises ``FileNameError`` for an impossible time."""
    try:
        seconds = datetime.strptime(text[:14], _UTC_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise FileNameError(
            f"utc {text!r} is not a valid YYYYMMDDhhmmssSSS time"
        ) from None
    return seconds.replace(microsecond=int(text[14:17]) * 1000)


def web_safe_cname(cname: str) -> str:
    """The cname as web recording writes it in file names (special characters -> ``-``)."""
    return _WEB_SPECIAL.sub("-", cname)


def parse_file_name(name: str, *, cname: str | None = None) -> RecordingFile:
    """Split an Agora recording file name into its parts.

    *cname*, when known, resolves names whose channel contains underscores exactly. Raises
    :class:`FileNameError` naming the part that does not fit.
    """
    if len(name) > MAX_FILE_NAME_LENGTH:
        raise FileNameError(
            f"file name is {len(name)} characters long; at most {MAX_FILE_NAME_LENGTH} expected"
        )
    directory, _, base = name.rpartition("/")
    if not base:
        raise FileNameError(f"file name {name!r} is empty after the directory")
    stem, dot, extension = base.rpartition(".")
    if not dot or extension not in _KIND_BY_EXTENSION:
        raise FileNameError(
            f"file name {base!r} has no recording extension (expected one of "
            f"{', '.join('.' + e for e in _KIND_BY_EXTENSION)})"
        )
    failover_index: int | None = None
    bak = _BAK.match(stem)
    if bak:
        failover_index = int(bak["failover"])
        stem = stem[bak.end() :]
    sid_match = _SID.match(stem)
    if not sid_match:
        raise FileNameError(f"file name {base!r} does not start with <sid>_")
    rest = stem[sid_match.end() :]
    channel = "" if cname is None else _known_cname(rest, cname, base)
    layout: Layout = "individual" if _INDIVIDUAL_MARK in rest[len(channel) :] else "composite"
    key = (layout, extension)
    if key not in _SUFFIXES:
        raise FileNameError(f"file name {base!r}: .{extension} is not a {layout} recording file")

    found: tuple[str, dict[str, str | None]] | None
    if cname is None:
        found = _shortest_cname_match(key, rest)
    else:
        match = _SUFFIXES[key].fullmatch(rest, len(channel))
        found = (channel, match.groupdict()) if match else None
    if found is None or not found[0]:
        raise FileNameError(f"file name {base!r} does not match <sid>_{_EXPECTED[key]}")
    channel, groups = found
    return RecordingFile(
        sid=sid_match["sid"],
        cname=channel,
        layout=layout,
        extension=extension,
        directory=directory or None,
        uid=groups.get("uid"),
        track=_TRACKS.get(groups.get("track") or ""),
        utc=parse_utc(utc) if (utc := groups.get("utc")) else None,
        index=_int_or_none(groups.get("index")),
        failover_index=failover_index,
        backup_tick=_int_or_none(groups.get("tick")),
        backup_index=_int_or_none(groups.get("backup")),
    )


def _shortest_cname_match(
    key: tuple[Layout, str], rest: str
) -> tuple[str, dict[str, str | None]] | None:
    """(cname, suffix groups) leaving the shortest non-empty cname, in linear time.

    Same answer as ``(?P<cname>.+?)<suffix>`` without trying every split point: the
    individual tail holds no ``__uid_e_``, so it starts at the last one, and the shortest
    cname ends at the first ``__uid_s_``; a composite suffix is anchored at the end.
    """
    if key[0] == "individual":
        tail_at = rest.rfind("__uid_e_")
        head_at = rest.find(_INDIVIDUAL_MARK, 1)
        uid_at = head_at + len(_INDIVIDUAL_MARK)
        if tail_at == -1 or head_at == -1 or uid_at >= tail_at:
            return None
        tail = _INDIVIDUAL_TAILS[key].fullmatch(rest, tail_at)
        uid = rest[uid_at:tail_at]
        if tail is None or "\n" in uid:
            return None
        return rest[:head_at], {"uid": uid, **tail.groupdict()}
    for position in _composite_starts(rest):
        match = _SUFFIXES[key].fullmatch(rest, position)
        if match:
            return rest[:position], match.groupdict()
    return None


def _composite_starts(rest: str) -> list[int]:
    """Where a composite suffix may begin, left to right: before one of the last two
    ``_`` (the suffixes hold at most two), or at the very end (an empty suffix)."""
    starts: list[int] = []
    position = len(rest)
    for _ in range(2):
        position = rest.rfind("_", 1, position)
        if position == -1:
            break
        starts.append(position)
    return [*sorted(starts), len(rest)]


def _known_cname(rest: str, cname: str, base: str) -> str:
    for candidate in (cname, web_safe_cname(cname)):
        if candidate and rest.startswith(candidate):
            return candidate
    raise FileNameError(f"file name {base!r} does not contain the channel name {cname!r}")


def _int_or_none(text: str | None) -> int | None:
    return int(text) if text is not None else None
