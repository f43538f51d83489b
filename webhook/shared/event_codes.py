"""Enums for the codes Agora documents in Cloud Recording callbacks (``agora-facts`` 1.3-1.8):
service types, error modules and levels, the ``recorder_leave`` bit mask and the web
recorder's stop codes. Values outside an enum are kept as plain integers by the models."""

from __future__ import annotations

from enum import IntEnum, IntFlag


class ServiceType(IntEnum):
    """``payload.serviceType``: which part of the recording service sent the event."""

    CLOUD_RECORDING = 0
    RECORDER = 1
    UPLOADER = 2
    EXTENSION = 4
    WEB_RECORDER = 6
    TRANSCODER = 7
    DOWNLOADER = 8


class ErrorModule(IntEnum):
    """``module`` of events 1 and 2."""

    RECORDER = 0
    UPLOADER = 1
    CLOUD_RECORDING = 2
    WEB_RECORDER = 6


class ErrorLevel(IntEnum):
    """``errorLevel`` of event 1; ``FATAL`` may end the recording (confirm with ``query``)."""

    DEBUG = 1
    MINOR = 2
    MEDIUM = 3
    MAJOR = 4
    FATAL = 5


class LeaveCode(IntFlag):
    """``leaveCode`` of event 41, a bit mask; 0 alone means initialisation failed."""

    INIT = 0
    SIG = 2
    NO_USERS = 4
    TIMER_CATCH = 8
    CLIENT_LEAVE = 16

    def reasons(self) -> tuple[LeaveCode, ...]:
        """The documented reasons set in this code, lowest bit first (``INIT`` for 0)."""
        if self.value == 0:
            return (LeaveCode.INIT,)
        return tuple(flag for flag in _LEAVE_BITS if self.value & flag.value)

    @property
    def unknown_bits(self) -> int:
        """Bits Agora has not documented (kept, never silently dropped)."""
        return self.value & ~_KNOWN_LEAVE_BITS


_LEAVE_BITS = (LeaveCode.SIG, LeaveCode.NO_USERS, LeaveCode.TIMER_CATCH, LeaveCode.CLIENT_LEAVE)
_KNOWN_LEAVE_BITS = sum(flag.value for flag in _LEAVE_BITS)
# Expected ends: our own stop (SIGINT), idle past maxIdleTime, the timer bit Agora says to ignore.
BENIGN_LEAVE_BITS = LeaveCode.SIG | LeaveCode.NO_USERS | LeaveCode.TIMER_CATCH


class WebStopCode(IntEnum):
    """``code`` of event 71 (web page recording stopped)."""

    OK = 0
    MAX_RECORDING_HOUR = 1
    CAPABILITY_LIMIT = 2
    START_ENGINE_FAILED = 3
    PAGE_LOAD_TIMEOUT = 4
    ACCESS_URL_FAILED = 5
    RECORDER_ERROR = 6
